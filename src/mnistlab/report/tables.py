"""The report's tables: the best combination per model (the user's table), the lr x dropout
grid of each model (or, for a search, its best trials), every run, and the user's reported
results beside ours.

A `Table` holds display strings once, and renders them as Markdown, CSV or (in html.py) HTML,
so the three never disagree. Accuracies are percentages with 2 decimals everywhere; every test
accuracy has its 95% interval beside it. Long listings come as two tables that fit an A4
page: the key columns (model, lr, dropout, val, test, interval, time) first, the wide detail in
a second table with the same rows in the same order. CSV files keep every column in one table
with English column names, whatever the report's language.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

from .analysis import Analysis, Group
from .conclusions import (
    budget_label,
    exclusion_text,
    interval_text,
    pct,
    protocol_difference,
    status_tally,
)
from .i18n import Tr
from .runs import (
    DROPOUT,
    LR,
    SEED,
    Best,
    Run,
    combinations,
    concurrency,
    count,
    fmt_value,
    grid_fields,
    read_curves,
    seconds,
    sort_key,
    value_key,
)
from .stats import accuracy_interval
from .trials import BEST_TRIALS, SearchInfo, best_trials, value_text, within_noise
from .user_results import user_results

ACCURACIES = ("train_acc", "train_eval_acc", "val_acc", "test_acc")


# A cell that reads as a number (right-aligned, never broken): "99.28", "98.1 ± 0.2", "3 of 12".
NUMERIC = re.compile(r"^(—|[-+]?[\d.,]+(\s*(±|of|/|–)\s*[\d.,]+)?)$")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    # CSV has no room for "mean ± std" in one cell: it gets its own columns and plain numbers.
    csv_columns: list[str] = field(default_factory=list)
    csv_rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    bad: list[bool] = field(default_factory=list)  # rows to highlight (diverged, failed, ...)
    caption: str = ""

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


# ---------------------------------------------------------------- fitting an A4 page
# Printed tables use 8 pt text (10.7 CSS px): about 6.3 px per Latin character and 10.7 px per
# Chinese one, plus 9 px of padding and border per cell. The printed column is 703 px wide.
PAGE_PX = 680  # a little under the 703 px column: browsers round and fonts differ
LATIN_PX, CJK_PX, CELL_PX, LONG_PX = 6.3, 10.7, 9.0, 90.0


def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"


def _min_px(text: str, numeric: bool) -> float:
    """The narrowest a cell can be: its longest unbreakable run of characters."""
    if numeric:
        runs = [text]
    elif len(text) > 40:  # free text (notes, errors) wraps anywhere in print
        return LONG_PX
    else:
        runs = text.split()
    widest = 0.0
    for run in runs or [""]:
        if any(_is_cjk(c) for c in run):  # Chinese may break between any two characters
            latin = max(
                (len(part) for part in "".join(" " if _is_cjk(c) else c for c in run).split()),
                default=0,
            )
            widest = max(widest, CJK_PX, latin * LATIN_PX)
        else:
            widest = max(widest, len(run) * LATIN_PX)
    return widest + CELL_PX


def column_px(table: Table) -> list[float]:
    widths = []
    for i, header in enumerate(table.columns):
        cells = [row[i] for row in table.rows if i < len(row)]
        width = _min_px(header, False)
        for cell in cells:
            width = max(width, _min_px(cell, bool(NUMERIC.match(cell))))
        widths.append(width)
    return widths


def fit_page(table: Table, keep: int, caption: str) -> list[Table]:
    """The table as it prints on A4: whole if it fits, else split into tables that each
    repeat the first `keep` columns (which name the row) and take as many of the remaining
    columns, in order, as fit. The first table keeps the notes; the others get `caption`."""
    widths = column_px(table)
    if sum(widths) <= PAGE_PX or len(table.columns) <= keep + 1:
        return [table]
    base = sum(widths[:keep])
    parts: list[list[int]] = [[]]
    used = base
    for i in range(keep, len(table.columns)):
        if parts[-1] and used + widths[i] > PAGE_PX:
            parts.append([])
            used = base
        parts[-1].append(i)
        used += widths[i]
    tables = []
    for n, part in enumerate(parts):
        columns = list(range(keep)) + part
        tables.append(
            Table(
                [table.columns[i] for i in columns],
                [[row[i] for i in columns] for row in table.rows],
                notes=table.notes if n == 0 else [],
                bad=list(table.bad),
                caption=table.caption if n == 0 else caption,
            )
        )
    return tables


def _epochs(run: Run, tr: Tr) -> str:
    planned = run.planned_epochs
    if planned is not None and planned != run.epochs_run:
        return tr("epochs_of", run=run.epochs_run, planned=planned)
    return str(run.epochs_run)


def _acc_cell(best: Best, key: str) -> str:
    mean, std = best.mean(key), best.std(key)
    return pct(mean) + (f" ± {std * 100:.2f}" if std is not None else "")


def _raw(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value * 100:.{digits}f}"


# ---------------------------------------------------------------- best per model
def best_tables(group: Group, tr: Tr) -> tuple[Table, Table]:
    """(key table, detail table) of one budget's best combination per model."""
    extra = [f for f in group.fields if f not in (LR, DROPOUT)]
    repeats = any(b.n > 1 for b in group.bests) or SEED in grid_fields(group.runs)
    key_cols = [tr("col_model"), tr("col_lr"), tr("col_dropout")]
    key_cols += [tr("col_val"), tr("col_test"), tr("col_ci"), tr("col_time")]
    if repeats:
        key_cols.append(tr("col_runs"))
    key_cols += [_field_header(f, tr) for f in extra]
    detail_cols = [tr("col_model"), tr("col_params"), tr("col_epochs_run"), tr("col_best_epoch")]
    detail_cols += [tr("col_train"), tr("col_train_eval"), tr("col_run")]
    key_rows, detail_rows = [], []
    for b in group.bests:
        run = b.run
        row = [b.model, fmt_value(run.fields.get(LR)), fmt_value(run.fields.get(DROPOUT))]
        row += [_acc_cell(b, "val_acc"), _acc_cell(b, "test_acc")]
        row += [interval_text(b.test_interval()), seconds(b.seconds)]
        if repeats:
            row.append(str(b.n))
        row += [fmt_value(run.fields.get(f)) for f in extra]
        key_rows.append(row)
        detail_rows.append(
            [
                b.model,
                count(b.params),
                _epochs(run, tr),
                fmt_value(run.result.get("best_epoch")),
                _acc_cell(b, "train_acc"),
                _acc_cell(b, "train_eval_acc"),
                run.run_id,
            ]
        )
    notes = [tr("best_note"), *_time_notes(group.runs, tr)]
    if repeats:
        notes.append(tr("best_note_seeds"))
    notes.append(tr("ci_note"))
    notes.append(tr("budget_note", budget=budget_label(group, tr)))
    key = Table(key_cols, key_rows, notes=notes)
    detail = Table(detail_cols, detail_rows, notes=[tr("detail_note")])
    return key, detail


def best_csv(analysis: Analysis) -> Table:
    """Every budget's best combinations in one machine-readable table."""
    fields = analysis.fields
    repeats = any(b.n > 1 for b in analysis.bests) or SEED in grid_fields(analysis.runs)
    columns = ["model", "params", *fields, "epochs_run", "best_epoch"]
    for key in ACCURACIES:
        columns += [f"{key}_pct"] + ([f"{key}_pct_std"] if repeats else [])
    columns += ["test_ci_low_pct", "test_ci_high_pct", "total_seconds"]
    if repeats:
        columns.insert(2, "runs")
    columns += [*_budget_columns(), "run_id"]
    rows = []
    for group in analysis.groups:
        for b in group.bests:
            run = b.run
            row = [b.model, fmt_value(b.params), *(fmt_value(run.fields.get(f)) for f in fields)]
            row += [str(run.epochs_run), fmt_value(run.result.get("best_epoch"))]
            for key in ACCURACIES:
                row.append(pct(b.mean(key)) if b.mean(key) is not None else "")
                if repeats:
                    row.append(_raw(b.std(key)))
            interval = b.test_interval()
            row += [_raw(interval[0], 3), _raw(interval[1], 3)] if interval else ["", ""]
            row.append(seconds(b.seconds))
            if repeats:
                row.insert(2, str(b.n))
            row += [*_budget_values(group), run.run_id]
            rows.append(row)
    return Table(columns, rows)


def _budget_columns() -> list[str]:
    return ["budget", "train_images", "epochs", "val_images", "test_images"]


def _budget_values(group: Group) -> list[str]:
    b = group.budget
    return [
        group.letter,
        fmt_value(b.train_images),
        fmt_value(b.epochs),
        fmt_value(b.val_images),
        fmt_value(b.test_images),
    ]


def _field_header(name: str, tr: Tr) -> str:
    return {LR: tr("col_lr"), DROPOUT: tr("col_dropout"), SEED: tr("col_seed")}.get(name, name)


# ---------------------------------------------------------------- the lr x dropout grid
def _values(runs: list[Run], key: str) -> list:
    return sorted(
        {value_key(r.fields.get(key)): r.fields.get(key) for r in runs}.values(), key=sort_key
    )


def grid_cells(model: str, group: Group) -> dict[tuple[str, str], Best]:
    """(lr, dropout) -> the cell's best combination (over other grid fields and seeds), from
    every finished run of the model in this budget, learning or not."""
    runs = [r for r in group.runs if r.model == model and r.finished]
    cells: dict[tuple[str, str], Best] = {}
    for best in combinations(runs, group.fields):
        key = (value_key(best.run.fields.get(LR)), value_key(best.run.fields.get(DROPOUT)))
        cells.setdefault(key, best)
    return cells


def grid_table(model: str, group: Group, excluded: set[str], tr: Tr) -> Table | None:
    """Rows lr, columns dropout, each cell 'val / test'; None with fewer than 2 combinations."""
    runs = [r for r in group.runs if r.model == model]
    cells = grid_cells(model, group)
    if len(cells) < 2:
        return None
    lrs, dropouts = _values(runs, LR), _values(runs, DROPOUT)
    chosen = next((b for b in group.bests if b.model == model), None)
    columns = [tr("col_lr_dropout")] + [fmt_value(d) for d in dropouts]
    rows = []
    for lr in lrs:
        row = [fmt_value(lr)]
        for d in dropouts:
            best = cells.get((value_key(lr), value_key(d)))
            if best is None:
                status = _cell_status(runs, lr, d)
                row.append(tr(f"cell_{status}") if status else "—")
                continue
            text = f"{pct(best.mean('val_acc'))} / {pct(best.mean('test_acc'))}"
            if chosen is not None and best.run is chosen.run:
                text += " *"
            elif any(r.run_id in excluded for r in best.runs):
                text += " †"
            row.append(text)
        rows.append(row)
    others = [f for f in group.fields if f not in (LR, DROPOUT)]
    notes = [tr("grid_note")]
    if others:
        notes.append(tr("grid_note_others", fields=", ".join(others)))
    if any(b.n > 1 for b in cells.values()):
        notes.append(tr("grid_note_seeds"))
    # Every test accuracy comes with its noise: one interval stands for the cells' (they were
    # judged on the same images); each run's own is in the table of all runs.
    example = (
        chosen.run
        if chosen is not None
        else max((b.run for b in cells.values()), key=lambda r: r.metric("val_acc") or 0)
    )
    interval = example.test_interval()
    if interval is not None:
        half = (interval[1] - interval[0]) / 2 * 100
        notes.append(
            tr(
                "grid_note_ci",
                n=count(example.test_images),
                half=f"{half:.2f}",
                test=pct(example.metric("test_acc")),
                ci=interval_text(interval),
            )
        )
    return Table(columns, rows, notes=notes, caption=tr("grid_caption", model=model))


def _cell_status(runs: list[Run], lr, dropout) -> str | None:
    members = [
        r
        for r in runs
        if value_key(r.fields.get(LR)) == value_key(lr)
        and value_key(r.fields.get(DROPOUT)) == value_key(dropout)
    ]
    for status in ("diverged", "failed", "pruned", "partial", "pending", "interrupted"):
        if any(r.status == status for r in members):
            return status
    return None


# ---------------------------------------------------------------- a search's best trials
def best_trials_table(group: Group, info: SearchInfo, tr: Tr, k: int = BEST_TRIALS) -> Table:
    """The group's best finished trials (that learned), best first: rank, model, the searched
    values, accuracies, interval, chosen epoch and time. Rows within noise of the best are
    marked; pruned trials are never ranked here (they trained fewer epochs)."""
    trials = best_trials(group, k)
    axes = info.axes
    columns = [tr("col_rank"), tr("col_model"), *(_field_header(d.name, tr) for d in axes)]
    columns += [tr("col_val"), tr("col_test"), tr("col_ci"), tr("col_best_epoch"), tr("col_time")]
    csv_columns = ["rank", "model", *(d.name for d in axes), "val_acc_pct", "test_acc_pct"]
    csv_columns += ["test_ci_low_pct", "test_ci_high_pct", "best_epoch", "total_seconds"]
    csv_columns += ["within_noise_of_best", *_budget_columns(), "run_id"]
    rows, csv_rows = [], []
    for i, run in enumerate(trials, start=1):
        tied = i > 1 and within_noise(trials[0], run)
        values = [value_text(run.fields.get(d.name)) for d in axes]
        interval = run.test_interval()
        epoch = fmt_value((run.result or {}).get("best_epoch"))
        rows.append(
            [
                f"{i} ≈" if tied else str(i),
                run.model,
                *values,
                pct(run.metric("val_acc")),
                pct(run.metric("test_acc")),
                interval_text(interval),
                epoch,
                seconds(run.seconds),
            ]
        )
        csv_rows.append(
            [
                str(i),
                run.model,
                *(fmt_value(run.fields.get(d.name)) for d in axes),
                pct(run.metric("val_acc")),
                pct(run.metric("test_acc")) if run.metric("test_acc") is not None else "",
                *([_raw(interval[0], 3), _raw(interval[1], 3)] if interval else ["", ""]),
                epoch,
                seconds(run.seconds) if run.seconds is not None else "",
                "yes" if tied else ("" if i == 1 else "no"),
                *_budget_values(group),
                run.run_id,
            ]
        )
    notes = [tr("best_trials_note")]
    interval = trials[0].val_interval() if trials else None
    if interval is not None and len(trials) > 1:
        notes.append(
            tr(
                "best_trials_note_noise",
                images=count(trials[0].val_images),
                ci=interval_text(interval),
            )
        )
    pruned = sum(r.status == "pruned" for r in group.runs)
    if pruned:
        notes.append(tr("best_trials_pruned", n=pruned))
    notes.append(tr("budget_note", budget=budget_label(group, tr)))
    return Table(columns, rows, csv_columns=csv_columns, csv_rows=csv_rows, notes=notes)


# ---------------------------------------------------------------- every run
def _order(run: Run):
    """By model, then validation accuracy; a search's pruned trials after the model's other
    runs: they trained fewer epochs, so they are not ranked among the finished ones."""
    val = run.metric("val_acc")
    return (run.model, run.status == "pruned", -val if val is not None else math.inf, run.run_id)


def run_status(run: Run, excluded: set[str], tr: Tr) -> str:
    if run.run_id in excluded:
        return tr("status_not_learned")
    reading = read_curves(run)
    if run.finished and reading and reading.collapsed:
        return tr("status_collapsed").upper()
    if run.status in ("diverged", "failed"):
        return tr(f"status_{run.status}").upper()
    return tr(f"status_{run.status}")


def _run_fields(analysis: Analysis, runs: list[Run]) -> list[str]:
    """The settings every-run tables show: the grid's (lr and dropout when there is none),
    and the seed when it varies."""
    fields = [*analysis.fields]
    if SEED in grid_fields(runs):
        fields.append(SEED)
    return fields


def _time_notes(runs: list[Run], tr: Tr) -> list[str]:
    """What the time and train columns measure: runs that trained at once share the device;
    training accuracy is a running average with dropout on unless measured in eval mode."""
    shared = concurrency(runs)
    notes = [tr("time_note_shared", n=shared)] if shared > 1 else []
    return notes + [tr("train_note")]


def _error_note(error) -> str:
    """A run's error on one line, cut to fit a table cell."""
    return " ".join(str(error).split())[:160]


def _run_note(run: Run, analysis: Analysis, tr: Tr) -> str:
    """What the detail table says of a run beyond its numbers: how it ended, and what its
    curves show (see runs.read_curves)."""
    result, reading = run.result or {}, read_curves(run)
    if run.status == "diverged":
        return tr("note_diverged", epoch=run.diverged_epoch)
    if result.get("error"):
        return _error_note(result["error"])
    if run.run_id in analysis.excluded:
        return exclusion_text(analysis.excluded[run.run_id], analysis.group_of(run), tr)
    parts = []
    if not run.finished and run.so_far():
        val, epoch = run.so_far()
        parts.append(tr("note_so_far", n=run.epochs_run, planned=run.planned_epochs or "?",
                        val=pct(val), epoch=epoch))  # fmt: skip
    if reading and reading.collapsed:
        parts.append(tr("note_collapsed", epoch=reading.collapsed, kept=reading.best or "—"))
    elif reading and reading.overfit:
        parts.append(
            tr("note_overfit", low=reading.low, k=reading.overfit, rise=f"{reading.rise:.3f}")
        )
    elif reading:
        parts.append(tr("note_low", low=reading.low))
    return tr.join(parts, strong=True)


def all_runs_tables(analysis: Analysis, tr: Tr) -> tuple[Table, Table]:
    """(key table, detail table) of every run, sorted by model then validation accuracy."""
    runs = sorted(analysis.runs, key=_order)
    excluded = set(analysis.excluded)
    fields = _run_fields(analysis, runs)
    extra = [f for f in fields if f not in (LR, DROPOUT)]
    key_cols = [tr("col_model"), tr("col_lr"), tr("col_dropout")]
    key_cols += [tr("col_val"), tr("col_test"), tr("col_ci"), tr("col_time"), tr("col_status")]
    key_cols += [_field_header(f, tr) for f in extra]
    detail_cols = [tr("col_model"), tr("col_run")]
    if analysis.mixed:
        detail_cols.append(tr("col_budget"))
    detail_cols += [
        tr("col_params"),
        tr("col_epochs_run"),
        tr("col_best_epoch"),
        tr("col_train"),
        tr("col_train_eval"),
        tr("col_note"),
    ]
    key_rows, detail_rows, bad = [], [], []
    for run in runs:
        result = run.result or {}
        key_rows.append(
            [
                run.model,
                fmt_value(run.fields.get(LR)),
                fmt_value(run.fields.get(DROPOUT)),
                pct(run.metric("val_acc")),
                pct(run.metric("test_acc")),
                interval_text(run.test_interval()),
                seconds(run.seconds),
                run_status(run, excluded, tr),
                *(fmt_value(run.fields.get(f)) for f in extra),
            ]
        )
        note = _run_note(run, analysis, tr)
        detail = [run.model, run.run_id]
        if analysis.mixed:
            detail.append(analysis.group_of(run).letter)
        detail += [
            count(run.params),
            _epochs(run, tr),
            fmt_value(result.get("best_epoch")),
            pct(run.metric("train_acc")),
            pct(run.metric("train_eval_acc")),
            note,
        ]
        detail_rows.append(detail)
        bad.append(run.status in ("diverged", "failed") or run.run_id in excluded)
    notes = [tr("all_note"), *_time_notes(runs, tr)]
    if runs:
        notes.append(tr("all_tally", n=len(runs), tally=status_tally(runs, tr)))
    notes.append(tr("ci_note"))
    key = Table(key_cols, key_rows, notes=notes, bad=bad)
    detail = Table(detail_cols, detail_rows, notes=[tr("detail_note")], bad=list(bad))
    return key, detail


def all_runs_csv(analysis: Analysis) -> Table:
    runs = sorted(analysis.runs, key=_order)
    excluded = set(analysis.excluded)
    fields = _run_fields(analysis, runs)
    columns = ["model", "status", *fields, "params", "epochs_run", "best_epoch"]
    columns += [f"{k}_pct" for k in ACCURACIES]
    columns += ["test_ci_low_pct", "test_ci_high_pct", "total_seconds", "learned"]
    columns += [*_budget_columns(), "run_id", "note"]
    rows = []
    for run in runs:
        result = run.result or {}
        interval = run.test_interval()
        note = ""
        if run.status == "diverged":
            note = f"diverged (non-finite loss) at epoch {run.diverged_epoch}"
        elif result.get("error"):
            note = _error_note(result["error"])
        learned = "" if not run.finished else ("no" if run.run_id in excluded else "yes")
        rows.append(
            [
                run.model,
                run.status,
                *(fmt_value(run.fields.get(f)) for f in fields),
                fmt_value(run.params),
                str(run.epochs_run),
                fmt_value(result.get("best_epoch")),
                *(pct(run.metric(k)) if run.metric(k) is not None else "" for k in ACCURACIES),
                *([_raw(interval[0], 3), _raw(interval[1], 3)] if interval else ["", ""]),
                seconds(run.seconds) if run.seconds is not None else "",
                learned,
                *_budget_values(analysis.group_of(run)),
                run.run_id,
                note,
            ]
        )
    return Table(columns, rows)


# ---------------------------------------------------------------- the user's table
def user_table(analysis: Analysis, tr: Tr) -> Table | None:
    """The user's reported best runs beside ours, for the user's architectures in the sweep."""
    results = user_results()
    rows, notes = [], []
    differences: list[str] = []
    for entry in results["models"]:
        ours = None
        for group in analysis.groups:  # the biggest budget first
            ours = next((b for b in group.bests if b.model in entry["ours"]), None)
            if ours is not None:
                break
        present = [m for m in entry["ours"] if any(r.model == m for r in analysis.runs)]
        if not present:
            continue
        n = results["protocol"]["test_images"]
        rows.append(
            [
                entry["name"],
                tr("source_user"),
                f"lr={fmt_value(entry['lr'])}, dropout={fmt_value(entry['dropout'])}",
                count(entry["params"]),
                pct(entry["val_acc"]),
                pct(entry["test_acc"]),
                interval_text(accuracy_interval(entry["test_acc"], n)),
                f"{entry['seconds']:.1f}",
            ]
        )
        if ours is None:
            so_far = max(
                (
                    (r.so_far(), r)
                    for r in analysis.runs
                    if r.model in present and not r.finished and r.so_far()
                ),
                key=lambda t: t[0][0],
                default=None,
            )
            source, val = tr("source_ours_none"), "—"
            if so_far is not None:
                (acc, epoch), run = so_far
                source = tr("source_ours_so_far", epoch=epoch, planned=run.planned_epochs or "?")
                val = pct(acc)
            rows.append([present[0], source, "—", "—", val, "—", "—", "—"])
            full = len(results["protocol"]["lr"]) * len(results["protocol"]["dropout"])
            gap = tr("diff_grid", n=0, full=full)
            differences.append(tr("user_budget_item", model=present[0], gap=gap))
            continue
        group = next(g for g in analysis.groups if ours in g.bests)
        source = tr("source_ours", letter=group.letter) if group.letter else tr("source_ours_one")
        rows.append(
            [
                ours.model,
                source,
                f"lr={fmt_value(ours.run.fields.get(LR))}, dropout={fmt_value(ours.run.fields.get(DROPOUT))}",
                count(ours.params),
                _acc_cell(ours, "val_acc"),
                _acc_cell(ours, "test_acc"),
                interval_text(ours.test_interval()),
                seconds(ours.seconds),
            ]
        )
        gap = protocol_difference(group, ours, results["protocol"], tr, analysis.search)
        if gap:
            differences.append(tr("user_budget_item", model=ours.model, gap=gap))
    if not rows:
        return None
    columns = [
        tr("col_model"),
        tr("col_source"),
        tr("col_combination"),
        tr("col_params"),
        tr("col_val"),
        tr("col_test"),
        tr("col_ci"),
        tr("col_time"),
    ]
    notes.append(tr("user_note"))
    if differences:
        notes.append(tr("user_budget", items=tr.join(differences, strong=True)))
    else:
        notes.append(tr("user_budget_same"))
    return Table(columns, rows, notes=notes)
