"""Rebuild this report's ledger (run_files/) from the first edition's all_runs.csv.

The H200 run folders of this partial seed grid were not kept; their first report was. Its
all_runs.csv has, per run, the status, lr, dropout, parameters, epochs run, best epoch,
accuracies to 0.01 points and the time: on 10,000 test images 0.01 points is one image, so
rankings and intervals are exact. Per-epoch histories, per-image predictions and confusion
matrices are not in it, so the second-edition report of this ledger has no curves, no
dropout-gap or stability sentences and no paired tests. The first edition's figures are kept
as first_edition_*.png.

    python docs/results/h200_seed_partial/rebuild_ledger.py          # writes run_files/
    mkdir -p /tmp/h200/seed && cp -r docs/results/h200_seed_partial/run_files /tmp/h200/seed/runs
    (cd /tmp/h200 && mnistlab report seed --out $OLDPWD/docs/results/h200_seed_partial)
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST_EDITION = "451100e"  # the commit that added the first report (and its all_runs.csv)
# From the first report: "Recorded with device cuda (NVIDIA H200); precision bf16; torch
# 2.11.0+cu130." and configs/seed.toml (8 epochs, batch 64, Adam, 10% validation).
ENVIRONMENT = {"device": "cuda (NVIDIA H200)", "precision": "bf16", "torch_version": "2.11.0+cu130"}
BASE = {"epochs": 8, "batch_size": 64, "optimizer": "adam", "val_fraction": 0.1}


def first_edition_rows() -> list[dict]:
    root = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"], cwd=HERE, capture_output=True, text=True
    ).stdout.strip()
    path = HERE.relative_to(root) / "all_runs.csv"
    text = subprocess.run(
        ["git", "show", f"{FIRST_EDITION}:{path}"], cwd=root, capture_output=True, text=True
    ).stdout
    return list(csv.DictReader(text.splitlines()))


def fraction(cell: str) -> float | None:
    return None if cell in ("", "—") else round(float(cell) / 100, 6)


def main() -> None:
    from mnistlab.config import TrainConfig

    out = HERE / "run_files"
    for row in first_edition_rows():
        config = TrainConfig(
            model=row["model"], lr=float(row["lr"]), dropout=float(row["dropout"]), **BASE
        ).to_dict()
        folder = out / row["run"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
        if row["status"] != "finished":
            continue  # partial: a config and no result, as the ledger had it
        result = {
            "run_id": row["run"],
            "status": "finished",
            "error": None,
            "model": row["model"],
            "config": config,
            "params": int(row["params"]),
            "epochs_run": int(row["epochs run"]),
            "best_epoch": int(row["best epoch"]),
            "train_acc": fraction(row["train acc (%)"]),
            "val_acc": fraction(row["val acc (%)"]),
            "test_acc": fraction(row["test acc (%)"]),
            "total_seconds": float(row["time (s)"]),
            "split": {
                "fraction": 0.1,
                "seed": 0,
                "train_size": 54000,
                "train_used": 54000,
                "val_size": 6000,
                "val_used": 6000,
                "test_used": 10000,
            },
            **ENVIRONMENT,
        }
        (folder / "result.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
