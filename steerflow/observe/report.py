"""`steerflow report DIR`: one self-contained HTML file (figures embedded), its numbers as JSON, tasks as CSV.

Computed from the journal (read-only), so it works during a run, after it, and after a crash.
It opens nothing by itself. Its cost is bounded for any number of tasks: figures aggregate
beyond a few thousand attempts (see figures.py), tables list at most a few dozen rows.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path
from typing import Any

from . import metrics, timeline

FAILURES_SHOWN = 20


def build(directory: str | Path, out: str | Path | None = None, figures: bool = True) -> dict[str, Any]:
    """Write ``report.html``, ``report.json`` and ``tasks.csv`` into ``out`` (default DIR/report); return the metrics."""
    directory = Path(directory)
    tl = timeline.read(directory)
    idle = metrics.idle_while_queued(tl, series=True)
    result = metrics.compute(tl, idle=idle)
    out = Path(out) if out is not None else directory / "report"
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    (out / "report.json").write_text(json.dumps(result, indent=2, default=str))
    write_tasks_csv(tl, out / "tasks.csv")
    images: dict[str, bytes] = {}
    if figures:
        try:
            from . import figures as figs

            images = figs.all_figures(tl, result, idle)
        except ImportError:  # matplotlib is an optional extra: the numbers still come out
            images = {}
    (out / "report.html").write_text(page(result, images, failures(tl)))
    return result


def command(directory: str | Path, out: str | Path | None = None, as_json: bool = False) -> int:
    """`steerflow report DIR [--out OUT] [--json]`."""
    if as_json:
        print(json.dumps(metrics.compute(directory), indent=2, default=str))
        return 0
    result = build(directory, out)
    where = Path(out) if out is not None else Path(directory) / "report"
    util = result["utilization_mean_pct"]
    print(f"time to completion {result['ttc_s']:.1f} s{_drivers_text(result)}; cores {util['cores']:.1f} % busy, "
          f"GPUs {util['gpus']:.1f} %; "
          f"idle while queued {result['idle_while_queued_core_s']:.1f} core-s; of the tasks' time from ready to "
          f"result, {waiting_pct(result):.1f} % waiting for resources and "
          f"{result['framework_overhead_share_pct']:.1f} % steerflow's overhead; tasks: "
          + ", ".join(f"{n} {state}" for state, n in result["tasks"].items()))
    print(f"wrote {where / 'report.html'}, {where / 'report.json'} and {where / 'tasks.csv'}")
    return 0


def waiting_pct(result: dict) -> float:
    """The share of task time spent queued for busy resources: a property of the campaign, not steerflow's cost."""
    return float(result["overheads"]["scheduling"]["share_pct"])


def write_tasks_csv(tl: timeline.Timeline, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(metrics.TASK_COLUMNS)
        writer.writerows(metrics.task_rows(tl))


def failures(tl: timeline.Timeline, limit: int = FAILURES_SHOWN) -> list[dict[str, Any]]:
    """The most recent failed tasks with their error text (newest first)."""
    failed = [(r[3] or 0.0, key, r[1]) for key, r in tl.results.items() if not r[0] and r[1] != "cancelled"]
    failed.sort(reverse=True)
    return [{"key": key, "name": tl.tasks.get(key, ("?",))[0], "pool": tl.tasks.get(key, ("?", "?"))[1],
             "ended_s": ended - tl.first, "error": error or ""} for ended, key, error in failed[:limit]]


# ---- HTML -----------------------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1150px;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left} .cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:1.5em} img{max-width:100%} pre{white-space:pre-wrap;font-size:12px;margin:0}
.muted{color:#777}
"""


def _fmt(x: Any, digits: int = 1) -> str:
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return html.escape(str(x))


def _drivers_text(result: dict[str, Any]) -> str:
    """`` (drivers ran X s of it)`` for a resumed campaign with time between its drivers (utilisation counts X)."""
    ran = result.get("drivers_s", result["ttc_s"])
    return f" (drivers ran {ran:,.1f} s of it)" if result["ttc_s"] - ran > 0.05 else ""


def cards(result: dict[str, Any]) -> str:
    util = result["utilization_mean_pct"]
    items = [("elapsed so far" if result["live"] else "time to completion",
              f"{result['ttc_s']:,.1f} s{_drivers_text(result)}", "ttc_s"),
             ("cores busy (mean)", f"{util['cores']:.1f} %", "utilization_cores"),
             ("GPUs busy (mean)", f"{util['gpus']:.1f} %" if result["capacity"]["gpus"] else "no GPUs",
              "utilization_gpus"),
             ("idle while queued", f"{result['idle_while_queued_core_s']:,.1f} core·s", "idle_while_queued"),
             ("waiting for resources", f"{waiting_pct(result):.1f} % of task time", "overhead_share"),
             ("steerflow's overhead", f"{result['framework_overhead_share_pct']:.2f} % of task time",
              "framework_overhead"),
             ("throughput", f"{result['throughput_tasks_per_s']:,.2f} tasks/s", "throughput")]
    items += [(f"tasks {state}", f"{n:,}", f"tasks_{state}") for state, n in result["tasks"].items()]
    return '<div class="cards">' + "".join(
        f'<div class="card" id="{key}"><b>{html.escape(value)}</b>{html.escape(label)}</div>'
        for label, value, key in items) + "</div>"


def tables(result: dict[str, Any], fails: list[dict[str, Any]]) -> str:
    parts = ["<h2>Tasks by pool and state</h2>", _table(result["tasks_by_pool"])]
    parts += ["<h2>Overheads per finished task</h2>",
              "<p class=muted>scheduling: ready (dependencies met) to placed, waiting for busy resources included; "
              "launch: placed to the worker having it; data in/out: loading arguments, serialising the result; "
              "result return: to the driver having it. Share: of the tasks' time from ready to result.</p>",
              _table({k: {"total s": v["total_s"], "share %": v["share_pct"], "p50 ms": v["p50_ms"],
                          "p99 ms": v["p99_ms"], "tasks": v["tasks"]} for k, v in result["overheads"].items()})]
    parts += ["<h2>Idle while work was queued (core·s) by pool and reason</h2>",
              "<p class=muted>quota: the pool was at its quota; blocked_large: what waited needed more than was free; "
              "dependency: what waited had unfinished dependencies; scheduling: it fitted, not yet placed.</p>",
              _table({p: {r: v.get(r, 0.0) for r in metrics.REASONS} for p, v in
                      result["idle_while_queued_by_pool"].items()}) if result["idle_while_queued_by_pool"]
              else "<p>none</p>"]
    parts += ["<h2>Utilisation by pool (mean %)</h2>", _table(result["utilization_mean_pct_by_pool"]),
              "<h2>Task durations by pool (s, attempts that ended done)</h2>", _table(result["task_duration_s_by_pool"])]
    if result["attempts"]:
        parts += ["<h2>Attempts by outcome</h2>", _table({"attempts": result["attempts"]})]
    parts.append("<h2>Recent failures</h2>")
    if fails:
        parts.append("<table><tr><th>task</th><th>pool</th><th>at (s)</th><th>error</th></tr>" + "".join(
            f"<tr><td>{f['key']} {html.escape(str(f['name']))}</td><td>{html.escape(str(f['pool']))}</td>"
            f"<td>{f['ended_s']:.1f}</td><td style=text-align:left><pre>{html.escape(f['error'][:2000])}</pre></td></tr>"
            for f in fails) + "</table>")
    else:
        parts.append("<p>none</p>")
    learn = result.get("learning") or {}
    if learn:
        parts.append("<h2>Learning layer</h2>")
        for key, value in learn.items():
            if key == "events":
                rows = {name: {"events": e["count"], **{k: v for k, v in (e["latest"] or {}).items()}}
                        for name, e in value.items()}
                parts.append(_table(rows))
            elif key == "substitution_rate":
                parts.append(_table({f"surrogate {name}": {"substitution rate (cumulative)": pts[-1][1]}
                                     for name, pts in value.items() if pts}))
            elif key == "series":
                parts.append(_table({name: series_summary(entry) for name, entry in value.items()}))
            elif key.startswith("surrogate:") and isinstance(value, dict):
                shown = {k: v for k, v in value.items() if isinstance(v, (int, float, str)) or v is None}
                parts.append(f"<h3>{html.escape(key)}</h3>" + _table({"latest": shown}))
            elif key == "models":
                rows = {f"{name} v{v['version']}": {"at s": v["created_s"], **v["metrics"]}
                        for name, versions in value.items() for v in versions[-10:]}
                parts.append(_table(rows))
            else:
                parts.append(f"<h3>{html.escape(key)}</h3><pre>{html.escape(json.dumps(value, indent=1, default=str))}"
                             "</pre>")
    return "".join(parts)


def series_summary(entry: dict[str, list]) -> dict[str, Any]:
    """A journaled learning series in one row: its length, the latest values, and for a surrogate the
    share of its history whose audited error was over the bound."""
    row: dict[str, Any] = {"points": len(entry["t"]), "over s": entry["t"][-1] if entry["t"] else 0.0}
    for field, values in entry.items():
        if field != "t" and values:
            row[f"latest {field}"] = values[-1]
    errors, bounds = entry.get("audit_error") or [], entry.get("bound") or []
    pairs = [(e, b) for e, b in zip(errors, bounds) if e is not None and b is not None]
    if pairs:
        row["audited error over the bound (% of points)"] = 100 * sum(e > b for e, b in pairs) / len(pairs)
    return row


def _table(rows: dict[str, dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows.values():
        columns += [c for c in row if c not in columns]
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in columns) + "</tr>"
    body = "".join(f"<tr><td>{html.escape(str(name))}</td>" + "".join(
        f"<td>{_fmt(row.get(c, ''), 2)}</td>" for c in columns) + "</tr>" for name, row in rows.items())
    return f"<table>{head}{body}</table>"


FIGURE_TITLES = {"gantt": "Gantt chart by core and GPU", "utilisation": "Utilisation over time",
                 "queue": "Queue length over time", "durations": "Task durations by pool",
                 "overheads": "Overhead breakdown", "learning": "Learning curves"}


def figure_html(images: dict[str, bytes]) -> str:
    return "".join(f'<h2>{FIGURE_TITLES.get(name, name)}</h2><img id="fig-{name}" alt="{name}" '
                   f'src="data:image/png;base64,{base64.b64encode(png).decode()}">' for name, png in images.items())


def page(result: dict[str, Any], images: dict[str, bytes], fails: list[dict[str, Any]]) -> str:
    state = "running" if result["live"] else ("finished" if result["complete"] else "stopped (not finished)")
    figures = figure_html(images) if images else "<p>(install matplotlib for the figures: pip install matplotlib)</p>"
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>steerflow report: "
            f"{html.escape(result['directory'])}</title><style>{STYLE}</style>"
            f"<h1>Campaign {html.escape(result['directory'])}</h1>"
            f"<p>{state}; {result['capacity']['nodes']} node(s), {result['capacity']['cores']} cores, "
            f"{result['capacity']['gpus']} GPUs.</p>{cards(result)}{figures}{tables(result, fails)}</html>")
