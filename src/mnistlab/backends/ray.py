"""The Ray backend: the runs of a sweep as Ray tasks, on this machine or on a cluster.

Why Ray core tasks and not Ray Tune: the grid is already expanded by `load_sweep`, and the
ledger already records, resumes and reports every run. Tune would bring a second results
folder, its own trial names and checkpoints, and its own resume logic (`Tuner.restore`) to
keep in step with the ledger, for search algorithms and schedulers that a fixed grid never
uses. A task per run needs only what a grid needs from a cluster: placement by resources
(`num_cpus`, fractional `num_gpus`), retries of failed or killed runs (`max_retries`,
`retry_exceptions`), and results as they come (`ray.wait`). The ledger stays the one source
of truth, so `mnistlab report`, `--status` and resuming work as with the local backend.

Every run writes its own folder under the sweep folder, from whichever node it runs on, so
that folder must be one path that every node sees (a shared filesystem such as NFS).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..sweep import Run, Sweep, SweepProgress, format_seconds, record_failure, run_dir

# Each worker process keeps the datasets it has loaded: Ray reuses CPU workers across
# tasks, so a sweep loads MNIST once per worker, not once per run.
_DATASETS: dict[tuple, Any] = {}


def run_ray(
    sweep: Sweep,
    todo: list[Run],
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    max_concurrent: int | None = None,
    retries: int = 2,
    log=print,
) -> list[dict]:
    """Run `todo` (from `prepare(sweep)`) as Ray tasks; return one outcome per run, as
    `run_local` does: {"run_id", "status", "seconds", "node"} plus "error" when it failed.

    `address` None starts a private Ray instance sized to this machine (or uses the one this
    process already started with `ray.init`); "auto" or "HOST:PORT" joins a running cluster.
    A run that raises or whose worker dies is retried up to `retries` times, then recorded
    as failed in its folder while the other runs go on.
    """
    _check_options(todo, cpus_per_run, gpus_per_run, max_concurrent, retries)
    if not todo:
        return []
    try:
        import ray
    except ImportError:
        raise UserError(
            "the ray backend needs the ray extra: pip install 'mnistlab[ray]'"
        ) from None

    # Workers on other nodes know nothing of this process's working directory.
    sweep = dataclasses.replace(sweep, out_dir=sweep.out_dir.resolve())
    started = _connect(ray, address or os.environ.get("RAY_ADDRESS"))
    try:
        nodes = _describe_cluster(ray, cpus_per_run, gpus_per_run, max_concurrent, started, log)
        log(
            f"ray: runs write to {sweep.out_dir}"
            + (" (every node must see this folder)" if nodes > 1 else "")
        )
        # Options given to ray.remote itself, not .options(): only there does a GPU task get
        # max_calls=1, a fresh worker per run, so no CUDA state leaks from one run to the next.
        task = ray.remote(
            num_cpus=cpus_per_run,
            num_gpus=gpus_per_run,
            max_retries=retries,
            retry_exceptions=True,
        )(_train_one)
        return _schedule(
            ray, task, sweep, todo, cpus_per_run, gpus_per_run, max_concurrent, retries, nodes, log
        )
    finally:
        if started:
            ray.shutdown()


def _check_options(todo, cpus_per_run, gpus_per_run, max_concurrent, retries) -> None:
    if not cpus_per_run > 0:
        raise UserError(f"--cpus-per-run must be > 0, got {cpus_per_run:g}")
    if not gpus_per_run >= 0:
        raise UserError(f"--gpus-per-run must be >= 0, got {gpus_per_run:g}")
    if gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
        raise UserError(f"--gpus-per-run above 1 must be a whole number, got {gpus_per_run:g}")
    if max_concurrent is not None and max_concurrent < 1:
        raise UserError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if retries < 0:
        raise UserError(f"--retries must be >= 0, got {retries}")
    if gpus_per_run == 0:
        wants_gpu = [r.run_id for r in todo if r.config["device"] == "cuda"]
        if wants_gpu:
            raise UserError(
                f"run {wants_gpu[0]} asks for device 'cuda' but --gpus-per-run is 0; give each "
                "run a share of a GPU, e.g. --gpus-per-run 1 (or 0.25 for four runs per GPU)"
            )


def _connect(ray, address: str | None) -> bool:
    """Join or start Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            # "local": a private instance even when `ray start` left one running here.
            ray.init(
                address="local",
                num_cpus=_usable_cpus(),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
        # A wrong or missing token also shows up as "failed to connect".
        raise UserError(
            f"cannot reach a Ray cluster at {address!r}: {str(exc).strip()} (start one with "
            "`ray start --head`; if it uses token authentication, set RAY_AUTH_MODE=token and "
            "give this machine its token; or leave out --address for a local instance)"
        ) from None
    return True


def _usable_cpus() -> int:
    # The CPUs this process may run on (taskset, a container's cpuset), which
    # os.cpu_count() ignores.
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _describe_cluster(ray, cpus_per_run, gpus_per_run, max_concurrent, started, log) -> int:
    """Say what the runs get; refuse runs that no node can ever take (they would wait forever)."""
    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    fits = [n for n in nodes if n.get("CPU", 0) >= cpus_per_run and n.get("GPU", 0) >= gpus_per_run]
    at_once = sum(
        min(
            math.floor(n.get("CPU", 0) / cpus_per_run),
            math.floor(n.get("GPU", 0) / gpus_per_run) if gpus_per_run else math.inf,
        )
        for n in fits
    )
    if max_concurrent:
        at_once = min(at_once, max_concurrent)
    log(
        f"ray: {len(nodes)} node(s), {cpus:g} CPUs, {gpus:g} GPUs; each run gets "
        f"{cpus_per_run:g} CPU(s), {gpus_per_run:g} GPU(s): up to {at_once} runs at once"
    )
    if not fits:
        need = f"{cpus_per_run:g} CPU(s) and {gpus_per_run:g} GPU(s)"
        if started:
            raise UserError(
                f"no run can start: each needs {need} but this machine has "
                f"{cpus:g} CPU(s) and {gpus:g} GPU(s); lower --cpus-per-run/--gpus-per-run"
            )
        # An autoscaling cluster may still add such a node; say so rather than hang silently.
        log(f"ray: warning: no node has {need} for one run; the runs wait until one joins")
    return len(nodes)


def _schedule(
    ray, task, sweep, todo, cpus_per_run, gpus_per_run, max_concurrent, retries, nodes, log
) -> list[dict]:
    progress = SweepProgress(len(sweep.runs), len(sweep.runs) - len(todo))
    limit = max_concurrent or len(todo)
    waiting = list(todo)
    in_flight: dict[Any, Run] = {}
    outcomes: list[dict] = []
    start = time.perf_counter()
    try:
        while waiting or in_flight:
            while waiting and len(in_flight) < limit:
                run = waiting.pop(0)
                ref = task.remote(
                    run.config,
                    str(run_dir(sweep, run)),
                    sweep.checkpoints,
                    _absolute_data_dir(run.config),
                    cpus_per_run,
                    gpus_per_run,
                )
                in_flight[ref] = run
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            run = in_flight.pop(ref)
            outcome = _collect(ray, ref, run, sweep, retries)
            outcomes.append(outcome)
            progress.done += 1
            remaining = progress.total - progress.done
            details = []
            if outcome.get("seconds"):
                where = f" on {outcome['node']}" if nodes > 1 else ""
                details.append(f"{format_seconds(outcome['seconds'])}{where}")
            if remaining:
                # Runs overlap, so the ETA comes from throughput (wall time per finished
                # run in this session), not from the sum of run durations.
                elapsed = time.perf_counter() - start
                details.append(f"ETA {format_seconds(elapsed / len(outcomes) * remaining)}")
            line = f"[{progress.done}/{progress.total}] {run.label}: {outcome['status']}"
            if details:
                line += f" ({', '.join(details)})"
            if outcome.get("error"):
                line += f"\n    {outcome['error']}"
            log(line)
    finally:
        # Ctrl-C or an error in this loop: stop what still runs; those runs have no
        # result.json, so the next `mnistlab sweep` starts them again.
        for ref in in_flight:
            with contextlib.suppress(Exception):  # best effort while already unwinding
                ray.cancel(ref, force=True)
    return outcomes


def _collect(ray, ref, run: Run, sweep: Sweep, retries: int) -> dict:
    """The outcome of one finished task; a final failure is written to the run's folder."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the run raised on every attempt
        cause = exc.cause
        error = f"{type(cause).__name__}: {cause}"
        details = str(exc)
    except ray.exceptions.RayError as exc:  # the worker or its node died on every attempt
        details = str(exc).strip()
        error = f"{type(exc).__name__}: {details.splitlines()[0] if details else 'no details'}"
    attempts = f"failed on all {retries + 1} attempts" if retries else "failed (no retries)"
    record_failure(run_dir(sweep, run), run.config, error, f"{attempts}\n\n{details}")
    return {"run_id": run.run_id, "status": "failed", "error": f"{error} ({attempts})"}


def _absolute_data_dir(config: dict) -> str | None:
    # data_dir is part of the run's identity, so it stays as written in the config; only
    # the worker is handed the absolute path.
    data_dir = config.get("data_dir")
    return str(Path(data_dir).expanduser().resolve()) if data_dir else None


def _train_one(
    config: dict, folder: str, checkpoints: bool, data_dir: str | None, cpus: float, gpus: float
) -> dict:
    """One run inside a Ray worker. It raises on failure (Ray then retries it); the driver
    records the failure once the retries are spent."""
    import torch

    from ..config import TrainConfig
    from ..data import load_dataset
    from ..engine import train
    from ..ledger import MANIFEST

    wall = time.perf_counter()
    folder_path = Path(folder)
    if not (folder_path.parent.parent / MANIFEST).is_file():
        # Without this check the run would train into this node's own disk and the
        # driver would never see its result.
        raise FileNotFoundError(
            f"sweep folder {folder_path.parent.parent} is not visible on node "
            f"{socket.gethostname()}: put it on a filesystem every node shares (e.g. NFS)"
        )
    if gpus == 0:
        # Ray leaves CUDA_VISIBLE_DEVICES alone for tasks without GPUs, so device "auto"
        # would pick a GPU that other runs were given.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # Ray sets OMP_NUM_THREADS from the first task a worker runs, and torch reads it once
    # per process; workers are reused, so set this run's thread count explicitly.
    torch.set_num_threads(max(1, int(cpus)))
    key = (config["dataset"], data_dir)
    if key not in _DATASETS:
        _DATASETS[key] = load_dataset(*key)
    cfg = TrainConfig.from_dict({**config, "out_dir": folder})
    result = train(cfg, _DATASETS[key], log=_quiet, progress=False, save_checkpoint=checkpoints)
    return {
        "run_id": folder_path.name,
        "status": result.status,
        "seconds": time.perf_counter() - wall,
        "node": socket.gethostname(),
    }


def _quiet(*_args) -> None:
    pass
