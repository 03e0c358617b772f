"""serialize: plain pickles for small things, large buffers by reference through real /dev/shm files."""

from __future__ import annotations

import gc
import os
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from steerflow import serialize

BIG = 10 * 1024 * 1024 // 8  # a 10 MB float64 array


def _ours() -> set[str]:
    """Files this test process created (other processes on the machine may be using shm too)."""
    mine = f"{serialize.PREFIX}{os.getpid()}-"
    return {n for n in os.listdir(serialize.SHM_DIR) if n.startswith(mine)}


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every test must leave no steerflow-* file behind (it is removed, and the test fails)."""
    before = _ours()
    yield
    left = _ours() - before
    for name in left:
        os.unlink(os.path.join(serialize.SHM_DIR, name))
    assert not left, f"left behind in {serialize.SHM_DIR}: {sorted(left)}"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=_env(), capture_output=True,
                          text=True, timeout=60, check=True)


# ---- plain pickles ------------------------------------------------------------------------------

@pytest.mark.parametrize("obj", [((), {}), ((1, 2), {}), ((1.5, "x", None), {"k": [1, 2, {3: b"y"}]}),
                                 {"set": {1, 2}, "bytes": b"\x00" * 1000}, ValueError("boom")])
def test_small_objects_are_plain_pickles(obj):
    data = serialize.dumps(obj)
    assert data[0] == 0x80  # a plain protocol-5 pickle: no envelope
    assert serialize.shm_paths(data) == []
    back = serialize.loads(data)
    if isinstance(obj, Exception):
        assert type(back) is type(obj) and back.args == obj.args
    else:
        assert back == obj
    serialize.release(data)  # harmless on a plain pickle


def test_plain_pickle_bytes_load():
    import pickle

    assert serialize.loads(pickle.dumps({"a": 1})) == {"a": 1}
    assert serialize.loads(pickle.dumps([1], 2)) == [1]


def test_lambdas_and_closures_use_cloudpickle():
    k = 3

    def closure(x):
        return x * k

    fn, data = serialize.loads(serialize.dumps((lambda x: x + 1, closure)))
    assert fn(1) == 2 and data(2) == 6
    assert serialize.loads(serialize.dumps_function(closure))(5) == 15


def test_closure_capturing_a_big_array_goes_by_reference():
    arr = np.arange(BIG, dtype=np.float64)

    def total():
        return float(arr.sum())

    data = serialize.dumps(total)  # cloudpickle path, with the array out of band
    assert len(data) < 10_000 and len(serialize.shm_paths(data)) == 1
    assert serialize.loads(data)() == float(arr.sum())


# ---- numpy arrays -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float64", "float32", "int8", "uint16", "int64", "complex128", "bool"])
@pytest.mark.parametrize("n", [7, 1_000_000])
def test_numpy_dtypes_round_trip(dtype, n):
    arr = (np.arange(n) % 7).astype(dtype)
    data = serialize.dumps({"a": arr})
    assert bool(serialize.shm_paths(data)) == (arr.nbytes >= serialize.SHM_THRESHOLD)
    back = serialize.loads(data)["a"]
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    assert back.flags.writeable


def test_structured_and_fortran_arrays():
    rec = np.zeros(100_000, dtype=[("x", "f8"), ("n", "i4")])
    rec["x"] = np.arange(100_000)
    fortran = np.asfortranarray(np.arange(600 * 500, dtype=np.float64).reshape(600, 500))
    data = serialize.dumps((rec, fortran))
    assert len(serialize.shm_paths(data)) == 2
    rec2, fortran2 = serialize.loads(data)
    np.testing.assert_array_equal(rec2, rec)
    np.testing.assert_array_equal(fortran2, fortran)
    assert fortran2.flags.f_contiguous


def test_non_contiguous_array_goes_in_band():
    base = np.arange(2 * BIG, dtype=np.float64)
    view = base[::2]
    assert not view.flags.contiguous
    data = serialize.dumps(view)
    assert serialize.shm_paths(data) == []
    np.testing.assert_array_equal(serialize.loads(data), view)


def test_zero_d_and_empty_arrays():
    for arr in (np.array(3.5), np.array(7, dtype=np.int32), np.zeros((0, 4))):
        back = serialize.loads(serialize.dumps(arr))
        assert back.shape == arr.shape and back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)


def test_threshold_keeps_small_buffers_in_band_alongside_big_ones(monkeypatch):
    small = np.arange(1000, dtype=np.float64)  # 8 KB
    big = np.arange(BIG, dtype=np.float64)
    data = serialize.dumps({"small": small, "big": big, "again": small})
    assert len(serialize.shm_paths(data)) == 1
    back = serialize.loads(data)
    np.testing.assert_array_equal(back["small"], small)
    np.testing.assert_array_equal(back["big"], big)
    monkeypatch.setattr(serialize, "SHM_THRESHOLD", 1024)
    data = serialize.dumps({"small": small, "big": big})
    assert len(serialize.shm_paths(data)) == 2
    back = serialize.loads(data)
    np.testing.assert_array_equal(back["small"], small)


def test_read_only_array_stays_read_only():
    arr = np.arange(BIG, dtype=np.float64)
    arr.flags.writeable = False
    back = serialize.loads(serialize.dumps(arr))
    np.testing.assert_array_equal(back, arr)
    assert not back.flags.writeable


# ---- by reference -------------------------------------------------------------------------------

def test_big_array_travels_through_a_shm_file():
    arr = np.random.default_rng(1).random(BIG)
    data = serialize.dumps(((arr,), {}))
    assert len(data) < 10_000
    (path,) = serialize.shm_paths(data)
    assert os.path.dirname(path) == serialize.SHM_DIR
    assert os.path.basename(path).startswith(f"steerflow-{os.getpid()}-")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_size == arr.nbytes
    (back,), kwargs = serialize.loads(data)  # consume=True
    assert not os.path.exists(path)
    assert kwargs == {}
    np.testing.assert_array_equal(back, arr)
    back[0] = -1.0  # writable, and the sender's array is not affected
    assert back[0] == -1.0 and arr[0] != -1.0
    with pytest.raises(FileNotFoundError, match="already loaded"):
        serialize.loads(data)


def test_consume_false_keeps_files_until_release():
    arr = np.arange(BIG, dtype=np.float64)
    data = serialize.dumps(arr)
    (path,) = serialize.shm_paths(data)
    first = serialize.loads(data, consume=False)
    assert os.path.exists(path)
    first[:10] = 0.0  # copy-on-write: the payload a retry loads is untouched
    second = serialize.loads(data, consume=False)
    np.testing.assert_array_equal(second, arr)
    serialize.release(data)
    assert not os.path.exists(path)
    serialize.release(data)  # missing files are ignored
    np.testing.assert_array_equal(second, arr)  # loaded objects outlive the release
    assert first[0] == 0.0 and first[10] == 10.0


def test_mapping_is_freed_with_the_array_and_holds_no_fd():
    fds_before = len(os.listdir("/proc/self/fd"))
    payloads = [serialize.dumps(np.full(BIG // 4, i, dtype=np.float64)) for i in range(20)]
    paths = [serialize.shm_paths(p)[0] for p in payloads]
    arrays = [serialize.loads(p) for p in payloads]
    assert len(os.listdir("/proc/self/fd")) <= fds_before + 1  # no descriptor kept per mapping
    assert [a[0] for a in arrays] == list(range(20))
    with open("/proc/self/maps") as f:
        assert paths[0] in f.read()
    del arrays
    gc.collect()
    with open("/proc/self/maps") as f:
        maps = f.read()
    assert not any(p in maps for p in paths)


def test_falls_back_in_band_when_shared_memory_is_unusable(monkeypatch, tmp_path):
    monkeypatch.setattr(serialize, "SHM_DIR", str(tmp_path / "missing"))
    arr = np.arange(BIG, dtype=np.float64)
    data = serialize.dumps(arr)
    assert serialize.shm_paths(data) == [] and len(data) > arr.nbytes
    np.testing.assert_array_equal(serialize.loads(data), arr)


def test_dumps_inband_is_self_contained():
    arr = np.arange(BIG, dtype=np.float64)
    data = serialize.dumps_inband({"a": arr, "f": lambda: 1})
    assert serialize.shm_paths(data) == []
    back = serialize.loads(data)
    np.testing.assert_array_equal(back["a"], arr)
    assert back["f"]() == 1


# ---- across processes ---------------------------------------------------------------------------

def test_another_process_loads_the_same_data():
    arr = np.random.default_rng(2).random(BIG)
    data = serialize.dumps(((arr,), {"scale": 2.0}))
    (path,) = serialize.shm_paths(data)
    out = _python("""
        import sys
        from steerflow import serialize
        (arr,), kw = serialize.loads(bytes.fromhex(sys.argv[1]))
        arr *= kw["scale"]  # writable in the receiver
        print(repr(float(arr.sum())))
    """, data.hex())
    assert float(out.stdout) == pytest.approx(2.0 * float(arr.sum()))
    assert not os.path.exists(path)  # consumed by the other process


def test_result_from_another_process_is_loaded_here():
    out = _python("""
        import numpy as np
        from steerflow import serialize
        data = serialize.dumps(np.arange(%d, dtype=np.float64))
        print(data.hex())
    """ % BIG)
    data = bytes.fromhex(out.stdout.strip())
    (path,) = serialize.shm_paths(data)
    assert os.path.exists(path)  # outlives its (exited) creator until loaded
    back = serialize.loads(data)
    assert not os.path.exists(path)
    np.testing.assert_array_equal(back, np.arange(BIG, dtype=np.float64))


# ---- crash clean-up -----------------------------------------------------------------------------

def _fake_file(pid: int) -> str:
    path = os.path.join(serialize.SHM_DIR, f"steerflow-{pid}-{os.urandom(4).hex()}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, b"x" * 100)
    os.close(fd)
    return path


def test_cleanup_stale_removes_files_of_dead_creators_only():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [_fake_file(dead.pid), _fake_file(dead.pid)]
        keep = [_fake_file(live.pid), _fake_file(os.getpid())]
        assert serialize.cleanup_stale() >= 2
        assert not any(os.path.exists(p) for p in stale)
        assert all(os.path.exists(p) for p in keep)
    finally:
        live.kill()
        live.wait()
        for p in keep:
            os.unlink(p)


def test_cleanup_stale_treats_a_reused_pid_as_dead():
    path = _fake_file(os.getpid())
    os.utime(path, (1_000_000, 1_000_000))  # written long before this process started
    assert serialize.cleanup_stale() >= 1
    assert not os.path.exists(path)


def test_cleanup_stale_on_a_crashed_sender():
    code = ("import os, numpy as np\nfrom steerflow import serialize\n"
            f"data = serialize.dumps(np.ones({BIG}))\nprint(serialize.shm_paths(data)[0], flush=True)\nos._exit(3)")
    out = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60)
    path = out.stdout.strip()
    assert out.returncode == 3 and os.path.exists(path)
    assert serialize.cleanup_stale() >= 1
    assert not os.path.exists(path)


def test_recycle_reuses_unmapped_files_and_unlinks_mapped_ones():
    big = np.arange(BIG, dtype=np.float64)
    data = serialize.dumps(big)
    (path,) = serialize.shm_paths(data)
    serialize.recycle(data)  # nobody maps it: kept for reuse
    assert os.path.exists(path)
    again = serialize.dumps(big + 1)
    assert serialize.shm_paths(again) == [path]  # the same file, rewritten
    loaded = serialize.loads(again, consume=False)  # this process now maps it
    assert path in serialize.mapped_paths()
    serialize.recycle(again)
    assert not os.path.exists(path)  # mapped: unlinked instead of reused
    assert loaded[1] == 2.0
    del loaded
    assert path not in serialize.mapped_paths()  # unmapped with the last object using it
    third = serialize.dumps(big)
    (other,) = serialize.shm_paths(third)
    serialize.recycle(third, held={other})  # a worker said it still maps it
    assert not os.path.exists(other)
    serialize.drop_recycled()
