"""A search's trials as the report sees them: which settings were searched, the trials that
share everything else (one "point" per model and grid combination), the best finished trials,
and each searched setting's rank correlation with validation accuracy.

    read_search(sweep_dir) -> SearchInfo | None   None for a grid sweep
    points(group, info) -> [Point]                 the trials compared with each other
    best_trials(group, k) -> [Run]                 finished trials that learned, best first
    setting_trend(runs, usable, dim) -> (n, Spearman | None)   searched value vs val accuracy

A trial's settings are sampled, not laid on a grid, so the lr x dropout views make no sense
for it: the report draws accuracy against each searched setting instead. Pruned trials
trained fewer epochs than finished ones, so they are drawn apart and never ranked with them;
only finished trials that learned are ranked or correlated.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..search import Dimension, SearchSpec
from .runs import SEED, Run, finite, fmt_value, sort_key, value_key
from .stats import ALPHA, Spearman, spearman

if TYPE_CHECKING:
    from .analysis import Group

SWEEP_COPY = "sweep.toml"  # the sweep file as the sweep last ran it (see sweep.prepare)
BEST_TRIALS = 5  # rows of the table of best trials
MIN_TREND_TRIALS = 5  # fewer finished trials cannot show a trend (5 is the least for p < 0.05)


@dataclass(frozen=True)
class SearchInfo:
    """What a search sampled, from its sweep file; `spec` is None when the [search] table
    could no longer be read and the space was inferred from the runs."""

    space: tuple[Dimension, ...]
    spec: SearchSpec | None = None

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.space]

    @property
    def axes(self) -> list[Dimension]:
        """The settings drawn on an x axis: every searched one but the model (which splits
        the trials into points instead)."""
        return [d for d in self.space if d.name != "model"]

    @property
    def ordered(self) -> list[Dimension]:
        """Settings whose values have an order, so a rank correlation means something."""
        return [d for d in self.axes if is_ordered(d)]

    @property
    def discrete(self) -> bool:
        """Every searched setting is a list of choices: the trials fall on a grid."""
        return all(d.choices is not None for d in self.space)

    def alpha(self) -> float:
        """The p-value a trend must beat: ALPHA shared among the settings tested (Bonferroni)."""
        return ALPHA / max(1, len(self.ordered))


def is_ordered(dim: Dimension) -> bool:
    if dim.choices is None:
        return True
    return all(finite(c) is not None for c in dim.choices)


def is_log(dim: Dimension) -> bool:
    """Log axis: log-uniform ranges, and numeric choices over more than a factor of 10."""
    if dim.choices is None:
        return dim.log
    values = [finite(c) for c in dim.choices]
    if not values or any(v is None or v <= 0 for v in values):
        return False
    return max(values) / min(values) > 10


def read_search(sweep_dir: str | Path, runs: list[Run] | None = None) -> SearchInfo | None:
    """The search a sweep folder holds, from its copy of the sweep file; None for a grid.

    A [search] table this version cannot read any more (an older or hand-edited copy) still
    makes the sweep a search: its space is then taken from the settings that vary."""
    path = Path(sweep_dir) / SWEEP_COPY
    try:
        table = tomllib.loads(path.read_text()).get("search")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if table is None:
        return None
    from ..config import ConfigError
    from ..search import parse_search

    try:
        spec = parse_search(table, str(path))
    except ConfigError:
        return infer_search(runs or [])
    return SearchInfo(tuple(spec.space.values()), spec)


def infer_search(runs: list[Run]) -> SearchInfo | None:
    """The searched settings guessed from the runs: numeric settings that vary (log-uniform
    when they are positive and span more than a factor of 10)."""
    from .runs import grid_fields

    dims = []
    for name in grid_fields(runs):
        values = [finite(r.fields.get(name)) for r in runs]
        if name == SEED or any(v is None for v in values):
            continue
        low, high = min(values), max(values)
        dims.append(Dimension(name, low=low, high=high, log=low > 0 and high / low > 10))
    return SearchInfo(tuple(dims)) if dims else None


# ---------------------------------------------------------------- the trials compared
@dataclass
class Point:
    """Trials that share their model and every setting that was not searched (one grid
    combination of a search with a [grid]): the ones compared with each other."""

    model: str
    fixed: list[tuple[str, object]]  # the grid settings that tell it from other points
    runs: list[Run] = field(default_factory=list)

    @property
    def label(self) -> str:
        extra = ", ".join(f"{k}={fmt_value(v)}" for k, v in self.fixed)
        return f"{self.model} ({extra})" if extra else self.model

    @property
    def stem(self) -> str:
        return "_".join([self.model, *(f"{k}{fmt_value(v)}" for k, v in self.fixed)])


def points(group: Group, info: SearchInfo) -> list[Point]:
    """The group's trials split by model and by the settings that vary but were not searched."""
    searched = set(info.names)
    fixed = [f for f in group.fields if f not in searched and f != SEED]
    varying = [f for f in fixed if len({value_key(r.fields.get(f)) for r in group.runs}) > 1]
    out: dict[tuple, Point] = {}
    for run in group.runs:
        values = [(f, run.fields.get(f)) for f in varying]
        key = (run.model, *(value_key(v) for _, v in values))
        out.setdefault(key, Point(run.model, values)).runs.append(run)
    return sorted(out.values(), key=lambda p: (p.model, *(sort_key(v) for _, v in p.fixed)))


def ranked(runs: list[Run], usable: set[str]) -> list[Run]:
    """Finished trials that learned, by validation accuracy; exact ties go to fewer
    parameters, then less time (as runs.rank_key ranks models), then the run id."""
    pool = [r for r in runs if r.run_id in usable and r.metric("val_acc") is not None]
    return sorted(
        pool,
        key=lambda r: (
            -r.metric("val_acc"),
            r.params if r.params is not None else math.inf,
            r.seconds if r.seconds is not None else math.inf,
            r.run_id,
        ),
    )


def best_trials(group: Group, k: int = BEST_TRIALS) -> list[Run]:
    return ranked(group.runs, {r.run_id for r in group.usable})[:k]


def within_noise(best: Run, other: Run) -> bool:
    """`other`'s validation accuracy lies inside `best`'s 95% interval."""
    interval = best.val_interval()
    value = other.metric("val_acc")
    return interval is not None and value is not None and value >= interval[0] - 1e-12


def setting_trend(runs: list[Run], usable: set[str], dim: Dimension) -> tuple[int, Spearman | None]:
    """(n, Spearman) of the setting's value against validation accuracy over finished trials
    that learned; pruned, diverged and failed trials never count (fewer or no epochs)."""
    pairs = [
        (finite(r.fields.get(dim.name)), r.metric("val_acc")) for r in runs if r.run_id in usable
    ]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    if len(pairs) < MIN_TREND_TRIALS:
        return len(pairs), None
    xs, ys = zip(*pairs, strict=True)
    return len(pairs), spearman(xs, ys)


def value_text(value) -> str:
    """A sampled value, short: 3 significant digits for floats."""
    number = finite(value)
    if isinstance(value, float) and number is not None:
        return f"{number:.3g}"
    return fmt_value(value)


def settings_text(run: Run, info: SearchInfo) -> str:
    """'lr=0.00123, dropout=0.432': a trial's searched values (the model apart)."""
    return ", ".join(f"{d.name}={value_text(run.fields.get(d.name))}" for d in info.axes)


def trial_label(run: Run, info: SearchInfo) -> str:
    settings = settings_text(run, info)
    return f"{run.model} ({settings})" if settings else run.model


def epochs_trained(runs: list[Run]) -> tuple[int, int]:
    """(epochs trained, epochs planned) over the trials that ended."""
    ended = [r for r in runs if r.status in ("finished", "pruned", "diverged")]
    trained = sum(r.epochs_run for r in ended)
    planned = sum(r.planned_epochs or r.epochs_run for r in ended)
    return trained, planned
