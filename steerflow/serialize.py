"""How task functions, arguments and results cross process boundaries.

Plain ``pickle`` (C, protocol 5) first because it is several times faster for the small
payloads of the hot path; cloudpickle only when plain pickle cannot do it (lambdas,
closures, things defined in ``__main__``), so any picklable callable works.

Data by reference
-----------------
Large buffers (numpy arrays, ``bytearray`` and anything else that hands pickle protocol 5
out-of-band ``PickleBuffer`` objects, and large plain ``bytes``, which pickle always writes
in-band, so `dumps` wraps them) do not go through the pipe: `dumps` writes each out-of-band buffer of
at least `SHM_THRESHOLD` bytes, with one copy, into its own file in ``/dev/shm`` (or the temporary
directory when there is no ``/dev/shm``) named ``steerflow-<creator pid>-<random>``, mode 0600,
and returns a small *envelope* that names those files. `loads` maps each file (``mmap``) and
hands the mappings to ``pickle.loads`` as its ``buffers``, so the arrays it returns are zero-copy
views on that shared memory.

Wire format: a plain pickle (starts with ``0x80``: exactly what ``pickle.loads`` reads), or an
envelope: ``b"\\x00"``, a count (``!H``), per file its size (``!Q``), path length (``!H``) and
UTF-8 path, then the pickle whose out-of-band buffers are those files, in order.

Ownership (who deletes the files):

* ``loads(data)`` (``consume=True``, for a payload read once, e.g. a task's result) unlinks each
  file right after mapping it; the memory lives on until the loaded objects are garbage-collected.
* ``loads(data, consume=False)`` (for a payload that may be loaded again, e.g. a task's arguments,
  which a retry re-sends) leaves the files; whoever owns the payload calls ``release(data)`` once
  it is finished with for good.
* ``cleanup_stale()`` removes files whose creator process is dead (crashed driver or worker).

Loaded arrays are **writable** in both modes. With ``consume=True`` the mapping is shared
(``MAP_SHARED``) with a file nobody else can open any more, so writes cost nothing extra; with
``consume=False`` it is private copy-on-write (``MAP_PRIVATE``): a task that modifies its
arguments in place changes only its own copy of the touched pages, never the payload a retry
loads again.
"""

from __future__ import annotations

import atexit
import os
import pickle
import struct
from collections.abc import Iterable
from typing import Any

import cloudpickle

PROTOCOL = 5

SHM_THRESHOLD = 256 * 1024
"""Out-of-band buffers of at least this many bytes go through shared memory; smaller ones stay in the pickle."""

PREFIX = "steerflow-"
_TAG = 0  # first byte of an envelope; a protocol-5 pickle starts with 0x80 (PROTO)
_HEAD = struct.Struct("!BH")
_REF = struct.Struct("!QH")
_pickle_dumps = pickle.dumps
_pickle_loads = pickle.loads
_PICKLE_ERRORS = (pickle.PicklingError, AttributeError, TypeError)


def _choose_dir() -> str:
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    import tempfile

    return tempfile.gettempdir()


SHM_DIR = _choose_dir()
"""Where the shared-memory files go: ``/dev/shm``, else the temporary directory."""


# ---- writing ------------------------------------------------------------------------------

def dumps(obj: Any) -> bytes:
    """Pickle ``obj``; large out-of-band buffers go to shared-memory files the result refers to.

    Falls back to cloudpickle for what plain pickle rejects or sends by reference to __main__.
    The result is a plain pickle when nothing was large enough to go to shared memory.
    """
    big: list[pickle.PickleBuffer] = []
    threshold = SHM_THRESHOLD
    kind = type(obj)
    if (kind is bytes or kind is bytearray) and len(obj) >= threshold:  # a large result, found without pickling twice
        obj = _BigBytes(obj)
    elif kind is tuple and len(obj) == 2 and type(obj[0]) is tuple:  # a task's (args, kwargs): look at the args
        for arg in obj[0]:
            if (type(arg) is bytes or type(arg) is bytearray) and len(arg) >= threshold:
                obj = _lift_bytes(obj, threshold)
                break

    def keep_inband(buf: pickle.PickleBuffer) -> bool:  # False: out-of-band
        try:
            size = buf.raw().nbytes
        except BufferError:  # not contiguous: pickle must copy it in-band
            return True
        if size < threshold or not size:
            return True
        big.append(buf)
        return False

    try:
        data = _pickle_dumps(obj, PROTOCOL, buffer_callback=keep_inband)
    except _PICKLE_ERRORS:
        big.clear()
        data = cloudpickle.dumps(obj, PROTOCOL, buffer_callback=keep_inband)
        if len(data) >= threshold and not big:
            lifted = _lift_bytes(obj, threshold)
            if lifted is not obj:
                return dumps(lifted)
    else:
        if len(data) >= threshold and not big:  # large bytes inside went in-band (pickle never lifts them)
            lifted = _lift_bytes(obj, threshold)
            if lifted is not obj:
                return dumps(lifted)
        if b"__main__" in data:  # by-reference pickles of __main__ objects cannot load in a worker
            big.clear()
            data = cloudpickle.dumps(obj, PROTOCOL, buffer_callback=keep_inband)
    if not big:
        return data
    try:
        refs = _write_buffers(big)
    except OSError:  # shared memory full or unusable: send everything through the pipe
        return dumps_inband(obj)
    head = [_HEAD.pack(_TAG, len(refs))]
    for path, size in refs:
        encoded = path.encode()
        head.append(_REF.pack(size, len(encoded)))
        head.append(encoded)
    head.append(data)
    return b"".join(head)


class _BigBytes:
    """A large ``bytes`` or ``bytearray``, pickled as an out-of-band buffer (loads back as its own type)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data

    def __reduce_ex__(self, protocol: int) -> tuple:
        return type(self.data), (pickle.PickleBuffer(self.data),)


def _lift_bytes(obj: Any, threshold: int, depth: int = 3) -> Any:
    """``obj`` with its large ``bytes``/``bytearray`` wrapped for out-of-band pickling (tuples, lists, dicts; a few levels deep)."""
    kind = type(obj)
    if kind is bytes or kind is bytearray:
        return _BigBytes(obj) if len(obj) >= threshold else obj
    if depth == 0 or kind not in (tuple, list, dict) or len(obj) > 10_000:
        return obj
    if kind is dict:
        items = {k: _lift_bytes(v, threshold, depth - 1) for k, v in obj.items()}
        return items if any(items[k] is not v for k, v in obj.items()) else obj
    lifted = [_lift_bytes(v, threshold, depth - 1) for v in obj]
    if all(a is b for a, b in zip(lifted, obj)):
        return obj
    return tuple(lifted) if kind is tuple else lifted


class Elsewhere(bytes):
    """A result's wire form that only refers to its data, kept elsewhere (a node's memory, by an engine).

    Not self-contained: whoever stores results (the journal) stores the loaded value instead.
    """


class Ref:
    """A pickled value carried inside another payload: the worker loads it where it lands.

    A dependent's arguments hold a `Ref` to each input's result as it came back from its task,
    so a result in shared memory goes to the next task by reference: the driver neither loads
    nor copies it, and the next worker maps the same files (copy-on-write).
    """

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __reduce__(self) -> tuple:
        return loads, (self.blob, False)


def dumps_inband(obj: Any) -> bytes:
    """A self-contained plain pickle (all buffers in-band): for storing, or for another node."""
    try:
        data = _pickle_dumps(obj, PROTOCOL)
    except _PICKLE_ERRORS:
        return cloudpickle.dumps(obj, PROTOCOL)
    if b"__main__" in data:
        return cloudpickle.dumps(obj, PROTOCOL)
    return data


_owner = 0  # the pid named in new files' names (0: this process)


def owned_by(pid: int) -> None:
    """Name new files after ``pid`` instead of this process, so `cleanup_stale` keeps them while ``pid`` lives.

    A worker writes results that its driver hands on to later tasks by reference: they must
    outlive the worker (it may be killed with a task) for as long as the driver is alive.
    """
    global _owner
    _owner = pid


def owner_pid() -> int:
    """The process this one works for: in a worker, the driver (or Dask node agent) that started it, as given to
    `owned_by` (the worker's parent is its guard, see `steerflow.proctree.guard`); elsewhere the parent."""
    return _owner or os.getppid()


def _new_file() -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    while True:
        path = os.path.join(SHM_DIR, f"{PREFIX}{_owner or os.getpid()}-{os.urandom(8).hex()}")
        try:
            return path, os.open(path, flags, 0o600)
        except FileExistsError:  # pragma: no cover - 64 random bits
            continue


_RECYCLE_LIMIT = 512 * 1024 * 1024
_recycled: list[tuple[int, str]] = []  # (bytes already allocated, path): files nobody maps any more


def recycle(data: bytes, held: Iterable[str] = ()) -> None:
    """Like `release`, but keep the payload's files for reuse when no process still maps them.

    Allocating tmpfs pages is most of the cost of a large transfer (here: 10 MB into a new file
    3.7 ms, into an allocated one 1.6 ms, and freeing them ~1.5 ms more), so files of finished
    payloads are rewritten instead of unlinked. Reuse is safe only if no process still maps the
    file (a task may have kept a reference to its argument): ``held`` are the files workers said
    they still map after their task (see `mapped_paths`); those, and files this process maps,
    are unlinked as usual.
    """
    if not in_shared_memory(data):
        return
    held = held if isinstance(held, (set, frozenset, dict)) else set(held)
    for path, size in _parse(data)[0]:
        total = sum(c for c, _ in _recycled)
        if path in held or path in _live or total + size > _RECYCLE_LIMIT or not os.path.exists(path):
            _unlink(path)
        else:
            _recycled.append((size, path))


def _take_recycled(size: int) -> tuple[str, int] | None:
    """The smallest recycled file with at least ``size`` bytes allocated, opened for rewriting."""
    best = None
    for i, (capacity, _) in enumerate(_recycled):
        if capacity >= size and (best is None or capacity < _recycled[best][0]):
            best = i
    if best is None:
        return None
    _, path = _recycled.pop(best)
    try:
        return path, os.open(path, os.O_WRONLY | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None


def drop_recycled() -> None:
    """Unlink every kept file (at exit)."""
    while _recycled:
        _unlink(_recycled.pop()[1])


def _write_buffers(buffers: list[pickle.PickleBuffer]) -> list[tuple[str, int]]:
    """One file per buffer, written with a single copy; on failure nothing is left behind."""
    refs: list[tuple[str, int]] = []
    try:
        for buf in buffers:
            view = buf.raw()
            size = view.nbytes
            reused = _take_recycled(size) if _recycled else None
            path, fd = reused if reused is not None else _new_file()
            refs.append((path, size))
            try:
                done = 0
                while done < size:
                    done += os.write(fd, view[done:] if done else view)
            finally:
                os.close(fd)
    except BaseException:
        for path, _ in refs:
            _unlink(path)
        raise
    return refs


# ---- reading ------------------------------------------------------------------------------

def loads(data: bytes, consume: bool = True) -> Any:
    """Unpickle what `dumps` (or ``pickle.dumps``) made; shared-memory buffers are mapped, not copied.

    ``consume=True`` unlinks the payload's files once mapped (load it once only);
    ``consume=False`` leaves them for another load and a later `release`.
    """
    if not in_shared_memory(data):
        return _pickle_loads(data)
    refs, offset = _parse(data)
    buffers = [_map(path, size, consume) for path, size in refs]
    return _pickle_loads(memoryview(data)[offset:], buffers=buffers)


def in_shared_memory(data: bytes) -> bool:
    """True if the payload is an envelope whose buffers live in shared-memory files."""
    return bool(data) and data[0] == _TAG


def shm_paths(data: bytes) -> list[str]:
    """The shared-memory files a payload refers to (empty for a plain pickle)."""
    if not in_shared_memory(data):
        return []
    return [path for path, _ in _parse(data)[0]]


def release(data: bytes) -> None:
    """Delete the payload's shared-memory files (missing ones are ignored). Objects already loaded stay valid."""
    for path in shm_paths(data):
        _unlink(path)


def _parse(data: bytes) -> tuple[list[tuple[str, int]], int]:
    _, count = _HEAD.unpack_from(data, 0)
    offset = _HEAD.size
    refs = []
    for _ in range(count):
        size, length = _REF.unpack_from(data, offset)
        offset += _REF.size
        refs.append((bytes(data[offset:offset + length]).decode(), size))
        offset += length
    return refs, offset


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class _Libc:
    """``mmap``/``munmap`` through ctypes: unlike the ``mmap`` module, no file descriptor stays open per mapping."""

    def __init__(self) -> None:
        import ctypes
        import mmap
        import weakref

        libc = ctypes.CDLL(None, use_errno=True)
        self.mmap = libc.mmap
        self.mmap.restype = ctypes.c_void_p
        self.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                              ctypes.c_long]
        self.munmap = libc.munmap
        self.munmap.restype = ctypes.c_int
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.ctypes, self.finalize = ctypes, weakref.finalize
        self.prot = mmap.PROT_READ | mmap.PROT_WRITE
        self.shared, self.private = mmap.MAP_SHARED, mmap.MAP_PRIVATE
        self.failed = ctypes.c_void_p(-1).value


_libc: _Libc | None = None


def _map(path: str, size: int, consume: bool) -> memoryview:
    """A writable view of the file's memory, unmapped when the last object using it is collected."""
    global _libc
    try:
        fd = os.open(path, (os.O_RDWR if consume else os.O_RDONLY) | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileNotFoundError(f"shared-memory payload file {path} is gone: already loaded with consume=True, "
                                "released, or removed as stale") from None
    try:
        if consume:
            _unlink(path)
        if _libc is None:
            _libc = _Libc()
        lib = _libc
        addr = lib.mmap(None, size, lib.prot, lib.shared if consume else lib.private, fd, 0)
        if addr is None or addr == lib.failed:
            err = lib.ctypes.get_errno()
            raise OSError(err, f"mmap of {path} failed: {os.strerror(err)}")
    finally:
        os.close(fd)
    region = (lib.ctypes.c_ubyte * size).from_address(addr)
    if consume:
        unmap = lib.finalize(region, lib.munmap, addr, size)
    else:  # the file stays: remember that this process maps it, so nobody rewrites it under us
        _live[path] = _live.get(path, 0) + 1
        unmap = lib.finalize(region, _unmap, addr, size, path)
    unmap.atexit = False  # the process's exit unmaps everything at once (one by one took seconds for many results)
    return memoryview(region)


_live: dict[str, int] = {}  # files of payloads loaded with consume=False that this process still maps


def _unmap(addr: int, size: int, path: str) -> None:
    assert _libc is not None
    _libc.munmap(addr, size)
    count = _live.get(path, 0) - 1
    if count > 0:
        _live[path] = count
    else:
        _live.pop(path, None)


def mapped_paths() -> set[str]:
    """The shared-memory files this process still maps from payloads loaded with ``consume=False``.

    A worker reports them after a task: a task that kept a reference to its argument keeps the
    file mapped, and such a file must not be recycled.
    """
    return set(_live)


class Encoded:
    """A task's result as it came back (a `dumps` payload), loaded only when someone asks for it.

    Its shared-memory files stay while dependents read them by reference (`Ref`); `settle`
    then either maps them here and unlinks them (`pin`: the value stays loadable, the files are
    gone from ``/dev/shm``) or, once loaded, just unlinks them.
    """

    __slots__ = ("blob", "readers", "_buffers", "_lock", "_settled")

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.readers = 0  # tasks whose arguments refer to these files and have not finished
        self._buffers: list[memoryview] | None = None
        self._lock: Any = None
        self._settled = not in_shared_memory(blob)
        if not self._settled:
            import threading

            self._lock = threading.Lock()

    @property
    def settled(self) -> bool:
        """True for a plain pickle, or once the files are gone from /dev/shm."""
        return self._settled

    @property
    def shareable(self) -> bool:
        """True while another task may still be given this result by reference (always, for a plain pickle)."""
        return not self._settled or self._lock is None

    def load(self) -> Any:
        """The value (loaded each call; the caller keeps it)."""
        if self._lock is None:
            return _pickle_loads(self.blob)
        with self._lock:
            if self._buffers is not None:
                refs, offset = _parse(self.blob)
                return _pickle_loads(memoryview(self.blob)[offset:], buffers=self._buffers)
            if self._settled:
                raise FileNotFoundError("the result's shared memory was already released")
            return loads(self.blob, consume=False)

    def settle(self, pin: bool) -> None:
        """No more readers: ``pin`` maps the files here so `load` still works; then unlink them."""
        if self._settled:
            return
        with self._lock:
            if self._settled:
                return
            self._settled = True
            refs, _ = _parse(self.blob)
            if pin:
                try:
                    self._buffers = [_map(path, size, True) for path, size in refs]
                except OSError:
                    self._buffers = None
            for path, _ in refs:
                _unlink(path)


# ---- crash clean-up -----------------------------------------------------------------------

def cleanup_stale(directory: str | None = None) -> int:
    """Unlink ``steerflow-<pid>-*`` files whose creator is no longer alive; return how many.

    A pid that is alive again but belongs to a process started after the file was written
    (pid reuse) also counts as dead. Files of other users are left alone.
    """
    directory = directory or SHM_DIR
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    uid = os.getuid()
    creators: dict[int, tuple[bool, float | None]] = {}  # pid -> (alive, start time in epoch seconds or None)
    removed = 0
    for name in names:
        if not name.startswith(PREFIX):
            continue
        pid_text, _, rest = name[len(PREFIX):].partition("-")
        if not pid_text.isdigit() or not rest:
            continue
        pid = int(pid_text)
        path = os.path.join(directory, name)
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        if st.st_uid != uid:
            continue
        creator = creators.get(pid)
        if creator is None:
            live = _pid_alive(pid)
            creator = creators[pid] = (live, _start_time(pid) if live else None)
        live, started = creator
        if live and (started is None or st.st_mtime >= started - 2.0):
            continue  # its creator (or at least a process started before the file was written) is alive
        try:
            os.unlink(path)
            removed += 1
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_boot_time: float | None = None


def _start_time(pid: int) -> float | None:
    """When the process started (epoch seconds), from /proc; None when unknown."""
    global _boot_time
    try:
        if _boot_time is None:
            with open("/proc/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        _boot_time = float(line.split()[1])
                        break
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        ticks = int(stat[stat.rindex(b")") + 2:].split()[19])
        if _boot_time is None:
            return None
        return _boot_time + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


atexit.register(drop_recycled)


def dumps_function(fn: Any) -> bytes:
    """Functions always go by value when they live in __main__ or are closures: cloudpickle decides."""
    return cloudpickle.dumps(fn, PROTOCOL)
