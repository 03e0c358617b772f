"""The Dask engine's checks of what it is given: options that cannot work, and addresses where no scheduler listens.

Each is refused with a sentence that says what to change, at construction (`check_options`) or before the Dask
client's own, longer, wait (`fail_if_refused`, `not_a_scheduler`).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any


async def fail_if_refused(address: str, security: Any, within: float) -> bool:
    """Raise at once where nothing listens at the scheduler's address (every connection refused for ``within``
    seconds), instead of after the whole connect timeout; any other failure (a timeout: the host may be
    starting) is left to the client's own, longer, wait. True: a connection was accepted there."""
    from distributed.comm.addressing import parse_address
    from distributed.comm.registry import get_backend

    scheme, loc = parse_address(address)
    connector = get_backend(scheme).get_connector()
    if security is None:  # (Dask's own configuration, as the client will use it)
        from distributed.security import Security

        security = Security()
    args = security.get_connection_args("client")
    if scheme == "tls" and args.get("ssl_context") is None:
        raise ValueError(f"{address} is a TLS address, and no TLS certificates were given: give the campaign's "
                         "(DaskEngine(security=steerflow.engines.dask_tls.security_for(DIR)), or STEERFLOW_DASK_TLS_CA, "
                         "STEERFLOW_DASK_TLS_CERT and STEERFLOW_DASK_TLS_KEY, or Dask's own TLS configuration), or "
                         "use tcp:// where the scheduler does not use TLS.")
    deadline = time.monotonic() + within
    while True:
        try:
            comm = await asyncio.wait_for(connector.connect(loc, **args), max(0.1, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - anything but a refusal: the client decides, with its message
            if "ConnectionRefusedError" not in f"{type(exc).__name__}: {exc}":
                return False
            if time.monotonic() >= deadline:
                raise ConnectionRefusedError(
                    f"nothing listens at {address} (every connection refused for {within:g} s). Check the "
                    "scheduler's address (`steerflow run --scheduler`, STEERFLOW_DASK_SCHEDULER or "
                    "DaskEngine(address)) and that `dask scheduler` runs there.") from None
            await asyncio.sleep(0.2)
            continue
        comm.abort()
        return True


def check_options(address: Any, cluster: Any, jobqueue: Any, min_nodes: Any, connect_timeout: float,
                  poll_interval: float, no_nodes_timeout: float) -> None:
    """`DaskEngine`'s options, refused at once with a sentence where they cannot work (before: poll_interval=0 spun a
    core polling the scheduler without pause; connect_timeout=0 failed blaming the scheduler; min_nodes=-1 or a
    cluster of 0 workers said only "An allocation needs at least one node")."""
    if sum(x is not None for x in (address, cluster, jobqueue)) > 1:
        raise ValueError("Give DaskEngine one of address=, cluster= or jobqueue=, not several.")
    for name, value in (("connect_timeout", connect_timeout), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float("inf"):
            raise ValueError(f"DaskEngine({name}={value!r}): give a number of seconds above 0.")
    if isinstance(no_nodes_timeout, bool) or not isinstance(no_nodes_timeout, (int, float)) or not no_nodes_timeout >= 0:
        raise ValueError(f"DaskEngine(no_nodes_timeout={no_nodes_timeout!r}): give a number of seconds, 0 or more.")
    if min_nodes is not None and (isinstance(min_nodes, bool) or not isinstance(min_nodes, int) or min_nodes < 0):
        raise ValueError(f"DaskEngine(min_nodes={min_nodes!r}): give how many nodes to wait for (1 or more), or None "
                         "for the cluster's size.")
    workers = (cluster or {}).get("n_workers", 1) if isinstance(cluster, dict) else 1
    if isinstance(workers, int) and workers < 1:
        raise ValueError(f"DaskEngine(cluster={{'n_workers': {workers}}}): a cluster of no workers has no nodes; give "
                         "1 or more.")


#: what to check when the address is wrong
ADDRESS_HINT = ("Check the address: the scheduler's comm port (8786 unless it was started with another), not its "
                "dashboard's (8787); and its scheme: tls:// where the scheduler uses TLS (with its certificates), "
                "tcp:// otherwise.")


def not_a_scheduler(exc: BaseException) -> bool:
    """Whether a client's failure to connect looks like a peer that does not speak Dask's protocol (an HTTP
    server, another service: it closes the stream at the handshake, or answers bytes that decode to nonsense),
    rather than a timeout or a TLS problem, which Dask's own messages explain."""
    text = f"{type(exc).__name__}: {exc}"
    if any(word in text for word in ("TLS", "SSL", "certificate", "encryption", "Timed out trying")):
        return False
    return isinstance(exc, (MemoryError, ValueError, TypeError, EOFError)) or any(
        word in text for word in ("CommClosedError", "Stream is closed", "handshake", "unpack", "Unpack", "reset by peer"))
