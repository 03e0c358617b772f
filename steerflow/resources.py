"""The allocation: which nodes a campaign may use and the cores, GPUs and memory of each.

An allocation is detected on this machine, read from a SLURM job's environment, or declared
(N nodes of C cores and G GPUs) for tests and scheduling benchmarks. Cores and GPUs are
numbered 0..n-1 within a node; each node maps those numbers onto the physical CPU ids and
GPU device ids that binding needs, so a declared allocation still binds real CPUs.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import AllocationError

# Bounds that no real machine reaches but a typo does (cores: 10**9 would take minutes and gigabytes to build).
MAX_CORES_PER_NODE = 16_384
MAX_GPUS_PER_NODE = 1_024
MAX_NODES = 1_000_000
MAX_TOTAL_CORES = 1 << 22  # 4,194,304: seven times Frontier


def _count(what: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise AllocationError(f"{what} must be an integer between {low} and {high}; got {value!r}.")
    if not low <= value <= high:
        raise AllocationError(f"{what} must be between {low} and {high}; got {value}. Check for a typo.")
    return value


@dataclass(frozen=True)
class Node:
    """One node of the allocation."""

    name: str
    cores: int
    gpus: int = 0
    memory_mb: int = 0
    #: physical CPU id of each core index (wraps around when declared cores outnumber real ones)
    cpu_ids: tuple[int, ...] = ()
    #: device id of each GPU index, as CUDA_VISIBLE_DEVICES wants it
    gpu_ids: tuple[str, ...] = ()
    #: host name a launcher (mpirun --host) uses for this node
    host: str = "localhost"

    def __post_init__(self) -> None:
        if isinstance(self.cores, int) and not isinstance(self.cores, bool) and self.cores < 1:
            raise AllocationError(f"Node '{self.name}' has {self.cores} cores; a node needs at least 1.")
        if isinstance(self.gpus, int) and not isinstance(self.gpus, bool) and self.gpus < 0:
            raise AllocationError(f"Node '{self.name}' has {self.gpus} GPUs; the count cannot be negative.")
        _count(f"Node '{self.name}': cores", self.cores, 1, MAX_CORES_PER_NODE)
        _count(f"Node '{self.name}': gpus", self.gpus, 0, MAX_GPUS_PER_NODE)
        _count(f"Node '{self.name}': memory_mb", self.memory_mb, 0, 1 << 40)
        if not self.cpu_ids:
            real = sorted(os.sched_getaffinity(0))
            object.__setattr__(self, "cpu_ids", tuple(real[i % len(real)] for i in range(self.cores)))
        if not self.gpu_ids:
            object.__setattr__(self, "gpu_ids", tuple(str(i) for i in range(self.gpus)))
        if len(self.cpu_ids) != self.cores or len(self.gpu_ids) != self.gpus:
            raise AllocationError(f"Node '{self.name}': cpu_ids/gpu_ids must list one id per core/GPU.")

    def physical_cpus(self, cores: tuple[int, ...]) -> list[int]:
        """The distinct physical CPUs behind these core indices (for CPU affinity)."""
        return sorted({self.cpu_ids[c] for c in cores})


@dataclass(frozen=True)
class Allocation:
    """The nodes a campaign runs on; ``source`` says where they came from."""

    nodes: tuple[Node, ...]
    source: str = "declared"
    by_name: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.nodes:
            raise AllocationError("An allocation needs at least one node.")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise AllocationError(f"Node names must be unique in an allocation; got {names}.")
        self.by_name.update({n.name: i for i, n in enumerate(self.nodes)})

    # ---- summaries used by validation -------------------------------------------------
    @property
    def total_cores(self) -> int:
        return sum(n.cores for n in self.nodes)

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    @property
    def max_cores_per_node(self) -> int:
        return max(n.cores for n in self.nodes)

    @property
    def max_gpus_per_node(self) -> int:
        return max(n.gpus for n in self.nodes)

    @property
    def max_memory_mb_per_node(self) -> int:
        return max(n.memory_mb for n in self.nodes)

    def describe(self) -> str:
        return (f"{len(self.nodes)} node(s), {self.total_cores} cores, {self.total_gpus} GPUs "
                f"({self.source})")

    # ---- the three ways to get one ------------------------------------------------------
    @classmethod
    def declare(cls, nodes: int = 1, cores: int = 1, gpus: int = 0, memory_mb: int = 0) -> Allocation:
        """N identical nodes; tasks still run on this machine, bound to real CPUs modulo their count."""
        if isinstance(nodes, int) and not isinstance(nodes, bool) and nodes < 1:
            raise AllocationError(f"A declared allocation needs at least 1 node; got nodes={nodes}.")
        _count("nodes", nodes, 1, MAX_NODES)
        _count("cores", cores, 1, MAX_CORES_PER_NODE)
        _count("gpus", gpus, 0, MAX_GPUS_PER_NODE)
        _count("memory_mb", memory_mb, 0, 1 << 40)
        if nodes * cores > MAX_TOTAL_CORES:
            raise AllocationError(f"nodes={nodes} x cores={cores} is {nodes * cores:,} cores, more than the "
                                  f"{MAX_TOTAL_CORES:,} steerflow manages in one allocation. Check for a typo.")
        host = "localhost"
        return cls(tuple(Node(f"node{i:0{len(str(nodes - 1))}d}", cores, gpus, memory_mb, host=host)
                         for i in range(nodes)), source="declared")

    @classmethod
    def detect(cls) -> Allocation:
        """This machine: CPUs we may run on, GPUs we may see, and its memory."""
        cpus = tuple(sorted(os.sched_getaffinity(0)))
        gpu_ids = detect_gpus()
        return cls((Node(socket.gethostname().split(".")[0] or "localhost", len(cpus), len(gpu_ids),
                         _meminfo_mb(), cpu_ids=cpus, gpu_ids=gpu_ids, host="localhost"),),
                   source="detected")

    @classmethod
    def from_slurm(cls, env: Mapping[str, str] | None = None) -> Allocation:
        """The nodes of the SLURM job we run inside, read from its environment variables."""
        env = os.environ if env is None else env
        nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
        if not nodelist:
            raise AllocationError("SLURM_JOB_NODELIST is not set: this does not run inside a SLURM job. "
                                  "Use Allocation.detect() or Allocation.declare(...) instead.")
        names = expand_nodelist(nodelist)
        cpus_spec = env.get("SLURM_JOB_CPUS_PER_NODE") or env.get("SLURM_CPUS_ON_NODE")
        if not cpus_spec:
            raise AllocationError("SLURM_JOB_CPUS_PER_NODE is not set; cannot tell how many cores each node has.")
        cores = expand_counts(cpus_spec)
        if len(cores) == 1:
            cores = cores * len(names)
        if len(cores) != len(names):
            raise AllocationError(f"SLURM_JOB_CPUS_PER_NODE={cpus_spec!r} lists {len(cores)} nodes but "
                                  f"SLURM_JOB_NODELIST={nodelist!r} has {len(names)}.")
        gpus = _slurm_gpus_per_node(env)
        mem = int(env.get("SLURM_MEM_PER_NODE", "0") or 0)
        here = env.get("SLURMD_NODENAME") or socket.gethostname().split(".")[0]
        if here not in names and len(names) == 1:
            here = names[0]
        nodes = []
        for name, c in zip(names, cores):
            # this node: the CPUs the job really holds here; another node is bound by its own engine
            ids = _fit(slurm_cpu_ids(env, c), c) if name == here else tuple(range(c))
            nodes.append(Node(name, c, gpus, mem, cpu_ids=ids, host=name))
        return cls(tuple(nodes), source="slurm")

    @classmethod
    def auto(cls) -> Allocation:
        """SLURM's allocation inside a job, this machine otherwise."""
        if os.environ.get("SLURM_JOB_NODELIST"):
            return cls.from_slurm()
        return cls.detect()


# ---- helpers ----------------------------------------------------------------------------

def slurm_cpu_ids(env: Mapping[str, str], count: int) -> list[int]:
    """The CPU ids a SLURM job holds on this node, most specific source first.

    A job given part of a node (cgroup cpuset, ``--cpu-bind``) holds ids that are not
    ``0..count-1``: they come from our affinity, narrowed by the cgroup's cpuset, then, where the
    affinity is wider than the job (no binding enforced), by ``SLURM_CPU_BIND``'s mask or map.
    """
    ids = sorted(os.sched_getaffinity(0))
    cpuset = cgroup_cpuset()
    if cpuset:
        ids = [i for i in ids if i in cpuset] or ids
    bound = cpu_bind_ids(env)
    if bound and len(ids) > count:
        ids = [i for i in ids if i in bound] or ids
    return ids


def _fit(ids: list[int], count: int) -> tuple[int, ...]:
    """``count`` ids from ``ids``: the first ones, or wrapped around when the job has fewer CPUs here."""
    return tuple(ids[:count]) if len(ids) >= count else tuple(ids[i % len(ids)] for i in range(count))


def cpu_bind_ids(env: Mapping[str, str]) -> set[int]:
    """CPU ids of this task from SLURM_CPU_BIND_TYPE/_LIST (``mask_cpu:`` hex masks or ``map_cpu:`` ids)."""
    kind = env.get("SLURM_CPU_BIND_TYPE", "")
    items = [v.strip() for v in env.get("SLURM_CPU_BIND_LIST", "").split(",") if v.strip()]
    if not items or not ("mask_cpu" in kind or "map_cpu" in kind):
        return set()
    try:
        item = items[int(env.get("SLURM_LOCALID", "0") or 0) % len(items)]
        if "mask_cpu" in kind:
            mask = int(item, 16)
            return {i for i in range(mask.bit_length()) if mask >> i & 1}
        return {int(item)}
    except ValueError:
        return set()


def cgroup_cpuset() -> set[int]:
    """The CPUs of our cgroup's cpuset (v2 ``cpuset.cpus.effective`` or v1 ``cpuset.cpus``); empty if unknown."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    candidates = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            candidates.append(f"/sys/fs/cgroup{path}/cpuset.cpus.effective")
        elif "cpuset" in controllers.split(","):
            candidates.append(f"/sys/fs/cgroup/cpuset{path}/cpuset.cpus")
    for candidate in candidates:
        try:
            with open(candidate) as f:
                return parse_cpu_list(f.read())
        except (OSError, ValueError):
            continue
    return set()


def parse_cpu_list(text: str) -> set[int]:
    """Linux's CPU list format: ``0-3,8,10-11`` -> {0, 1, 2, 3, 8, 10, 11}."""
    out: set[int] = set()
    for part in text.strip().split(","):
        if part:
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    return out


def detect_gpus() -> tuple[str, ...]:
    """GPU device ids visible to us: CUDA_VISIBLE_DEVICES when set, else ``nvidia-smi -L``."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1")
    smi = shutil.which("nvidia-smi")
    if not smi:
        return ()
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU ")))


def _meminfo_mb() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


def expand_nodelist(spec: str) -> list[str]:
    """Expand SLURM's compressed host list: ``gpu[01-03,7],login1`` -> gpu01 gpu02 gpu03 gpu7 login1."""
    names: list[str] = []
    for item in _split_top_level(spec):
        m = re.fullmatch(r"([^\[\]]*)\[([^\]]+)\](.*)", item)
        if not m:
            if "[" in item or "]" in item:
                raise AllocationError(f"Cannot read the SLURM node list {spec!r}: unbalanced brackets in {item!r}.")
            names.append(item)
            continue
        prefix, ranges, rest = m.groups()
        tails = expand_nodelist(rest) if rest else [""]
        for part in ranges.split(","):
            r = _RANGE.match(part.strip())
            if not r:
                raise AllocationError(f"Cannot read the SLURM node list {spec!r}: bad range {part!r}.")
            lo, hi = r.group(1), r.group(2) or r.group(1)
            width = len(lo)
            for i in range(int(lo), int(hi) + 1):
                for tail in tails:
                    names.append(f"{prefix}{i:0{width}d}{tail}")
    return names


def _split_top_level(spec: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in spec:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def expand_counts(spec: str) -> list[int]:
    """Expand SLURM's per-node counts: ``16(x2),8`` -> [16, 16, 8]."""
    out: list[int] = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            raise AllocationError(f"Cannot read the SLURM count list {spec!r}: bad item {part!r}.")
        out.extend([int(m.group(1))] * int(m.group(2) or 1))
    return out


def _slurm_gpus_per_node(env: Mapping[str, str]) -> int:
    for key in ("SLURM_GPUS_ON_NODE", "SLURM_GPUS_PER_NODE", "SLURM_JOB_GPUS"):
        value = env.get(key)
        if not value:
            continue
        if key == "SLURM_JOB_GPUS":  # a list of device ids, e.g. "0,1,2,3"
            return len([v for v in value.split(",") if v.strip()])
        m = re.search(r"(\d+)\s*$", value.split(",")[0])  # "4" or "a100:4"
        if m:
            return int(m.group(1))
    return 0
