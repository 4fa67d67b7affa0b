"""Run an experiment: a sweep file's grid or search, on a backend, with the tracking asked
for, then its summary and its report. The one function the CLI and the Python API call.

    run_experiment("quick")                  the default tour: train what is left, then report
    run_experiment("seed", backend="ray", ray={"gpus_per_run": 0.25}, mlflow="")
    load_experiment("quick") -> Sweep | Search    read and checked, nothing written
    status_lines(experiment)                 each run's status and the count done (--status)
    summary_lines(experiment)                each model's best run with its test interval
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from . import ledger
from .backends.local import run_local
from .backends.ray import ray_cluster
from .config import load_toml
from .errors import UserError
from .report import build_report
from .report.stats import accuracy_interval
from .search import Search, check_study_file, load_search, run_search, search_summary
from .sweep import Sweep, load_sweep, pending_runs, prepare, resolve_sweep_path, wait_for_claims
from .tracking import (
    TENSORBOARD_VIEW,
    MlflowLogger,
    MlflowSync,
    check_store,
    link_tensorboard,
    resolve_tracking_uri,
)

BACKENDS = ("local", "ray")


@dataclass
class ExperimentResult:
    """What `run_experiment` did: one outcome per run it tried (see `sweep.execute_run`)."""

    sweep_dir: Path
    outcomes: list[dict[str, Any]]
    summary: list[str]  # the terminal summary: each model's best run, budgets apart
    report: Path | None = None  # index.html of the report, when one was written
    messages: list[str] = field(default_factory=list)  # what the user should do next

    def count(self, status: str) -> int:
        return sum(outcome["status"] == status for outcome in self.outcomes)


def load_experiment(
    source: str | None = None,
    out_dir: str | None = None,
    settings: dict | None = None,
    *,
    check: bool = True,
    check_device: bool = True,
) -> Sweep | Search:
    """A sweep file (a path, or a shipped sweep's name) read and checked: a `Search` when it
    has a [search] table, else a `Sweep` (a grid)."""
    path = resolve_sweep_path(source)
    loader = load_search if path.is_file() and "search" in load_toml(path) else load_sweep
    return loader(path, out_dir, settings, check=check, check_device=check_device)


def check_backend(backend: str, workers: int = 1, ray: dict[str, Any] | None = None) -> None:
    """The backend and its options, checked before anything else (--status too: an option
    that would be ignored is refused, never silently dropped)."""
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if workers < 1:
        raise UserError(f"--workers must be >= 1, got {workers}")
    if ray and backend != "ray":
        options = ", ".join(f"--{key.replace('_', '-')}" for key in sorted(ray))
        raise UserError(f"{options}: Ray options need --backend ray")


def run_experiment(
    source: str | None = None,
    *,
    out_dir: str | None = None,
    settings: dict | None = None,
    backend: str = "local",
    workers: int = 1,
    ray: dict[str, Any] | None = None,
    tensorboard: bool = False,
    mlflow: str | None = None,
    report: bool = True,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> ExperimentResult:
    """Train every run of the sweep file `source` that has not ended, then summarise and
    report it. A grid runs on `backend` ("local" with `workers` processes, or "ray" with the
    `ray` options of `backends.ray.ray_cluster`); a search runs its trials one after the
    other here. `mlflow`: None for no MLflow, "" for SWEEP_DIR/mlruns, or a tracking URI."""
    check_backend(backend, workers, ray)
    settings = (settings or {}) | ({"tensorboard": True} if tensorboard else {})
    # On a cluster the GPUs are on the workers, not necessarily here: Ray checks placement.
    experiment = load_experiment(source, out_dir, settings, check_device=backend != "ray")
    sweep = experiment.sweep if isinstance(experiment, Search) else experiment
    if mlflow is not None:  # in seconds, before anything is written or trained
        check_store(resolve_tracking_uri(mlflow, sweep.out_dir), "--mlflow")
    if isinstance(experiment, Search):
        if backend != "local" or workers != 1:
            raise UserError(
                "a [search] runs its trials one after the other in this process: "
                "leave out --backend ray and --workers"
            )
        spec = experiment.plan.spec
        log(
            f"search {sweep.name}: {spec.trials} trial(s) x {len(experiment.plan.points)} "
            f"({spec.sampler} sampler, {spec.pruner} pruner) over "
            + ", ".join(d.describe() for d in spec.space.values())
            + f"; writing to {sweep.out_dir}"
        )
        check_study_file(sweep.out_dir)  # before MLflow makes its store in the folder
        with tracking(sweep, [point.config for point in experiment.plan.points], mlflow, log):
            outcomes = run_search(experiment, log=log, progress=progress)
    else:
        # Ray is joined and checked before the sweep folder is written: a cluster that cannot
        # take a run leaves nothing behind.
        if backend == "ray":
            joined = ray_cluster(sweep, pending_runs(sweep), log=log, **(ray or {}))
        else:
            joined = contextlib.nullcontext(partial(run_local, sweep, workers=workers, log=log))
        with joined as run_backend:
            todo = prepare(sweep)
            log(
                f"sweep {sweep.name}: {len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} "
                f"already done, writing to {sweep.out_dir}"
            )
            with tracking(sweep, [r.config for r in sweep.runs], mlflow, log):
                outcomes = _take_over(sweep, run_backend(todo), run_backend, log)
    result = ExperimentResult(sweep.out_dir, outcomes, summary_lines(experiment))
    if report:
        result.report = build_report(sweep.out_dir)
    if result.count("failed"):
        result.messages.append(
            f"{result.count('failed')} run(s) failed; rerun the same command to retry them"
        )
    return result


def _take_over(sweep: Sweep, outcomes: list[dict], run_backend, log) -> list[dict]:
    """The runs other processes held when this one reached them: wait while their holders
    live, and take over those whose holder died. So a sweep ends with every run ended (or
    failed), never with a run left pending by a dead peer; a run a peer ended is "skipped"
    here (or "failed", as the peer recorded it)."""
    runs = {run.run_id: run for run in sweep.runs}
    held = [runs[o["run_id"]] for o in outcomes if o["status"] == "claimed"]
    outcomes = [o for o in outcomes if o["status"] != "claimed"]
    if held:
        log(f"waiting for {len(held)} run(s) that other processes are training")
    while held:
        free = wait_for_claims(sweep, held)
        held = [run for run in held if run not in free]
        todo = []
        for run in free:
            folder = sweep.folder(run, log=log)
            result = folder.read_result() or {}
            released = folder.claimed_by() is None  # else its holder died holding it
            if result.get("status") in ledger.DONE_STATUSES:
                outcomes.append({"run_id": run.run_id, "status": "skipped"})
            elif result.get("status") == "failed" and released:  # the holder's attempt failed
                error = result.get("error")
                outcomes.append({"run_id": run.run_id, "status": "failed", "error": error})
            else:  # ours now (a failed result there may be older than the dead holder)
                todo.append(run)
        for outcome in run_backend(todo) if todo else []:
            if outcome["status"] == "claimed":  # a third process was quicker
                held.append(runs[outcome["run_id"]])
            else:
                outcomes.append(outcome)
    return outcomes


@contextlib.contextmanager
def tracking(sweep: Sweep, configs: list, mlflow: str | None, log) -> Iterator[None]:
    """TensorBoard's readable run names, and MLflow logging while the runs train: a sync from
    the ledger in the background (so runs from worker processes or Ray nodes arrive too), and
    a last one when the runs are over, Ctrl-C included."""
    if any(config.tensorboard for config in configs):
        # A search links its trials as they start; a grid's runs are all known now.
        view = link_tensorboard(sweep.out_dir, {r.run_id: r.label for r in sweep.runs}, log=log)
        log(f"tensorboard: tensorboard --logdir {view or sweep.out_dir / TENSORBOARD_VIEW}")
    if mlflow is None:
        yield
        return
    logger = MlflowLogger(sweep.out_dir, mlflow or None, experiment=sweep.name, log=log)
    with MlflowSync(logger, log=log):  # opens the store now: a bad URI fails before training
        log(f"mlflow: experiment {logger.experiment_name!r} in {logger.where()}")
        yield


def status_lines(experiment: Sweep | Search) -> list[str]:
    """Each run's status (a search: each trial's), then how many have ended of how many."""
    sweep = experiment.sweep if isinstance(experiment, Search) else experiment
    if isinstance(experiment, Search):
        records = ledger.read_runs(sweep.out_dir, log=ledger.silent)
        labels = ledger.run_labels({r["run_id"]: r["config"] for r in records})
        rows = [(r["status"], r["run_id"], labels[r["run_id"]]) for r in records]
        target = experiment.plan.spec.trials * len(experiment.plan.points)
        what = "search, {done}/{target} trials ended"
    else:
        rows = [(sweep.folder(run).status(), run.run_id, run.label) for run in sweep.runs]
        target, what = len(sweep.runs), "{done}/{target} done"
    counts = Counter(status for status, _, _ in rows)
    done = sum(counts[status] for status in ledger.DONE_STATUSES)
    lines = [f"{status:<11} {run_id}  {label}" for status, run_id, label in rows]
    lines.append(
        f"{sweep.name}: {what.format(done=done, target=target)} "
        + " ".join(f"{k}={v}" for k, v in sorted(counts.items()))
        + f"  ({sweep.out_dir})"
    )
    return lines


def summary_lines(experiment: Sweep | Search) -> list[str]:
    """The experiment's outcome for the terminal: each model's best run (chosen by validation
    accuracy), with its test accuracy's 95% interval for the images it was judged on. Runs
    trained or judged on different budgets are listed apart, never ranked together."""
    sweep = experiment.sweep if isinstance(experiment, Search) else experiment
    lines = []
    if isinstance(experiment, Search):
        s = search_summary(sweep.out_dir)
        lines.append(
            f"search: {s['finished']} finished, {s['pruned']} pruned, {s['diverged']} diverged; "
            f"{s['epochs_trained']} epochs trained of {s['epochs_if_unpruned']} without pruning"
        )
    budgets = _best_per_budget(ledger.read_runs(sweep.out_dir, log=ledger.silent))
    if not budgets:
        return [*lines, "no finished runs yet"]
    header = (
        f"{'model':<12} {'lr':>8} {'dropout':>7} {'val':>7} {'test (95% interval)':>26} {'time':>8}"
    )
    for (images, epochs, val, test), best in budgets.items():
        if len(budgets) > 1:
            lines.append(
                f"{images:,} training images x {epochs} epochs, judged on {val:,} val / "
                f"{test:,} test images:"
            )
        lines.append(header)
        for model, r in sorted(best.items(), key=lambda kv: -kv[1]["val_acc"]):
            low, high = accuracy_interval(r["test_acc"], test)
            shown = f"{100 * r['test_acc']:.2f}% ({100 * low:.2f}-{100 * high:.2f}, n={test})"
            lines.append(
                f"{model:<12} {r['config']['lr']:>8g} {r['config']['dropout']:>7g} "
                f"{100 * r['val_acc']:>6.2f}% {shown:>26} "
                f"{tqdm.format_interval(r['total_seconds']):>8}"
            )
    lines.append(
        "(each model's best run by validation accuracy; the report says which gaps are real)"
    )
    return lines


def _best_per_budget(records: list[dict]) -> dict[tuple, dict[str, dict]]:
    """(train images, epochs, val images, test images) -> model -> its best finished run."""
    budgets: dict[tuple, dict[str, dict]] = {}
    for record in records:
        result = record["result"]
        if not result or result["status"] != "finished" or result.get("val_acc") is None:
            continue
        split = result["split"]
        budget = (split["train_used"], result["config"]["epochs"], split["val_used"])
        best = budgets.setdefault(budget + (split["test_used"],), {})
        model = result["model"]
        if model not in best or result["val_acc"] > best[model]["val_acc"]:
            best[model] = result
    return budgets
