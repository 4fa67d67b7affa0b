"""Ablation of the writer families (issue 22): what each adds on unseen real-world digits and
what it costs on MNIST test, in short runs with several seeds.

    OMP_NUM_THREADS=1 python scripts/ablate_augment.py --out ablation.jsonl   # resumable
    python scripts/ablate_augment.py --out ablation.jsonl --table              # the README table

Every setting is the default model's recipe (scripts/train_default_model.py: RECIPE, widths
32-48-64-128, robust_augment on half of each batch) for `--epochs` epochs; "baseline" adds no
writer family, each other setting adds one (`writer_augment=NAME`), "all" adds every one, "conventions" the five label-conditional ones together. Each
finished run appends one JSON line (setting, seed, MNIST test, real-world accuracy on the
tuning half and the reporting half, seconds, machine), so a killed ablation reruns only what
is missing.

The real-world set's halves (src/mnistlab/data/realworld/): the first 899 digits are the
tuning half (families are chosen on it), the last 898 the reporting half (only reported). The
source has no writer labels, so the halves are split by position, not by writer, and may
share writers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))
from train_default_model import RECIPE, cpu_name  # noqa: E402

from mnistlab import config, engine  # noqa: E402
from mnistlab.data import load_dataset  # noqa: E402
from mnistlab.data.realworld import DEV_SIZE, load_realworld  # noqa: E402
from mnistlab.predict import Predictor  # noqa: E402
from mnistlab.preprocess import preprocess_image  # noqa: E402

# The five label-conditional conventions each change one class in twenty of a batch; they are
# measured together (one setting), the label-free families one by one.
GROUPS = {
    "conventions": "continental_one,crossed_seven,open_four,looped_two,hooked_nine",
}
SETTINGS = ("baseline", "all", *GROUPS, *config.WRITER_FAMILIES)
DEFAULT_SETTINGS = ("baseline", "all", "conventions", "aspect", "slant", "broken", "stray", "ink")


def run_one(setting: str, seed: int, epochs: int, dataset, digits, labels) -> dict:
    settings = dict(RECIPE, epochs=epochs, seed=seed, robust_augment=True, robust_fraction=0.5)
    settings["model_kwargs"] = {"widths": [32, 48, 64, 128]}
    if setting != "baseline":
        settings["writer_augment"] = GROUPS.get(setting, setting)
    cfg = config.TrainConfig(**settings)
    result = engine.train(
        cfg, dataset, log=lambda line: None, progress=False, save_checkpoint=False
    )
    if result.status != "finished":
        raise SystemExit(f"{setting} seed {seed}: {result.status} {result.error}")
    right = Predictor(model=result.model).probabilities(digits).argmax(1) == labels
    return {
        "setting": setting,
        "seed": seed,
        "epochs": epochs,
        "mnist_test": result.metrics["test_acc"],
        "tuning_half": float(right[:DEV_SIZE].mean()),
        "reporting_half": float(right[DEV_SIZE:].mean()),
        "train_seconds": result.train_seconds,
        "machine": f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}",
    }


def table(rows: list[dict]) -> str:
    """Markdown: per setting, mean ± half the range over seeds, and the change from the
    baseline in points, marked "(noise)" where it is no larger than the two settings' half
    ranges added together: two seeds cannot tell such a change from seed-to-seed variation."""
    by: dict[str, list[dict]] = {}
    for row in rows:
        by.setdefault(row["setting"], []).append(row)
    base = by.get("baseline", [])

    def stats(got: list[dict], key: str) -> tuple[float, float]:
        values = [r[key] for r in got]
        return statistics.fmean(values), (max(values) - min(values)) / 2

    def cells(got: list[dict], key: str) -> str:
        mean, half = stats(got, key)
        text = f"{100 * mean:.2f} ± {100 * half:.2f}"
        if got is base or not base:
            return f"{text} |"
        base_mean, base_half = stats(base, key)
        change = mean - base_mean
        noise = " (noise)" if abs(change) <= half + base_half else ""
        return f"{text} | {100 * change:+.2f}{noise}"

    lines = [
        "| setting | seeds | MNIST test % | change | tuning half % (first 899) | change "
        "| reporting half % (last 898) | change |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in [s for s in SETTINGS if s in by]:
        got = by[name]
        lines.append(
            f"| {name} | {', '.join(str(r['seed']) for r in got)} | {cells(got, 'mnist_test')} "
            f"| {cells(got, 'tuning_half')} | {cells(got, 'reporting_half')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON lines, appended to")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--settings", nargs="+", default=list(DEFAULT_SETTINGS), choices=SETTINGS)
    parser.add_argument("--table", action="store_true", help="print the table of --out and stop")
    args = parser.parse_args()
    rows = (
        [json.loads(line) for line in args.out.read_text().splitlines()]
        if args.out.exists()
        else []
    )
    if args.table:
        print(table([r for r in rows if r["epochs"] == args.epochs]))
        return
    torch.set_num_threads(1)
    done = {(r["setting"], r["seed"], r["epochs"]) for r in rows}
    dataset = load_dataset("mnist")
    images, labels = load_realworld()
    digits = np.stack([preprocess_image(image) for image in images])
    # Setting by setting, every seed of one before the next: an ablation cut short has the
    # settings it finished with all their seeds.
    for setting in args.settings:
        for seed in args.seeds:
            if (setting, seed, args.epochs) in done:
                continue
            start = time.perf_counter()
            row = run_one(setting, seed, args.epochs, dataset, digits, labels)
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(
                f"{setting} seed {seed}: {json.dumps(row)} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
