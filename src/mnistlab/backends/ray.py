"""The Ray backend: the runs of a sweep as Ray tasks, on this machine or on a cluster.

Why Ray core tasks and not Ray Tune: the grid is already expanded by `load_sweep`, and the
ledger already records, resumes and reports every run. Tune would bring a second results
folder, its own trial names and checkpoints, and its own resume logic (`Tuner.restore`) to
keep in step with the ledger, for search algorithms and schedulers that a fixed grid never
uses. A task per run needs only what a grid needs from a cluster: placement by resources
(`num_cpus`, fractional `num_gpus`), retries of failed or killed runs (`max_retries`,
`retry_exceptions`), and results as they come (`ray.wait`). The ledger stays the one source
of truth, so `mnistlab report`, `--status` and resuming work as with the local backend.

The driver owns the ledger: a worker trains in a scratch folder on its own node and sends
the run's files back through Ray, and the driver writes them into the run folder. So the
nodes need no shared disk, and a node with a stale copy of the sweep folder cannot swallow
a result. The driver claims each run before sending it out, as the local backend does, so
several drivers (or a local sweep) on one folder still divide the runs between them.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import socket
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..ledger import RunFolder
from ..sweep import Sweep, SweepProgress, SweepRun


def run_ray(
    sweep: Sweep,
    todo: list[SweepRun],
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    max_concurrent: int | None = None,
    retries: int = 2,
    log=print,
) -> list[dict]:
    """Run `todo` (from `prepare(sweep)`) as Ray tasks; return one outcome per run, as
    `run_local` does (see `sweep.execute_run`), plus "node".

    `address` None starts a private Ray instance sized to this machine (or uses the one this
    process already started with `ray.init`); "auto" or "HOST:PORT" joins a running cluster.
    A run whose worker or node dies is retried up to `retries` times (Ray places the retry
    where resources are free); a run that fails with an error is recorded as failed at once,
    since running the same config again fails the same way.
    """
    check_options(todo, cpus_per_run, gpus_per_run, max_concurrent, retries)
    if not todo:
        return []
    try:
        import ray
    except ImportError:
        raise UserError(
            "the ray backend needs the ray extra: pip install 'mnistlab[ray]'"
        ) from None

    started = _connect(ray, address or os.environ.get("RAY_ADDRESS"), log)
    try:
        nodes = _describe_cluster(ray, cpus_per_run, gpus_per_run, max_concurrent, started, log)
        log(f"ray: results come back to {sweep.out_dir.resolve()} (written by this process)")
        # Options given to ray.remote itself, not .options(): only there does a GPU task get
        # max_calls=1, a fresh worker per run, so no CUDA state leaks from one run to the next.
        # retry_exceptions stays off: an error in training recurs; a lost worker may not.
        task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=retries)(
            _train_one
        )
        return _schedule(ray, task, sweep, todo, cpus_per_run, max_concurrent, retries, nodes, log)
    finally:
        if started:
            ray.shutdown()


def check_options(todo, cpus_per_run, gpus_per_run, max_concurrent, retries) -> None:
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
        wants_gpu = [r.run_id for r in todo if r.config.device == "cuda"]
        if wants_gpu:
            raise UserError(
                f"run {wants_gpu[0]} asks for device 'cuda' but --gpus-per-run is 0; give each "
                "run a share of a GPU, e.g. --gpus-per-run 1 (or 0.25 for four runs per GPU)"
            )


def _connect(ray, address: str | None, log) -> bool:
    """Join or start Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        log(f"ray: using this process's Ray instance at {_gcs_address(ray)}")
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
    if not address:
        log(f"ray: started a private instance at {_gcs_address(ray)} (stops with this sweep)")
    elif address == "auto":
        # "auto" finds whatever instance this machine knows of (RAY_ADDRESS, or the newest
        # `ray start` here): say which, so joining someone else's never goes unnoticed.
        log(f"ray: --address auto joined the instance at {_gcs_address(ray)}")
    else:
        log(f"ray: joined the cluster at {_gcs_address(ray)}")
    return True


def _gcs_address(ray) -> str:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # older Ray: the address is not exposed; the node list still is
        return "an unknown address"


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
    for node in (n for n in ray.nodes() if n.get("Alive")):
        res = node["Resources"]
        log(
            f"ray:   node {node.get('NodeManagerHostname', '?')} ({node.get('NodeManagerAddress', '?')}): "
            f"{res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"
        )
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
    ray, task, sweep, todo, cpus_per_run, max_concurrent, retries, nodes, log
) -> list[dict]:
    progress = SweepProgress(sweep, todo, parallel=max_concurrent or len(todo), log=log)
    limit = max_concurrent or len(todo)
    waiting = list(todo)
    in_flight: dict[Any, tuple[SweepRun, RunFolder]] = {}
    outcomes: list[dict] = []
    try:
        while waiting or in_flight:
            while waiting and len(in_flight) < limit:
                run = waiting.pop(0)
                folder = sweep.folder(run, log=log)
                if not folder.claim():  # another process on this sweep folder trains it
                    outcome = {"run_id": run.run_id, "status": "claimed"}
                    progress.finish(run, outcome | {"holder": folder.claimed_by()}, announce=True)
                    outcomes.append(outcome)
                    continue
                ref = task.remote(
                    run.config,
                    _absolute(run.config.data_dir),
                    run.run_id,
                    sweep.checkpoints,
                    cpus_per_run,
                    _resume_files(folder),
                )
                in_flight[ref] = (run, folder)
            if not in_flight:
                break
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            run, folder = in_flight.pop(ref)
            try:
                outcome = _collect(ray, ref, run, folder, retries)
            finally:
                folder.release()
            if nodes > 1 and outcome.get("node"):
                outcome["where"] = f" on {outcome['node']}"
            progress.finish(run, outcome, announce=True)
            outcomes.append(outcome)
    finally:
        # Ctrl-C or an error in this loop: stop what still runs; those runs have no
        # result.json, so the next `mnistlab sweep` starts them again.
        for ref, (_run, folder) in in_flight.items():
            with contextlib.suppress(Exception):  # best effort while already unwinding
                ray.cancel(ref, force=True)
            folder.release()
    return outcomes


def _resume_files(folder: RunFolder) -> dict[str, bytes]:
    """What a run interrupted earlier left (config, history, resume state), for the worker."""
    if folder.status() in ("failed", "pending"):
        return {}
    return folder.export_files()


def _collect(ray, ref, run: SweepRun, folder: RunFolder, retries: int) -> dict:
    """The outcome of one finished task, its files written into the ledger by this process."""
    try:
        outcome, files = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # it raised: a second attempt would too
        cause = exc.cause
        error = f"{type(cause).__name__}: {cause}"
        folder.fail(run.config, error, _plain(str(exc)))
        return {"run_id": run.run_id, "status": "failed", "error": error, "permanent": True}
    except ray.exceptions.RayError as exc:  # the worker or its node died on every attempt
        details = _plain(str(exc)).strip()
        error = f"{type(exc).__name__}: {details.splitlines()[0] if details else 'no details'}"
        attempts = f"failed on all {retries + 1} attempts" if retries else "failed (no retries)"
        folder.fail(run.config, f"{error} ({attempts})", f"{attempts}\n\n{details}")
        return {"run_id": run.run_id, "status": "failed", "error": f"{error} ({attempts})"}
    if outcome["status"] == "failed":
        folder.reset()
    folder.import_files(files, config=run.config)
    return outcome


def _plain(text: str) -> str:
    """Ray's error text without the terminal colour codes it adds."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _absolute(data_dir: str | None) -> str | None:
    # data_dir is part of the run's identity, so it stays as written in the ledger; only the
    # worker is handed the absolute path.
    return str(Path(data_dir).expanduser().resolve()) if data_dir else None


def _train_one(
    config,
    data_dir: str | None,
    run_id: str,
    checkpoints: bool,
    cpus: float,
    resume_files: dict[str, bytes],
) -> tuple[dict, dict[str, bytes]]:
    """One run inside a Ray worker, in a scratch folder on the worker's own node: the same
    `execute_run` as every backend. Returns the outcome and the run's files for the driver."""
    import shutil
    import tempfile

    import torch

    from ..data import load_dataset_cached
    from ..sweep import execute_run

    if not ray_task_has_gpu():
        # Ray leaves CUDA_VISIBLE_DEVICES alone for tasks without GPUs, so device "auto"
        # would pick a GPU that other runs were given.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # Ray sets OMP_NUM_THREADS from the first task a worker runs, and torch reads it once per
    # process; workers are reused, so set this run's thread count explicitly. A num_threads
    # in the config wins (train() applies it after this).
    torch.set_num_threads(max(1, int(cpus)))
    scratch = Path(tempfile.mkdtemp(prefix="mnistlab-ray-"))
    try:
        folder = RunFolder(scratch / run_id)
        folder.import_files(resume_files)
        dataset = load_dataset_cached(config.dataset, data_dir)
        outcome = execute_run(config, folder, checkpoints=checkpoints, dataset=dataset, log=print)
        outcome["node"] = socket.gethostname()
        return outcome, folder.export_files()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def ray_task_has_gpu() -> bool:
    import ray

    try:
        return bool(ray.get_gpu_ids())
    except Exception:
        return False
