"""`steerflow dashboard DIR`: a live page of a campaign, served on 127.0.0.1 with a per-run token.

Built on Tornado (the web stack Dask's own dashboard runs on). It binds the loopback interface
only, on a port the OS picks, and answers 403 to any request whose ``token`` query argument is
not this run's secret (compared in constant time) or whose Host header is not the loopback
address it serves. Everything it shows is read from the journal (read-only), refreshed every
``refresh`` seconds at most however many browsers poll: the same numbers and figures as the
report, plus tasks by state and pool, running tasks with where they run, recent failures with
their error text, throughput and an ETA for the tasks known so far.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import os
import secrets
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import live, metrics, report, timeline

RUNNING_SHOWN = 50


class _Cache:
    """The page's data, refreshed from the journal incrementally (`timeline.Follower`: only new rows are read).

    Three paces, each stretched by its own cost so that a huge journal costs the machine at most about
    half a core however often browsers poll: the live part (status line, running tasks, failures) every
    ``refresh`` s or twice the read's cost; every metric every ``refresh`` s or four times its cost;
    figures every ``figure_every`` s or five times their cost.
    """

    def __init__(self, directory: Path, refresh: float, figure_every: float) -> None:
        self.directory = directory
        self.refresh = refresh
        self.figure_every = figure_every
        self._lock = threading.Lock()
        self._follower = timeline.Follower(directory)
        self._data: dict[str, Any] | None = None
        self._data_at = self._metrics_at = 0.0
        self._metrics: dict[str, Any] | None = None
        self._figures: dict[str, bytes] = {}
        self._figures_at = 0.0
        self._cost = self._metrics_cost = self._figure_cost = 0.0  # seconds the last computation took
        self.version = 0

    def data(self) -> dict[str, Any]:
        """The page's data (see the class docstring for how fresh each part is)."""
        with self._lock:  # one computation at a time; concurrent pollers share its answer
            now = time.monotonic()
            if self._data is None or now - self._data_at >= max(self.refresh, 2 * self._cost):
                tl = self._follower.read()
                self._data_at = now
                if self._metrics is None or now - self._metrics_at >= max(self.refresh, 4 * self._metrics_cost):
                    started = time.monotonic()
                    self._metrics = metrics.compute(tl)
                    self._metrics_at = now
                    self._metrics_cost = time.monotonic() - started
                self._data = view(tl, self._metrics)
                self._cost = time.monotonic() - now - (self._metrics_cost if self._metrics_at == now else 0.0)
                if now - self._figures_at >= max(self.figure_every, 5 * self._figure_cost):
                    started = time.monotonic()
                    try:
                        from . import figures

                        self._figures = figures.all_figures(tl, self._metrics)
                    except ImportError:
                        self._figures = {}
                    self._figures_at = now
                    self._figure_cost = time.monotonic() - started
                    self.version += 1
                self._data["figures"] = list(self._figures)
                self._data["figures_version"] = self.version
            return self._data

    def figure(self, name: str) -> bytes | None:
        self.data()
        return self._figures.get(name)


def view(tl: timeline.Timeline, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the page shows, as numbers and ready-escaped HTML fragments (``result``: `metrics.compute` of
    this timeline or a recent one, where the caller has it; the live numbers are always this timeline's)."""
    result = result if result is not None else metrics.compute(tl)
    snap = metrics.snapshot_from(tl)
    running = sorted((h for h in tl.holds if h.outcome == "running"), key=lambda h: h.start)[:RUNNING_SHOWN]
    running_rows = [{"key": h.key, "name": tl.tasks.get(h.key, ("?",))[0], "pool": h.pool, "where": h.where or "",
                     "attempt": h.attempt, "for_s": tl.now - h.start} for h in running]
    fails = report.failures(tl)
    status = f"{'running' if tl.live else 'no driver running'}; " + live.describe(snap)
    running_html = ("<table><tr><th>task</th><th>pool</th><th>where</th><th>attempt</th><th>for (s)</th></tr>"
                    + "".join(f"<tr><td>{r['key']} {html.escape(str(r['name']))}</td><td>{html.escape(r['pool'])}</td>"
                              f"<td>{html.escape(r['where'])}</td><td>{r['attempt']}</td><td>{r['for_s']:.1f}</td></tr>"
                              for r in running_rows) + "</table>") if running_rows else "<p>none</p>"
    return {"metrics": result, "snapshot": snap, "running": running_rows, "failures": fails,
            "html": {"status": html.escape(status), "cards": report.cards(result), "running": running_html,
                     "tables": report.tables(result, fails)}}


PAGE = """<!doctype html><html lang=en><meta charset=utf-8><title>steerflow dashboard: {title}</title>
<style>{style}</style><h1>Campaign {title} <span class=muted style="font-size:.6em">live</span></h1>
<p id=status>{status}</p><div id=cards>{cards}</div>
<h2>Running tasks</h2><div id=running>{running}</div><div id=figures>{figures}</div><div id=tables>{tables}</div>
<p class=muted>Refreshed from the journal every {refresh:g} s. <span id=updated></span></p>
<script>
const token = {token};
let version = {version};
async function refresh() {{
  try {{
    const r = await fetch("api/metrics?token=" + encodeURIComponent(token), {{cache: "no-store"}});
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    for (const k of ["status", "cards", "running", "tables"]) document.getElementById(k).innerHTML = d.html[k];
    if (d.figures_version !== version) {{
      version = d.figures_version;
      for (const img of document.querySelectorAll("#figures img"))
        img.src = "figure/" + img.dataset.name + ".png?token=" + encodeURIComponent(token) + "&v=" + version;
    }}
    document.getElementById("updated").textContent = "Last update " + new Date().toLocaleTimeString() + ".";
  }} catch (e) {{
    document.getElementById("updated").textContent = "Update failed (" + e + "); the dashboard may have stopped.";
  }}
}}
setInterval(refresh, {refresh_ms});
refresh();
</script></html>"""


def make_app(directory: str | Path, token: str, refresh: float = 2.0, figure_every: float = 5.0) -> Any:
    """The Tornado application: ``/``, ``/api/metrics`` and ``/figure/NAME.png``, all behind the token."""
    import tornado.web

    cache = _Cache(Path(directory), refresh, figure_every)

    class Guarded(tornado.web.RequestHandler):
        def prepare(self) -> None:
            given = self.get_query_argument("token", "")
            host = self.request.host.rsplit(":", 1)[0]
            if not hmac.compare_digest(given.encode(), token.encode()) or host not in ("127.0.0.1", "localhost"):
                raise tornado.web.HTTPError(403, reason="This dashboard needs the token from the URL it printed")

        def set_default_headers(self) -> None:
            self.set_header("Cache-Control", "no-store")
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Referrer-Policy", "no-referrer")  # the token never leaves in a Referer
            self.set_header("X-Frame-Options", "DENY")  # no other page can frame it
            self.set_header("Content-Security-Policy", "frame-ancestors 'none'")

        async def compute(self, what: Any = None, *args: Any) -> Any:
            try:
                return await asyncio.get_running_loop().run_in_executor(None, what or cache.data, *args)
            except sqlite3.DatabaseError as exc:  # (before: a 500 and a traceback on the dashboard's terminal)
                raise tornado.web.HTTPError(503, reason=unreadable(exc)) from None

        def write_error(self, status_code: int, **kwargs: Any) -> None:
            self.set_header("Content-Type", "text/plain; charset=utf-8")
            self.finish(f"{status_code}: {self._reason}\n")

    class Page(Guarded):
        async def get(self) -> None:
            data = await self.compute()
            figs = "".join(f'<h2>{report.FIGURE_TITLES.get(n, n)}</h2><img id="fig-{n}" data-name="{n}" alt="{n}" '
                           f'src="figure/{n}.png?token={token}&v={data["figures_version"]}">' for n in data["figures"])
            self.write(PAGE.format(title=html.escape(str(directory)), style=report.STYLE, token=json.dumps(token),
                                   version=data["figures_version"], refresh=refresh, refresh_ms=int(refresh * 1000),
                                   figures=figs, **data["html"]))

    class Api(Guarded):
        async def get(self) -> None:
            data = await self.compute()
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(data, default=str))

    class Figure(Guarded):
        async def get(self, name: str) -> None:
            png = await self.compute(cache.figure, name)
            if png is None:
                raise tornado.web.HTTPError(404)
            self.set_header("Content-Type", "image/png")
            self.write(png)

    return tornado.web.Application([(r"/", Page), (r"/api/metrics", Api), (r"/figure/([a-z_]+)\.png", Figure)],
                                   compress_response=True)


def unreadable(exc: sqlite3.DatabaseError) -> str:
    """What the page says when the journal cannot be read (an HTTP reason: one line)."""
    return (f"The campaign journal cannot be read now ({exc}): its driver has only just started and records nothing "
            "yet, or was stopped before it recorded anything, or the journal is damaged. Reload this page in a few "
            "seconds; `steerflow status DIR` says more.")


def serve(directory: str | Path, refresh: float = 2.0, exit_with: int | None = None,
          announce: Any = None) -> None:
    """Serve until interrupted (or until process ``exit_with`` ends); ``announce(url)`` is told the URL."""
    try:
        import tornado.httpserver
        import tornado.ioloop
        import tornado.netutil
    except ImportError as exc:
        raise SystemExit("steerflow dashboard needs Tornado: pip install 'steerflow[dashboard]' "
                         "(or pip install tornado).") from exc
    directory = Path(directory)
    timeline.open_journal(directory).close()  # a clear error now if there is no journal
    token = secrets.token_urlsafe(24)

    async def main() -> None:
        sockets = tornado.netutil.bind_sockets(0, address="127.0.0.1")
        server = tornado.httpserver.HTTPServer(make_app(directory, token, refresh))
        server.add_sockets(sockets)
        port = sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/?token={token}"
        (announce or _print_url)(url)
        stop = asyncio.Event()
        if exit_with is not None:
            def check() -> None:
                try:
                    os.kill(exit_with, 0)
                except ProcessLookupError:
                    stop.set()
            tornado.ioloop.PeriodicCallback(check, 500).start()
        try:
            await stop.wait()
        finally:
            server.stop()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def _print_url(url: str) -> None:
    print(f"steerflow dashboard: {url}", flush=True)


def start_beside(directory: str | Path, timeout: float = 20.0) -> tuple[Any, str | None]:
    """Start a dashboard process for ``directory`` that ends with this process; return (process, URL).

    A separate process, so drawing figures never competes with the driver for its interpreter.
    """
    import subprocess

    proc = subprocess.Popen([sys.executable, "-m", "steerflow.observe.dashboard", str(directory),
                             "--exit-with", str(os.getpid())], stdout=subprocess.PIPE, text=True,
                            start_new_session=True)
    url: list[str] = []
    announced = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "http://" in line and not url:
                url.append(line.split(": ", 1)[1].strip())
                announced.set()
        announced.set()  # it ended without a URL

    threading.Thread(target=read, daemon=True).start()
    announced.wait(timeout)
    return proc, (url[0] if url else None)


def attach() -> None:
    """Start a dashboard beside every campaign this process opens (`steerflow run --dashboard`)."""
    from ..campaign import ON_OPEN

    import atexit

    def start(campaign: Any) -> None:
        proc, url = start_beside(campaign.directory)
        atexit.register(proc.terminate)  # ends with the run (it also watches for this process to end)
        print(f"steerflow dashboard (until the run ends): {url}" if url else
              "steerflow: the dashboard did not start (is tornado installed? pip install tornado).", file=sys.stderr)

    ON_OPEN.append(start)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="steerflow dashboard")
    parser.add_argument("dir")
    parser.add_argument("--refresh", type=float, default=2.0, help="seconds between reads of the journal")
    parser.add_argument("--exit-with", type=int, help="stop when this process id ends")
    args = parser.parse_args(argv)
    serve(args.dir, args.refresh, args.exit_with)
    return 0


if __name__ == "__main__":
    sys.exit(main())
