"""The ``steerflow`` command: run, watch, resume, inspect and cancel campaigns; run benchmarks.

Errors a user can fix (a wrong path, a YAML mistake, a locked campaign) print one message and
exit with status 2 (1 when they happen during a run); Ctrl-C stops cleanly with status 130 and
says how to resume; anything else is a bug and shows its traceback. `steerflow run` exits 1
when a campaign ended with failed tasks that no agent handled.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import runpy
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, control, launch, rundirs
from .cli_bench import add_parser as add_bench
from .cli_common import CliError, writable_folder
from .sigterm import Terminated, raise_terminated
from .dirlock import holder as driver_pid
from .errors import CampaignLocked, CampaignStopped, SpecError, SteerflowError
from .rundirs import NotACampaign

WATCH_MIN_S = 0.1
OUTPUT_WRITERS = ("report", "bench")  # commands whose files a full (or read-only) disk may refuse
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO)  # `status --watch`: the shortest time between redraws


def _console():
    from rich.console import Console

    return Console()


# ---- errors the user can fix: one message, no traceback -----------------------------------------

USAGE_ERRORS: tuple[type[BaseException], ...] = (CliError, NotACampaign, SpecError, CampaignLocked)
EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143
EXIT_PIPE = 141  # the reader of our output went away (128 + SIGPIPE), as `git log | head` ends
ENV_PARENT = "STEERFLOW_RESUME_PARENT"  # set by `steerflow resume` for the driver it starts: its own pid
DIRS_HELP = "the campaign directory (it holds journal.db), or the folder of a multi-phase script's campaigns"
JOURNAL_READERS = ("status", "show", "cancel", "report", "dashboard", "resume")  # commands given a campaign DIR


def _where_in_user_code(exc: BaseException) -> str:
    """``file:line`` of the innermost frame outside steerflow, so a message points into the user's script."""
    package = str(Path(__file__).resolve().parent)
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        name = str(Path(frame.filename).resolve()) if frame.filename and not frame.filename.startswith("<") else ""
        if name and not name.startswith(package) and "runpy" not in Path(name).name:
            where = f"{frame.filename}:{frame.lineno}: "
    return where


def _resume_hint() -> str:
    dirs = launch.opened()
    if not dirs:
        return ""
    places = " ".join(_rel(d) for d in dirs[:1])
    return f" The journal keeps every finished result: continue with `steerflow resume {places}`."


def _rel(path: Path | str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---- run ----------------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    if args.engine:
        os.environ["STEERFLOW_ENGINE"] = args.engine
    if args.scheduler:
        os.environ["STEERFLOW_DASK_SCHEDULER"] = args.scheduler
        os.environ.setdefault("STEERFLOW_ENGINE", "dask")
    path = Path(args.file)
    try:
        path.stat()
    except OSError as exc:  # missing, a name too long, no permission
        what = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc.strerror or exc})"
        raise CliError(f"{str(path)[:200]} {what}. Give a Python campaign script (.py) or a YAML pipeline "
                       "(.yaml).") from None
    if path.is_dir():
        hint = (f" It holds a campaign: continue it with `steerflow resume {path}`." if _holds_campaign(path)
                else "")
        raise CliError(f"{path} is a directory; `steerflow run` takes a Python campaign script (.py) or a YAML "
                       f"pipeline (.yaml).{hint}")
    if path.suffix not in (".py", ".yaml", ".yml"):
        raise CliError(f"{path} is neither a Python campaign script (.py) nor a YAML pipeline (.yaml, .yml); "
                       "`steerflow run` takes one of those.")
    if args.resume:
        os.environ[launch.ENV_RESUME] = "1"
    if args.dashboard:
        from .observe.dashboard import attach

        attach()
    if path.suffix == ".py":
        if args.dir is not None:  # (before: ignored without a word; the campaign ran where the script says)
            raise CliError(f"--dir names the directory of a YAML pipeline's campaign; {path} is a Python script, "
                           "which names its own in Campaign(DIR). Pass a directory to your script as its own "
                           f"argument after the file (`steerflow run {path} ARGS`), or edit the script.")
        sys.argv = [str(path), *args.args]
        sys.path.insert(0, str(path.resolve().parent))
        runpy.run_path(str(path), run_name="__main__")
        return _end_of_run()
    from .pipelines import run_file

    extra = argparse.ArgumentParser(prog=f"steerflow run {path}")  # options may follow the file too
    extra.add_argument("--dir")
    extra.add_argument("--resume", action="store_true")
    more = extra.parse_args(args.args)
    if more.resume:
        os.environ[launch.ENV_RESUME] = "1"
    try:
        summary = run_file(path, directory=_dir_option(more.dir if more.dir is not None else args.dir),
                           progress=None)
    except CampaignLocked as exc:
        if exc.pid is not None:
            raise
        raise CliError(f"{exc.directory} already holds this pipeline's campaign. Continue it (a finished one "
                       f"only replays its results) with `steerflow run --resume {path}`, or start a new one with "
                       f"`steerflow run --dir NEW_DIR {path}`.") from None
    stages = ", ".join(f"{name} {_counts(info)}" for name, info in summary.get("stages", {}).items())
    drivers = summary.get("drivers", 1)
    whole = f" ({drivers} drivers: {summary['campaign_elapsed_s']:.1f} s in all)" if drivers > 1 else ""
    print(f"{summary['tasks']} task(s): {_counts(summary['states'])} in {summary['elapsed_s']:.1f} s{whole} "
          f"({summary['stop_reason']}); stages: {stages}")
    return _end_of_run()


def _dir_option(value: str | None) -> str | None:
    """``--dir``'s value; an empty one is a mistake (before, `--dir ""` after the file ran in the spec's directory)."""
    if value is not None and not value.strip():
        raise CliError(f"--dir is empty ({value!r}); give the directory the campaign should use, e.g. `--dir "
                       "runs/my-pipeline`, or leave --dir out to use the spec's own 'directory'.")
    return value


def _counts(states: dict[str, int]) -> str:
    return " ".join(f"{n} {state}" for state, n in states.items() if state != "tasks" and n)


def _holds_campaign(path: Path) -> bool:
    try:
        return bool(rundirs.find(path))
    except NotACampaign:
        return False


def _end_of_run() -> int:
    """After a run: failures with their first lines; exit status 1 when failed tasks were left unhandled."""
    from .observe.statusview import printable
    status = 0
    for directory in dict.fromkeys(launch.opened()):
        if not (directory / rundirs.JOURNAL).exists():
            continue
        info = rundirs.status(directory, failures=5)
        if not info["failed"]:
            continue
        unhandled = launch.unhandled_failures().get(directory, {})
        where = _rel(directory)
        what = f"{len(unhandled)} of them handled by no agent" if unhandled else "all handled by agents"
        lines = [f"{where}: {info['failed']} task(s) failed ({what}); the latest:"]
        for failure in info["failures"]:
            lines.append(printable(f"  task {failure['key']} {failure['name']}: "
                                   + failure["first_lines"].replace("\n", "\n      ")))
            if failure["files"]:
                lines.append(f"      output: {' '.join(_rel(f) for f in failure['files'] if f.endswith('.err'))}")
        lines.append(f"  every detail of one: steerflow show {where} KEY")
        print("\n".join(lines), file=sys.stderr)
        if unhandled:
            status = EXIT_FAILED
    return status


# ---- resume -------------------------------------------------------------------------------------

def _resume(args: argparse.Namespace) -> int:
    found = rundirs.find(args.dir)
    group = _group(found)
    first = group[min(group)]
    for directory in group.values():
        if not os.access(directory, os.W_OK):
            raise CliError(f"{directory} cannot be written (a read-only file system, or not yours), and a resume "
                           "writes its journal. Copy the directory to a place you can write to and resume the copy; "
                           f"read it as it is with `steerflow status {directory}`.")
    record = rundirs.meta(first, damaged_raises=True).get("launch")
    from .journal_files import holds_nothing

    if not isinstance(record, dict) and holds_nothing(first / "journal.db"):
        raise CliError(f"The journal in {first} records nothing: its driver was stopped before it recorded its script "
                       "or any task, so there is nothing to resume. Run the campaign's script again; it starts the "
                       f"campaign afresh in {first}.")
    if not isinstance(record, dict):
        raise CliError(f"The journal in {first} does not record the script that created it (it was made by an older "
                       "steerflow). Run that script again with Campaign(DIR, resume=True).")
    script = Path(str(record.get("script") or ""))
    kind = record.get("kind")
    if kind not in ("python", "yaml") or not script.name:
        raise CliError(f"The campaign in {first} was not started from a script or pipeline file steerflow can run "
                       f"({' '.join(record.get('argv') or []) or 'unknown'}). Run your code again with "
                       "Campaign(DIR, resume=True).")
    if script.suffix not in ((".py",) if kind == "python" else (".yaml", ".yml")) or not script.is_file():
        again = (f"run the spec from where it is now with `steerflow run --resume --dir {first} SPEC.yaml`"
                 if kind == "yaml" else "run your script again with Campaign(DIR, resume=True)")
        raise CliError(f"The campaign in {first} was started by {script}, which "
                       + ("no longer exists" if not script.exists() else "is not a campaign script or pipeline")
                       + f"; put it back, or {again}.")
    for directory in group.values():
        pid = driver_pid(directory)
        if pid is not None:
            raise CliError(f"A driver (pid {pid}) is running the campaign in {directory}; it needs no resume. "
                           f"Watch it with `steerflow status {directory}`.")
    cwd = str(record.get("cwd") or "")
    cwd = cwd if os.path.isdir(cwd) else os.getcwd()
    script_args = [str(a) for a in record.get("args") or []]
    if kind == "python":
        cmd = [sys.executable, "-m", "steerflow", "run", str(script), *script_args]
    else:
        cmd = [sys.executable, "-m", "steerflow", "run", "--resume", "--dir", str(first.resolve()), str(script)]
    env = dict(os.environ, **{launch.ENV_RESUME: "1", launch.ENV_DIRS: json.dumps({
        "run": record.get("run"), "dirs": {str(i): str(d.resolve()) for i, d in group.items()}}),
        ENV_PARENT: str(os.getpid())})
    shown = " ".join(shlex.quote(c) for c in [Path(cmd[0]).name, *cmd[1:]])
    print(f"steerflow resume: {', '.join(_rel(d) for d in group.values())}\n  running  {shown}\n  in       {cwd}",
          file=sys.stderr)
    before = {d: _driver_starts(d) for d in group.values()}
    child = subprocess.Popen(cmd, cwd=cwd, env=env)
    try:
        code = child.wait()
    except KeyboardInterrupt as exc:  # the child got the same Ctrl-C and stops cleanly; wait for it
        if isinstance(exc, Terminated):  # a SIGTERM reached only us: pass it on
            child.send_signal(signal.SIGTERM)
        code = child.wait()
        if isinstance(exc, Terminated):
            raise
    if code == 0 and all(_driver_starts(d) == n for d, n in before.items()):
        print(f"steerflow resume: the script ran but opened none of {', '.join(map(_rel, group.values()))}; "
              "it decides its campaign directories differently on each run?", file=sys.stderr)
        return EXIT_FAILED
    for directory in _group(rundirs.find(args.dir)).values():  # where it continued (phases it created too)
        counts: dict[str, int] = {}
        for pool in rundirs.status(directory)["pools"].values():
            for state, n in pool.items():
                counts[state] = counts.get(state, 0) + n
        print(f"steerflow resume: {_rel(directory)}: {_counts(counts) or 'no tasks'}", file=sys.stderr)
    return code


def _group(found: list[Path]) -> dict[int, Path]:
    """The campaigns of one script run, by their index: those found, and their siblings of the same run."""
    records = {d: rundirs.meta(d).get("launch") for d in found}
    runs = {r.get("run") for r in records.values() if isinstance(r, dict)}
    if len(runs) > 1:
        names = "\n".join(f"  steerflow resume {d}" for d in found)
        raise CliError(f"The path holds campaigns of {len(runs)} different script runs; resume one of them:\n{names}")
    if len(found) == 1 and runs:  # one phase of a multi-phase script: find its siblings beside it
        for sibling in sorted(p for p in found[0].parent.iterdir() if p.is_dir() and p != found[0]):
            if (sibling / rundirs.JOURNAL).is_file():
                record = rundirs.meta(sibling).get("launch")
                if isinstance(record, dict) and record.get("run") in runs:
                    records[sibling] = record
    group: dict[int, Path] = {}
    for directory, record in records.items():
        index = record.get("index", 0) if isinstance(record, dict) else 0
        group.setdefault(int(index), directory)
    return dict(sorted(group.items()))


def _driver_starts(directory: Path) -> int:
    try:
        return int(rundirs.status(directory)["drivers_so_far"])
    except Exception:  # noqa: BLE001 - unreadable now: counts as unchanged
        return -1


# ---- status / show / cancel -------------------------------------------------------------------

def status(directory: Path) -> dict[str, Any]:
    """Counts per state and pool, running tasks with where they run, recent failures (from the journal)."""
    return rundirs.status(rundirs.one(directory, "status"))


def _status(args: argparse.Namespace) -> int:
    from .observe.statusview import render

    found = rundirs.find(args.dir)
    if not args.watch:
        _console().print(render(found))
        return 0
    from rich.live import Live

    readers: dict[Path, Any] = {}  # kept between redraws: each reads only the journal's new rows
    try:
        with Live(render(found, readers), console=_console(), refresh_per_second=4, screen=False) as live:
            print(f"watching {args.dir} every {args.watch:g} s; Ctrl-C ends", file=sys.stderr, flush=True)
            cost = 0.0
            while True:  # bounded: a redraw costs at most a fifth of the time between redraws
                time.sleep(max(args.watch, WATCH_MIN_S, 4 * cost))
                started = time.monotonic()
                live.update(render(rundirs.find(args.dir), readers))
                cost = time.monotonic() - started
    except KeyboardInterrupt:
        return 0


def _is_key(text: str) -> bool:
    """A task key as the journal holds it: ASCII digits, within SQLite's integers ('²' is a digit to isdigit)."""
    return text.isascii() and text.isdigit() and len(text) <= 18


def _show(args: argparse.Namespace) -> int:
    from .observe.statusview import render_task

    directory = rundirs.one(args.dir, "show", suffix=f" {args.key}")
    if not _is_key(str(args.key)):
        raise CliError(f"{args.key!r} is not a task key; keys are integers (see `steerflow status {args.dir}`).")
    _console().print(render_task(directory, rundirs.task(directory, int(args.key))))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    for task in args.tasks:
        if not _is_key(task):
            raise CliError(f"{task!r} is not a task key (an integer); see `steerflow status {args.dir}`.")
    if not args.tasks and not args.stop:
        raise CliError("Name the tasks to cancel by key, or give --stop to stop the campaign's script.")
    found = rundirs.find(args.dir) if args.stop and not args.tasks else [rundirs.one(args.dir, "cancel")]
    running = [d for d in found if driver_pid(d) is not None]
    if not running:
        print(f"steerflow cancel: no driver runs the campaign in {args.dir}; nothing to cancel.", file=sys.stderr)
        return EXIT_FAILED
    if args.tasks:  # (before: "asked the driver", and the driver said on its own terminal that it has no such task)
        last = rundirs.last_key(running[0])
        unknown = [t for t in args.tasks if int(t) < 1 or int(t) > last]
        if unknown:
            raise CliError(f"The campaign in {args.dir} has no task {', '.join(unknown)}; "
                           + (f"its tasks are 1 to {last}" if last else "it has no task yet")
                           + f" (see `steerflow status {args.dir}`).")
    for directory in running:
        if args.tasks:
            control.request(directory / rundirs.JOURNAL, "cancel", args.tasks)
        if args.stop:  # the whole script: its later phases do not start either
            control.request(directory / rundirs.JOURNAL, "stop", ["script"])
    what = " and ".join(part for part in (f"cancel {', '.join(args.tasks)}" if args.tasks else "",
                                          "stop the script" if args.stop else "") if part)  # (no dangling "and")
    print(f"asked the driver of {', '.join(_rel(d) for d in running)} to {what}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from .observe.report import command

    directory = rundirs.one(args.dir, "report")
    if args.out is not None and not args.out.strip():  # (before: `--out ""` wrote the report into the current folder)
        raise CliError(f"--out is empty ({args.out!r}); give the folder to write the report to, or leave --out out "
                       f"to write it to {directory / 'report'}.")
    if not args.json:
        writable_folder(Path(args.out) if args.out else directory / "report", "--out FOLDER")
    return command(directory, args.out, args.json)


def _dashboard(args: argparse.Namespace) -> int:
    from .observe.dashboard import serve

    serve(rundirs.one(args.dir, "dashboard"), args.refresh)
    return 0


def _seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (nan, inf, 0 and negatives were taken, then hung or spun)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < 86400 * 365:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, such as 2")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="steerflow", description="Run, watch, resume, inspect and cancel "
                                     "steerflow campaigns; run benchmarks.")
    parser.add_argument("--version", action="version", version=f"steerflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a campaign: a Python file or a YAML pipeline spec")
    run.add_argument("file", help="the campaign: a Python script (.py) or a YAML pipeline spec (.yaml/.yml)")
    run.add_argument("--dir", help="campaign directory (YAML specs; overrides the spec's 'directory')")
    run.add_argument("--resume", action="store_true", help="resume the campaign if its directory has a journal")
    run.add_argument("--dashboard", action="store_true", help="serve a live dashboard of the run (URL printed)")
    run.add_argument("--engine", choices=["local", "dask"], help="run on this engine (default: the campaign's own "
                     "choice, else local); sets STEERFLOW_ENGINE for campaigns created without one")
    run.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler for --engine dask (tcp://host:8786, "
                     "tls://…); without it a local Dask cluster of one node starts")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to a Python campaign file")
    run.set_defaults(handler=_run)

    resume = sub.add_parser("resume", help="continue a killed or stopped campaign in its directory (runs its "
                            "own script again)")
    resume.add_argument("dir", help=DIRS_HELP)
    resume.set_defaults(handler=_resume)

    st = sub.add_parser("status", help="tasks per pool and state, where running tasks run, recent failures")
    st.add_argument("dir", help=DIRS_HELP)
    st.add_argument("--watch", type=_seconds, default=0, metavar="SECONDS", help="redraw every SECONDS (Ctrl-C ends)")
    st.set_defaults(handler=_status)

    show = sub.add_parser("show", help="one task whole: description, attempts, where it ran, error, output files")
    show.add_argument("dir", help="the campaign directory (it holds journal.db)")
    show.add_argument("key", help="the task's key (its number, as `steerflow status` lists it)")
    show.set_defaults(handler=_show)

    cancel = sub.add_parser("cancel", help="cancel tasks of a running campaign by key, or stop its script")
    cancel.add_argument("dir", help="the directory of the running campaign")
    cancel.add_argument("tasks", nargs="*", help="keys of the tasks to cancel")
    cancel.add_argument("--stop", action="store_true", help="stop the campaign and its script (all its phases)")
    cancel.set_defaults(handler=_cancel)

    report = sub.add_parser("report", help="HTML report (Gantt, utilisation, overheads, idle gaps) from the journal")
    report.add_argument("dir", help="the campaign directory (it holds journal.db)")
    report.add_argument("--out", help="where to write the report (default: DIR/report)")
    report.add_argument("--json", action="store_true", help="print the metrics as JSON instead of writing files")
    report.set_defaults(handler=_report)

    dash = sub.add_parser("dashboard", help="a live page of the campaign on 127.0.0.1 (URL with a token)")
    dash.add_argument("dir", help="the campaign directory (it holds journal.db)")
    dash.add_argument("--refresh", type=_seconds, default=2.0, help="seconds between reads of the journal")
    dash.set_defaults(handler=_dashboard)

    add_bench(sub)
    return parser


def _stdout_closed() -> bool:
    """Whether our standard output is a pipe nobody reads any more (the write end then polls as an error)."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):  # no real file behind stdout (captured, closed)
        return False


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except KeyboardInterrupt:  # (Ctrl-C this early: see steerflow/__main__.py)
        from .__main__ import interrupted_at_start

        return interrupted_at_start()
    name = f"steerflow {args.command}"
    if args.command in ("run", "resume"):
        signal.signal(signal.SIGTERM, raise_terminated)
        if signal.getsignal(signal.SIGHUP) == signal.SIG_DFL:  # (not under nohup) a closed terminal stops cleanly
            signal.signal(signal.SIGHUP, raise_terminated)
    parent = os.environ.pop(ENV_PARENT, None)
    if args.command == "run" and parent:  # the driver `steerflow resume` started: it stops when resume is killed
        from .proctree import die_with_parent

        die_with_parent(signal.SIGTERM)  # (a SIGKILL to resume alone left this driver running, orphaned)
        if str(os.getppid()) != parent:
            print(f"{name}: `steerflow resume` (pid {parent}) ended before its driver started; nothing ran.",
                  file=sys.stderr)
            return EXIT_TERMINATED
    try:
        return int(args.handler(args) or 0)
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # a pipe of the script's own: its traceback helps
        # `steerflow report DIR --json | head`: the reader has what it wanted; no traceback, and none at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE
    except KeyboardInterrupt as exc:
        said = str(exc).split(":", 1)[0]
        how = f"terminated ({said if said.startswith('SIG') else 'SIGTERM'})" if isinstance(exc, Terminated) \
            else "interrupted"
        what = (f"running tasks were stopped.{_resume_hint()}" if args.command in ("run", "resume")
                else "nothing of the campaign was changed.")  # (report, show, bench: there were no tasks to stop)
        print(f"\n{name}: {how}; {what}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    except CampaignStopped as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 0
    except USAGE_ERRORS as exc:
        print(f"{name}: {_where_in_user_code(exc)}{exc}", file=sys.stderr)
        return EXIT_USAGE
    except SteerflowError as exc:
        print(f"{name}: {_where_in_user_code(exc)}{exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.DatabaseError as exc:
        if args.command not in JOURNAL_READERS:
            raise  # from a script `run` ran: its traceback helps
        from .journal_files import holds_nothing

        journal = Path(str(args.dir)) / rundirs.JOURNAL
        if journal.is_file() and holds_nothing(journal):  # (before: "it is damaged" of a journal a driver just made)
            print(f"{name}: the campaign journal in {args.dir} records nothing yet: its driver has only just started, "
                  "or was stopped before it recorded its script or any task. Try again in a moment, or run the "
                  "campaign's script again to start it afresh.", file=sys.stderr)
            return EXIT_FAILED
        print(f"{name}: the campaign journal in {args.dir} cannot be read ({exc}): it is damaged, or not a "
              "steerflow journal. A copy of the directory from before the damage can be read and resumed.",
              file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        if args.command not in OUTPUT_WRITERS or exc.errno not in WRITE_ERRNOS:
            raise  # a bug, or a script's own: its traceback helps
        from .errors import describe_error

        where = "--json FILE" if args.command == "bench" else "--out FOLDER"
        target = exc.filename or (args.json if args.command == "bench" else args.out or f"{args.dir}/report")
        print(f"{name}: could not write {target}: {describe_error(exc)}. Free space (or give "
              f"another place with {where}) and run it again" + ("; the table above has the numbers."
                                                                if args.command == "bench" else "."), file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:
        from .campaign import AgentError

        if not isinstance(exc, AgentError):
            raise  # a bug (ours or the script's): its traceback helps
        cause = exc.__cause__
        detail = "".join(traceback.format_exception(cause)) if cause is not None else ""
        print(f"{detail}{name}: {str(exc).rstrip('.')}. The campaign stopped cleanly.{_resume_hint()}",
              file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
