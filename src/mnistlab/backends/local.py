"""The local backend: runs one after the other in this process, or in N worker processes
(one GPU can train several small models at once; a 2-core CPU cannot)."""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed

from ..ledger import silent
from ..sweep import Sweep, SweepProgress, SweepRun, execute_run


def run_local(sweep: Sweep, todo: list[SweepRun], workers: int = 1, log=print) -> list[dict]:
    """Returns one outcome per run (see `execute_run`)."""
    progress = SweepProgress(sweep, todo, parallel=workers, log=log)
    outcomes = []
    if workers > 1:
        # spawn, not fork: CUDA cannot be used in a forked child.
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = {
                pool.submit(
                    execute_run,
                    run.config,
                    sweep.folder(run, log=silent),
                    checkpoints=sweep.checkpoints,
                    log=silent,
                ): run
                for run in todo
            }
            for future in as_completed(futures):
                outcome = future.result()
                progress.finish(futures[future], outcome, announce=True)
                outcomes.append(outcome)
        return outcomes
    for run in todo:
        progress.start(run)
        outcome = execute_run(
            run.config,
            sweep.folder(run, log=log),
            checkpoints=sweep.checkpoints,
            log=log,
            progress=log is print,
        )
        progress.finish(run, outcome, announce=outcome["status"] in ("claimed", "skipped"))
        outcomes.append(outcome)
    return outcomes
