"""The results ledger: one folder per run, every file written atomically.

    SWEEP_DIR/
      sweep.toml                 the sweep file as given (copied when the sweep starts)
      sweep.json                 the manifest: the run ids the sweep file expands to
      runs/<run_id>/
        config.json              the resolved TrainConfig (a dict)
        history.json             list of per-epoch dicts, rewritten after every epoch
        result.json              written last: its presence means the run is over
        checkpoint.pt            weights of the epoch chosen by validation accuracy
        resume.pt                last finished epoch's full state (deleted when the run ends)
        error.txt                the error of a failed attempt

A run's status comes from its files alone, so a sweep killed at any moment can be rerun:
`result.json` present -> its "status" ("finished", "diverged" or "failed"); otherwise
"pending" (never started) or "partial" (started, killed part-way).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .data.idx import atomic_write_bytes

RESULT = "result.json"
CONFIG = "config.json"
HISTORY = "history.json"
CHECKPOINT = "checkpoint.pt"
RESUME = "resume.pt"
ERROR = "error.txt"
MANIFEST = "sweep.json"


def write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_bytes(Path(path), (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode())


def atomic_copy(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    atomic_write_bytes(Path(destination), Path(source).read_bytes())


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def run_id_for(config: dict) -> str:
    """Same resolved config -> same id; any change -> a new id (and a new folder)."""
    # Where a run is stored, which device runs it and whether it also logs to TensorBoard do
    # not change what it computes.
    identity = {
        k: v
        for k, v in config.items()
        if k not in {"out_dir", "device", "num_threads", "tensorboard"}
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{config['model']}-{digest}"


def run_status(run_dir: Path) -> str:
    if (run_dir / RESULT).is_file():
        return read_json(run_dir / RESULT).get("status", "finished")
    if (run_dir / HISTORY).is_file() or (run_dir / RESUME).is_file():
        return "partial"
    return "pending"


def read_runs(sweep_dir: str | os.PathLike) -> list[dict]:
    """Every run folder as {"run_id", "dir", "status", "config", "history", "result"}.

    `result` is None for runs that have not ended; `history` is [] when nothing was recorded.
    Sorted by run id, so every reader sees the same order. When the sweep's manifest exists,
    only its runs are read: folders left by an earlier version of the sweep file stay on
    disk but out of the report.
    """
    runs_root = Path(sweep_dir) / "runs"
    manifest = Path(sweep_dir) / MANIFEST
    wanted = set(read_json(manifest)["run_ids"]) if manifest.is_file() else None
    records = []
    for run_dir in sorted(p for p in runs_root.glob("*") if p.is_dir()):
        if wanted is not None and run_dir.name not in wanted:
            continue
        if not (run_dir / CONFIG).is_file():
            continue
        result = read_json(run_dir / RESULT) if (run_dir / RESULT).is_file() else None
        records.append(
            {
                "run_id": run_dir.name,
                "dir": run_dir,
                "status": result.get("status", "finished") if result else run_status(run_dir),
                "config": read_json(run_dir / CONFIG),
                "history": read_json(run_dir / HISTORY) if (run_dir / HISTORY).is_file() else [],
                "result": result,
            }
        )
    return records
