"""How a placed task becomes a command line and an environment: binding and launchers.

All launch knowledge lives here (mpirun, srun, plain subprocess), so engines only spawn.
"""

from __future__ import annotations

import os
import shlex
import sys

from .. import proctree
from ..resources import Allocation
from ..scheduler import Placement
from ..task import Executable

# Per-rank binding for MPI: each rank picks its own CPUs and GPUs from lists the launcher
# exports, indexed by its rank, then execs the program under taskset. Each rank also dies with
# the process that started it (mpirun's daemon, srun's step): a SIGKILLed mpirun would leave
# ranks that wait in a sleep or a computation running otherwise (seen: tests/test_die_with_driver.py).
RANK_WRAPPER = (
    'r=${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-${SLURM_PROCID:-0}}}; '
    'cpus=$(printf %s "$STEERFLOW_RANK_CPUS" | cut -d";" -f$((r+1))); '
    'gpus=$(printf %s "$STEERFLOW_RANK_GPUS" | cut -d";" -f$((r+1))); '
    'export CUDA_VISIBLE_DEVICES="$gpus" STEERFLOW_RANK="$r" STEERFLOW_CPUS="$cpus"; '
    'die=""; if command -v setpriv >/dev/null; then die="setpriv --pdeathsig KILL"; fi; '
    'if command -v taskset >/dev/null; then exec $die taskset -c "$cpus" "$@"; else exec $die "$@"; fi'
)


def binding_env(allocation: Allocation, placement: Placement) -> dict[str, str]:
    """Environment that tells a task (its first rank, for MPI) what it was given."""
    slot = placement.slots[0]
    node = allocation.nodes[slot.node]
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(node.gpu_ids[g] for g in slot.gpus),
        "OMP_NUM_THREADS": str(len(slot.cores)),
        "STEERFLOW_NODE": node.name,
        "STEERFLOW_CORES": ",".join(map(str, slot.cores)),
        "STEERFLOW_CPUS": ",".join(map(str, node.physical_cpus(slot.cores))),
        "STEERFLOW_GPUS": ",".join(map(str, slot.gpus)),
    }


def executable_command(spec: Executable, allocation: Allocation, placement: Placement,
                       local: bool) -> tuple[list[str], dict[str, str]]:
    """argv and extra environment for an executable task on its placement.

    ``local`` means every node of the allocation is this machine (the local engine): MPI
    ranks then all go to localhost, bound to the physical CPUs behind their cores.
    """
    env: dict[str, str] = {}
    program = program_argv(spec)
    slots = sorted(placement.slots, key=lambda s: s.node)  # ranks grouped by node, as mpirun maps them
    if spec.launcher == "none":
        node = allocation.nodes[slots[0].node]
        cpus = node.physical_cpus(slots[0].cores)
        cmd = reaper_command(cpus) + program
    else:
        env["STEERFLOW_RANK_CPUS"] = ";".join(
            ",".join(map(str, allocation.nodes[s.node].physical_cpus(s.cores))) for s in slots)
        env["STEERFLOW_RANK_GPUS"] = ";".join(
            ",".join(allocation.nodes[s.node].gpu_ids[g] for g in s.gpus) for s in slots)
        env["OMP_NUM_THREADS"] = str(spec.cores_per_rank)
        env["STEERFLOW_HOSTS"] = host_list(allocation, slots, local)
        wrapped = ["sh", "-c", RANK_WRAPPER, "steerflow-rank", *program]
        if spec.launcher == "mpirun":
            cmd = mpirun_command(allocation, slots, local) + wrapped
        else:
            cmd = srun_command(spec, allocation, slots) + wrapped
    if spec.launcher != "none":
        cmd = reaper_command(None) + cmd
    return cmd, env


def program_argv(spec: Executable) -> list[str]:
    """The program's own argv, inside ``bash -c`` when it has ``pre``/``post`` commands."""
    program = list(spec.argv)
    if spec.pre or spec.post:
        script = "; ".join(["set -e", *spec.pre, '"$@"', *spec.post])
        program = ["bash", "-c", script, "steerflow-task", *program]
    return program


def reaper_command(cpus: list[int] | None) -> list[str]:
    """The wrapper every program runs under (`steerflow.proctree` as a script): it binds the CPUs,
    dies with the driver even if the driver is SIGKILLed, taking everything below it along, and, as a child
    subreaper, kills whatever the program left behind (daemons, children in their own session) when it ends.
    """
    cmd = [sys.executable, "-I", "-S", proctree.__file__, "--parent", str(os.getpid())]
    if cpus:
        cmd += ["--cpus", ",".join(map(str, cpus))]
    return [*cmd, "--"]


def host_list(allocation: Allocation, slots: list, local: bool) -> str:
    """``host:ranks,...`` in rank order, as ``mpirun --host`` takes it (exported as STEERFLOW_HOSTS)."""
    if local:
        return f"localhost:{len(slots)}"
    counts: dict[str, int] = {}
    for s in slots:
        host = allocation.nodes[s.node].host
        counts[host] = counts.get(host, 0) + 1
    return ",".join(f"{h}:{n}" for h, n in counts.items())


def mpirun_command(allocation: Allocation, slots: list, local: bool) -> list[str]:
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(len(slots)), "--host",
            host_list(allocation, slots, local), "--map-by", "slot", "--bind-to", "none",
            "-x", "STEERFLOW_RANK_CPUS", "-x", "STEERFLOW_RANK_GPUS", "-x", "OMP_NUM_THREADS",
            "-x", "STEERFLOW_HOSTS"]


def srun_command(spec: Executable, allocation: Allocation, slots: list) -> list[str]:
    nodes = sorted({s.node for s in slots})
    return ["srun", f"--ntasks={len(slots)}", f"--nodes={len(nodes)}",
            f"--nodelist={','.join(allocation.nodes[n].name for n in nodes)}",
            f"--cpus-per-task={spec.cores_per_rank}", "--mpi=pmix", "--export=ALL", "--kill-on-bad-exit=1"]


def describe(cmd: list[str]) -> str:
    return shlex.join(cmd)
