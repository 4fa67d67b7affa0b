"""The report's tables: the best combination per model (the user's table) and every run.

A `Table` holds display strings once, and renders them as Markdown, CSV or (in html.py) HTML,
so the three never disagree. Accuracies are percentages with 2 decimals everywhere.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from .runs import (
    SEED,
    Best,
    Run,
    count,
    describe,
    finite,
    fmt_value,
    grid_fields,
    pct,
    seconds,
    table_fields,
)

ACCURACIES = (
    ("train_acc", "train acc (%)"),
    ("val_acc", "val acc (%)"),
    ("test_acc", "test acc (%)"),
)


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    # CSV has no room for "mean ± std" in one cell: it gets its own columns and plain numbers.
    csv_columns: list[str] = field(default_factory=list)
    csv_rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        def cell(text: str) -> str:
            return " ".join(str(text).split()).replace("|", "\\|") or " "

        lines = [
            "| " + " | ".join(cell(c) for c in self.columns) + " |",
            "|" + "|".join("---" for _ in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        if not self.rows:
            lines.append("| " + " | ".join(["(none)"] + [" "] * (len(self.columns) - 1)) + " |")
        text = "\n".join(lines) + "\n"
        if self.notes:
            text += "\n" + "\n".join(f"_{n}_\n" for n in self.notes)
        return text

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.csv_columns or self.columns)
        writer.writerows(self.csv_rows or self.rows)
        return buf.getvalue()


def _epochs(run: Run) -> str:
    planned = run.planned_epochs
    if planned is not None and planned != run.epochs_run:
        return f"{run.epochs_run} of {planned}"
    return str(run.epochs_run)


def best_table(bests: list[Best], runs: list[Run]) -> Table:
    fields = [f for f in table_fields(runs) if f != SEED]
    # Seeds in the grid: say how many runs each row averages, even where it is one.
    repeats = SEED in grid_fields(runs) or any(b.n > 1 for b in bests)
    columns = ["model", "params", *fields, "epochs run", "best epoch"]
    columns += [h for _, h in ACCURACIES] + ["time (s)"]
    csv_columns = ["model", "params", *fields, "epochs_run", "best_epoch"]
    for key, _ in ACCURACIES:
        csv_columns += [f"{key}_pct"] + ([f"{key}_pct_std"] if repeats else [])
    csv_columns += ["total_seconds"]
    if repeats:
        columns.insert(2, "runs (seeds)")
        csv_columns.insert(2, "runs")
    columns.append("run")
    csv_columns.append("run_id")

    rows, csv_rows = [], []
    for b in bests:
        run = b.run
        values = [fmt_value(run.fields.get(f)) for f in fields]
        best_epoch = fmt_value(run.result.get("best_epoch"))
        row = [b.model, count(b.params), *values, _epochs(run), best_epoch]
        csv_row = [b.model, fmt_value(b.params), *values, _epochs(run), best_epoch]
        for key, _ in ACCURACIES:
            mean, std = b.mean(key), b.std(key)
            row.append(pct(mean) + (f" ± {std * 100:.2f}" if std is not None else ""))
            csv_row += [pct(mean)] + ([pct(std) if std is not None else ""] if repeats else [])
        row.append(seconds(b.seconds))
        csv_row.append(seconds(b.seconds))
        if repeats:
            row.insert(2, str(b.n))
            csv_row.insert(2, str(b.n))
        row.append(run.run_id)
        csv_row.append(run.run_id)
        rows.append(row)
        csv_rows.append(csv_row)

    notes = [
        "Best = highest validation accuracy among finished runs (mean over seeds where a "
        "combination was repeated); test accuracy is measured once on the chosen epoch's "
        "weights and never used to choose. Time is the run's total wall-clock time."
    ]
    if repeats:
        notes.append(
            "± is the standard deviation over the combination's runs; the best epoch "
            "and run id are those of its best run."
        )
    notes += budget_notes([r for b in bests for r in b.runs])
    return Table(columns, rows, csv_columns, csv_rows, notes)


def budget_notes(runs: list[Run]) -> list[str]:
    """'Trained on N of M images, E epochs' for the runs shown, grouped when budgets differ."""
    budgets: dict[str, list[str]] = {}
    for run in runs:
        result = run.result or {}
        split = result.get("split") or {}
        train_size = finite(split.get("train_size"))
        subset = finite(result.get("train_subset"))
        if train_size is None:
            images = f"{count(int(subset))} training images" if subset else "the training split"
        elif subset is not None and subset < train_size:
            images = f"{count(int(subset))} of {count(int(train_size))} training images"
        else:
            images = f"all {count(int(train_size))} training images"
        val_size = finite(split.get("val_size"))
        val_used = finite(split.get("val_used"))
        test_used = finite(split.get("test_used"))
        if val_used is not None and val_size is not None and val_used < val_size:
            images += f" (judged on {count(int(val_used))} of {count(int(val_size))} validation"
            images += f" and the first {count(int(test_used))} test images)" if test_used else ")"
        elif val_size is not None:
            images += f" (validation: {count(int(val_size))})"
        planned = run.planned_epochs
        epochs = f"{run.epochs_run} epoch" + ("" if run.epochs_run == 1 else "s")
        if planned is not None and planned != run.epochs_run:
            epochs = f"{run.epochs_run} of {planned} planned epochs"
        text = f"{images}, {epochs}"
        if run.model not in budgets.setdefault(text, []):
            budgets[text].append(run.model)
    if not budgets:
        return []
    if len(budgets) == 1:
        return [f"Trained on {next(iter(budgets))}."]
    parts = [f"{', '.join(models)}: {text}" for text, models in budgets.items()]
    return ["Training budgets differ — " + "; ".join(parts) + "."]


def all_runs_table(runs: list[Run]) -> Table:
    fields = table_fields(runs)
    columns = ["model", "status", *fields, "params", "epochs run", "best epoch"]
    columns += [h for _, h in ACCURACIES] + ["time (s)", "run", "note"]

    def order(run: Run):
        val = run.metric("val_acc")
        return (run.model, -val if val is not None else math.inf, run.run_id)

    rows, csv_rows = [], []
    for run in sorted(runs, key=order):
        result = run.result or {}
        note = ""
        if run.status == "diverged":
            note = f"diverged (non-finite loss) at epoch {run.diverged_epoch}"
        elif result.get("error"):
            note = " ".join(str(result["error"]).split())[:160]
        status = run.status.upper() if run.status in ("diverged", "failed") else run.status
        rows.append(
            [
                run.model,
                status,
                *(fmt_value(run.fields.get(f)) for f in fields),
                count(run.params),
                _epochs(run),
                fmt_value(result.get("best_epoch")),
                *(pct(run.metric(key)) for key, _ in ACCURACIES),
                seconds(run.seconds),
                run.run_id,
                note,
            ]
        )
        # Machines reading the CSV want the raw status and an unformatted count.
        csv_rows.append([*rows[-1][:1], run.status, *rows[-1][2:]])
        csv_rows[-1][2 + len(fields)] = fmt_value(run.params)
    notes = ["Sorted by model, then validation accuracy. DIVERGED and FAILED runs are kept."]
    statuses = sorted({r.status for r in runs})
    if statuses:
        tally = ", ".join(f"{sum(r.status == s for r in runs)} {s}" for s in statuses)
        notes.append(f"{len(runs)} runs: {tally}.")
    return Table(columns, rows, columns, csv_rows, notes)


def describe_best(b: Best, runs: list[Run]) -> str:
    return describe(b.run, [f for f in table_fields(runs) if f != SEED])
