"""Machine instructions per placement decision (valgrind's cachegrind): the scheduler's cost, whatever the load.

Wall and CPU-second rates of `steerflow bench scheduler` move by ~30 % with the hour and the load on a shared VM;
an instruction count does not. Each package runs `bench.scheduler.placements_per_second` (10,000 nodes x 32 cores
x 4 GPUs) twice under cachegrind, with D1 and D2 steady-state decisions; (I refs(D2) - I refs(D1)) / (D2 - D1) is
the cost of one steady-state decision, without start-up and fill. ``--ref COMMIT`` measures that commit's code too
(``git archive`` into a temporary package), in the same run. Runs of the same code agree to ~1 %.

    nice -n 19 python benchmarks/bench_scheduler_instructions.py --ref fdcb779 --batch 1 --json instr.json

Needs ``valgrind`` on PATH; each run takes ~1-3 minutes (the valgrinds run side by side).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from steerflow.bench.scheduler import print_rows

RUN = """import sys, importlib
sys.path.insert(0, sys.argv[1])
bench = importlib.import_module(sys.argv[2] + ".bench.scheduler")
bench.placements_per_second(nodes=10_000, decisions=int(sys.argv[3]), batch=int(sys.argv[4]))
"""


def _start(path: str, package: str, decisions: int, batch: int) -> subprocess.Popen:
    env = dict(os.environ, PYTHONHASHSEED="0")  # (the same dict and set orders in every run)
    return subprocess.Popen(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                             sys.executable, "-c", RUN, path, package, str(decisions), str(batch)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _refs(proc: subprocess.Popen) -> int:
    _, err = proc.communicate()
    match = re.search(r"I\s+refs:\s+([\d,]+)", err)
    if proc.returncode or not match:
        raise RuntimeError(f"valgrind failed (exit {proc.returncode}): {err[-2000:]}")
    return int(match.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="also measure this commit of the repository (e.g. the session's start)")
    parser.add_argument("--batch", type=int, default=1, help="tasks ended between two passes (as the bench's --batch)")
    parser.add_argument("--decisions", default="2000,22000", help="D1,D2 (default 2000,22000)")
    parser.add_argument("--json", type=Path, help="write the result here as JSON")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not on PATH: install it (apt-get install valgrind) to count instructions.", file=sys.stderr)
        return 2
    d1, d2 = (int(x) for x in args.decisions.split(","))
    here = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="steerflow-instr-") as tmp:
        packages = {"current": (here, "steerflow")}
        if args.ref:
            archive = subprocess.run(["git", "-C", here, "archive", args.ref, "steerflow"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            os.rename(os.path.join(tmp, "steerflow"), os.path.join(tmp, "steerflow_ref"))
            packages[args.ref] = (tmp, "steerflow_ref")
        procs = {(name, d): _start(path, package, d, args.batch)
                 for name, (path, package) in packages.items() for d in (d1, d2)}
        refs = {key: _refs(proc) for key, proc in procs.items()}
    result: dict = {"batch": args.batch, "decisions": [d1, d2]}
    for name in packages:
        result[f"instructions_per_decision_{name}"] = round((refs[(name, d2)] - refs[(name, d1)]) / (d2 - d1))
    if args.ref:
        result["current_vs_ref"] = round(result["instructions_per_decision_current"]
                                         / result[f"instructions_per_decision_{args.ref}"], 4)
    print_rows(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
