"""Sweeps: a TOML file (format: README, "Sweep files") expands into a grid of training
configs, each run in its own ledger folder; rerunning skips what is finished.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import ledger
from .config import ConfigError, TrainConfig, load_toml
from .data import load_dataset_cached
from .engine import Callback, check_runnable, train
from .errors import UserError
from .ledger import DONE_STATUSES, RunFolder
from .tracking import tracking_callbacks

SECTIONS = ("sweep", "base", "grid", "overrides")
SWEEP_KEYS = ("name", "out_dir", "description", "checkpoints")
DEFAULT_SWEEP = "quick"
# A sweep's name is a folder under runs/: one plain name, nothing that climbs out of it.
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class SweepRun:
    run_id: str
    config: TrainConfig  # validated; out_dir is left to the ledger
    label: str = ""  # the model and the settings that tell it from the sweep's other runs
    plan: dict[str, Any] = field(default_factory=dict)  # split sizes and MACs, from check_runs
    written: dict[str, Any] = field(default_factory=dict)  # [base] and [grid] values as written


@dataclass
class Sweep:
    name: str
    out_dir: Path
    source: Path
    runs: list[SweepRun]
    checkpoints: bool = True  # False: no checkpoint.pt per run (the seed grid's VGG is 0.5 GB)
    description: str = ""
    axes: dict[str, list] = field(default_factory=dict)
    overrides: dict[str, dict] = field(default_factory=dict)  # [overrides.<model>] tables
    settings: dict[str, Any] = field(default_factory=dict)  # --set: every run's values

    def folder(self, run: SweepRun, log=print) -> RunFolder:
        return RunFolder(self.out_dir / "runs" / run.run_id, log=log)


def bundled_config(name: str) -> Path:
    """The shipped sweep files (configs/*.toml) travel inside the package."""
    return Path(str(resources.files("mnistlab") / "configs" / f"{name}.toml"))


def shipped_sweeps() -> list[str]:
    """The names of the sweep files shipped in the package (quick, seed, best, ...)."""
    return sorted(p.stem for p in bundled_config(DEFAULT_SWEEP).parent.glob("*.toml"))


def resolve_sweep_path(path_or_name: str | None) -> Path:
    if path_or_name is None:
        return bundled_config(DEFAULT_SWEEP)
    path, shipped = Path(path_or_name), bundled_config(path_or_name)
    if not (path.exists() or path.suffix == ".toml") and shipped.is_file():  # `mnistlab sweep seed`
        return shipped
    return path


def load_sweep(
    path_or_name: str | None = None,
    out_dir: str | None = None,
    settings: dict | None = None,
    *,
    check: bool = True,
    check_device: bool = True,
    sections: tuple[str, ...] = (),
    more_models: tuple[str, ...] = (),
) -> Sweep:
    """Read, expand and validate every run before any work starts: a typo in the 40th run
    fails now, not after hours of training. `settings` override every run's values (the
    CLI's --set), e.g. a smaller train_subset to rehearse a GPU sweep on a laptop. With
    `check`, every run is also checked against its data and device (`engine.check_runnable`:
    split sizes, architecture options on the meta device, a GPU where one is asked for).

    `sections` names further tables a tool built on the sweep reads (a search's [search]):
    allowed here, not read; `more_models` are models that tool may run, which [overrides]
    may name besides the grid's."""
    path = resolve_sweep_path(path_or_name)
    meta, base, grids, overrides = _read_sections(path, sections)
    if settings and "out_dir" in settings:
        raise ConfigError("out_dir cannot be set per run: use --out to choose the sweep folder")
    runs = _expand(path, base, grids, overrides, settings or {})
    for model in overrides:
        if model not in {r.config.model for r in runs} | set(more_models):
            raise ConfigError(f"{path}: [overrides.{model}] names a model that is not in the grid")
    name = meta.get("name", path.stem)
    if not isinstance(name, str) or not SWEEP_NAME.fullmatch(name):  # so never "." or ".."
        raise ConfigError(
            f"{path}: [sweep] name must be a plain folder name (letters, digits, '.', '_', '-'), "
            f"got {name!r}"
        )
    label_runs(runs)
    if check:
        check_runs(path, runs, check_device)
    checkpoints = meta.get("checkpoints", True)
    if not isinstance(checkpoints, bool):  # bool("no") is True: refuse strings outright
        raise ConfigError(f"{path}: [sweep] checkpoints must be true or false, got {checkpoints!r}")
    return Sweep(
        name=name,
        out_dir=Path(out_dir or meta.get("out_dir") or Path("runs") / name),
        source=path,
        runs=runs,
        checkpoints=checkpoints,
        description=meta.get("description", ""),
        axes={k: v for g in grids for k, v in g.items()},
        overrides=overrides,
        settings=settings or {},
    )


def _read_sections(path: Path, extra_sections: tuple[str, ...] = ()):
    """The sweep file's sections, each checked for shape: (meta, base, grids, overrides).
    A section written as a plain value (`base = 3`) is one line, not a traceback."""
    spec = load_toml(path)
    _refuse_unknown(path, "section", spec, (*SECTIONS, *extra_sections))
    for section in ("sweep", "base", "overrides"):
        if not isinstance(spec.get(section, {}), dict):
            raise ConfigError(
                f"{path}: {section} must be a [{section}] table, got {spec[section]!r}"
            )
    meta = spec.get("sweep", {})
    _refuse_unknown(path, "[sweep] key", meta, SWEEP_KEYS)
    # [grid] is one grid; [[grid]] is several, whose runs are pooled (a big model can get a
    # smaller grid than a small one in the same sweep).
    grids = spec.get("grid", {})
    grids = grids if isinstance(grids, list) else [grids]
    if not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"{path}: grid must be a [grid] table or [[grid]] tables")
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: [grid] {key} must be a non-empty list, got {values!r}")
    overrides = spec.get("overrides", {})
    for model, table in overrides.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: [overrides.{model}] must be a table of settings, got {table!r}"
            )
    return meta, spec.get("base", {}), grids, overrides


def _refuse_unknown(path: Path, what: str, given, valid: Sequence[str]) -> None:
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ConfigError(
            f"{path}: unknown {what}(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )


def _expand(path: Path, base, grids, overrides, settings) -> list[SweepRun]:
    """Every grid combination as a validated run; identical ones once, as first written."""
    runs: dict[str, SweepRun] = {}
    for grid in grids:
        for combo in itertools.product(*grid.values()):
            written = {**base, **dict(zip(grid, combo, strict=True))}
            values = written | overrides.get(written.get("model", TrainConfig.model), {})
            values |= settings | {"out_dir": None}  # the ledger decides where a run lives
            try:
                config = TrainConfig.from_dict(values, source=str(path))  # validated
            except ConfigError as exc:
                message = str(exc)
                raise ConfigError(
                    message if message.startswith(str(path)) else f"{path}: {message}"
                ) from None
            run_id = ledger.run_id_for(config)
            runs.setdefault(run_id, SweepRun(run_id, config, written=written))
    return list(runs.values())


def label_runs(runs: list[SweepRun]) -> None:
    """Label each run by its model and the settings that tell it from the same model's other
    runs: unique within the sweep, and short (`ledger.run_labels`)."""
    labels = ledger.run_labels({run.run_id: run.config for run in runs})
    for run in runs:
        run.label = labels[run.run_id]


def check_runs(path: Path, runs: list[SweepRun], check_device: bool = True) -> None:
    """Every run checked against its data and device before the first one trains."""
    for run in runs:
        config = run.config
        try:
            dataset = load_dataset_cached(config.dataset, config.data_dir)
            run.plan = check_runnable(config, dataset, check_device)
        except UserError as exc:
            raise ConfigError(f"{path}: run {run.label}: {exc}") from None


def statuses(sweep: Sweep) -> dict[str, str]:
    return {run.run_id: sweep.folder(run).status() for run in sweep.runs}


def prepare(sweep: Sweep) -> list[SweepRun]:
    """Create the sweep folder and manifest; return the runs that still need work."""
    ledger.make_dirs(sweep.out_dir)
    ledger.atomic_copy(sweep.source, sweep.out_dir / "sweep.toml")
    ledger.write_json(
        sweep.out_dir / ledger.MANIFEST,
        {
            "name": sweep.name,
            "run_ids": [r.run_id for r in sweep.runs],
            "description": sweep.description,
        },
    )
    return pending_runs(sweep)


def pending_runs(sweep: Sweep) -> list[SweepRun]:
    """The runs that still need work (none ended yet), read without creating anything."""
    return [run for run in sweep.runs if not sweep.folder(run).is_done()]


# How often a process waiting on runs that others hold looks at their claims again.
CLAIM_POLL_SECONDS = 2.0


def wait_for_claims(sweep: Sweep, runs: list[SweepRun]) -> list[SweepRun]:
    """Wait until some of `runs` (runs other processes held) are held no more; return those.
    A run is held while its claimer lives (`RunFolder.claim_alive`): a run whose claimer died
    comes back at the next look, for this process to take over."""
    while True:
        free = [run for run in runs if not sweep.folder(run).claim_alive()]
        if free or not runs:
            return free
        time.sleep(CLAIM_POLL_SECONDS)


def execute_run(
    config: TrainConfig,
    folder: RunFolder,
    *,
    checkpoints: bool = True,
    dataset=None,
    log=print,
    progress: bool = False,
    callbacks: Sequence[Callback] = (),
    force: bool = False,
) -> dict[str, Any]:
    """Run one config to a recorded result: the one path of every backend (this process,
    worker processes, Ray tasks) and of `mnistlab train`. Claims the folder first, so
    processes sharing a sweep folder divide its runs; any exception becomes a "failed" record
    and the sweep goes on. `force` retrains a run that has ended.

    Returns {"run_id", "status", ...}: status "claimed" (another live process holds the run)
    or "skipped" (ended already) when nothing was trained; "error" and "permanent" (an error
    that retrying cannot mend, e.g. a bad config) when the run failed.
    """
    folder.check_same_run(config)  # before the claim: a folder of another run is not touched
    outcome: dict[str, Any] = {"run_id": folder.run_id}
    if not folder.claim():
        return outcome | {"status": "claimed", "holder": folder.claimed_by()}
    try:
        status = folder.status()
        if status in DONE_STATUSES and not force:
            return outcome | {"status": "skipped"}
        if status in (*DONE_STATUSES, "failed"):
            folder.reset()  # only the run's own files: the folder may hold other things too
        config = dataclasses.replace(config, out_dir=str(folder.path))
        result = train(
            config,
            dataset,
            log=log,
            progress=progress,
            save_checkpoint=checkpoints,
            folder=folder,
            callbacks=[*callbacks, *tracking_callbacks(config)],
        )
        if result.status == "interrupted":
            # train() swallows Ctrl-C to keep the history; the sweep must stop too.
            raise KeyboardInterrupt
        return outcome | {
            "status": result.status,
            "seconds": result.total_seconds,
            "train_seconds": result.train_seconds,
            "error": result.error,
        }
    except Exception as exc:  # a crashed run must not stop the sweep (Ctrl-C is no Exception)
        permanent = isinstance(exc, UserError)
        error = f"{type(exc).__name__}: {exc}" if not permanent else str(exc)
        folder.fail(config, error, traceback.format_exc())
        log(f"run {folder.run_id} failed: {error}")
        return outcome | {"status": "failed", "error": error, "permanent": permanent}
    finally:
        folder.release()


# An evaluated image costs about half a trained one (a forward pass, no backward or optimiser
# step; measured on the 2-core dev CPU, ResNet-18 to LeNet).
EVAL_COST = 0.5


@dataclass
class RunCost:
    """What a run's duration scales with: its model, MACs per image and images processed."""

    model: str
    macs: int
    images: float  # training images x epochs, plus evaluated images at EVAL_COST each

    @classmethod
    def of(cls, run: SweepRun) -> RunCost:
        c, plan = run.config, run.plan
        per_epoch = plan.get("val_used", 0) + plan.get("train_eval_used", 0)
        evaluated = per_epoch * c.epochs + plan.get("test_used", 0)
        return cls(
            c.model,
            plan.get("macs", 0),
            plan.get("train_used", 0) * c.epochs + evaluated * EVAL_COST,
        )


class EtaEstimator:
    """The time left, from the work left: each remaining run's images at the seconds per image
    its model showed in this sweep. A model not seen yet is priced from the seen ones by its
    MACs per image: interpolated (log-log) between the seen models around it, or, outside
    their range, from the nearest one by a power law of slope 0.6. That slope is LeNet's
    0.4M MACs (~9,000 img/s) to AlexNet's 222M (~150 img/s) on the 2-core dev CPU; slopes
    fitted among big models alone are steeper and price small models far too low."""

    DEFAULT_SLOPE = 0.6

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.images: dict[str, float] = {}
        self.macs: dict[str, int] = {}

    def observe(self, cost: RunCost, seconds: float) -> None:
        self.seconds[cost.model] = self.seconds.get(cost.model, 0.0) + seconds
        self.images[cost.model] = self.images.get(cost.model, 0.0) + max(cost.images, 1.0)
        self.macs[cost.model] = cost.macs

    def per_image(self, cost: RunCost) -> float | None:
        if cost.model in self.seconds:
            return self.seconds[cost.model] / self.images[cost.model]
        points = sorted(
            (math.log(max(self.macs[m], 1)), math.log(self.seconds[m] / self.images[m]))
            for m in self.seconds
        )
        if not points:
            return None
        x = math.log(max(cost.macs, 1))
        below = [p for p in points if p[0] <= x]
        above = [p for p in points if p[0] >= x]
        if below and above and above[0][0] > below[-1][0]:
            (x0, y0), (x1, y1) = below[-1], above[0]
            return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
        near_x, near_y = min(points, key=lambda p: abs(p[0] - x))
        return math.exp(near_y + self.DEFAULT_SLOPE * (x - near_x))

    def estimate(self, costs: list[RunCost]) -> float | None:
        if not self.seconds:  # nothing seen: no guess
            return None
        return sum(self.per_image(cost) * cost.images for cost in costs)


class SweepProgress:
    """Runs done/total, one line per run, and an ETA from the work left (EtaEstimator)."""

    def __init__(self, sweep: Sweep, todo: list[SweepRun], parallel: int = 1, log=print):
        self.total, self.done = len(sweep.runs), len(sweep.runs) - len(todo)
        self.left = {run.run_id: RunCost.of(run) for run in todo}
        self.parallel, self.log = max(parallel, 1), log
        self.eta = EtaEstimator()

    def _eta(self) -> str:
        seconds = self.eta.estimate(list(self.left.values()))
        if seconds is None or not self.left:
            return ""
        return f", ETA {tqdm.format_interval(seconds / self.parallel)}"

    def start(self, run: SweepRun) -> None:
        self.log(f"[{self.done + 1}/{self.total}{self._eta()}] {run.label}")

    def finish(self, run: SweepRun, outcome: dict, announce: bool = False) -> None:
        cost = self.left.pop(run.run_id, None)
        if outcome["status"] != "claimed":  # a claimed run is another process's to finish
            self.done += 1
        if cost is not None and outcome.get("seconds"):
            self.eta.observe(cost, outcome["seconds"])
        if announce:
            line = f"[{self.done}/{self.total}{self._eta()}] {run.label}: {outcome['status']}"
            if outcome.get("seconds"):
                line += f" ({tqdm.format_interval(outcome['seconds'])}{outcome.get('where', '')})"
            if outcome.get("holder"):
                line += f" (by {outcome['holder']})"
            if outcome.get("error") and outcome["status"] == "failed":
                line += f"\n    {outcome['error']}"
            self.log(line)
