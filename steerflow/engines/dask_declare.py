"""What a Dask worker declares as its steerflow node: a part of `steerflow.engines.dask_node`.

From the worker's ``--resources`` (cores, GPUs, memory_mb) and its environment (STEERFLOW_NODE_NAME / HOST / CPUS /
GPU_IDS, SLURM_CPUS_ON_NODE); a declaration that cannot be right is refused with a sentence (the worker is then no
node, and each driver is told why), not taken in another sense.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from ..resources import detect_gpus


def declare_node(resources: dict[str, float] | None = None, env: dict[str, str] | None = None,
                 position: int = 0) -> dict[str, Any]:
    """What this node offers, from the worker's declared resources and the environment.

    ``position``: the worker's number when several share one machine (a LocalCluster names its
    workers 0, 1, 2 …): a node of fewer cores than the machine then binds to its own CPUs.
    """
    env = dict(os.environ) if env is None else env
    resources = resources or {}
    host = socket.gethostname().split(".")[0] or "localhost"
    cpus_spec = env.get("STEERFLOW_NODE_CPUS")
    cpu_ids = tuple(_expand_ids(cpus_spec)) if cpus_spec else ()
    for name in ("cores", "gpus", "GPU"):  # (Dask's resources are floats: 1.5 cores was taken as 1, silently)
        if name in resources and not float(resources[name]).is_integer():
            raise ValueError(f"This Dask worker declares {name}={resources[name]} (--resources); declare a whole "
                             "number.")
    if "cores" in resources:
        cores = int(resources["cores"])
    elif env.get("SLURM_CPUS_ON_NODE"):
        cores = int(env["SLURM_CPUS_ON_NODE"])
    else:
        cores = len(cpu_ids) or len(os.sched_getaffinity(0))
    if cpu_ids and len(cpu_ids) != cores:
        cpu_ids = tuple(cpu_ids[i % len(cpu_ids)] for i in range(cores))
    elif not cpu_ids:
        real = sorted(os.sched_getaffinity(0))
        cpu_ids = tuple(real[(position * cores + i) % len(real)] for i in range(cores))
    gpu_spec = env.get("STEERFLOW_NODE_GPU_IDS")
    gpu_ids = tuple(g.strip() for g in gpu_spec.split(",") if g.strip()) if gpu_spec else detect_gpus()
    gpus = int(resources.get("gpus", resources.get("GPU", len(gpu_ids))))
    if gpu_spec and len(gpu_ids) != gpus:  # (the ids given were replaced by 0..gpus-1: GPUs of someone else)
        raise ValueError(f"This Dask worker declares {gpus} GPU(s) (--resources gpus=...) but "
                         f"STEERFLOW_NODE_GPU_IDS={gpu_spec} names {len(gpu_ids)}; name one id per GPU, or declare "
                         f"{len(gpu_ids)}.")
    if gpu_spec and len(set(gpu_ids)) != len(gpu_ids):
        raise ValueError(f"STEERFLOW_NODE_GPU_IDS={gpu_spec} names a GPU twice; name each GPU once.")
    if len(gpu_ids) != gpus:
        gpu_ids = tuple(str(i) for i in range(gpus))
    if cores < 1:
        raise ValueError(f"This Dask worker declares {cores} core(s) (--resources cores=..., or SLURM_CPUS_ON_NODE); "
                         "a steerflow node needs at least 1.")
    allowed = os.sched_getaffinity(0)
    if cpus_spec and not set(cpu_ids) <= allowed:
        raise ValueError(f"STEERFLOW_NODE_CPUS={cpus_spec} names CPU(s) {sorted(set(cpu_ids) - allowed)} this Dask "
                         f"worker may not run on (it may run on {sorted(allowed)}); name those it may, or leave the "
                         "variable out.")
    return {"name": env.get("STEERFLOW_NODE_NAME") or host, "cores": cores, "gpus": gpus,
            "memory_mb": int(resources.get("memory_mb", 0)), "cpu_ids": cpu_ids, "gpu_ids": gpu_ids,
            "host": env.get("STEERFLOW_NODE_HOST") or host, "pid": os.getpid()}


def _expand_ids(spec: str) -> list[int]:
    """``0-3,8`` -> [0, 1, 2, 3, 8]; a ValueError that names the variable for anything else (before: a bare
    "invalid literal for int()", and ``5-3`` was taken as no CPUs, so the variable was ignored)."""
    out: list[int] = []
    try:
        for part in spec.split(","):
            if "-" in part:
                lo, hi = part.split("-")
                if int(hi) < int(lo):
                    raise ValueError
                out.extend(range(int(lo), int(hi) + 1))
            elif part.strip():
                out.append(int(part))
    except ValueError:
        raise ValueError(f"STEERFLOW_NODE_CPUS={spec} is not a list of CPU ids (like 0-31, or 0,2,4-7); give "
                         "one, or leave the variable out.") from None
    if not out or len(set(out)) != len(out):
        raise ValueError(f"STEERFLOW_NODE_CPUS={spec} names " + ("no CPU" if not out else "a CPU twice") +
                         "; name each CPU the node's cores run on once (a node of more cores than CPUs shares "
                         "them in turn).")
    return out
