"""The ledger as the report sees it: runs with flat configs, the fields a sweep varies, and
the best combination of each model (chosen by validation accuracy, never by test).

Everything here is a pure function of `mnistlab.ledger.read_runs` records, so tables,
figures and conclusions all agree on which run is "best" and how numbers are rounded.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass

LR, DROPOUT, SEED = "lr", "dropout", "seed"
# Fields that say where or how a run was executed, not what it computed: never grid axes.
NOT_GRID = frozenset({"model", "out_dir", "device", "num_threads", "data_dir", "run_id"})
UNFINISHED = ("pending", "partial", "interrupted")


def finite(value) -> float | None:
    """A JSON number that can be used in arithmetic; None for null, NaN, inf or non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def flatten(config: dict, prefix: str = "") -> dict:
    """Nested config sections become dotted keys, so e.g. `arch.width` can be a grid axis."""
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def value_key(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def sort_key(value):
    """Numbers in numeric order, then strings, then missing values."""
    number = finite(value)
    if number is not None:
        return (0, number, "")
    if value is None:
        return (2, 0.0, "")
    return (1, 0.0, value_key(value))


def fmt_value(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int | str):
        return str(value)
    return value_key(value)


def pct(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.2f}"


def seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


@dataclass(frozen=True)
class Run:
    run_id: str
    status: str
    config: dict
    fields: dict  # flattened config
    history: list  # per-epoch dicts, as in history.json
    result: dict | None  # None until the run ends

    @classmethod
    def from_record(cls, record) -> Run:
        if isinstance(record, Run):
            return record
        config = record.get("config") or {}
        return cls(
            run_id=str(record["run_id"]),
            status=str(record.get("status") or "pending"),
            config=config,
            fields=flatten(config),
            history=[h for h in record.get("history") or [] if isinstance(h, dict)],
            result=record.get("result"),
        )

    @property
    def model(self) -> str:
        name = self.config.get("model") or (self.result or {}).get("model")
        return str(name) if name else self.run_id.rsplit("-", 1)[0]

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def metric(self, key: str) -> float | None:
        return finite(self.result.get(key)) if self.result else None

    @property
    def params(self) -> int | None:
        value = self.metric("params")
        return int(value) if value is not None else None

    @property
    def seconds(self) -> float | None:
        return self.metric("total_seconds")

    @property
    def epochs_run(self) -> int:
        value = self.metric("epochs_run")
        return int(value) if value is not None else len(self.history)

    @property
    def planned_epochs(self) -> int | None:
        value = finite(self.config.get("epochs"))
        return int(value) if value is not None else None

    @property
    def diverged_epoch(self) -> int | None:
        """The first epoch whose losses were not finite; if the engine stopped mid-epoch before
        recording it, the epoch after the last recorded one."""
        if self.status != "diverged":
            return None
        for i, h in enumerate(self.history, start=1):
            if finite(h.get("train_loss")) is None or finite(h.get("val_loss")) is None:
                return int(finite(h.get("epoch")) or i)
        return len(self.history) + 1

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) with NaN where a value is missing or not finite (a gap in a plot)."""
        epochs = [int(finite(h.get("epoch")) or i) for i, h in enumerate(self.history, start=1)]
        values = [v if (v := finite(h.get(key))) is not None else math.nan for h in self.history]
        return epochs, values


def to_runs(records: Iterable) -> list[Run]:
    return [Run.from_record(r) for r in records]


def grid_fields(runs: list[Run]) -> list[str]:
    """Config fields whose value differs between runs: lr and dropout first, seed last."""
    keys = set().union(*(r.fields for r in runs)) - NOT_GRID if runs else set()
    varying = {k for k in keys if len({value_key(r.fields.get(k)) for r in runs}) > 1}
    first = [k for k in (LR, DROPOUT) if k in varying]
    last = [SEED] if SEED in varying else []
    return first + sorted(varying - {LR, DROPOUT, SEED}) + last


def table_fields(runs: list[Run]) -> list[str]:
    """The columns describing a combination: always lr and dropout (the user's grid), then
    every other field that varies."""
    return [LR, DROPOUT] + [f for f in grid_fields(runs) if f not in (LR, DROPOUT)]


def describe(run: Run, fields: list[str]) -> str:
    """`lr=0.005, dropout=0.3`: the run's values of the given fields (seed left out)."""
    parts = [f"{f}={fmt_value(run.fields.get(f))}" for f in fields if f != SEED]
    return ", ".join(p for p in parts if not p.endswith("=—")) or "default settings"


@dataclass(frozen=True)
class Best:
    """A model's best combination: its finished runs (repeats over seeds), best run first."""

    model: str
    runs: list[Run]

    @property
    def run(self) -> Run:
        return self.runs[0]

    @property
    def n(self) -> int:
        return len(self.runs)

    def mean(self, key: str) -> float | None:
        values = [v for r in self.runs if (v := r.metric(key)) is not None]
        return statistics.fmean(values) if values else None

    def std(self, key: str) -> float | None:
        values = [v for r in self.runs if (v := r.metric(key)) is not None]
        return statistics.stdev(values) if len(values) > 1 else None

    @property
    def params(self) -> int | None:
        return self.run.params

    @property
    def seconds(self) -> float | None:
        return self.mean("total_seconds")


def best_per_model(runs: list[Run]) -> list[Best]:
    """Per model, the combination with the highest mean validation accuracy over its finished
    runs; ties go to fewer parameters, then less time. Sorted best first."""
    fields = [f for f in grid_fields(runs) if f != SEED]
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.finished and run.metric("val_acc") is not None:
            key = (run.model, *(value_key(run.fields.get(f)) for f in fields))
            groups.setdefault(key, []).append(run)
    candidates = [
        Best(model=key[0], runs=sorted(g, key=lambda r: (-r.metric("val_acc"), r.run_id)))
        for key, g in groups.items()
    ]

    def rank(best: Best):
        return (
            -best.mean("val_acc"),
            best.params if best.params is not None else math.inf,
            best.seconds if best.seconds is not None else math.inf,
            best.run.run_id,
        )

    chosen: dict[str, Best] = {}
    for best in sorted(candidates, key=rank):
        chosen.setdefault(best.model, best)
    return sorted(chosen.values(), key=rank)


def log_fit(bests: list[Best]) -> dict | None:
    """Pearson r and least-squares slope of log10(seconds) on log10(params), one point per
    model; None with fewer than 3 usable models (too few for a correlation to mean much)."""
    points = [
        (math.log10(b.params), math.log10(b.seconds))
        for b in bests
        if b.params and b.seconds and b.params > 0 and b.seconds > 0
    ]
    if len(points) < 3:
        return None
    xs, ys = zip(*points, strict=True)
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    slope, intercept = statistics.linear_regression(xs, ys)
    return {
        "r": statistics.correlation(xs, ys),
        "slope": slope,
        "intercept": intercept,
        "n": len(points),
    }
