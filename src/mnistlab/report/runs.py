"""The ledger as the report sees it: runs with flat configs, the fields a sweep varies, the
budget each run was trained and judged on, and the best combination of each model (chosen by
validation accuracy, never by test).

Everything here is a pure function of `mnistlab.ledger.read_runs` records, so tables,
figures and conclusions all agree on which run is "best" and how numbers are rounded.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

from ..config import IDENTITY_FIELDS, TrainConfig
from .stats import accuracy_interval, correctness, t_interval

LR, DROPOUT, SEED = "lr", "dropout", "seed"
CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig))
# Fields that say where or how a run was executed, not what it computed: never grid axes.
NOT_GRID = (CONFIG_FIELDS - IDENTITY_FIELDS) | {"model", "run_id"}
# Fields that set how much a run was trained and judged on: a run's budget, not a grid axis.
# Runs are only ranked, fitted and compared against runs of the same budget.
BUDGET_FIELDS = ("dataset", "data_dir", "val_fraction", "train_subset", "epochs", "eval_subset")
UNFINISHED = ("pending", "partial", "interrupted", "pruned")


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
    predictions: dict | None = None  # {"test_labels": [...], "test_predictions": [...]}
    span: tuple[float, float] | None = None  # (start, end) wall-clock time, when known

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
            predictions=record.get("predictions"),
            span=_span(record),
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
    def split(self) -> dict:
        split = (self.result or {}).get("split")
        return split if isinstance(split, dict) else {}

    def _count(self, key: str) -> int | None:
        value = finite(self.split.get(key))
        return int(value) if value is not None and value > 0 else None

    @property
    def test_images(self) -> int | None:
        """How many test images the run was judged on (its accuracy is a fraction of these)."""
        used = self._count("test_used")
        if used is not None:
            return used
        right = self.correct
        if right is not None:
            return len(right)
        matrix = (self.result or {}).get("test_confusion")
        if isinstance(matrix, list) and all(isinstance(row, list) for row in matrix):
            total = sum(v for row in matrix for v in row if isinstance(v, int))
            if total > 0:
                return total
        subset = finite(self.config.get("eval_subset"))
        return int(subset) if subset else None

    @property
    def val_images(self) -> int | None:
        used = self._count("val_used")
        if used is not None:
            return used
        size, subset = self._count("val_size"), finite(self.config.get("eval_subset"))
        if size is not None and subset:
            return min(size, int(subset))
        return size

    @property
    def train_images(self) -> int | None:
        used = self._count("train_used")
        if used is not None:
            return used
        size = self._count("train_size")
        subset = finite(self.config.get("train_subset")) or finite(
            (self.result or {}).get("train_subset")
        )
        if size is not None and subset:
            return min(size, int(subset))
        return size if size is not None else (int(subset) if subset else None)

    @property
    def num_classes(self) -> int:
        per_class = (self.result or {}).get("per_class_accuracy")
        if isinstance(per_class, list) and len(per_class) >= 2:
            return len(per_class)
        matrix = (self.result or {}).get("test_confusion")
        if isinstance(matrix, list) and len(matrix) >= 2:
            return len(matrix)
        return 10

    @property
    def correct(self) -> list[bool] | None:
        """Per test image: did the chosen epoch's weights get it right (None if not recorded).
        Runs recorded before predictions were kept still list every misclassified image: when
        that list accounts for every error, it says the same."""
        right = correctness(self.predictions)
        items, n = (self.result or {}).get("test_misclassified"), self._count("test_used")
        if right is not None or not isinstance(items, list) or not n:
            return right
        acc = self.metric("test_acc")
        wrong = {i[0] for i in items if isinstance(i, list) and i and isinstance(i[0], int)}
        if acc is None or len(wrong) != n - round(acc * n) or not wrong <= set(range(n)):
            return None
        return [i not in wrong for i in range(n)]

    @property
    def test_labels(self) -> list | None:
        return (self.predictions or {}).get("test_labels") if self.correct is not None else None

    def so_far(self) -> tuple[float, int] | None:
        """(best validation accuracy, its epoch) over the recorded epochs: what an unfinished
        run had reached when it stopped."""
        epochs, accs = self.series("val_acc")
        scored = [(a, -e) for e, a in zip(epochs, accs, strict=True) if math.isfinite(a)]
        return (max(scored)[0], -max(scored)[1]) if scored else None

    def test_interval(self) -> tuple[float, float] | None:
        """95% Wilson interval of the test accuracy for the images it was judged on."""
        acc, n = self.metric("test_acc"), self.test_images
        return accuracy_interval(acc, n) if acc is not None and n else None

    def val_interval(self) -> tuple[float, float] | None:
        acc, n = self.metric("val_acc"), self.val_images
        return accuracy_interval(acc, n) if acc is not None and n else None

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

    def train_key(self, metric: str) -> str:
        """'train_eval_loss' / 'train_eval_acc' (eval mode, no dropout) where recorded, else
        the running average with dropout on, 'train_loss' / 'train_acc'."""
        measured = any(finite(h.get(f"train_eval_{metric}")) is not None for h in self.history)
        return f"train_eval_{metric}" if measured else f"train_{metric}"

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """(epochs, values) with NaN where a value is missing or not finite (a gap in a plot)."""
        epochs = [int(finite(h.get("epoch")) or i) for i, h in enumerate(self.history, start=1)]
        values = [v if (v := finite(h.get(key))) is not None else math.nan for h in self.history]
        return epochs, values


def to_runs(records: Iterable) -> list[Run]:
    return [Run.from_record(r) for r in records]


def _span(record: dict) -> tuple[float, float] | None:
    """When the run trained: its result's clock times; for runs recorded before those were
    kept, the run folder's own files (config.json is written when the run is claimed, its
    history after every epoch), trusted only when they span at least the epochs' own
    recorded seconds (copies that reset file times do not)."""
    result = record.get("result") or {}
    start, end = finite(result.get("started_at")), finite(result.get("ended_at"))
    if start is not None and end is not None:
        return start, end
    folder = record.get("dir")
    trained = sum(finite(h.get("seconds")) or 0 for h in record.get("history") or [])
    if folder is None or trained < 1:
        return None
    try:
        start = (Path(folder) / "config.json").stat().st_mtime
        end = max(p.stat().st_mtime for p in Path(folder).glob("*.json"))
    except (OSError, ValueError):
        return None
    return (start, end) if end - start >= 0.9 * trained else None


def concurrency(runs: list[Run]) -> int:
    """The most runs of `runs` that were training at the same moment (1 if they ran one after
    another or their times are not known)."""
    edges = sorted(e for r in runs if r.span for e in ((r.span[0], 1), (r.span[1], -1)))
    most = now = 0
    for _, step in edges:  # an end sorts before a start at the same instant
        now += step
        most = max(most, now)
    return max(most, 1)


@dataclass(frozen=True)
class Reading:
    """What a run's curves show (see read_curves)."""

    epochs: int  # epochs recorded
    low: int  # epoch of the lowest validation loss
    overfit: (
        int  # epochs (2 or more) after `low`, val loss ending >= OVERFIT_RISE up, train falling
    )
    rise: float  # last validation loss minus the lowest (0 when it did not over-fit)
    collapsed: int | None  # first epoch at near-chance accuracy after the run had learned
    best: int | None  # the epoch whose weights were kept (chosen by validation accuracy)


OVERFIT_RISE = 0.2  # validation loss this far above its lowest (a fraction of it) at the end
LEARNED = 0.5  # a run "had learned" once its validation accuracy passed this


def read_curves(run: Run, near_chance: float = 0.1) -> Reading | None:
    """Where validation loss bottoms out; whether it then rose by OVERFIT_RISE or more while
    the training loss (measured in eval mode when recorded) still fell; a collapse to within
    `near_chance` of guessing after the run had learned. None with fewer than 2 epochs."""
    epochs, val = run.series("val_loss")
    _, train = run.series(run.train_key("loss"))
    _, accs = run.series("val_acc")
    finite_val = [(v, e) for e, v in zip(epochs, val, strict=True) if math.isfinite(v)]
    if len(finite_val) < 2:
        return None
    low_val, low = min(finite_val)
    i, last = epochs.index(low), len(epochs) - 1
    rise = val[last] - low_val if math.isfinite(val[last]) else 0.0
    fell = math.isfinite(train[last]) and math.isfinite(train[i]) and train[last] < train[i]
    over = last - i if fell and rise >= OVERFIT_RISE * low_val and last - i >= 2 else 0
    chance = 1.0 / run.num_classes
    collapsed, learned = None, False
    for e, a in zip(epochs, accs, strict=True):
        learned = learned or a >= LEARNED
        if learned and a < chance + near_chance:
            collapsed = e
            break
    best = finite((run.result or {}).get("best_epoch"))
    return Reading(len(epochs), low, over, rise if over else 0.0, collapsed, best and int(best))


def is_grid_key(key: str) -> bool:
    top = key.split(".", 1)[0]
    return top not in NOT_GRID and top not in BUDGET_FIELDS


def grid_fields(runs: list[Run]) -> list[str]:
    """Config fields whose value differs between runs: lr and dropout first, seed last.
    Fields that set a run's budget (training images, epochs, evaluation images) are not grid
    axes: runs of different budgets are reported apart."""
    keys = {k for r in runs for k in r.fields if is_grid_key(k)}
    varying = {k for k in keys if len({value_key(r.fields.get(k)) for r in runs}) > 1}
    first = [k for k in (LR, DROPOUT) if k in varying]
    last = [SEED] if SEED in varying else []
    return first + sorted(varying - {LR, DROPOUT, SEED}) + last


def table_fields(runs: list[Run]) -> list[str]:
    """The columns describing a combination: always lr and dropout (the user's grid), then
    every other field that varies."""
    return [LR, DROPOUT] + [f for f in grid_fields(runs) if f not in (LR, DROPOUT)]


def combo_fields(runs: list[Run]) -> list[str]:
    """table_fields without the seed: what a combination is."""
    return [f for f in table_fields(runs) if f != SEED]


def describe(run: Run, fields: list[str]) -> str:
    """`lr=0.005, dropout=0.3`: the run's values of the given fields (seed left out)."""
    parts = [f"{f}={fmt_value(run.fields.get(f))}" for f in fields if f != SEED]
    return ", ".join(p for p in parts if not p.endswith("=—")) or "default settings"


# ---------------------------------------------------------------- budgets
def budget_key(run: Run) -> tuple:
    """Runs with equal keys were trained on the same images for the same epochs and judged on
    the same validation and test images."""
    return tuple(value_key(run.config.get(f)) for f in BUDGET_FIELDS)


def _common(values: Iterable):
    counted = Counter(v for v in values if v is not None)
    return counted.most_common(1)[0][0] if counted else None


@dataclass(frozen=True)
class Budget:
    """What a group of runs was trained and judged on (numbers from their results)."""

    key: tuple
    dataset: str
    train_images: int | None  # images trained on per epoch
    train_total: int | None  # size of the training split (train_images < it: a subset)
    epochs: int | None  # planned epochs
    val_images: int | None
    test_images: int | None  # None: not recorded (then the full test set is assumed)
    eval_subset: bool  # validation and test judged on their first N images only

    @classmethod
    def of(cls, runs: list[Run]) -> Budget:
        ended = [r for r in runs if r.result] or runs
        subset = finite(runs[0].config.get("eval_subset"))
        return cls(
            key=budget_key(runs[0]),
            dataset=str(runs[0].config.get("dataset") or "mnist"),
            train_images=_common(r.train_images for r in ended),
            train_total=_common(r._count("train_size") for r in ended),
            epochs=_common(r.planned_epochs or (r.epochs_run or None) for r in runs),
            val_images=_common(r.val_images for r in ended),
            test_images=_common(r.test_images for r in ended),
            eval_subset=subset is not None,
        )

    @property
    def train_subset(self) -> bool:
        return (
            self.train_images is not None
            and self.train_total is not None
            and self.train_images < self.train_total
        )

    def size(self) -> tuple:
        """Bigger budgets first: training images x epochs, then test images."""
        work = (self.train_images or 0) * (self.epochs or 0)
        return (-work, -(self.test_images or 0), -(self.val_images or 0), self.key)


@dataclass(frozen=True)
class Best:
    """A model's best combination: its finished runs (repeats over seeds), best run first."""

    model: str
    runs: list[Run]
    budget: Budget | None = None
    # Other combinations of the same model and budget whose validation accuracy lies inside
    # this one's 95% interval: ties within noise (ranked, best first).
    ties: list[Best] = field(default_factory=list)

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

    def test_interval(self) -> tuple[float, float] | None:
        """Wilson for one run; the t interval of the mean over seeds for repeats."""
        if self.n == 1:
            return self.run.test_interval()
        return t_interval([r.metric("test_acc") for r in self.runs])

    def val_interval(self) -> tuple[float, float] | None:
        mean, n = self.mean("val_acc"), self.run.val_images
        return accuracy_interval(mean, n) if mean is not None and n else None

    @property
    def params(self) -> int | None:
        return self.run.params

    @property
    def seconds(self) -> float | None:
        return self.mean("total_seconds")


def rank_key(best: Best):
    """Highest mean validation accuracy; exact ties to fewer parameters, then less time."""
    return (
        -(best.mean("val_acc") or 0.0),
        best.params if best.params is not None else math.inf,
        best.seconds if best.seconds is not None else math.inf,
        best.run.run_id,
    )


def tie_break(winner: Best, other: Best) -> str:
    """Why `winner` ranks above `other`: 'val', 'params', 'time' or 'id'."""
    if winner.mean("val_acc") != other.mean("val_acc"):
        return "val"
    if winner.params != other.params:
        return "params"
    if winner.seconds != other.seconds:
        return "time"
    return "id"


def combinations(runs: list[Run], fields: list[str] | None = None) -> list[Best]:
    """Finished runs with a validation accuracy, grouped by (model, combination); ranked."""
    fields = [f for f in (fields if fields is not None else grid_fields(runs)) if f != SEED]
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.finished and run.metric("val_acc") is not None:
            key = (run.model, *(value_key(run.fields.get(f)) for f in fields))
            groups.setdefault(key, []).append(run)
    candidates = [
        Best(model=key[0], runs=sorted(g, key=lambda r: (-r.metric("val_acc"), r.run_id)))
        for key, g in groups.items()
    ]
    return sorted(candidates, key=rank_key)


def best_per_model(
    runs: list[Run], budget: Budget | None = None, fields: list[str] | None = None
) -> list[Best]:
    """Per model, the combination with the highest mean validation accuracy over its finished
    runs; ties go to fewer parameters, then less time. Sorted best first. Call it on runs of
    one budget (see analysis.analyse): across budgets the ranking would not be fair."""
    chosen: dict[str, Best] = {}
    others: dict[str, list[Best]] = {}
    for best in combinations(runs, fields):
        if best.model in chosen:
            others[best.model].append(best)
        else:
            chosen[best.model] = best
            others[best.model] = []
    result = []
    for model, best in chosen.items():
        interval = best.val_interval()
        ties = [o for o in others[model] if interval and o.mean("val_acc") >= interval[0] - 1e-12]
        result.append(dataclasses.replace(best, budget=budget, ties=ties))
    return sorted(result, key=rank_key)


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
    fit = stats.linregress(xs, ys)  # p: Pearson's r by Student's t, n - 2 degrees of freedom
    r = max(-1.0, min(1.0, float(fit.rvalue)))
    p = 0.0 if abs(r) >= 1.0 else float(fit.pvalue)
    return {"r": r, "p": p, "slope": fit.slope, "intercept": fit.intercept, "n": len(points)}
