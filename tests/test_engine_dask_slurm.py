"""The Dask engine on a real SLURM: a pilot job submitted through dask-jobqueue runs a small campaign.

The fixture starts munged, slurmctld and slurmd on localhost with a minimal configuration it
writes (tests/slurm_cluster.py), and stops them by pid. The campaign: function tasks, an
executable, and a 2-rank MPI task launched with ``srun --mpi=pmix`` inside the pilot job.
Skipped, with the exact reason, where SLURM cannot run.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from steerflow import Campaign, Executable, Function

from .slurm_cluster import SlurmCluster, why_not

pytestmark = pytest.mark.slow

REASON = why_not()
if REASON is None and importlib.util.find_spec("dask_jobqueue") is None:
    REASON = "dask-jobqueue is not installed (pip install 'steerflow[dask]')."


@pytest.fixture
def slurm(monkeypatch):
    if REASON:
        pytest.skip(REASON)
    cluster = SlurmCluster()
    try:
        cluster.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        cluster.stop()
        pytest.skip(f"SLURM is installed but could not start here: {exc}")
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))  # for sbatch/squeue (jobqueue) and srun in the job
    yield cluster
    cluster.stop()


def where(x: int) -> tuple[int, str, str, str]:
    return x * x, os.environ["STEERFLOW_NODE"], os.environ.get("SLURM_JOB_ID", ""), os.environ["STEERFLOW_CPUS"]


MPI_HELLO = "from mpi4py import MPI; c = MPI.COMM_WORLD; print(c.Get_rank(), c.Get_size(), flush=True)"


def test_a_campaign_runs_in_a_slurm_pilot_job(slurm, tmp_path):
    from steerflow.engines.dask import DaskEngine

    cores = min(slurm.cpus, 2)
    engine = DaskEngine(jobqueue={
        "system": "slurm", "nodes": 1, "cores": cores, "memory": "1GB", "walltime": "00:10:00", "queue": "debug",
        "python": sys.executable, "log_directory": str(tmp_path / "pilot-logs"),
        "scheduler_options": {"host": "127.0.0.1"}, "job_script_prologue": [f"cd {tmp_path}"],
    }, connect_timeout=90)
    camp = Campaign(tmp_path / "camp", engine=engine, progress=False)
    try:
        assert [n.name for n in camp.allocation.nodes] == [slurm.host]  # the pilot's node, by its SLURM name
        assert camp.allocation.total_cores == cores
        # the pilot's worker and nanny listen on their comm ports only (no HTTP port): see dask_batch
        import psutil

        from .test_engine_dask_hygiene import listening_ports

        (ws,) = engine.cluster.scheduler.workers.values()  # (jobqueue's scheduler runs in this process)
        worker = next(p for p in psutil.process_iter() if _port(ws.address) in listening_ports(p.pid))
        assert listening_ports(worker.pid) == {_port(ws.address)}
        assert listening_ports(worker.parent().pid) == {_port(ws.nanny)}
        squares = [camp.submit(where, i) for i in range(6)]
        echo = camp.submit(Executable(["sh", "-c", "echo job $SLURM_JOB_ID on $STEERFLOW_NODE"]))
        mpi = camp.submit(Executable([sys.executable, "-c", MPI_HELLO], ranks=2, launcher="srun"))
        camp.run()
        values = [f.result() for f in squares]
        assert [v[0] for v in values] == [i * i for i in range(6)]
        job_ids = {v[2] for v in values}
        assert len(job_ids) == 1 and job_ids != {""}  # every function ran inside the one pilot job
        assert echo.result().stdout_path.read_text().strip() == f"job {job_ids.pop()} on {slurm.host}"
        out = mpi.result()
        lines = sorted(out.stdout_path.read_text().split("\n")[:-1])
        assert lines == ["0 2", "1 2"], out.stderr_path.read_text()
    finally:
        camp.close()


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.parametrize("system", ["slurm", "pbs"])
def test_a_jobqueue_spec_becomes_a_pilot_job_script(system):
    if importlib.util.find_spec("dask_jobqueue") is None:
        pytest.skip("dask-jobqueue is not installed (pip install 'steerflow[dask]').")
    import dask_jobqueue

    from steerflow.engines.dask_batch import jobqueue_kwargs

    name, kwargs, nodes = jobqueue_kwargs({"system": system, "nodes": 3, "cores": 8, "gpus": 2, "memory": "16GB",
                                           "queue": "gpu", "account": "abc", "walltime": "01:00:00"})
    assert nodes == 3
    assert kwargs["scheduler_options"]["dashboard_address"] is None  # no dashboard port unless asked
    job_cls = getattr(dask_jobqueue, name).job_cls
    job_kwargs = {k: v for k, v in kwargs.items() if k not in ("scheduler_options", "scheduler_cls")}  # the cluster's
    script = job_cls(scheduler="tls://10.0.0.1:8786", name="pilot", **job_kwargs).job_script()
    assert "--resources cores=8,gpus=2" in script and "--nthreads 1" in script
    assert "--no-dashboard --worker-class steerflow.engines.dask_quiet.QuietWorker" in script  # no worker HTTP port
    if system == "slurm":
        assert "#SBATCH --gres=gpu:2" in script and "#SBATCH --cpus-per-task=8" in script
        assert "#SBATCH -p gpu" in script and "#SBATCH -A abc" in script
    else:
        assert "#PBS -l select=1:ncpus=8:ngpus=2:mem=16GB" in script and "#PBS -q gpu" in script
