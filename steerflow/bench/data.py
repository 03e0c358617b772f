"""`python -m steerflow.bench.data`: round trip of a large numpy array to a warm worker process and back.

One child process reads length-prefixed payloads from a real pipe, loads them with
`serialize.loads`, computes ``.sum()`` and answers with ``serialize.dumps(result)``: the same
path as a task's arguments and result in the local engine. Measured two ways through the same
pipe: steerflow's data by reference (`serialize.dumps`, the array through shared memory) and
plain ``pickle.dumps`` (the array's bytes through the pipe). The median of ``repeats`` runs.
"""

from __future__ import annotations

import os
import statistics
import struct
import subprocess
import sys
import time

import numpy as np

from .. import serialize
from ..engines.worker import read_exact, write_all

_HEADER = struct.Struct("!I")

_CHILD = r"""
import os, struct, sys
from steerflow import serialize
from steerflow.engines.worker import read_exact, write_all
header = struct.Struct("!I")
rfd, wfd = int(sys.argv[1]), int(sys.argv[2])
write_all(wfd, b"r")
while True:
    try:
        (size,) = header.unpack(read_exact(rfd, 4))
    except EOFError:
        break
    value = serialize.loads(read_exact(rfd, size))
    reply = serialize.dumps(value.sum())
    write_all(wfd, header.pack(len(reply)) + reply)
    del value  # unmap (and free) the argument once answered, before waiting for the next one
"""


def _round_trip(rfd: int, wfd: int, payload: bytes) -> object:
    write_all(wfd, _HEADER.pack(len(payload)) + payload)
    (size,) = _HEADER.unpack(read_exact(rfd, 4))
    return serialize.loads(read_exact(rfd, size))


def data_roundtrip_ms(size_mb: int = 10, repeats: int = 20) -> dict:
    """Median ms to send a ``size_mb`` MB float64 array to a worker process and get its sum back."""
    array = np.random.default_rng(0).random(size_mb * 1024 * 1024 // 8)
    expected = array.sum()
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(to_child_r), str(from_child_w)],
                            pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL)
    os.close(to_child_r)
    os.close(from_child_w)
    try:
        if read_exact(from_child_r, 1) != b"r":
            raise RuntimeError("benchmark worker did not start")
        results = {}
        for key, encode in ((f"data_{size_mb}mb_ms", serialize.dumps),
                            (f"data_{size_mb}mb_pickle_ms", serialize.dumps_inband)):
            times = []
            for i in range(repeats + 2):  # two warm-up runs
                t0 = time.perf_counter()
                total = _round_trip(from_child_r, to_child_w, encode(array))
                elapsed = time.perf_counter() - t0
                if not np.isclose(total, expected):
                    raise RuntimeError(f"wrong sum {total} != {expected}")
                if i >= 2:
                    times.append(elapsed)
            results[key] = round(statistics.median(times) * 1e3, 3)
        return results
    finally:
        os.close(to_child_w)
        proc.wait(timeout=30)
        os.close(from_child_r)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    for key, value in data_roundtrip_ms(args.size_mb, args.repeats).items():
        print(f"{key}: {value:.3f}")


if __name__ == "__main__":
    main()
