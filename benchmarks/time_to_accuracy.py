"""Wall time from process start to a target test accuracy, over several seeds; the worst counts.

Each attempt is a fresh `python -m mnistlab train ...` process, timed from before it starts
to after it exits, so Python start-up, `import torch`, loading the data, training, and the
final test evaluation are all inside the number.

    python benchmarks/time_to_accuracy.py --target 99.0 --seeds 0 1 2 3 4
    python benchmarks/time_to_accuracy.py --target 99.5 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The fastest recipes found on the 2-core development CPU (see the README): one fastnet
# schedule; the higher target trains longer, at a lower peak lr, on randomly moved digits,
# and evaluates a moving average of the weights.
FASTNET = shlex.split(
    "--model fastnet --batch-size 128 --optimizer adamw --schedule onecycle "
    "--label-smoothing 0.1 --weight-decay 0.0005 --dropout 0.0"
)
AFFINE = shlex.split("--augment --rotate-degrees 10 --translate 0.08 --scale 0.08")
RECIPES = {
    # One epoch leaves nothing for validation to choose, so 1% of the data is enough for it;
    # 42,000 of the 59,400 training images (0.7 of an epoch) reach 99% with a margin.
    99.0: [*FASTNET, "--val-fraction", "0.01", "--lr", "0.02", "--epochs", "1"]
    + ["--train-subset", "42000"],
    # Here validation picks one of 13 epochs: with 1% (600 images) it picked epochs 2-8 of
    # 12 by noise (worst seed 99.44% test), so this keeps the usual 10%.
    99.5: [*FASTNET, "--val-fraction", "0.1", "--lr", "0.01", "--epochs", "13", *AFFINE]
    + ["--ema"],
}


def attempt(recipe: list[str], seed: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            sys.executable,
            "-m",
            "mnistlab",
            "train",
            *recipe,
            "--seed",
            str(seed),
            "--out-dir",
            out,
            "--json",
        ]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed} failed:\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout)
    return {
        "seed": seed,
        "wall_seconds": wall,
        "test_acc": result["test_acc"],
        "train_seconds": result["train_seconds"],
        "best_epoch": result["best_epoch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, choices=sorted(RECIPES), default=99.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    recipe = RECIPES[args.target]
    rows = []
    print(f"target {args.target}%: mnistlab train {' '.join(recipe)}", flush=True)
    for seed in args.seeds:
        row = attempt(recipe, seed)
        rows.append(row)
        print(
            f"seed {seed}: test {100 * row['test_acc']:.2f}%  wall {row['wall_seconds']:.1f} s "
            f"(training {row['train_seconds']:.1f} s)",
            flush=True,
        )
    worst_acc = min(r["test_acc"] for r in rows)
    worst_wall = max(r["wall_seconds"] for r in rows)
    hit = sum(100 * r["test_acc"] >= args.target for r in rows)
    print(
        f"worst over {len(rows)} seeds: test {100 * worst_acc:.2f}%, wall {worst_wall:.1f} s; "
        f"{hit}/{len(rows)} reached {args.target}%"
    )
    out = Path(args.out or f"benchmarks/results/time_to_{args.target}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "target": args.target,
                "recipe": recipe,
                "rows": rows,
                "machine": platform.processor(),
                "worst_acc": worst_acc,
                "worst_wall_seconds": worst_wall,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
