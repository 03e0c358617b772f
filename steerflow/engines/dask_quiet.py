"""Dask servers that listen only where they must: no HTTP port on the workers, a quiet teardown.

Dask's worker always serves HTTP (/metrics, /health, its task names; the dashboard when asked) on a
second, random port of its interface, even with ``--no-dashboard``; on a shared machine anyone could
read it. `QuietWorker` opens none unless a dashboard was asked for (the scheduler's counterpart is
`dask_batch.quiet_scheduler`). `stop_heartbeat` lets a cluster close without heartbeat tracebacks.
"""

from __future__ import annotations

from typing import Any

from distributed import Worker


class QuietWorker(Worker):
    """A Dask worker without its HTTP server unless a dashboard was asked for.

    The engine starts its workers (LocalCluster, batch pilots) with this class; start your own with
    ``dask worker --no-dashboard --worker-class steerflow.engines.dask_quiet.QuietWorker``
    (``--dashboard`` brings the HTTP server back).
    """

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
