"""`build_report(sweep_dir)`: read the ledger, write tables, figures, report.md and index.html."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write_bytes
from ..ledger import MANIFEST, read_runs
from . import plots
from .conclusions import conclusions
from .document import Block, Bullets, Heading, Image, Paragraph, TableBlock, render_markdown
from .html import render_html
from .runs import Best, Run, best_per_model, count, pct, to_runs
from .tables import all_runs_table, best_table, describe_best

MAX_GALLERY = 48
# Names this module writes; stale copies from an earlier build are removed so that the
# folder never shows a figure of a model that is no longer in the sweep.
OWN_FIGURES = re.compile(
    r"^(curves_.+|acc_vs_params|acc_vs_time|time_vs_params|confusion|misclassified)\.png$"
)


def build_report(sweep_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """Write the lab report of a sweep folder and return the path of its index.html.

    Only the ledger is read (and, for the gallery of misclassified digits, the test set).
    Default output folder: SWEEP_DIR/report/.
    """
    sweep = Path(sweep_dir)
    if not sweep.exists():
        raise UserError(f"{sweep}: sweep folder not found")
    if not sweep.is_dir():
        raise UserError(f"{sweep}: not a directory")
    if not (sweep / "runs").is_dir():
        raise UserError(f"{sweep}: not a sweep folder (no runs/)")
    records = _read_ledger(sweep)
    out = Path(out_dir) if out_dir is not None else sweep / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")

    files: dict[str, bytes] = {}
    blocks = assemble(to_runs(records), sweep, files)
    files["report.md"] = render_markdown(blocks).encode()
    title = f"mnistlab report: {sweep.resolve().name}"
    files["index.html"] = render_html(blocks, title).encode()

    try:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.iterdir():
            if OWN_FIGURES.match(old.name) and old.name not in files:
                old.unlink()
        for name, payload in files.items():
            atomic_write_bytes(out / name, payload)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return out / "index.html"


def _read_ledger(sweep: Path) -> list[dict]:
    try:
        return read_runs(sweep)
    except json.JSONDecodeError:
        # read_runs does not say which file; find it, so the user knows what to fix.
        for path in [sweep / MANIFEST, *sorted((sweep / "runs").glob("*/*.json"))]:
            if not path.is_file():
                continue
            try:
                json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise UserError(f"{path}: not valid JSON ({exc})") from None
        raise
    except OSError as exc:
        raise UserError(f"{exc.filename or sweep}: cannot read ({exc.strerror})") from None


def _safe_name(model: str, taken: set[str]) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", model).strip("._") or "model"
    name, i = f"curves_{stem}.png", 2
    while name in taken:
        name, i = f"curves_{stem}_{i}.png", i + 1
    return name


def _environment(runs: list[Run]) -> str:
    """Where the numbers come from: device, precision, torch and code versions (if uniform)."""
    parts = []
    for key, label in (
        ("device", "device"),
        ("precision", "precision"),
        ("torch_version", "torch"),
        ("git_commit", "code"),
    ):
        values = sorted({str(r.result[key]) for r in runs if r.result and r.result.get(key)})
        if values:
            parts.append(
                f"{label} {values[0]}" if len(values) == 1 else f"{label}: {', '.join(values)}"
            )
    return "; ".join(parts)


def assemble(runs: list[Run], sweep: Path, files: dict[str, bytes]) -> list[Block]:
    """The report's blocks; figures and table files are added to `files` (name -> bytes)."""
    bests = best_per_model(runs)
    statuses = sorted({r.status for r in runs})
    tally = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in statuses) or "none"
    blocks: list[Block] = [
        Heading(f"Lab report: {sweep.resolve().name}", level=1),
        Paragraph(
            f"{len(runs)} runs in {sweep} ({tally}). Written by mnistlab report from the "
            "ledger alone: every number comes from the runs' result.json and history.json."
        ),
    ]
    environment = _environment(runs)
    if environment:
        blocks.append(Paragraph(f"Recorded with {environment}.", note=True))

    blocks += [Heading("Conclusions", anchor="conclusions"), Bullets(conclusions(runs))]

    table = best_table(bests, runs)
    files["best_per_model.md"] = render_markdown([TableBlock(table)]).encode()
    files["best_per_model.csv"] = table.csv().encode()
    blocks += [
        Heading("Best combination per model", anchor="best"),
        TableBlock(table, ["best_per_model.csv", "best_per_model.md"]),
    ]

    figures: list[Block] = []
    for name, png, alt in (
        ("acc_vs_params.png", plots.accuracy_vs(bests, "params"), "Test accuracy vs parameters"),
        ("acc_vs_time.png", plots.accuracy_vs(bests, "seconds"), "Test accuracy vs running time"),
        ("time_vs_params.png", plots.time_vs_params(bests, runs), "Running time vs parameters"),
    ):
        if png is not None:
            files[name] = png
            figures.append(Image(name, alt, png))
    blocks.append(Heading("Accuracy, size and time", anchor="size"))
    blocks += figures or [Paragraph("No finished run, so nothing to plot yet.", note=True)]

    blocks.append(Heading("Loss curves per combination", anchor="curves"))
    blocks.append(
        Paragraph(
            "Rows: learning rate; columns: dropout. Train loss solid, validation loss dashed; "
            "the dotted grey line marks the epoch chosen by validation accuracy. Diverged runs "
            "are drawn as far as they went and marked in red.",
            note=True,
        )
    )
    taken: set[str] = set()
    models = sorted({r.model for r in runs})
    for model in models:
        model_runs = [r for r in runs if r.model == model and r.history]
        if not model_runs:
            continue
        name = _safe_name(model, taken)
        taken.add(name)
        files[name] = plots.curves(model, model_runs)
        blocks.append(Image(name, f"Parameter combinations for {model}", files[name]))
    if not taken:
        blocks.append(Paragraph("No run has recorded an epoch yet.", note=True))

    if bests:
        blocks += _best_model_blocks(bests[0], runs, files)

    table = all_runs_table(runs)
    files["all_runs.md"] = render_markdown([TableBlock(table)]).encode()
    files["all_runs.csv"] = table.csv().encode()
    blocks += [
        Heading("All runs", anchor="runs"),
        TableBlock(table, ["all_runs.csv", "all_runs.md"]),
    ]
    return blocks


def _best_model_blocks(best: Best, runs: list[Run], files: dict[str, bytes]) -> list[Block]:
    run = best.run
    result = run.result or {}
    blocks: list[Block] = [
        Heading(f"Best model: {run.model} ({describe_best(best, runs)})", anchor="best-model"),
        Paragraph(
            f"Run {run.run_id}: {pct(run.metric('val_acc'))}% validation, "
            f"{pct(run.metric('test_acc'))}% test accuracy at epoch "
            f"{result.get('best_epoch')}."
        ),
    ]
    matrix = result.get("test_confusion")
    if _is_matrix(matrix):
        total = sum(map(sum, matrix))
        right = sum(matrix[i][i] for i in range(len(matrix)))
        title = (
            f"Confusion matrix: {run.model}, test set "
            f"({count(total)} images, {count(total - right)} wrong)"
        )
        files["confusion.png"] = plots.confusion(matrix, title)
        blocks.append(Image("confusion.png", title, files["confusion.png"]))
    else:
        blocks.append(Paragraph("No test confusion matrix was recorded for this run.", note=True))

    blocks += _gallery(run, files)
    return blocks


def _is_matrix(matrix) -> bool:
    return (
        isinstance(matrix, list)
        and len(matrix) > 0
        and all(isinstance(row, list) and len(row) == len(matrix) for row in matrix)
        and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for row in matrix for v in row
        )
    )


def _gallery(run: Run, files: dict[str, bytes]) -> list[Block]:
    result = run.result or {}
    recorded = result.get("test_misclassified")
    if not isinstance(recorded, list):
        return [Paragraph("No misclassified test digits were recorded for this run.", note=True)]
    items = [
        tuple(item)
        for item in recorded
        if isinstance(item, list | tuple)
        and len(item) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
    ]
    if not items:
        return [Paragraph("This run misclassified no test digit (or recorded none).", note=True)]
    dataset_name = str(run.config.get("dataset", "mnist"))
    try:
        from ..data import load_dataset

        dataset = load_dataset(dataset_name, run.config.get("data_dir"))
    except (OSError, ValueError) as exc:
        return [
            Paragraph(
                f"Gallery of misclassified digits skipped: the test set could not be "
                f"loaded ({exc}).",
                note=True,
            )
        ]
    images = dataset.test_images.numpy()  # (N, H, W) uint8
    labels = dataset.test_labels.numpy()
    if any(not 0 <= i < len(labels) or int(labels[i]) != true for i, true, _ in items):
        return [
            Paragraph(
                f"Gallery of misclassified digits skipped: the test set now at "
                f"{dataset.source} does not match the run's record (indices or "
                f"labels differ).",
                note=True,
            )
        ]
    shown = items[:MAX_GALLERY]
    title = (
        f"Misclassified test digits of {run.model} (true->predicted), "
        f"{len(shown)} of {len(items)} recorded"
    )
    files["misclassified.png"] = plots.misclassified(images, shown, title)
    return [Image("misclassified.png", title, files["misclassified.png"])]
