"""The Dask engine started with a wrong scheduler address or TLS settings: one sentence that names the cause.

Found by pointing `DaskEngine` at what a user may mistype: the dashboard's HTTP port, a service that is not Dask,
a TLS address without certificates, and a TLS cluster set up through Dask's own configuration (which Dask's own
client takes). Before: "Only 0 of 1 Dask worker(s) ... connected ... check that the workers started" after twice
the connect timeout, or "Unable to allocate 3.07 EiB for an array", or "TLS expects a `ssl_context` argument";
and the campaign could not run on a TLS cluster configured the Dask way, though Dask's client connected.
"""

from __future__ import annotations

import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("distributed")

from steerflow import Runtime  # noqa: E402
from steerflow.engines.dask import DaskEngine  # noqa: E402
from steerflow.errors import AllocationError  # noqa: E402

from .dask_cluster import DaskCluster, make_tls_files  # noqa: E402


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"<html>a dashboard</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class _Listener:
    """Accepts connections on 127.0.0.1 and either says nothing or answers junk, until closed."""

    def __init__(self, answer: bytes | None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.answer is not None:
                try:
                    conn.sendall(self.answer)
                    conn.close()
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def _start_fails(address: str, run_dir) -> str:
    with pytest.raises(AllocationError) as info:
        Runtime(engine=DaskEngine(address, connect_timeout=4), run_dir=run_dir)
    return str(info.value)


@pytest.mark.parametrize("what", ["http", "silent", "junk"])
def test_an_address_where_something_else_listens_is_said_to_be_no_dask_scheduler(what, http_port, tmp_path):
    listener = None
    if what == "http":  # the dashboard's port, a common slip
        port = http_port
    else:
        listener = _Listener(None if what == "silent" else b"\xff" * 64 + b"HTTP/1.1 400 Bad Request\r\n\r\n")
        port = listener.port
    try:
        text = _start_fails(f"tcp://127.0.0.1:{port}", tmp_path / "run")
    finally:
        if listener is not None:
            listener.close()
    assert "did not answer as a Dask scheduler" in text, text
    assert "8787" in text and "tls://" in text, text  # what to check
    assert "worker(s) with the steerflow agent" not in text and "EiB" not in text, text


def test_a_tls_address_without_certificates_says_what_to_give(http_port, tmp_path):
    text = _start_fails(f"tls://127.0.0.1:{http_port}", tmp_path / "run")
    assert "no TLS certificates were given" in text and "security_for" in text, text


def test_tls_set_up_in_dasks_own_configuration_reaches_the_workers_too(tmp_path):
    import dask

    tls = make_tls_files(tmp_path / "certs")
    cluster = DaskCluster(tmp_path / "cluster", tls=tls)
    try:
        cluster.start_scheduler()
        cluster.start_worker("node0", cores=1)
        cluster.wait_workers(1)
        config = {"distributed.comm.tls.ca-file": tls["ca"], "distributed.comm.tls.client.cert": tls["cert"],
                  "distributed.comm.tls.client.key": tls["key"]}
        with dask.config.set(config):  # as ~/.config/dask/distributed.yaml or DASK_DISTRIBUTED__COMM__TLS__* would
            rt = Runtime(engine=DaskEngine(cluster.address, connect_timeout=30), run_dir=tmp_path / "run")
        try:  # before: "Only 0 of 1 Dask worker(s) ... connected": the sessions to the workers went without TLS
            assert rt.submit(os.getpid).result(timeout=60) > 0
        finally:
            rt.shutdown()
    finally:
        cluster.stop()


@pytest.mark.parametrize("options, says", [
    ({"connect_timeout": 0}, r"connect_timeout=0\): give a number of seconds above 0"),  # (failed blaming the scheduler)
    ({"connect_timeout": -5}, r"connect_timeout=-5\)"),
    ({"poll_interval": 0}, r"poll_interval=0\)"),  # (spun a core polling the scheduler without a pause)
    ({"no_nodes_timeout": -1}, r"no_nodes_timeout=-1\): give a number of seconds, 0 or more"),
    ({"min_nodes": -1}, r"min_nodes=-1\): give how many nodes to wait for"),  # ("An allocation needs at least one node")
    ({"cluster": {"n_workers": 0}}, r"a cluster of no workers has no nodes"),
])
def test_engine_options_that_cannot_work_are_refused_at_once(options, says):
    with pytest.raises(ValueError, match=says):
        DaskEngine(**options)
