"""Effective performance: time-to-solution of a plain method over that of the learning-enhanced run.

A claim of speed-up needs three things stated: what counts as a solution (`Goal`), how the
run got there (a `Trace` read from the campaign journal: which candidate each simulation was,
when it ended), and what it is compared with (baselines):

- `RandomOrder`: simulate the pool in random order. Its expected number of simulations to find
  ``m`` of ``h`` hits among ``n`` candidates is ``m (n+1)/(h+1)`` (exact, no sampling).
- `BruteForce`: simulate the whole pool.
- `Heuristic`: a label-free ranking (a function of the candidate alone, e.g. "fewest H per
  heavy atom"). On many real problems it beats random by far, so report both.
- `Measured`: a baseline campaign that really ran (its own journal), e.g. in the same command.
- For a surrogate, `surrogate_speedup` compares with calling the plain function every time.

An estimated baseline's time is its simulation count times the mean simulation cost measured
in this run, divided by the simulation slots this run used: an ideal schedule without any
overhead, so the estimate favours the baseline. Every report line says how it was obtained.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Goal", "Evaluation", "Trace", "RandomOrder", "BruteForce", "Heuristic", "Measured", "Report",
           "effective_performance", "surrogate_speedup", "candidate_tag", "candidate_from_tags"]

CANDIDATE_TAG = "candidate="


def candidate_tag(candidate: Hashable) -> str:
    """The task tag that names the candidate a simulation evaluates (what `Trace.from_journal` reads).

    The journal keeps a task's tags joined by commas, so a candidate named with a comma (or a '%') is
    percent-encoded here and decoded by `candidate_from_tags` (before, "a,b" was read back as "a")."""
    text = str(candidate)
    if "," in text or "%" in text:
        from urllib.parse import quote

        text = quote(text, safe="")
    return f"{CANDIDATE_TAG}{text}"


def candidate_from_tags(tags: Sequence[str]) -> Hashable | None:
    for tag in tags:
        if tag.startswith(CANDIDATE_TAG):
            text = tag[len(CANDIDATE_TAG):]
            if "%" in text:
                from urllib.parse import unquote

                text = unquote(text)
            return int(text) if text.lstrip("-").isdigit() else text
    return None


@dataclass(frozen=True)
class Goal:
    """What solving means: finding ``needed`` of the candidates in ``hits``."""

    hits: frozenset
    needed: int
    description: str = ""

    def __post_init__(self) -> None:
        if not 1 <= self.needed <= len(self.hits):
            raise ValueError(f"Goal: needed={self.needed} must be between 1 and the {len(self.hits)} hits.")

    @classmethod
    def top(cls, values: Mapping[Hashable, float], count: int, needed: int | None = None,
            goal: str = "min") -> Goal:
        """The ``count`` best candidates by their true values are hits; find ``needed`` (default: half)."""
        if goal not in ("min", "max"):
            raise ValueError(f"Goal.top(goal={goal!r}): say 'min' (the lowest values are the hits) or 'max'.")
        if not isinstance(values, Mapping):
            raise TypeError(f"Goal.top(values=...): give each candidate's true value as a mapping ({{candidate: "
                            f"value}}, e.g. dict(enumerate(array))), not {type(values).__name__}.")
        finite = {k: v for k, v in values.items() if v is not None and math.isfinite(v)}
        order = sorted(finite, key=lambda k: (finite[k] if goal == "min" else -finite[k], str(k)))
        hits = frozenset(order[:count])
        needed = needed if needed is not None else max(1, count // 2)
        word = "lowest" if goal == "min" else "highest"
        return cls(hits, needed, f"{needed} of the {count} {word} of {len(finite)} candidates")


@dataclass
class Evaluation:
    """One finished simulation: the candidate, its value, when it ran (epoch seconds)."""

    candidate: Hashable
    value: Any
    started: float
    ended: float
    ok: bool = True
    source: str = "simulation"  # or "surrogate": answered by a model within its error bound, not simulated


def _without_gaps(spans: list[tuple[float, float]]) -> Callable[[float], float]:
    """A clock that stops while no driver ran: t -> the first driver's start + the drivers' time before t."""
    if len(spans) < 2:
        return lambda t: t
    import bisect

    starts = [s for s, _ in spans]
    before = [0.0]  # drivers' time before each span's start
    for s, e in spans[:-1]:
        before.append(before[-1] + e - s)

    def clock(t: float) -> float:
        if not isinstance(t, (int, float)) or not math.isfinite(t):
            return t
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return t
        s, e = spans[i]
        return starts[0] + before[i] + (min(t, e) - s if i + 1 < len(spans) else t - s)

    return clock


@dataclass
class Trace:
    """The simulations of a run, in completion order, and the run's start time and slot count."""

    evaluations: list[Evaluation]
    start: float
    slots: int = 1
    label: str = "learning-enhanced run"

    @classmethod
    def from_journal(cls, directory: str | Path, pool: str = "simulate",
                     candidate: Callable[[Sequence[str]], Hashable | None] = candidate_from_tags,
                     slots: int | None = None, label: str = "learning-enhanced run",
                     surrogate_answers: bool = True) -> Trace:
        """Read a campaign's simulations (tasks of ``pool`` with a candidate tag) from its journal.

        With ``surrogate_answers``, a surrogate's substituted answers (steering events
        ``surrogate:NAME`` carrying a candidate tag) count as evaluations too, marked as such.
        A resumed campaign's times count only while a driver ran: the time between a killed
        driver and its resume is left out (`journal_files.driver_spans`).
        """
        import pickle

        from .. import journal as journal_mod
        from .. import journal_files

        path = Path(directory) / "journal.db"
        if not path.exists():
            raise FileNotFoundError(f"No campaign journal at {path}; pass the campaign's directory.")
        conn = journal_mod.connect(path, readonly=True)
        try:
            results = journal_mod.read_results(conn, directory)
            tasks = list(conn.execute("SELECT key, pool, tags, cores FROM tasks"))
            answers = list(conn.execute("SELECT name, payload FROM steering WHERE kind = 'event' AND name LIKE "
                                        "'surrogate:%' ORDER BY seq")) if surrogate_answers else []
            start_row = conn.execute("SELECT MIN(started) FROM runs").fetchone()
            cores = conn.execute("SELECT MAX(cores) FROM runs").fetchone()
            spans = journal_files.driver_spans(conn)
        finally:
            conn.close()
        pools = sorted({row[1] for row in tasks if row[1] is not None})
        if tasks and pool not in pools:  # (before: a typo read as a run with no simulation, without a word)
            raise ValueError(f"Trace.from_journal(pool={pool!r}): the campaign in {directory} has no task in that pool; "
                             f"its pools: {', '.join(pools)}. Name the pool its simulations ran in.")
        clock = _without_gaps(spans)
        evaluations = []
        for key, task_pool, tags, _ in tasks:
            stored = results.get(key)
            if task_pool != pool or stored is None or stored.error == "cancelled":
                continue
            cand = candidate(tuple(t for t in journal_mod.split_tags(tags) if t))
            if cand is None:
                continue
            value = stored.load() if stored.ok else None
            evaluations.append(Evaluation(cand, value, clock(stored.started), clock(stored.ended), stored.ok))
        for _, payload in answers:
            answer = pickle.loads(payload) if payload else {}
            cand = candidate(tuple(answer.get("tags", ())))
            if cand is not None:
                at = clock(answer["time"])
                evaluations.append(Evaluation(cand, answer.get("value"), at, at, True, "surrogate"))
        evaluations.sort(key=lambda e: e.ended)
        start = float(start_row[0]) if start_row and start_row[0] else (evaluations[0].started if evaluations else 0.0)
        return cls(evaluations, start, slots or _concurrency(evaluations) or int(cores[0] or 1), label)

    def solved(self, goal: Goal) -> tuple[int, float] | None:
        """(simulations, seconds since the start) when the goal was met, or None if it never was.

        Only simulations count as finding a hit: a surrogate's answer is not a verification
        (`hits_by` says how many hits the surrogate answered besides).
        """
        found: set = set()
        n = 0
        for ev in self.evaluations:
            if ev.source != "simulation":
                continue
            n += 1
            if ev.ok and ev.candidate in goal.hits:
                found.add(ev.candidate)
                if len(found) >= goal.needed:
                    return n, ev.ended - self.start
        return None

    def hits_by(self, goal: Goal) -> dict[str, int]:
        """Distinct hits found over the whole run: simulated, and answered only by a surrogate (never simulated)."""
        out: dict[str, set] = {"simulation": set(), "surrogate": set()}
        for ev in self.evaluations:
            if ev.ok and ev.candidate in goal.hits:
                out[ev.source].add(ev.candidate)
        return {"simulation": len(out["simulation"]), "surrogate": len(out["surrogate"] - out["simulation"])}

    @property
    def simulations(self) -> int:
        return sum(1 for e in self.evaluations if e.source == "simulation")

    def mean_cost(self) -> float:
        costs = [e.ended - e.started for e in self.evaluations if e.ended > e.started and e.source == "simulation"]
        return sum(costs) / len(costs) if costs else 0.0

    @property
    def elapsed(self) -> float:
        return (self.evaluations[-1].ended - self.start) if self.evaluations else 0.0


def _concurrency(evaluations: list[Evaluation], share: float = 0.02) -> int:
    """The most simulations that ran at once: the slots the run gave its simulations.

    A level held for less than ``share`` of the time any simulation ran does not count: with a
    task queued behind a running one on its worker, one task's recorded start can precede the
    previous one's recorded end by a few ms, and those hand-over overlaps must not double the slots.
    """
    evaluations = [e for e in evaluations if e.source == "simulation"]
    marks = sorted([(e.started, 1) for e in evaluations] + [(e.ended, -1) for e in evaluations],
                   key=lambda t: (t[0], t[1]))
    held: dict[int, float] = {}
    now, last = 0, marks[0][0] if marks else 0.0
    for ts, step in marks:
        held[now] = held.get(now, 0.0) + (ts - last)
        now, last = now + step, ts
    busy = sum(t for level, t in held.items() if level > 0)
    levels = [level for level in held if level > 0]
    if busy <= 0:
        return max(levels, default=1 if evaluations else 0)
    return max((level for level in levels if sum(t for lv, t in held.items() if lv >= level) >= share * busy),
               default=0)


@dataclass
class Baseline:
    """A plain method's simulations to solve the goal, and how that number was obtained."""

    name: str
    how: str = ""

    def simulations(self, goal: Goal, pool_size: int) -> float | None:
        raise NotImplementedError

    def seconds(self, goal: Goal, pool_size: int, trace: Trace) -> tuple[float | None, str]:
        sims = self.simulations(goal, pool_size)
        cost = trace.mean_cost()
        if sims is None:
            return None, "never solves it"
        return sims * cost / max(1, trace.slots), (f"estimated from measured task costs: {sims:.0f} simulations x "
                                                   f"{cost:.3f} s mean cost of this run's simulations / "
                                                   f"{trace.slots} slots, no overhead")


@dataclass
class RandomOrder(Baseline):
    name: str = "random order"
    how: str = "expected value m(n+1)/(h+1) for m of h hits among n candidates (exact)"

    def simulations(self, goal: Goal, pool_size: int) -> float | None:
        return goal.needed * (pool_size + 1) / (len(goal.hits) + 1)


@dataclass
class BruteForce(Baseline):
    name: str = "brute force"
    how: str = "every candidate of the pool"

    def simulations(self, goal: Goal, pool_size: int) -> float | None:
        return float(pool_size)


@dataclass
class Heuristic(Baseline):
    """A label-free ranking: ``scores[candidate]``, best first according to ``goal``."""

    scores: Mapping[Hashable, float] = field(default_factory=dict)
    goal: str = "min"

    def __post_init__(self) -> None:
        if self.goal not in ("min", "max"):
            raise ValueError(f"Heuristic({self.name!r}, goal={self.goal!r}): say 'min' (the lowest scores first) or "
                             "'max'.")
        if not self.how:
            self.how = (f"the pool ranked by {self.name} ({'lowest' if self.goal == 'min' else 'highest'} first, "
                        "needs no label), checked against the true values")

    def order(self) -> list[Hashable]:
        sign = 1.0 if self.goal == "min" else -1.0
        return sorted(self.scores, key=lambda k: (sign * self.scores[k], str(k)))

    def simulations(self, goal: Goal, pool_size: int) -> float | None:
        found = 0
        for n, cand in enumerate(self.order(), 1):
            if cand in goal.hits:
                found += 1
                if found >= goal.needed:
                    return float(n)
        return None


@dataclass
class Measured(Baseline):
    """A baseline that really ran: its own trace (e.g. a campaign run in the same command)."""

    trace: Trace | None = None

    def __post_init__(self) -> None:
        if not self.how:
            self.how = "run on this machine in the same command (its journal)"

    def simulations(self, goal: Goal, pool_size: int) -> float | None:
        solved = self.trace.solved(goal) if self.trace else None
        return float(solved[0]) if solved else None

    def seconds(self, goal: Goal, pool_size: int, trace: Trace) -> tuple[float | None, str]:
        solved = self.trace.solved(goal) if self.trace else None
        return (solved[1], self.how) if solved else (None, "did not solve it in its run")


@dataclass
class Report:
    """The numbers, one row per baseline; `text()` prints them, `as_dict()` goes to JSON."""

    goal: Goal
    pool_size: int
    run_simulations: int | None
    run_seconds: float | None
    run_total_simulations: int
    run_elapsed: float
    rows: list[dict[str, Any]]
    hits_by: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"goal": self.goal.description, "pool_size": self.pool_size,
                "run_simulations_to_solution": self.run_simulations, "run_seconds_to_solution": self.run_seconds,
                "run_simulations": self.run_total_simulations, "run_elapsed_s": self.run_elapsed,
                "hits_found_by": self.hits_by,
                "baselines": self.rows}

    def text(self) -> str:
        lines = [f"Goal: {self.goal.description}."]
        if self.run_simulations is None:
            lines.append(f"The run did NOT reach it in {self.run_total_simulations} simulations "
                         f"({self.run_elapsed:.1f} s): effective performance at most the ratios below.")
        else:
            lines.append(f"The run reached it after {self.run_simulations} simulations, {self.run_seconds:.1f} s "
                         "after its start (wall clock, training and overheads included).")
        only_model = self.hits_by.get("surrogate", 0)
        if only_model:
            lines.append(f"  (The surrogate alone answered {only_model} more hit(s), never simulated: not counted.)")
        for row in self.rows:
            if row["simulations"] is None:
                lines.append(f"  vs {row['baseline']}: never solves it ({row['how']}).")
                continue
            ep = row["effective_performance"]
            if ep is None or row["simulations_ratio"] is None:  # the run made no simulation (or took no time)
                lines.append(f"  vs {row['baseline']}: {row['simulations']:.0f} simulations; no ratio, since the "
                             f"run made {self.run_total_simulations} simulation(s) in {self.run_elapsed:.1f} s. How: "
                             f"{row['how']}.")
                continue
            verdict = "faster" if ep > 1 else "NOT faster"
            lines.append(f"  vs {row['baseline']}: {row['simulations']:.0f} simulations, {row['seconds']:.1f} s -> "
                         f"effective performance {ep:.2f}x ({verdict}); {row['simulations_ratio']:.2f}x fewer "
                         f"simulations. How: {row['how']}; time {row['time_how']}.")
        return "\n".join(lines)


def effective_performance(run: Trace, goal: Goal, pool_size: int, baselines: Sequence[Baseline]) -> Report:
    """Compare the run with each baseline on the same goal; time ratios and simulation ratios."""
    if not isinstance(run, Trace):
        raise TypeError(f"effective_performance(run=...): give the run's Trace (learn.Trace.from_journal(DIR, "
                        f"pool=...)), not {type(run).__name__}.")
    if not isinstance(goal, Goal):
        raise TypeError(f"effective_performance(goal=...): give a learn.Goal (Goal.top(values, count=...)), not "
                        f"{type(goal).__name__}.")
    if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
        raise ValueError(f"effective_performance(pool_size={pool_size!r}): the number of candidates, an integer >= 1.")
    if isinstance(baselines, (str, bytes)) or not isinstance(baselines, Sequence) \
            or not all(isinstance(b, Baseline) for b in baselines):
        raise TypeError("effective_performance(baselines=...): give a list of baselines (learn.RandomOrder(), "
                        f"learn.Heuristic(...), learn.Measured(...), ...), not {baselines!r:.80}.")
    solved = run.solved(goal)
    run_sims, run_secs = (solved if solved else (None, None))
    denom_sims = run_sims if run_sims is not None else run.simulations
    denom_secs = run_secs if run_secs is not None else run.elapsed
    rows = []
    for base in baselines:
        sims = base.simulations(goal, pool_size)
        secs, time_how = base.seconds(goal, pool_size, run)
        rows.append({"baseline": base.name, "how": base.how, "time_how": time_how, "simulations": sims,
                     "seconds": secs,
                     "simulations_ratio": (sims / denom_sims) if sims is not None and denom_sims else None,
                     "effective_performance": (secs / denom_secs) if secs is not None and denom_secs else None,
                     "upper_bound": solved is None})
    return Report(goal, pool_size, run_sims, run_secs, run.simulations, run.elapsed, rows, run.hits_by(goal))


def surrogate_speedup(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The plain function without its surrogate: every call real, at the measured mean real-call cost."""
    if not isinstance(stats, Mapping):
        raise TypeError(f"surrogate_speedup(stats): give the surrogate's stats as a dict (surrogate.stats.as_dict()), "
                        f"not {type(stats).__name__}.")
    real, sub = int(stats.get("real_calls", 0)), int(stats.get("surrogate_calls", 0))
    cost = float(stats.get("mean_real_s", 0.0))
    spent = real * cost + float(stats.get("surrogate_s", 0.0))
    plain = (real + sub) * cost
    return {"calls": real + sub, "real_calls": real, "surrogate_calls": sub, "plain_s": plain, "with_surrogate_s": spent,
            "speedup": plain / spent if spent > 0 else None,
            "how": "estimated: every call at the mean measured cost of this run's real calls"}
