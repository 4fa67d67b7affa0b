"""Search: sampled configs instead of (or on top of) a full grid, with bad trials stopped
early, using Optuna. A sweep file's [search] table; its keys, the space's format and what a
search does are in docs/tracking-and-search.md ("Search with pruning").

Every trial is a normal ledger run: the sampled settings make a TrainConfig, its run id and
its folder, trained by `sweep.execute_run` like every other run; `PrunerCallback` may stop it
as "pruned". So `--status`, the report and MLflow see ordinary runs. The study lives beside
the ledger (SWEEP_DIR/search.db), one per grid combination, named by the run id of the
combination's base settings: change them (or --set) and a new study starts.

Why Optuna and not Ray Tune: the ledger already records, resumes and reports runs; Optuna's
ask/tell interface needs nothing else from us (no trainable wrapper, no second results
folder), and its samplers and pruners run in this process with a SQLite file as memory.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from . import ledger
from .config import FIELD_TYPES, IDENTITY_FIELDS, ConfigError, TrainConfig, load_toml, suggest
from .data import load_dataset_cached
from .engine import Callback, Stop, check_runnable
from .errors import UserError
from .fileio import sqlite_tables
from .sweep import (
    CLAIM_POLL_SECONDS,
    Sweep,
    SweepRun,
    execute_run,
    label_runs,
    load_sweep,
    prepare,
    resolve_sweep_path,
    wait_for_claims,
)
from .tracking import link_tensorboard

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "asha", "none")
STUDY_FILE = "search.db"
SEARCH_LOCK = ".search.lock"  # processes searching one folder ask for trials in turn
# The tables every Optuna RDB storage has: a non-empty SQLite file without them is not a study.
OPTUNA_TABLES = {"studies", "trials", "version_info"}
MAX_TRIALS = 10_000
# Consecutive trials that fail with an error before the search gives up (a config that
# cannot train fails every time; a flaky machine does not).
MAX_FAILURES_IN_A_ROW = 3


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (floats or ints, optionally log-uniform) or choices."""

    name: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple | None = None

    def suggest(self, trial):
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.name, self.low, self.high, log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def corners(self) -> list:
        """Values that every sample lies between or among: what validation checks."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def describe(self) -> str:
        if self.choices is not None:
            return f"{self.name} in {list(self.choices)}"
        return f"{self.name} in [{self.low:g}, {self.high:g}]" + (" (log)" if self.log else "")


@dataclass
class SearchSpec:
    space: dict[str, Dimension]
    trials: int
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    startup_trials: int = 5
    min_epochs: int = 1
    reduction_factor: int = 3


SEARCH_KEYS = tuple(f.name for f in fields(SearchSpec))


@dataclass
class SearchPoint:
    """One grid combination searched over: its own study, its runs' shared settings."""

    values: dict[str, Any]  # base and grid settings as written, before defaults
    config: TrainConfig  # those settings validated (searched ones at their defaults)
    study: str = ""  # the study's name in search.db: the run id of `config`
    label: str = ""  # the grid settings that tell it from the other points


@dataclass
class SearchPlan:
    spec: SearchSpec
    points: list[SearchPoint]
    overrides: dict[str, dict]
    settings: dict[str, Any]
    source: str

    def config_for(self, point: SearchPoint, params: dict[str, Any]) -> TrainConfig:
        """The trial's config: base and grid settings, then the sampled ones, then the
        model's [overrides] and --set (neither may name a searched setting)."""
        values = {**point.values, **params}
        values.update(self.overrides.get(values.get("model", TrainConfig.model), {}))
        values.update(self.settings)
        values["out_dir"] = None
        return TrainConfig.from_dict(values, source=self.source)


@dataclass
class Search:
    """A sweep file with [search]: each grid combination of `sweep` is the base of one study,
    and the sweep's runs are the trials, added as the search goes."""

    sweep: Sweep
    plan: SearchPlan


def load_search(
    path_or_name: str | None = None,
    out_dir: str | None = None,
    settings: dict | None = None,
    *,
    check: bool = True,
    check_device: bool = True,
) -> Search:
    """A search sweep file, read and checked like any sweep (see `sweep.load_sweep`), its
    [search] table and every range end and choice of its space checked up front."""
    path = resolve_sweep_path(path_or_name)
    spec = parse_search(load_toml(path).get("search"), str(path))
    searched = spec.space["model"].choices if "model" in spec.space else None
    sweep = load_sweep(
        path,
        out_dir,
        settings,
        check=check,
        check_device=check_device,
        sections=("search",),
        more_models=searched or (),
    )
    plan = plan_search(spec, sweep, check, check_device)
    sweep.runs = []  # the combinations are the searches' bases, not runs: the runs are the trials
    return Search(sweep, plan)


# ---------------------------------------------------------------- reading the [search] table
def parse_search(table: Any, source: str) -> SearchSpec:
    """The [search] table, checked: one-line errors naming the key and the sweep file."""
    where = f"{source}: [search]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    unknown = sorted(set(table) - set(SEARCH_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(SEARCH_KEYS)}"
        )
    space_table = table.get("space")
    if not isinstance(space_table, dict) or not space_table:
        raise ConfigError(
            f"{where} needs a [search.space] table with at least one setting, e.g. "
            "lr = {low = 1e-4, high = 1e-2, log = true}"
        )
    space = {name: _dimension(name, spec, where) for name, spec in space_table.items()}

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(
                f"{where} {key} must be a whole number in [{low}, {high}], got {value!r}"
            )
        return value

    def choice(key: str, default: str, valid: tuple[str, ...]) -> str:
        value = table.get(key, default)
        if value not in valid:
            raise ConfigError(f"{where} {key} must be one of {', '.join(valid)}, got {value!r}")
        return value

    sampler = choice("sampler", "tpe", SAMPLERS)
    combinations = math.prod(len(d.choices or ()) for d in space.values())
    if sampler == "grid":
        ranges = [d.name for d in space.values() if d.choices is None]
        if ranges:
            raise ConfigError(
                f"{where}: the grid sampler needs choices for every setting; "
                f"{', '.join(ranges)} {'is a range' if len(ranges) == 1 else 'are ranges'}"
            )
    elif "trials" not in table:
        raise ConfigError(f"{where} needs trials = N (how many trials to end)")
    trials = integer("trials", combinations if sampler == "grid" else 0, 1, MAX_TRIALS)
    if sampler == "grid" and trials > combinations:
        raise ConfigError(
            f"{where}: trials = {trials} but the grid has only {combinations} combination(s)"
        )
    return SearchSpec(
        space=space,
        trials=trials,
        sampler=sampler,
        pruner=choice("pruner", "median", PRUNERS),
        seed=integer("seed", 0, 0, 2**32 - 1),
        startup_trials=integer("startup_trials", 5, 0, MAX_TRIALS),
        min_epochs=integer("min_epochs", 1, 1, 10_000),
        reduction_factor=integer("reduction_factor", 3, 2, 100),
    )


def _dimension(name: str, spec: Any, where: str) -> Dimension:
    what = f"{where} space.{name}"
    if name not in FIELD_TYPES:
        close = suggest(name, FIELD_TYPES)
        raise ConfigError(f"{what}: not a setting" + (f"; did you mean {close}?" if close else ""))
    if name not in IDENTITY_FIELDS:
        raise ConfigError(f"{what}: does not change what a run computes, so it cannot be searched")
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{what} must be a table: {{low = ..., high = ..., log = true}} or {{choices = [...]}}"
            f", got {spec!r}"
        )
    if "choices" in spec:
        extra = sorted(set(spec) - {"choices"})
        choices = spec["choices"]
        if extra:
            raise ConfigError(f"{what}: choices cannot be combined with {', '.join(extra)}")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{what}: choices must be a non-empty list, got {choices!r}")
        if not all(c is None or isinstance(c, bool | int | float | str) for c in choices):
            raise ConfigError(f"{what}: choices must be numbers, strings or booleans")
        return Dimension(name, choices=tuple(choices))
    extra = sorted(set(spec) - {"low", "high", "log"})
    if extra:
        raise ConfigError(
            f"{what}: unknown key(s) {', '.join(extra)}; valid: low, high, log, choices"
        )
    low, high, log = spec.get("low"), spec.get("high"), spec.get("log", False)
    numbers = all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        for v in (low, high)
    )
    if not numbers:
        raise ConfigError(f"{what} needs low and high numbers, got low={low!r} high={high!r}")
    if not low < high:
        raise ConfigError(f"{what}: low must be below high, got low={low!r} high={high!r}")
    if not isinstance(log, bool):
        raise ConfigError(f"{what}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise ConfigError(f"{what}: a log range needs low > 0, got {low!r}")
    if FIELD_TYPES[name] in (int, int | None) and not (
        isinstance(low, int) and isinstance(high, int)
    ):
        raise ConfigError(f"{what}: {name} is a whole number, so low and high must be too")
    return Dimension(name, low=low, high=high, log=log)


def plan_search(spec: SearchSpec, sweep: Sweep, check: bool, check_device: bool) -> SearchPlan:
    """Check the space against every grid combination of `sweep` and build the plan: a searched
    setting that is also a grid axis, set by [overrides] or by --set is refused (one of them
    would silently lose), and each range's ends and each choice must make a valid config.
    With `check`, those configs are also checked against their data and device as a grid's
    runs are (`sweep.check_runs`): a value that cannot run (an eval_subset too small to split,
    fp16 on a CPU, a missing data_dir) fails now, not when it is sampled after other trials
    trained."""
    overrides, settings, source = sweep.overrides, sweep.settings, str(sweep.source)
    both = sorted(set(sweep.axes) & set(spec.space))
    if both:
        raise ConfigError(
            f"{source}: {', '.join(both)} is both a [grid] axis and searched in "
            "[search.space]; keep one"
        )
    for model, table in overrides.items():
        both = sorted(set(table) & set(spec.space))
        if both:
            raise ConfigError(
                f"{source}: [overrides.{model}] sets {', '.join(both)}, which [search.space] "
                "searches; remove one of them"
            )
    both = sorted(set(settings) & set(spec.space))
    if both:
        raise ConfigError(
            f"{source}: --set {', '.join(both)}: the sweep's [search.space] searches "
            f"{'it' if len(both) == 1 else 'them'}"
        )
    points = [SearchPoint(run.written, run.config, run.run_id, run.label) for run in sweep.runs]
    plan = SearchPlan(spec, points, overrides, settings, source)
    corners = []  # (point, setting, value, config) for each range end and choice
    for point in points:
        for dim in spec.space.values():
            for value in dim.corners():
                try:
                    config = plan.config_for(point, {dim.name: value})
                except ConfigError as exc:
                    raise ConfigError(
                        f"{source}: [search] space.{dim.name} = {value!r}: "
                        f"{str(exc).removeprefix(source + ': ')}"
                    ) from None
                corners.append((point, dim.name, value, config))
    if not check:
        return plan
    for point, name, value, config in corners:
        try:
            dataset = load_dataset_cached(config.dataset, config.data_dir)
            check_runnable(config, dataset, check_device)
        except UserError as exc:
            where = f" ({point.label})" if len(points) > 1 and point.label else ""
            raise ConfigError(
                f"{source}: [search] space.{name} = {value!r}{where}: {exc}"
            ) from None
    return plan


# ---------------------------------------------------------------- running a search
def check_study_file(sweep_dir: str | os.PathLike) -> None:
    """SWEEP_DIR/search.db, if there is one, must be a search's study (or empty): a file of
    someone else's is never written into, and a damaged one is one line, not a traceback."""
    path = Path(sweep_dir) / STUDY_FILE
    if not os.path.lexists(path):
        return
    tables = sqlite_tables(
        path, str(path), "a search's study", hint="move it aside or choose another --out"
    )
    if tables and OPTUNA_TABLES - tables:
        raise UserError(
            f"{path}: an SQLite database that is not a search's study; "
            "move it aside or choose another --out"
        )


def storage_url(sweep_dir: str | os.PathLike) -> str:
    return f"sqlite:///{(Path(sweep_dir) / STUDY_FILE).resolve()}"


def make_sampler(optuna, spec: SearchSpec, trials_so_far: int):
    # A sampler's random state does not survive a restart: seed it by the trials so far, so a
    # resumed random search does not draw the first trials' settings again.
    seed = (spec.seed + trials_so_far) % 2**32
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.sampler == "grid":
        # Seeded by spec.seed alone: the order is fixed, and the sampler skips the
        # combinations that earlier trials (before a restart too) already took.
        space = {d.name: list(d.choices) for d in spec.space.values()}

        class GridSampler(optuna.samplers.GridSampler):
            """Optuna's grid sampler, without its study.stop() when the grid runs out: that
            only works inside study.optimize(), and our ask/tell loop counts the trials."""

            def after_trial(self, study, trial, state, values) -> None:
                pass

        return GridSampler(space, seed=spec.seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(spec.startup_trials, 1))


def make_pruner(optuna, spec: SearchSpec):
    if spec.pruner == "median":
        # n_warmup_steps: steps are epochs (1-based) and the pruner skips step < warmup.
        return optuna.pruners.MedianPruner(
            n_startup_trials=spec.startup_trials, n_warmup_steps=spec.min_epochs
        )
    if spec.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=spec.min_epochs, reduction_factor=spec.reduction_factor
        )
    return optuna.pruners.NopPruner()


def open_study(optuna, search: Search, point: SearchPoint):
    storage = optuna.storages.RDBStorage(
        storage_url(search.sweep.out_dir),
        # Several processes may read the file (a --status, a report): wait for the lock.
        engine_kwargs={"connect_args": {"timeout": 60}},
    )
    spec = search.plan.spec
    study = optuna.create_study(
        storage=storage,
        study_name=point.study,
        direction="maximize",
        pruner=make_pruner(optuna, spec),
        load_if_exists=True,
    )
    if not study.user_attrs.get("space"):
        study.set_user_attr("space", [d.describe() for d in spec.space.values()])
        study.set_user_attr("base", point.label or point.config.model)
    return study


def recover(optuna, study, log) -> int:
    """Trials left RUNNING by a search process that died: mark them failed and queue their
    settings again, so the next trial retrains (and the ledger resumes) the same run. A trial
    another live process is running is left to it."""
    state = optuna.trial.TrialState
    stale = [
        t for t in study.get_trials(deepcopy=False, states=(state.RUNNING,)) if not _owner_alive(t)
    ]
    for trial in stale:
        study.tell(trial.number, state=state.FAIL, skip_if_finished=True)
        study.enqueue_trial(trial.params, user_attrs={"resumes_trial": trial.number})
    if stale:
        log(f"search: {len(stale)} trial(s) cut short earlier will be run again")
    return len(stale)


# The run_search calls running in this process (by a token each): a trial this process asked
# for is running only while the call that asked for it does.
_SEARCHING: set[str] = set()


def _owner_alive(trial) -> bool:
    """Whether the process that asked for a RUNNING trial still runs it: judged by host, pid
    and start time on this machine (as the ledger judges claims); from another machine, by
    its run's claim heartbeat (or the trial's youth, before its run is claimed). A trial of
    this very process runs only while the `run_search` call that asked for it does."""
    owner = trial.user_attrs.get("owner")
    if not isinstance(owner, dict):
        return False  # asked before trials recorded their owner
    me = ledger.process_identity()
    if owner.get("host") == me["host"]:
        if owner.get("pid") == me["pid"] and owner.get("pid_start") == me["pid_start"]:
            return owner.get("search") in _SEARCHING  # another thread's search, or none
        return ledger.process_alive(owner)
    folder = owner.get("run_dir")
    if isinstance(folder, str) and ledger.RunFolder(folder).claim_alive():
        return True
    started = trial.datetime_start
    return (
        started is not None
        and (datetime.now() - started).total_seconds() < ledger.CLAIM_STALE_SECONDS
    )


def record_trials(search: Search, studies: list, log) -> dict[str, SweepRun]:
    """Write the sweep's manifest (what --status, the report and MLflow read) from every
    study's trials: called under the search lock, it holds the trials of every process on
    the folder, not only this one's. Returns run id -> run, one per distinct config, in trial
    order."""
    sweep = search.sweep
    known: dict[str, SweepRun] = {}
    for point, study in studies:
        for trial in study.get_trials(deepcopy=False):
            if trial.params:
                config = search.plan.config_for(point, trial.params)
                run_id = ledger.run_id_for(config)
                known.setdefault(run_id, SweepRun(run_id, config))
    sweep.runs = list(known.values())
    label_runs(sweep.runs)
    prepare(sweep)
    if any(r.config.tensorboard for r in sweep.runs):
        link_tensorboard(sweep.out_dir, {r.run_id: r.label for r in sweep.runs}, log=log)
    return known


def run_search(search: Search, *, log=print, progress: bool = False) -> list[dict]:
    """Run the search until every grid combination has `trials` ended trials (finished,
    pruned or diverged); returns one outcome per trial trained now (see `execute_run`).
    Trials run one after the other in this process. Several processes may search one
    folder: they take turns (a file lock) to ask for trials, count the trials the others are
    running, and wait for those rather than start more than `trials`."""
    try:
        import optuna
    except ImportError:
        raise UserError(
            "a [search] needs the optuna extra: pip install 'mnistlab[optuna]'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we say what happens, in our words
    ledger.make_dirs(search.sweep.out_dir)
    check_study_file(search.sweep.out_dir)
    lock = FileLock(search.sweep.out_dir / SEARCH_LOCK)
    token = uuid.uuid4().hex
    _SEARCHING.add(token)
    try:
        return _search_trials(optuna, search, lock, token, log, progress)
    finally:
        _SEARCHING.discard(token)


def _search_trials(optuna, search: Search, lock, token: str, log, progress: bool) -> list[dict]:
    state = optuna.trial.TrialState
    sweep, spec = search.sweep, search.plan.spec
    with lock:
        try:
            studies = [(point, open_study(optuna, search, point)) for point in search.plan.points]
        except Exception as exc:  # a store Optuna cannot use: one line, before any training
            raise UserError(
                f"{sweep.out_dir / STUDY_FILE}: cannot open the search's study: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        for _, study in studies:
            recover(optuna, study, log)
        record_trials(search, studies, log)
    outcomes: list[dict] = []
    for point, study in studies:
        where = f" ({point.label})" if len(studies) > 1 and point.label else ""
        failures, waited = 0, False
        while True:
            trial = None
            with lock:
                recover(optuna, study, log)
                done = len(study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED)))
                others = len(study.get_trials(deepcopy=False, states=(state.RUNNING,)))
                if done >= spec.trials:
                    break
                if done + others < spec.trials:
                    # Seeded by the trials so far, each time: a peer that opened the study
                    # when this process did must not draw the same settings.
                    trials_so_far = len(study.get_trials(deepcopy=False))
                    study.sampler = make_sampler(optuna, spec, trials_so_far)
                    trial = study.ask()
                    params = {dim.name: dim.suggest(trial) for dim in spec.space.values()}
                    config = search.plan.config_for(point, params)
                    run_id = ledger.run_id_for(config)
                    trial.set_user_attr("run_id", run_id)
                    run = record_trials(search, studies, log)[run_id]
                    owner = ledger.process_identity() | {"search": token}
                    trial.set_user_attr("owner", owner | {"run_dir": str(sweep.folder(run).path)})
            if trial is None:  # the trials left are running in other processes
                if not waited:
                    log(f"search: waiting for {others} trial(s) other processes are running")
                waited = True
                time.sleep(CLAIM_POLL_SECONDS)
                continue
            waited = False
            log(f"[trial {done + others + 1}/{spec.trials}{where}] {trial_label(config, params)}")
            folder = sweep.folder(run, log=log)
            while True:
                outcome = execute_run(
                    run.config,
                    folder,
                    checkpoints=sweep.checkpoints,
                    log=log,
                    progress=progress,
                    callbacks=[PrunerCallback(trial, run.config.epochs)],
                )
                if outcome["status"] != "claimed":
                    break
                # A peer drew the same settings and trains them: its result is this trial's
                # (or, if it dies, the run is ours). Asking again now would draw them again.
                log(f"  (trained by {outcome.get('holder')}; waiting for it)")
                wait_for_claims(sweep, [run])
            outcomes.append(outcome)
            result = folder.read_result() or {}
            status = result.get("status")
            if status == "pruned":
                study.tell(trial, state=state.PRUNED, skip_if_finished=True)
            elif status in ("finished", "diverged"):
                # A diverged run is a real outcome (too high a learning rate): the sampler
                # should learn from it, so it ends with its best accuracy (or 0).
                study.tell(trial, result.get("val_acc") or 0.0, skip_if_finished=True)
            else:  # failed: not counted
                study.tell(trial, state=state.FAIL, skip_if_finished=True)
            failures = failures + 1 if outcome["status"] == "failed" else 0
            if outcome.get("permanent") or failures >= MAX_FAILURES_IN_A_ROW:
                raise UserError(
                    f"search stopped: trial run {run.run_id} failed: {outcome.get('error')}"
                )
            log(f"  -> {_describe(status, result, outcome)}")
    return outcomes


def trial_label(config: TrainConfig, params: dict[str, Any]) -> str:
    """The model and the sampled settings: "lenet lr=0.00123 dropout=0.4"."""
    parts = [config.model]
    for key, value in params.items():
        if key != "model":
            parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)


class PrunerCallback(Callback):
    """Reports each epoch's validation accuracy to the trial and stops the run as "pruned"
    when the pruner says so. Never at the last epoch: there is nothing left to save, and the
    run is a finished one."""

    def __init__(self, trial, epochs: int):
        self.trial, self.epochs = trial, epochs

    def on_epoch_end(self, row, state) -> Stop | None:
        if row.get("val_acc") is None:
            return None
        self.trial.report(row["val_acc"], row["epoch"])
        if row["epoch"] < self.epochs and self.trial.should_prune():
            return Stop(
                f"stopped after epoch {row['epoch']} of {self.epochs} by the pruner", "pruned"
            )
        return None


def _describe(status: str | None, result: dict, outcome: dict) -> str:
    if status in ("finished", "diverged", "pruned"):
        acc = result.get("val_acc")
        text = f"{status} after {result.get('epochs_run')} epoch(s)"
        text += f", best val acc {acc:.4f}" if acc is not None else ""
        return text + (" (trained before, not again)" if outcome["status"] == "skipped" else "")
    return f"failed: {outcome.get('error')}; not counted"


def search_summary(sweep_dir: str | os.PathLike) -> dict[str, Any]:
    """What a search cost and found, from the ledger: trials by status, epochs trained, and
    the best validation accuracy (what the search chooses by) with its run."""
    records = ledger.read_runs(sweep_dir, log=lambda *_: None)
    ended_runs = [r for r in records if r["result"] and r["status"] in ledger.DONE_STATUSES]
    best = max(
        (r for r in ended_runs if r["result"].get("val_acc") is not None),
        key=lambda r: r["result"]["val_acc"],
        default=None,
    )
    return {
        "runs": len(records),
        **{s: sum(r["status"] == s for r in records) for s in ("finished", "pruned", "diverged")},
        "epochs_trained": sum(len(r["history"]) for r in records),
        "epochs_if_unpruned": sum(r["config"]["epochs"] for r in records),
        "best_val_acc": best["result"]["val_acc"] if best else None,
        "best_test_acc": best["result"].get("test_acc") if best else None,
        "best_run": best["run_id"] if best else None,
        "train_seconds": sum(r["result"].get("train_seconds") or 0 for r in ended_runs),
    }
