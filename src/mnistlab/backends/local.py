"""The local backend: runs one after the other in this process, or in N worker processes
(one GPU can train several small models at once; a 2-core CPU cannot)."""

from __future__ import annotations

import time
from typing import Any

from ..sweep import Run, Sweep, SweepProgress, execute_run, format_seconds, run_dir


def run_local(sweep: Sweep, todo: list[Run], workers: int = 1, log=print) -> list[dict]:
    """Run in this process, one after the other; or in `workers` processes at once (for a GPU
    that one small model cannot fill)."""
    progress = SweepProgress(len(sweep.runs), len(sweep.runs) - len(todo))
    if workers > 1:
        return _run_in_processes(sweep, todo, workers, progress)
    from ..data import load_dataset

    datasets: dict[tuple, Any] = {}  # loaded once per sweep, not once per run
    outcomes = []
    for run in todo:
        progress.start(run)
        key = (run.config["dataset"], run.config["data_dir"])
        if key not in datasets:
            datasets[key] = load_dataset(*key)
        start = time.perf_counter()
        outcomes.append(
            execute_run(
                run.config, str(run_dir(sweep, run)), sweep.checkpoints, datasets[key], log=log
            )
        )
        progress.finish(time.perf_counter() - start)
    return outcomes


def _run_in_processes(sweep: Sweep, todo: list[Run], workers: int, progress: SweepProgress):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: CUDA cannot be used in a forked child.
    ctx = mp.get_context("spawn")
    outcomes = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = {
            pool.submit(
                execute_run, run.config, str(run_dir(sweep, run)), sweep.checkpoints, None, _quiet
            ): run
            for run in todo
        }
        start = time.perf_counter()
        for finished, future in enumerate(as_completed(futures), 1):
            outcome = future.result()
            progress.done += 1
            # Runs overlap, so the ETA comes from throughput: time so far per finished run.
            remaining = len(todo) - finished
            per_run = (time.perf_counter() - start) / finished
            eta = f", ETA {format_seconds(per_run * remaining)}" if remaining else ""
            print(
                f"[{progress.done}/{progress.total}{eta}] {futures[future].label}: "
                f"{outcome['status']}",
                flush=True,
            )
            outcomes.append(outcome)
    return outcomes


def _quiet(*_args) -> None:
    pass
