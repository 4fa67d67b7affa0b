"""`build_report(sweep_dir)`: read the ledger, write tables, figures, report.md and index.html
(and report.pdf with `pdf=True`), in English or Chinese.

A sweep whose copied sweep file holds a [search] table is a search: its trials' settings were
sampled, so instead of the lr x dropout views the report draws accuracy against each searched
setting, every trial's validation curves and a table of the best trials (see trials.py).

The report is built aside, in a temporary folder next to the output folder, and moved into
place in one rename: a build that fails (a bad ledger, a full disk, Chromium crashing) leaves
the previous report as it was. An output folder that also holds files the report did not write
(notes, run files) is never replaced wholesale: the finished files are renamed into it one by
one instead, and only the report's own stale files are removed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from ..errors import UserError
from ..fileio import OutputError, atomic_write_bytes, describe_os_error
from ..ledger import MANIFEST, read_runs
from . import plots
from .analysis import Analysis, Group, analyse
from .conclusions import (
    budget_title,
    conclusion_sections,
    interval_text,
    label,
    mixed_budget_note,
    pct,
    status_tally,
)
from .document import Block, Bullets, Heading, Image, Paragraph, TableBlock, render_markdown
from .html import render_html
from .i18n import Tr
from .runs import DROPOUT, LR, Best, Run, concurrency, to_runs
from .tables import (
    Table,
    _values,
    all_runs_csv,
    all_runs_tables,
    best_csv,
    best_tables,
    best_trials_table,
    count,
    fit_page,
    grid_cells,
    grid_table,
    user_table,
)
from .trials import points, ranked, read_search

MAX_GALLERY = 48
# Names this module writes. In a folder holding only these, the whole folder is replaced; stale
# copies from an earlier build are removed so that the folder never shows a figure of a model
# that is no longer in the sweep.
OWN_FILES = re.compile(
    r"^(index\.html|report\.md|report\.pdf|best_per_model\.(md|csv)|all_runs\.(md|csv)|"
    r"best_trials\.(md|csv)|(curves|heatmap|search|trials)_.+\.png|"
    r"(best_runs|acc_vs_params|acc_vs_time|time_vs_params)(_[A-Z?])?\.png|"
    r"confusion\.png|misclassified\.png)$"
)


def build_report(
    sweep_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    lang: str = "en",
    pdf: bool = False,
) -> Path:
    """Write the lab report of a sweep folder and return the path of its index.html.

    Only the ledger is read (and, for the gallery of misclassified digits, the test set).
    Default output folder: SWEEP_DIR/report/. `lang`: "en" or "zh". `pdf`: also print the
    page to report.pdf (needs Playwright and Chromium; checked before any work is done).
    """
    tr = Tr(lang)
    sweep = Path(sweep_dir)
    if not sweep.exists():
        raise UserError(f"{sweep}: sweep folder not found")
    if not sweep.is_dir():
        raise UserError(f"{sweep}: not a directory")
    if not (sweep / "runs").is_dir():
        raise UserError(f"{sweep}: not a sweep folder (no runs/)")
    out = Path(out_dir) if out_dir is not None else sweep / "report"
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    if pdf:
        from .pdf import check_pdf_support

        check_pdf_support()
    records = _read_ledger(sweep)

    files: dict[str, bytes] = {}
    runs = to_runs(records)
    analysis = analyse(runs, read_search(sweep, runs))
    blocks = assemble(analysis, sweep, files, tr)
    files["report.md"] = render_markdown(blocks, tr.raw("also_as")).encode()
    title = tr("html_title", name=sweep.resolve().name)
    files["index.html"] = render_html(blocks, title, lang, tr.raw("also_as")).encode()
    publish(out, files, pdf=pdf)
    return out / "index.html"


def publish(out: Path, files: dict[str, bytes], pdf: bool = False) -> None:
    """Write `files` into a staging folder beside `out`, then move them into place."""
    parent = out.parent if str(out.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=parent))
    except OSError as exc:
        raise OutputError(describe_os_error(out, exc)) from None
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes 0700; a report is for reading
        for name, payload in files.items():
            atomic_write_bytes(staging / name, payload)
        if pdf:
            from .pdf import write_pdf

            write_pdf(staging / "index.html", staging / "report.pdf")
        _move_into_place(staging, out)
    except OSError as exc:
        raise OutputError(describe_os_error(out, exc)) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _move_into_place(staging: Path, out: Path) -> None:
    if not out.exists():
        os.rename(staging, out)
        return
    made = {p.name for p in staging.iterdir()}
    if any(not OWN_FILES.match(p.name) for p in out.iterdir()):
        # Someone else's files live here too: never swap them away; replace ours one by one.
        for name in sorted(made):
            os.replace(staging / name, out / name)
        for old in out.iterdir():
            if OWN_FILES.match(old.name) and old.name not in made and old.is_file():
                old.unlink()
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.rmdir(retired)  # only its unique name is wanted
    os.rename(out, retired)
    try:
        os.rename(staging, out)
    except OSError:
        os.rename(retired, out)  # put the old report back
        raise
    shutil.rmtree(retired, ignore_errors=True)


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


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "model"


def _unique(name: str, taken: set[str]) -> str:
    stem, suffix = name.rsplit(".", 1)
    candidate, i = name, 2
    while candidate in taken:
        candidate, i = f"{stem}_{i}.{suffix}", i + 1
    taken.add(candidate)
    return candidate


def _environment(runs: list[Run], tr: Tr) -> str:
    """Where the numbers come from: device, precision, torch and code versions (if uniform)."""
    parts = []
    for key, word in (
        ("device", "env_device"),
        ("precision", "env_precision"),
        ("torch_version", "env_torch"),
        ("git_commit", "env_code"),
    ):
        values = sorted({str(r.result[key]) for r in runs if r.result and r.result.get(key)})
        if values:
            label_ = tr(word)
            parts.append(
                f"{label_} {values[0]}" if len(values) == 1 else f"{label_}: {', '.join(values)}"
            )
    return tr.join(parts, strong=True)


def assemble(analysis: Analysis, sweep: Path, files: dict[str, bytes], tr: Tr) -> list[Block]:
    """The report's blocks; figures and table files are added to `files` (name -> bytes)."""
    runs = analysis.runs
    ftr = plots.figure_language(tr)  # English figure labels when no CJK font is installed
    tally = status_tally(runs, tr) or "—"
    blocks: list[Block] = [
        Heading(tr("title", name=sweep.resolve().name), level=1),
        Paragraph(tr("intro", n=len(runs), sweep=sweep, tally=tally)),
    ]
    environment = _environment(runs, tr)
    if environment:
        blocks.append(Paragraph(tr("recorded_with", env=environment), note=True))
    note = mixed_budget_note(analysis, tr)
    if note:
        blocks.append(Paragraph(note, callout=True))

    blocks.append(Heading(tr("h_conclusions"), anchor="conclusions"))
    for title, sentences in conclusion_sections(analysis, tr):
        if title:
            blocks.append(Heading(title, level=3))
        blocks.append(Bullets(sentences))

    blocks += _best_blocks(analysis, files, tr)
    blocks += _user_blocks(analysis, tr)
    taken = set(files)
    if analysis.search is not None:
        blocks += _search_blocks(analysis, files, tr, ftr, taken)
    if _grid_views(analysis):
        blocks += _grid_blocks(analysis, files, tr, ftr, taken)
    blocks += _overlay_blocks(analysis, files, tr, ftr, taken)
    blocks += _size_blocks(analysis, files, tr, ftr, taken)
    if _grid_views(analysis):
        blocks += _curve_blocks(analysis, files, tr, ftr, taken)
    for group in analysis.groups:
        if group.bests:
            blocks += _best_model_blocks(group, files, tr, ftr)
            break

    key, detail = all_runs_tables(analysis, tr)
    files["all_runs.md"] = render_markdown([TableBlock(key), TableBlock(detail)]).encode()
    files["all_runs.csv"] = all_runs_csv(analysis).csv().encode()
    blocks += [
        Heading(tr("h_runs"), anchor="runs"),
        *_tables(key, 3, tr, ["all_runs.csv", "all_runs.md"]),
        *_tables(detail, 2, tr),
    ]
    if ftr.lang != tr.lang:
        blocks.append(Paragraph(tr("font_note"), note=True))
    figures = [b for b in blocks if isinstance(b, Image)]
    for n, image in enumerate(figures, start=1):
        image.caption = tr("figure_caption", n=n, title=image.alt, look=tr(f"look_{image.look}"))
    return blocks


def _tables(table, keep: int, tr: Tr, files: list[str] | None = None) -> list[TableBlock]:
    """A table as blocks that each fit an A4 page (see tables.fit_page); the file links go
    under the last."""
    parts = fit_page(table, keep, tr("detail_caption"))
    blocks = [TableBlock(part) for part in parts]
    if files:
        blocks[-1].files = files
    return blocks


def _subtitle(group: Group, analysis: Analysis, ftr: Tr) -> str:
    return ftr("figure_subtitle_budget", letter=group.letter) if analysis.mixed else ""


def _suffix(group: Group, analysis: Analysis) -> str:
    return f"_{group.letter}" if analysis.mixed else ""


def _best_blocks(analysis: Analysis, files: dict[str, bytes], tr: Tr) -> list[Block]:
    blocks: list[Block] = [Heading(tr("h_best"), anchor="best")]
    markdown: list[Block] = []
    files["best_per_model.csv"] = best_csv(analysis).csv().encode()
    groups = analysis.groups or []
    for group in groups:
        part: list[Block] = []
        if analysis.mixed:
            part.append(Heading(budget_title(group, tr), level=3))
        key, detail = best_tables(group, tr)
        markdown += [*part, TableBlock(key), TableBlock(detail)]
        part += _tables(key, 3, tr, ["best_per_model.csv", "best_per_model.md"])
        part += _tables(detail, 2, tr)
        blocks += part
    files["best_per_model.md"] = render_markdown(markdown).encode() if markdown else b""
    if not groups:
        blocks.append(Paragraph(tr("size_none"), note=True))
    return blocks


def _user_blocks(analysis: Analysis, tr: Tr) -> list[Block]:
    table = user_table(analysis, tr)
    if table is None:
        return []
    return [
        Heading(tr("h_user"), anchor="user"),
        Paragraph(tr("user_intro")),
        *_tables(table, 2, tr),
    ]


def _grid_views(analysis: Analysis) -> bool:
    """The lr x dropout views (grid tables, heatmaps, per-combination curves) fit a grid, and a
    search whose every searched setting is a list of lr or dropout choices (a grid with
    pruning); never sampled values."""
    search = analysis.search
    if search is None:
        return True
    return search.discrete and set(search.names) - {"model"} <= {LR, DROPOUT}


def _search_blocks(analysis, files, tr: Tr, ftr: Tr, taken: set[str]) -> list[Block]:
    """A search: its best trials, then per model (and grid combination) accuracy against each
    searched setting and every trial's validation curves."""
    info = analysis.search
    blocks: list[Block] = [
        Heading(tr("h_search"), anchor="search"),
        Paragraph(tr("search_intro"), note=True),
        Heading(tr("h_best_trials"), level=3, anchor="best-trials"),
    ]
    markdown: list[Block] = []
    csv_rows: list[list[str]] = []
    table = None
    for group in analysis.groups:
        table = best_trials_table(group, info, tr)
        if analysis.mixed:
            table.caption = budget_title(group, tr)
        markdown.append(TableBlock(table))
        csv_rows += table.csv_rows
        blocks += _tables(table, 2, tr, ["best_trials.csv", "best_trials.md"])
    if table is not None:
        files["best_trials.csv"] = Table(table.csv_columns, csv_rows).csv().encode()
        files["best_trials.md"] = render_markdown(markdown).encode()
    else:
        blocks.append(Paragraph(tr("size_none"), note=True))
    scatters: list[Block] = []
    curves: list[Block] = []
    for group in analysis.groups:
        usable = frozenset(r.run_id for r in group.usable)
        subtitle = _subtitle(group, analysis, ftr)
        suffix = _suffix(group, analysis)
        for point in points(group, info):
            best = _best_of(point, usable)
            png = plots.search_scatter(
                point.label, point.runs, info.axes, tr=ftr, usable=usable, best=best,
                subtitle=subtitle,
            )  # fmt: skip
            if png is not None:
                name = _unique(f"search_{_stem(point.stem)}{suffix}.png", taken)
                files[name] = png
                scatters.append(
                    Image(name, tr("fig_search_title", label=point.label), png, "search")
                )
            png = plots.trial_curves(
                point.label, point.runs, tr=ftr, usable=usable, best=best, subtitle=subtitle
            )
            if png is not None:
                name = _unique(f"trials_{_stem(point.stem)}{suffix}.png", taken)
                files[name] = png
                n = sum(1 for r in point.runs if r.history)
                curves.append(
                    Image(name, tr("fig_trials_title", label=point.label, n=n), png, "trials")
                )
    blocks += scatters
    if curves:
        blocks += [
            Heading(tr("h_trials"), level=3, anchor="trials"),
            Paragraph(tr("trials_intro"), note=True),
            *curves,
        ]
    return blocks


def _best_of(point, usable: frozenset[str]) -> str | None:
    """The run id of the point's best finished trial that learned (None if there is none)."""
    trials = ranked(point.runs, set(usable))
    return trials[0].run_id if trials else None


def _grid_blocks(analysis, files, tr: Tr, ftr: Tr, taken: set[str]) -> list[Block]:
    blocks: list[Block] = [
        Heading(tr("h_grid"), anchor="grid"),
        Paragraph(tr("grid_intro"), note=True),
    ]
    single: list[str] = []
    excluded = set(analysis.excluded)
    shown = False
    for group in analysis.groups:
        for model in group.models:
            table = grid_table(model, group, excluded, tr)
            if table is None:
                if any(r.model == model and r.finished for r in group.runs):
                    single.append(model)
                continue
            shown = True
            if analysis.mixed:
                table.caption += " — " + budget_title(group, tr)
            blocks += _tables(table, 1, tr)
            cells = {}
            for key, best in grid_cells(model, group).items():
                chosen = next((b for b in group.bests if b.model == model), None)
                mark = ""
                if chosen is not None and best.run is chosen.run:
                    mark = "*"
                elif any(r.run_id in excluded for r in best.runs):
                    mark = "†"
                cells[key] = (best.mean("val_acc"), best.mean("test_acc"), mark)
            members = [r for r in group.runs if r.model == model]
            png = plots.heatmap(
                model,
                cells,
                _values(members, LR),
                _values(members, DROPOUT),
                tr=ftr,
                subtitle=_subtitle(group, analysis, ftr),
            )
            name = _unique(f"heatmap_{_stem(model)}{_suffix(group, analysis)}.png", taken)
            files[name] = png
            blocks.append(Image(name, tr("grid_caption", model=model), png, "heatmap"))
    if single:
        blocks.append(Paragraph(tr("grid_single", models=tr.join(sorted(set(single)))), note=True))
    elif not shown:
        blocks.append(Paragraph(tr("grid_none"), note=True))
    return blocks


def _overlay_blocks(analysis, files, tr: Tr, ftr: Tr, taken: set[str]) -> list[Block]:
    blocks: list[Block] = []
    for group in analysis.groups:
        png = plots.best_runs(group.bests, tr=ftr, subtitle=_subtitle(group, analysis, ftr))
        if png is None:
            continue
        name = _unique(f"best_runs{_suffix(group, analysis)}.png", taken)
        files[name] = png
        blocks.append(Image(name, tr("h_overlay"), png, "overlay"))
    if not blocks:
        return []
    return [
        Heading(tr("h_overlay"), anchor="overlay"),
        Paragraph(tr("overlay_intro"), note=True),
        *blocks,
    ]


def _size_blocks(analysis, files, tr: Tr, ftr: Tr, taken: set[str]) -> list[Block]:
    blocks: list[Block] = [Heading(tr("h_size"), anchor="size")]
    figures: list[Block] = []
    for group in analysis.groups:
        # Models are set side by side only within a budget, and one model alone shows nothing.
        if len(group.bests) < 2:
            continue
        subtitle = _subtitle(group, analysis, ftr)
        suffix = _suffix(group, analysis)
        shared = concurrency(group.runs)
        timed = subtitle + (ftr("fig_time_shared", n=shared) if shared > 1 else "")
        for stem, png, alt in (
            (
                "acc_vs_params",
                plots.accuracy_vs(group.bests, "params", tr=ftr, subtitle=subtitle),
                tr("fig_acc_vs_params"),
            ),
            (
                "acc_vs_time",
                plots.accuracy_vs(group.bests, "seconds", tr=ftr, subtitle=timed),
                tr("fig_acc_vs_time"),
            ),
            (
                "time_vs_params",
                plots.time_vs_params(group.bests, group.runs, tr=ftr, subtitle=timed),
                tr("fig_time_title", n=len(group.bests)).split("\n")[0],
            ),
        ):
            if png is not None:
                name = _unique(f"{stem}{suffix}.png", taken)
                files[name] = png
                figures.append(Image(name, alt.split("\n")[0], png, stem))
    if figures:
        return blocks + figures
    key = "size_one" if analysis.bests else "size_none"
    return blocks + [Paragraph(tr(key), note=True)]


def _curve_blocks(analysis, files, tr: Tr, ftr: Tr, taken: set[str]) -> list[Block]:
    blocks: list[Block] = [
        Heading(tr("h_curves"), anchor="curves"),
        Paragraph(tr("curves_note"), note=True),
    ]
    excluded = frozenset(analysis.excluded)
    drawn = False
    per_model_groups: dict[str, int] = {}
    for group in analysis.groups:
        for model in group.models:
            per_model_groups[model] = per_model_groups.get(model, 0) + 1
    for group in analysis.groups:
        for model in group.models:
            model_runs = [r for r in group.runs if r.model == model and r.history]
            if not model_runs:
                continue
            suffix = _suffix(group, analysis) if per_model_groups[model] > 1 else ""
            name = _unique(f"curves_{_stem(model)}{suffix}.png", taken)
            files[name] = plots.curves(
                model,
                model_runs,
                tr=ftr,
                excluded=excluded,
                subtitle=_subtitle(group, analysis, ftr),
            )
            blocks.append(Image(name, tr("fig_curves_title", model=model), files[name], "curves"))
            drawn = True
    if not drawn:
        blocks.append(Paragraph(tr("curves_none"), note=True))
    return blocks


def _best_model_blocks(group: Group, files: dict[str, bytes], tr: Tr, ftr: Tr) -> list[Block]:
    best: Best = group.bests[0]
    run = best.run
    result = run.result or {}
    name = label(run, group, tr)
    blocks: list[Block] = [
        # With several budgets only the first (the largest) is shown here: say which it is, so
        # the heading does not read as a winner across budgets.
        Heading(
            tr("h_best_model_budget", letter=group.letter, label=name)
            if group.letter
            else tr("h_best_model", label=name),
            anchor="best-model",
        ),
        Paragraph(
            tr(
                "best_model_line",
                run=run.run_id,
                val=pct(run.metric("val_acc")),
                test=pct(run.metric("test_acc")),
                ci=interval_text(run.test_interval()),
                epoch=result.get("best_epoch"),
            )
        ),
    ]
    matrix = result.get("test_confusion")
    if _is_matrix(matrix):
        total = sum(map(sum, matrix))
        right = sum(matrix[i][i] for i in range(len(matrix)))
        names = {"model": run.model, "n": count(total), "wrong": count(total - right)}
        files["confusion.png"] = plots.confusion(matrix, ftr("confusion_title", **names), tr=ftr)
        alt = tr("confusion_title", **names)
        blocks.append(Image("confusion.png", alt, files["confusion.png"], "confusion"))
    else:
        blocks.append(Paragraph(tr("no_confusion"), note=True))

    blocks += _gallery(run, files, tr, ftr)
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


def _gallery(run: Run, files: dict[str, bytes], tr: Tr, ftr: Tr) -> list[Block]:
    result = run.result or {}
    recorded = result.get("test_misclassified")
    if not isinstance(recorded, list):
        return [Paragraph(tr("no_gallery"), note=True)]
    items = [
        tuple(item)
        for item in recorded
        if isinstance(item, list | tuple)
        and len(item) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) for v in item)
    ]
    if not items:
        return [Paragraph(tr("gallery_empty"), note=True)]
    dataset_name = str(run.config.get("dataset", "mnist"))
    try:
        from ..data import load_dataset

        dataset = load_dataset(dataset_name, run.config.get("data_dir"))
    except (OSError, ValueError) as exc:
        return [Paragraph(tr("gallery_unloadable", error=exc), note=True)]
    images = dataset.test_images.numpy()  # (N, H, W) uint8
    labels = dataset.test_labels.numpy()
    if any(not 0 <= i < len(labels) or int(labels[i]) != true for i, true, _ in items):
        return [Paragraph(tr("gallery_mismatch", source=dataset.source), note=True)]
    pairs = Counter((true, pred) for _, true, pred in items)  # grouped, most frequent first
    items.sort(key=lambda item: (-pairs[item[1:]], item[1:], item[0]))
    shown = items[:MAX_GALLERY]
    names = {"model": run.model, "shown": len(shown), "total": len(items)}
    png = plots.misclassified(images, shown, ftr("gallery_title", **names), tr=ftr)
    files["misclassified.png"] = png
    return [Image("misclassified.png", tr("gallery_title", **names), png, "gallery")]
