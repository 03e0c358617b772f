"""Batch-system pilots for the Dask engine through dask-jobqueue: one job per node, one Dask worker per job.

A jobqueue spec (``DaskEngine(jobqueue={...})`` or ``engine: {dask: {jobqueue: ...}}`` in YAML):

    system    "slurm" or "pbs"
    nodes     how many pilot jobs (nodes) to start; the campaign waits for all of them
    cores     cores per node (the job asks for them; the worker declares them)
    gpus      GPUs per node (SLURM: --gres=gpu:G; PBS: ngpus=G in the select statement)
    memory    memory per node, e.g. "64GB"
    queue, account, walltime, … and any other keyword of SLURMCluster / PBSCluster

Each worker declares ``--resources cores=C,gpus=G`` and runs single-threaded (our agent runs
the tasks, not Dask's thread pool). Neither the scheduler nor the workers open an HTTP port
(dashboard, /metrics) unless asked: ``scheduler_options={"dashboard_address": ":8787"}`` for the
scheduler's, ``worker_extra_args=["--dashboard"]`` for the workers'. When the scheduler listens beyond loopback (the default
on a cluster), TLS with per-campaign temporary certificates is switched on; jobqueue hands
the certificate files to the jobs through ``shared_temp_directory`` (a shared file system).
"""

from __future__ import annotations

from typing import Any

SYSTEMS = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
QUIET_WORKER = "steerflow.engines.dask_quiet.QuietWorker"  # (named here: the job script is built without Dask)


def jobqueue_kwargs(spec: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
    """The jobqueue cluster class name, its keyword arguments, and the number of pilot jobs."""
    spec = dict(spec)
    system = str(spec.pop("system", "slurm")).lower()
    if system not in SYSTEMS:
        raise ValueError(f"jobqueue system {system!r} is not supported; use one of {sorted(SYSTEMS)}.")
    nodes = int(spec.pop("nodes", 1))
    cores = int(spec.pop("cores", 1))
    gpus = int(spec.pop("gpus", 0))
    kwargs: dict[str, Any] = {"cores": cores, "processes": 1, "memory": spec.pop("memory", "4GB")}
    extra_args = list(spec.pop("worker_extra_args", []))
    extra_args += ["--nthreads", "1", "--resources", f"cores={cores},gpus={gpus}"]
    if "--dashboard" not in extra_args and "--worker-class" not in extra_args:  # no worker HTTP port unless asked
        extra_args += ["--no-dashboard", "--worker-class", QUIET_WORKER]
    kwargs["worker_extra_args"] = extra_args
    directives = list(spec.pop("job_extra_directives", []))
    if gpus and system == "slurm":
        directives.append(f"--gres=gpu:{gpus}")
    if system == "pbs" and "resource_spec" not in spec:
        spec["resource_spec"] = f"select=1:ncpus={cores}" + (f":ngpus={gpus}" if gpus else "") + \
            f":mem={kwargs['memory']}"
    kwargs["job_extra_directives"] = directives
    options = dict(spec.pop("scheduler_options", None) or {})
    options.setdefault("dashboard_address", None)  # no dashboard port unless asked (jobqueue's default: :8787)
    kwargs["scheduler_options"] = options
    kwargs.update(spec)
    if options["dashboard_address"] is None:
        kwargs.setdefault("scheduler_cls", quiet_scheduler())
    return SYSTEMS[system], kwargs, nodes


def quiet_scheduler() -> type:
    """Dask's scheduler without its HTTP server: it listens on its comm port only.

    Dask's scheduler always serves HTTP (dashboard, /health, /metrics, task names) on a second
    port, 8787 or the next free one, on all its interfaces, even with ``dashboard_address=None``;
    on a shared login node anyone could read it. The engine passes this class when no dashboard
    was asked for (``scheduler_options={"dashboard_address": ":8787"}`` brings it back).
    """
    global _QUIET
    if _QUIET is None:
        from distributed import Scheduler

        class QuietScheduler(Scheduler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                import dask

                from .dask_quiet import QUIET_CONFIG

                with dask.config.set(QUIET_CONFIG):  # (its event-loop tick: see QUIET_CONFIG)
                    super().__init__(*args, **kwargs)

            def start_http_server(self, routes: Any, dashboard_address: Any, default_port: int = 0,
                                  ssl_options: Any = None) -> None:
                if dashboard_address is not None:
                    super().start_http_server(routes, dashboard_address, default_port, ssl_options)
                    return
                from distributed.http.routing import RoutingApplication
                from tornado.httpserver import HTTPServer

                self.http_application = RoutingApplication(routes)
                self.http_server = HTTPServer(self.http_application)  # never listens

        QuietScheduler.__module__ = __name__
        _QUIET = QuietScheduler
    return _QUIET


_QUIET: type | None = None


async def start_jobqueue(spec: dict[str, Any], security: Any = None) -> tuple[Any, Any]:
    """Start the jobqueue cluster (its scheduler runs in the driver) and submit the pilot jobs."""
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ImportError("The Dask engine's batch pilots need dask-jobqueue: pip install 'steerflow[dask]'.") from exc
    name, kwargs, nodes = jobqueue_kwargs(spec)
    host = (kwargs.get("scheduler_options") or {}).get("host")
    if security is None and not (host in ("127.0.0.1", "localhost", "::1")):
        from distributed.security import Security

        security = Security.temporary()
    if security is not None:
        kwargs.setdefault("security", security)
        kwargs.setdefault("protocol", "tls://")
    cluster = await getattr(dask_jobqueue, name)(asynchronous=True, **kwargs)
    cluster.scale(jobs=nodes)
    return cluster, security
