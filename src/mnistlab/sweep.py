"""Sweeps: a TOML file expands into a grid of training configs, each run in its own ledger
folder; rerunning skips what is finished.

    [sweep]
    name = "quick"                 # the folder under runs/ (or set out_dir)
    [base]                         # TrainConfig settings shared by every run
    epochs = 2
    [grid]                         # every list is an axis; the runs are their product
                                   # ([[grid]] tables: several grids, runs pooled)
    model = ["lenet", "resnet18"]
    lr = [1e-3, 5e-4]
    [overrides.resnet18]           # settings for one model's runs only
    train_subset = 3000
"""

from __future__ import annotations

import itertools
import shutil
import sys
import traceback
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from . import ledger
from .config import ConfigError, TrainConfig, load_toml

SECTIONS = ("sweep", "base", "grid", "overrides")
SWEEP_KEYS = ("name", "out_dir", "description", "checkpoints")
DEFAULT_SWEEP = "quick"
# Runs whose result carries one of these are over; anything else is (re)started.
DONE_STATUSES = ("finished", "diverged")


@dataclass
class Run:
    run_id: str
    config: dict[str, Any]  # a resolved TrainConfig, as a dict

    @property
    def label(self) -> str:
        c = self.config
        return f"{c['model']} lr={c['lr']:g} dropout={c['dropout']:g} epochs={c['epochs']} seed={c['seed']}"


@dataclass
class Sweep:
    name: str
    out_dir: Path
    source: Path
    runs: list[Run]
    checkpoints: bool = True  # False: no checkpoint.pt per run (the seed grid's VGG is 0.5 GB)
    description: str = ""
    axes: dict[str, list] = field(default_factory=dict)


def bundled_config(name: str) -> Path:
    """The shipped sweep files (configs/*.toml) travel inside the package."""
    return Path(str(resources.files("mnistlab") / "configs" / f"{name}.toml"))


def resolve_sweep_path(path_or_name: str | None) -> Path:
    if path_or_name is None:
        return bundled_config(DEFAULT_SWEEP)
    path = Path(path_or_name)
    if path.exists() or path.suffix == ".toml":
        return path
    if bundled_config(path_or_name).is_file():  # `mnistlab sweep seed`
        return bundled_config(path_or_name)
    return path


def load_sweep(
    path_or_name: str | None = None, out_dir: str | None = None, settings: dict | None = None
) -> Sweep:
    """Read, expand and validate every run before any work starts: a typo in the 40th run
    fails now, not after hours of training. `settings` override every run's values (the
    CLI's --set), e.g. a smaller train_subset to rehearse a GPU sweep on a laptop."""
    path = resolve_sweep_path(path_or_name)
    spec = load_toml(path)
    unknown = sorted(set(spec) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}"
        )
    # A section written as a plain value (`base = 3`) would otherwise crash below with a
    # traceback instead of a one-line error.
    for section in ("sweep", "base", "overrides"):
        if not isinstance(spec.get(section, {}), dict):
            raise ConfigError(
                f"{path}: {section} must be a [{section}] table, got {spec[section]!r}"
            )
    meta = spec.get("sweep", {})
    bad = sorted(set(meta) - set(SWEEP_KEYS))
    if bad:
        raise ConfigError(
            f"{path}: unknown [sweep] key(s) {', '.join(bad)}; valid: {', '.join(SWEEP_KEYS)}"
        )
    base = spec.get("base", {})
    # [grid] is one grid; [[grid]] is several, whose runs are pooled (a big model can get a
    # smaller grid than a small one in the same sweep).
    grids = spec.get("grid", {})
    grids = grids if isinstance(grids, list) else [grids]
    if not all(isinstance(g, dict) for g in grids):
        raise ConfigError(f"{path}: grid must be a [grid] table or [[grid]] tables")
    overrides = spec.get("overrides", {})
    for model, table in overrides.items():
        if not isinstance(table, dict):
            raise ConfigError(
                f"{path}: [overrides.{model}] must be a table of settings, got {table!r}"
            )
    runs: dict[str, Run] = {}
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: [grid] {key} must be a non-empty list, got {values!r}")
        for combo in itertools.product(*grid.values()):
            values = {**base, **dict(zip(grid, combo, strict=True))}
            values.update(overrides.get(values.get("model", TrainConfig.model), {}))
            values.update(settings or {})
            try:
                config = TrainConfig.from_dict(values, source=str(path)).validate().to_dict()
            except ConfigError as exc:
                message = str(exc)
                raise ConfigError(
                    message if message.startswith(str(path)) else f"{path}: {message}"
                ) from None
            config["out_dir"] = None  # the ledger decides where a run lives
            run_id = ledger.run_id_for(config)
            runs.setdefault(run_id, Run(run_id, config))  # identical combinations run once
    for model in overrides:
        if model not in {r.config["model"] for r in runs.values()}:
            raise ConfigError(f"{path}: [overrides.{model}] names a model that is not in the grid")
    name = meta.get("name", path.stem)
    root = Path(out_dir or meta.get("out_dir") or Path("runs") / name)
    return Sweep(
        name=name,
        out_dir=root,
        source=path,
        runs=list(runs.values()),
        checkpoints=_boolean(meta.get("checkpoints", True), f"{path}: [sweep] checkpoints"),
        description=meta.get("description", ""),
        axes={k: v for g in grids for k, v in g.items()},
    )


def _boolean(value, what: str) -> bool:
    if not isinstance(value, bool):  # bool("no") is True: refuse strings outright
        raise ConfigError(f"{what} must be true or false, got {value!r}")
    return value


def run_dir(sweep: Sweep, run: Run) -> Path:
    return sweep.out_dir / "runs" / run.run_id


def statuses(sweep: Sweep) -> dict[str, str]:
    return {run.run_id: ledger.run_status(run_dir(sweep, run)) for run in sweep.runs}


def prepare(sweep: Sweep) -> list[Run]:
    """Create the sweep folder and manifest; return the runs that still need work."""
    sweep.out_dir.mkdir(parents=True, exist_ok=True)
    ledger.atomic_copy(sweep.source, sweep.out_dir / "sweep.toml")
    ledger.write_json(
        sweep.out_dir / ledger.MANIFEST,
        {
            "name": sweep.name,
            "run_ids": [r.run_id for r in sweep.runs],
            "description": sweep.description,
        },
    )
    todo = []
    for run in sweep.runs:
        folder = run_dir(sweep, run)
        if ledger.run_status(folder) in DONE_STATUSES:
            continue
        if (folder / ledger.RESULT).is_file():  # a failed attempt: start it afresh
            shutil.rmtree(folder)
        todo.append(run)
    return todo


def execute_run(
    config: dict[str, Any], folder: str, checkpoints: bool = True, dataset=None, log=print
) -> dict[str, Any]:
    """Train one run into its ledger folder; any exception becomes a "failed" result.

    Used by every backend: the local loop, worker processes and Ray tasks.
    """
    from .engine import train

    folder_path = Path(folder)
    cfg = TrainConfig.from_dict({**config, "out_dir": str(folder_path)})
    try:
        result = train(cfg, dataset, log=log, progress=log is print, save_checkpoint=checkpoints)
        if result.status == "interrupted":
            # train() swallows Ctrl-C to keep the history; the sweep must stop too, not go on
            # to the next run.
            raise KeyboardInterrupt
        return {"run_id": folder_path.name, "status": result.status}
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a crashed run must not stop the sweep
        error = f"{type(exc).__name__}: {exc}"
        record_failure(folder_path, config, error, traceback.format_exc())
        log(f"run {folder_path.name} failed: {error}")
        return {"run_id": folder_path.name, "status": "failed", "error": error}


def record_failure(folder: Path, config: dict, error: str, details: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ledger.write_json(folder / ledger.CONFIG, config | {"out_dir": str(folder)})
    (folder / ledger.ERROR).write_text(details or error)
    ledger.write_json(
        folder / ledger.RESULT,
        {
            "run_id": folder.name,
            "status": "failed",
            "error": error,
            "model": config["model"],
            "config": config,
            "best_epoch": None,
            "epochs_run": 0,
        },
    )


class SweepProgress:
    """Runs done/total and an ETA from the mean duration of the runs done in this session."""

    def __init__(self, total: int, already_done: int, stream=sys.stdout):
        self.total, self.done, self.stream = total, already_done, stream
        self.durations: list[float] = []

    def start(self, run: Run) -> None:
        remaining = self.total - self.done
        eta = ""
        if self.durations:
            seconds = sum(self.durations) / len(self.durations) * remaining
            eta = f", ETA {format_seconds(seconds)}"
        print(f"[{self.done + 1}/{self.total}{eta}] {run.label}", file=self.stream, flush=True)

    def finish(self, seconds: float) -> None:
        self.done += 1
        self.durations.append(seconds)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
