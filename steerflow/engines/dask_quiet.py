"""Dask servers that listen only where they must: no HTTP port on the workers, a quiet teardown.

Dask's worker always serves HTTP (/metrics, /health, its task names; the dashboard when asked) on a
second, random port of its interface, even with ``--no-dashboard``; on a shared machine anyone could
read it. `QuietWorker` opens none unless a dashboard was asked for (the scheduler's counterpart is
`dask_batch.quiet_scheduler`), and does less of Dask's periodic work (`QUIET_CONFIG`), which steerflow's
tasks do not need. `stop_heartbeat` lets a cluster close without heartbeat tracebacks.
"""

from __future__ import annotations

from typing import Any

import dask
from distributed import Nanny, Worker


# Dask's own periodic work in every worker, nanny and scheduler: a statistical profile of Dask tasks every
# 10 ms (steerflow runs none) and an event-loop health tick every 20 ms. On a busy machine these ~150
# wake-ups a second per process took CPU from the tasks' processes just as they woke (the 200 sleeps of
# `steerflow bench runtime --engine dask`: 96.0 % with them quiet, 92.0 % without, medians of 6 alternating
# runs at load ~10). The tick still warns of a blocked loop, checked every 0.5 s.
QUIET_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "500ms"}


class QuietWorker(Worker):
    """A Dask worker without its HTTP server unless a dashboard was asked for.

    The engine starts its workers (LocalCluster, batch pilots) with this class; start your own with
    ``dask worker --no-dashboard --worker-class steerflow.engines.dask_quiet.QuietWorker``
    (``--dashboard`` brings the HTTP server back).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with dask.config.set(QUIET_CONFIG):
            super().__init__(*args, **kwargs)

    def start_http_server(self, routes: Any, dashboard_address: Any, default_port: int = 0,
                          ssl_options: Any = None) -> None:
        if self._dashboard:  # (`dask worker` passes ":0" as the address whether asked or not)
            super().start_http_server(routes, dashboard_address, default_port, ssl_options)
            return
        from distributed.http.routing import RoutingApplication
        from tornado.httpserver import HTTPServer

        self.http_application = RoutingApplication(routes)
        self.http_server = HTTPServer(self.http_application)  # never listens


QUIET_WORKER = f"{QuietWorker.__module__}.{QuietWorker.__qualname__}"


class QuietNanny(Nanny):
    """The nanny of a `QuietWorker` in the engine's LocalCluster: Dask's periodic work as quiet (`QUIET_CONFIG`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        with dask.config.set(QUIET_CONFIG):
            super().__init__(*args, **kwargs)


def stop_heartbeat(dask_worker: Any) -> None:
    """``client.run(stop_heartbeat)`` before closing a cluster: a worker whose heartbeat is in flight
    while the scheduler drops its connections logs a traceback ("Failed to communicate with scheduler
    during heartbeat"); with the heartbeats stopped first, a cluster closes without one."""
    callback = dask_worker.periodic_callbacks.get("heartbeat")
    if callback is not None:
        callback.stop()


def close_quietly(client: Any, cluster: Any) -> None:
    """Close a client and the LocalCluster it talks to, the workers' heartbeats stopped first (`stop_heartbeat`)."""
    try:
        client.run(stop_heartbeat)
    except Exception:  # noqa: BLE001 - the workers may be gone already
        pass
    client.close()
    cluster.close()
