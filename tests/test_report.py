"""The lab report, built from synthetic ledgers written in the exact result.json schema."""

from __future__ import annotations

import csv
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from mnistlab.cli import main
from mnistlab.data import write_idx
from mnistlab.errors import UserError
from mnistlab.ledger import read_runs, run_id_for, write_json
from mnistlab.report import build_report, conclusions

PARAMS = {"lenet": 61_990, "wrn": 2_748_602, "resnet": 11_172_810, "vgg": 28_000_000}
SECONDS = {"lenet": 190.0, "wrn": 650.0, "resnet": 610.0, "vgg": 870.0}
FILES = [
    "index.html",
    "report.md",
    "best_per_model.md",
    "best_per_model.csv",
    "all_runs.md",
    "all_runs.csv",
    "acc_vs_params.png",
    "acc_vs_time.png",
    "time_vs_params.png",
    "confusion.png",
]


def history(epochs: int = 4, gap: float = 0.02, wobble: float = 0.0) -> list[dict]:
    """Falling losses; val loss sits `gap` above train loss and zig-zags by `wobble`."""
    rows = []
    for e in range(1, epochs + 1):
        train = 0.4 / e
        val = train + gap + (wobble if e % 2 else -wobble) * (e > 1)
        rows.append(
            {
                "epoch": e,
                "train_loss": train,
                "train_acc": 1 - train / 10,
                "val_loss": val,
                "val_acc": 1 - val / 10,
                "lr": 1e-3,
                "seconds": 1.0,
                "images_per_second": 1000.0,
            }
        )
    return rows


def record(
    model="lenet",
    lr=1e-3,
    dropout=0.25,
    *,
    status="finished",
    val_acc=0.99,
    test_acc=0.99,
    train_acc=0.995,
    hist=None,
    seed=0,
    data_dir=None,
    misclassified=None,
    error=None,
    predictions=None,
    test_used=None,
    train_used=None,
    **config_extra,
) -> dict:
    """One ledger record as `read_runs` returns it (result None for pending runs).

    `predictions` ({"test_labels", "test_predictions"}) and `test_used` / `train_used` (the
    split's counts) are left out unless given, as in ledgers from before they were kept."""
    hist = history() if hist is None else hist
    config = {
        "model": model,
        "lr": lr,
        "dropout": dropout,
        "epochs": max(len(hist), 4),
        "batch_size": 64,
        "seed": seed,
        "dataset": "mnist",
        "data_dir": data_dir,
        "train_subset": 2000,
        "model_kwargs": {},
        "device": "auto",
        "out_dir": None,
        **config_extra,
    }
    run_id = run_id_for(config)
    result = None
    if status == "failed":  # the engine never got to measure anything
        val_acc = test_acc = train_acc = None
    if status not in ("pending", "partial"):
        confusion = [[0] * 10 for _ in range(10)]
        for k in range(10):
            confusion[k][k] = 100
        confusion[7][7], confusion[7][1] = 98, 2  # 1,000 test images; MNIST's image 0 is a 7
        result = {
            "run_id": run_id,
            "status": status,
            "error": error,
            "model": model,
            "params": PARAMS.get(model, 1000),
            "config": config,
            "best_epoch": len(hist) or None,
            "epochs_run": len(hist),
            "train_loss": 0.01,
            "train_acc": train_acc,
            "val_loss": 0.03,
            "val_acc": val_acc,
            "test_loss": 0.03,
            "test_acc": test_acc,
            "train_seconds": SECONDS.get(model, 100.0) - 5,
            "total_seconds": SECONDS.get(model, 100.0),
            "images_per_second": 1000.0,
            "device": "cpu",
            "precision": "bf16",
            "torch_version": "2.13.0",
            "git_commit": "abc1234",
            "seed": seed,
            "split": {
                "seed": 0,
                "fraction": 0.1,
                "train_size": 54000,
                "val_size": 6000,
                "hash": "x",
            },
            "train_subset": config.get("train_subset"),
            "per_class_accuracy": [0.98] * 10,
            "test_confusion": confusion,
            "test_misclassified": misclassified if misclassified is not None else [[0, 7, 1]],
        }
        if test_used is not None:
            result["split"] |= {
                "test_used": test_used,
                "val_used": min(6000, config.get("eval_subset") or 6000),
                "train_used": train_used or min(54000, config.get("train_subset") or 54000),
            }
    if status not in ("finished", "diverged", "pruned"):
        predictions = None
    return {
        "run_id": run_id,
        "status": status,
        "config": config,
        "history": hist,
        "result": result,
        "predictions": predictions,
    }


def write_ledger(sweep: Path, records: list[dict]) -> Path:
    for rec in records:
        folder = sweep / "runs" / rec["run_id"]
        write_json(folder / "config.json", rec["config"] | {"out_dir": str(folder)})
        if rec["history"]:
            write_json(folder / "history.json", rec["history"])
        if rec["result"] is not None:
            write_json(folder / "result.json", rec["result"])
        if rec.get("predictions") is not None:
            write_json(folder / "predictions.json", rec["predictions"])
    return sweep


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def sentence(sentences: list[str], word: str) -> str:
    found = [s for s in sentences if word in s]
    assert len(found) == 1, (word, sentences)
    return found[0]


# ---------------------------------------------------------------- tables and files
def test_best_per_model_is_chosen_by_validation_not_test(tmp_path):
    records = [
        record("lenet", 1e-3, 0.25, val_acc=0.9900, test_acc=0.9850, train_acc=0.9950),
        record("lenet", 5e-3, 0.25, val_acc=0.9850, test_acc=0.9950),  # higher test, lower val
        record("lenet", 1e-3, 0.5, val_acc=0.9800, test_acc=0.9800),
        record("wrn", 5e-4, 0.3, val_acc=0.9939, test_acc=0.9937),
        record(
            "wrn",
            1e-3,
            0.3,
            status="diverged",
            val_acc=0.9999,
            test_acc=0.9999,
            hist=history(2) + [{"epoch": 3, "train_loss": None, "val_loss": None}],
        ),
    ]
    sweep = write_ledger(tmp_path / "sweep", records)
    index = build_report(sweep)
    out = sweep / "report"
    assert index == out / "index.html"
    for name in [*FILES, "curves_lenet.png", "curves_wrn.png", "misclassified.png"]:
        assert (out / name).stat().st_size > 0, name

    rows = {r["model"]: r for r in read_csv(out / "best_per_model.csv")}
    assert list(rows) == ["wrn", "lenet"]  # ranked by validation accuracy
    lenet = rows["lenet"]
    assert (lenet["lr"], lenet["dropout"]) == ("0.001", "0.25")
    assert (lenet["train_acc_pct"], lenet["val_acc_pct"], lenet["test_acc_pct"]) == (
        "99.50",
        "99.00",
        "98.50",
    )
    assert lenet["params"] == "61990" and lenet["total_seconds"] == "190.0"
    # A diverged run never wins, whatever its numbers.
    assert rows["wrn"]["val_acc_pct"] == "99.39" and rows["wrn"]["lr"] == "0.0005"

    table = (out / "best_per_model.md").read_text()
    assert "| lenet | 0.001 | 0.25 | 99.00 | 98.50 | 97.54–99.09 | 190.0 |" in table
    assert "| lenet | 61,990 | 4 | 4 | 99.50 | — | lenet-" in table  # the detail table
    assert (
        "Trained and judged on: 2,000 of 54,000 training images × 4 epochs, judged on 6,000 "
        "validation and 1,000 test images."
    ) in table
    report = (out / "report.md").read_text()
    assert "![Parameter combinations for lenet](curves_lenet.png)" in report


def test_diverged_and_failed_runs_are_marked_in_the_full_table(tmp_path):
    diverged = history(2) + [
        {"epoch": 3, "train_loss": None, "train_acc": 0.1, "val_loss": None, "val_acc": None}
    ]
    records = [
        record("lenet", 1e-3, 0.25, val_acc=0.99),
        record("lenet", 5e-2, 0.25, status="diverged", hist=diverged, val_acc=0.5),
        record("lenet", 1e-2, 0.25, status="failed", hist=[], error="CUDA out of memory"),
        record("lenet", 1e-4, 0.25, status="partial", hist=history(1)),
    ]
    out = build_report(write_ledger(tmp_path / "s", records), tmp_path / "out").parent
    rows = read_csv(out / "all_runs.csv")
    statuses = [r["status"] for r in rows]
    # Runs without a validation accuracy come last, in run-id order.
    assert statuses[:2] == ["finished", "diverged"] and set(statuses[2:]) == {"failed", "partial"}
    assert rows[1]["note"] == "diverged (non-finite loss) at epoch 3"
    assert rows[statuses.index("failed")]["note"] == "CUDA out of memory"
    md = (out / "all_runs.md").read_text()
    assert "| lenet | 0.05 | 0.25 | 50.00 | 99.00 | 98.17–99.46 | 190.0 | DIVERGED |" in md
    assert "| FAILED |" in md
    html = (out / "index.html").read_text()
    assert '<tr class="bad"><td class="txt">lenet</td><td class="num">0.05</td>' in html
    assert '<td class="txt">DIVERGED</td></tr>' in html
    said = conclusions(read_runs(tmp_path / "s"))
    assert sentence(said, "diverged (non-finite loss)") == (
        "1 run diverged (non-finite loss): lenet (lr=0.05, dropout=0.25) at epoch 3."
    )
    assert "1 run failed: lenet (lr=0.01, dropout=0.25) (CUDA out of memory)." in said
    assert "1 run has not finished (1 partial); it is not ranked." in said


def test_a_sweep_with_no_finished_run_still_builds(tmp_path):
    records = [
        record("lenet", status="failed", hist=[], error="boom"),
        record("wrn", status="partial", hist=history(1)),
    ]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    report = (out / "report.md").read_text()
    assert "No run finished, so there is no best model yet (2 runs recorded)." in report
    assert len(read_csv(out / "all_runs.csv")) == 2 and read_csv(out / "best_per_model.csv") == []
    assert (out / "curves_wrn.png").is_file() and not (out / "confusion.png").exists()


def test_repeated_seeds_are_averaged_and_show_their_spread(tmp_path):
    records = [
        record("lenet", 1e-3, 0.25, seed=s, val_acc=v, test_acc=0.99)
        for s, v in ((0, 0.990), (1, 0.992), (2, 0.994))
    ]
    records.append(record("lenet", 5e-3, 0.25, val_acc=0.9935))  # one lucky run loses to the mean
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    (row,) = read_csv(out / "best_per_model.csv")
    assert (row["lr"], row["runs"], row["val_acc_pct"], row["val_acc_pct_std"]) == (
        "0.005",
        "1",
        "99.35",
        "",
    )
    records[-1] = record("lenet", 5e-3, 0.25, val_acc=0.9915)
    out = build_report(write_ledger(tmp_path / "t", records)).parent
    (row,) = read_csv(out / "best_per_model.csv")
    assert (row["lr"], row["runs"], row["val_acc_pct"], row["val_acc_pct_std"]) == (
        "0.001",
        "3",
        "99.20",
        "0.20",
    )
    assert "| 99.20 ± 0.20 |" in (out / "best_per_model.md").read_text()


def test_empty_runs_folder_builds(tmp_path):
    (tmp_path / "s" / "runs").mkdir(parents=True)
    out = build_report(tmp_path / "s").parent
    assert "The sweep has no runs recorded yet" in (out / "report.md").read_text()
    assert (out / "index.html").is_file()


def test_single_epoch_runs_and_extra_grid_fields(tmp_path):
    records = [
        record("lenet", lr, 0.25, hist=history(1), batch_size=bs, val_acc=0.98 + bs / 1e4)
        for lr in (1e-3, 1e-2)
        for bs in (32, 128)
    ]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    rows = read_csv(out / "best_per_model.csv")
    assert rows[0]["batch_size"] == "128" and rows[0]["val_acc_pct"] == "99.28"
    assert (out / "curves_lenet.png").stat().st_size > 5000


def test_config_strings_are_escaped_in_html(tmp_path):
    records = [record(optimizer="<script>alert(1)</script>"), record(optimizer="adam")]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    html = (out / "index.html").read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


# ---------------------------------------------------------------- conclusions
def test_correlation_needs_three_models_and_matches_the_numbers():
    two = [record("lenet"), record("wrn")]
    assert not any("Pearson" in s for s in conclusions(two))
    three = [*two, record("vgg")]
    said = sentence(conclusions(three), "Pearson")
    xs = [math.log10(PARAMS[m]) for m in ("lenet", "wrn", "vgg")]
    ys = [math.log10(SECONDS[m]) for m in ("lenet", "wrn", "vgg")]
    r = statistics.correlation(xs, ys)
    slope = statistics.linear_regression(xs, ys).slope
    # r = 0.98 over three models: p = 0.13, so no direction is claimed.
    assert said.startswith("No relation between running time and parameter count is established")
    assert f"Pearson r = {r:.2f} (p=0.13)" in said and f"log-log slope {slope:.2f}" in said


def test_best_model_and_efficiency_sentences():
    records = [
        record("resnet", val_acc=0.9930, test_acc=0.9931),
        record("lenet", val_acc=0.9925, test_acc=0.9940),
        record("vgg", val_acc=0.9800, test_acc=0.9800),
    ]
    said = conclusions(records)
    # lenet (99.25%) lies inside resnet's interval (99.30%, 6,000 images): no single best.
    assert said[0].startswith("Highest validation accuracy: resnet (lr=0.001, dropout=0.25)")
    assert said[0].endswith("lenet within noise of it, so no single best model is established.")
    assert "99.30% validation and 99.31% test" in said[0]
    assert "On test accuracy lenet's best combination scores higher (99.40% vs 99.31%)" in said[1]
    efficient = sentence(said, "Most accurate per parameter")
    assert "lenet with 61,990 parameters (180x fewer than resnet)" in efficient


def test_empty_sweep_has_one_sentence():
    assert conclusions([]) == [
        "The sweep has no runs recorded yet, so there is nothing to compare."
    ]


# ---------------------------------------------------------------- the misclassified gallery
def tiny_idx(folder: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = np.arange(12, dtype=np.uint8) % 10
    for stem, n in (("train", 20), ("t10k", 12)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))
    return labels


def test_misclassified_gallery_reads_the_runs_test_set(tmp_path):
    labels = tiny_idx(tmp_path / "data")
    wrong = [[i, int(labels[i]), (int(labels[i]) + 1) % 10] for i in (1, 4, 7, 11)]
    rec = record(data_dir=str(tmp_path / "data"), misclassified=wrong)
    out = build_report(write_ledger(tmp_path / "s", [rec])).parent
    assert (out / "misclassified.png").stat().st_size > 1000
    assert "4 of 4 recorded" in (out / "report.md").read_text()


@pytest.mark.parametrize("problem", ["missing data", "labels differ"])
def test_gallery_is_skipped_with_a_note_when_the_test_set_is_unusable(tmp_path, problem):
    labels = tiny_idx(tmp_path / "data")
    data_dir = tmp_path / ("data" if problem == "labels differ" else "nowhere")
    wrong = [[2, (int(labels[2]) + 3) % 10, 0]]
    out = build_report(
        write_ledger(tmp_path / "s", [record(data_dir=str(data_dir), misclassified=wrong)])
    ).parent
    assert not (out / "misclassified.png").exists() and (out / "confusion.png").exists()
    assert "Gallery of misclassified digits skipped" in (out / "report.md").read_text()


# ---------------------------------------------------------------- errors and the CLI
def test_cli_report_on_missing_dir_exits_2_with_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err == f"mnistlab: error: {tmp_path / 'missing'}: sweep folder not found\n"


def test_folder_without_runs_is_not_a_sweep(tmp_path):
    with pytest.raises(UserError, match=r": not a sweep folder \(no runs/\)$"):
        build_report(tmp_path)


def test_cli_report_writes_to_out(tmp_path, capsys):
    sweep = write_ledger(tmp_path / "s", [record()])
    assert main(["report", str(sweep), "--out", str(tmp_path / "r")]) == 0
    assert capsys.readouterr().out.strip() == f"report: {tmp_path / 'r' / 'index.html'}"


def test_a_damaged_result_is_set_aside_and_the_run_reported_unfinished(tmp_path, capsys):
    sweep = write_ledger(tmp_path / "s", [record(), record(lr=5e-3)])
    bad = next((sweep / "runs").glob("*/result.json"))
    bad.write_text("{not json")
    out = build_report(sweep).parent
    assert "result.json: damaged" in capsys.readouterr().out  # the ledger names the file
    assert list(bad.parent.glob("result.json.damaged-*"))  # kept for inspection
    assert (
        "1 run has not finished (1 partial); it is not ranked." in (out / "report.md").read_text()
    )


# ---------------------------------------------------------------- the page in a browser
@pytest.mark.browser
def test_html_renders_in_chromium_without_errors(browser, tmp_path):
    labels = tiny_idx(tmp_path / "data")
    records = [record("lenet", lr, d) for d in (0.0, 0.5) for lr in (1e-3, 5e-3)]
    records.append(
        record(
            "wrn",
            1e-3,
            0.25,
            val_acc=0.995,
            data_dir=str(tmp_path / "data"),
            misclassified=[[3, int(labels[3]), 5]],
        )
    )
    index = build_report(write_ledger(tmp_path / "s", records))
    page = browser.new_page()
    try:
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        title = page.title()
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        page.close()
    assert errors == []
    assert len(widths) == 7 and all(w > 0 for w in widths), widths  # 3 + 2 curves + 2
    assert title == "mnistlab report: s"
