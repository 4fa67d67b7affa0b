"""The report's figures, each returned as PNG bytes.

Figures are drawn on `matplotlib.figure.Figure` directly, never through pyplot: no global
backend is selected or changed (the Agg canvas renders the PNG), so building a report inside
a notebook or a server leaves its plotting state alone. matplotlib is imported lazily.

Nothing may be clipped, whatever the grid size: every figure uses constrained layout, legends
sit outside the axes in the figure's own space with as many columns as fit its width, and the
PNG is saved with a tight bounding box as a last guard. `draw_*` functions return the Figure
(tests measure its artists); the plain names return PNG bytes.

Labels come from the report's language catalogue; Chinese labels need a CJK font, found with
`cjk_font()`. Without one the figures keep English labels (see `figure_language`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import re
from typing import NamedTuple

import numpy as np

from .i18n import Tr
from .runs import (
    DROPOUT,
    LR,
    Best,
    Run,
    fmt_value,
    grid_fields,
    log_fit,
    sort_key,
    value_key,
)
from .stats import p_text

DPI = 110
TRAIN_COLOR, VAL_COLOR, BAD_COLOR = "#1f77b4", "#ff7f0e", "#c62828"
# Families tried, in order, for Chinese labels; any installed font whose file name looks CJK
# is registered as a last resort (matplotlib's font cache may predate the font's install).
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Hiragino Sans GB",
    "Noto Sans CJK JP",
    "Arial Unicode MS",
)
CJK_FILES = re.compile(r"(cjk|wqy|wenquanyi|simhei|msyh|yahei|pingfang|sourcehan|notosanssc)", re.I)


@functools.cache
def cjk_font() -> str | None:
    """The family name of an installed font with Chinese glyphs, or None."""
    from matplotlib import font_manager

    def installed() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((family for family in CJK_FAMILIES if family in names), None)

    found = installed()
    if found:
        return found
    try:
        paths = [p for p in font_manager.findSystemFonts() if CJK_FILES.search(p)]
    except OSError:
        return None
    for path in sorted(paths):
        with contextlib.suppress(Exception):  # a broken font file must not stop the report
            font_manager.fontManager.addfont(path)
    return installed()


def figure_language(tr: Tr) -> Tr:
    """The catalogue figures are labelled from: Chinese only when a CJK font is present."""
    if tr.lang == "zh" and cjk_font() is None:
        return Tr("en")
    return tr


@contextlib.contextmanager
def style(tr: Tr):
    """Fonts for the figure's language; nothing global is left changed afterwards."""
    import matplotlib

    rc = {"axes.unicode_minus": False}
    font = cjk_font() if tr.lang == "zh" else None
    if font:
        rc |= {"font.family": "sans-serif", "font.sans-serif": [font, "DejaVu Sans"]}
    with matplotlib.rc_context(rc):
        yield


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# The A4 page prints a figure at most PRINT_WIDTH_IN wide (210 mm less two 12 mm margins), and
# at CSS's 96 pixels per inch when it is narrower: no text may print under MIN_PRINT_PT.
PRINT_WIDTH_IN, MIN_PRINT_PT = 7.3, 8.0


def _png(fig) -> bytes:
    """The figure as PNG, its smallest text enlarged until it prints at MIN_PRINT_PT or more
    on the A4 page (a wide figure is scaled down to the page width)."""
    from matplotlib.text import Text

    for _ in range(3):
        buf = io.BytesIO()
        fig.savefig(
            buf, format="png", metadata={"Software": None}, bbox_inches="tight", pad_inches=0.08
        )
        width_px = int.from_bytes(buf.getvalue()[16:20], "big")  # the PNG header's width
        least = MIN_PRINT_PT / (DPI * min(1 / 96, PRINT_WIDTH_IN / width_px)) + 0.05
        small = [t for t in fig.findobj(Text) if t.get_text() and t.get_fontsize() < least]
        if not small:
            break
        for axis in (a for ax in fig.axes for a in (ax.xaxis, ax.yaxis)):
            labels = axis.get_ticklabels(which="both")
            if labels and min(t.get_fontsize() for t in labels) < least:
                axis.set_tick_params(which="both", labelsize=least)  # ticks are redrawn
        for text in small:
            text.set_fontsize(least)
    return buf.getvalue()


def render(draw, *args, tr: Tr, **kwargs) -> bytes | None:
    """PNG bytes of draw(*args, tr=..., **kwargs), drawn and saved in the language's style."""
    tr = figure_language(tr)
    with style(tr):
        fig = draw(*args, tr=tr, **kwargs)
        return None if fig is None else _png(fig)


def plain(text: str) -> str:
    """Text from configs shown literally: a `$` would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


def fit_legend(fig, handles, labels, fontsize: float = 9) -> None:
    """A figure legend below the axes, with as many columns as fit the figure's width."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    for ncols in range(len(labels), 0, -1):
        legend = fig.legend(
            handles, labels, loc="outside lower center", ncols=ncols, fontsize=fontsize
        )
        renderer = fig.canvas.get_renderer()
        width = legend.get_window_extent(renderer).width
        if width <= fig.bbox.width * 0.96 or ncols == 1:
            return
        legend.remove()


def _values(runs: list[Run], key: str) -> list:
    return sorted(
        {value_key(r.fields.get(key)): r.fields.get(key) for r in runs}.values(), key=sort_key
    )


def _pick(runs: list[Run]) -> Run:
    """The run a panel shows when several share its lr and dropout: best by validation."""

    def rank(run: Run):
        val = run.metric("val_acc")
        return (not run.finished, -val if val is not None else math.inf, -len(run.history))

    return min(runs, key=rank)


def _limits(values: list[float], floor: float | None = None, ceiling: float | None = None):
    low, high = min(values), max(values)
    pad = 0.06 * max(high - low, abs(high) * 0.02, 1e-3)
    low, high = low - pad, high + pad
    if floor is not None:
        low = max(low, floor)
    if ceiling is not None:
        high = min(high, ceiling)
    return low, high


# ---------------------------------------------------------------- curves over epochs
def _finite_values(runs: list[Run], keys: tuple[str, ...], scale: float = 1) -> list[float]:
    """Every finite value of the `keys` history series of `runs`, times `scale`."""
    return [scale * v for r in runs for k in keys for v in r.series(k)[1] if math.isfinite(v)]


def _loss_limits(losses: list[float]):
    """y-limits that fit the losses (None if none). Positive losses go on a log scale, so that
    an early spike does not flatten every later epoch: the limits are then a ratio apart."""
    if not losses:
        return None
    if min(losses) > 0:
        return min(losses) / 1.25, max(losses) * 1.25
    return _limits(losses, floor=0.0 if min(losses) >= 0 else None)


def _set_ylim(ax, limits, tr: Tr | None = None) -> None:
    """Apply limits from _accuracy_limits, or from _loss_limits with `tr`: then a log axis,
    labelled so, when they are positive."""
    if limits and tr is not None and limits[0] > 0:
        ax.set_yscale("log")
        ax.set_ylabel(tr("fig_log_scale", label=ax.get_ylabel()))
    if limits:
        ax.set_ylim(*limits)


def _accuracy_limits(accs: list[float]):
    """y-limits fitted to accuracies in percent (None if none): from the 5th percentile up,
    so that one run's collapse to chance does not squeeze the 95-99% that matter into a
    sliver (its line leaves the axis at the bottom); never far past 100."""
    if not accs:
        return None
    floor = sorted(accs)[len(accs) // 20]
    return _limits([a for a in accs if a >= floor], ceiling=100.5)


def _integer_epochs(ax, max_epoch: int) -> None:
    """Whole epochs on the x axis; a run of one epoch centred rather than at the edge."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if max_epoch <= 1:
        ax.set_xlim(0.5, 1.5)


def _epoch_axes(axes, max_epoch: int, tr: Tr) -> None:
    """Side-by-side panels over epochs: each labelled, gridded, with whole-epoch ticks."""
    for ax in axes:
        ax.set_xlabel(tr("fig_epoch"))
        ax.grid(True, alpha=0.3)
        _integer_epochs(ax, max_epoch)


def _note(ax, text: str, **kwargs) -> None:
    """A grey message in the middle of a panel that has nothing to plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.5", **kwargs)


# ---------------------------------------------------------------- per-combination curves
def _cell_runs(runs: list[Run], lr, dropout) -> list[Run]:
    """The runs at one (lr, dropout) of the grid."""
    return [
        r
        for r in runs
        if value_key(r.fields.get(LR)) == value_key(lr)
        and value_key(r.fields.get(DROPOUT)) == value_key(dropout)
    ]


def _run_title(run: Run, title: str, others: list[str], excluded: frozenset[str], tr: Tr):
    """A panel's title and its colour: the other grid fields of the run shown, then what went
    wrong with it, if anything (in red)."""
    extra = ", ".join(f"{f}={fmt_value(run.fields.get(f))}" for f in others)
    if extra:
        title += f"\n{extra}"
    color = "black"
    if run.status == "diverged":
        title += "\n" + tr("fig_diverged", epoch=run.diverged_epoch)
        color = BAD_COLOR
    elif run.run_id in excluded:
        title += "\n" + tr("fig_not_learned")
        color = BAD_COLOR
    elif not run.finished:
        title += f"\n({tr('status_' + run.status).upper()})"
        color = BAD_COLOR if run.status == "failed" else "0.35"
    return title, color


def _draw_run_curves(loss_ax, acc_ax, run: Run, tr: Tr) -> bool:
    """Train (solid) and validation (dashed) loss and accuracy of one run, the chosen epoch
    marked; True if anything was drawn."""
    epochs, train = run.series(run.train_key("loss"))
    _, val = run.series("val_loss")
    _, train_acc = run.series(run.train_key("acc"))
    _, val_acc = run.series("val_acc")
    # Markers keep a one-epoch run (a line of one point) visible.
    style_ = {"marker": "o", "markersize": 5 if len(epochs) == 1 else 3}
    if len(epochs) > 30:
        style_ = {}
    drawn = False
    for ax, (t, v) in (
        (loss_ax, (train, val)),
        (acc_ax, ([100 * x for x in train_acc], [100 * x for x in val_acc])),
    ):
        if not any(math.isfinite(x) for x in t + v):
            _note(ax, tr("fig_nothing"), fontsize=8)
            continue
        ax.plot(epochs, t, color=TRAIN_COLOR, **style_)
        ax.plot(epochs, v, color=VAL_COLOR, linestyle="--", **style_)
        drawn = True
        best_epoch = run.metric("best_epoch")
        if run.finished and best_epoch is not None:
            ax.axvline(best_epoch, color="0.6", linestyle=":", linewidth=1)
    return drawn


def _draw_cell(loss_ax, acc_ax, cell: list[Run], title: str, others, excluded, tr: Tr) -> bool:
    """One (lr, dropout) of the grid: its best run's curves, or a note that no run has it;
    True if anything was drawn."""
    for ax in (loss_ax, acc_ax):
        ax.grid(True, alpha=0.3)
    if not cell:
        loss_ax.set_title(title, fontsize=8.5)
        for ax in (loss_ax, acc_ax):
            _note(ax, tr("fig_no_run"))
        return False
    run = _pick(cell)
    title, color = _run_title(run, title, others, excluded, tr)
    if run.status == "diverged":
        for ax in (loss_ax, acc_ax):
            ax.axvline(run.diverged_epoch, color=BAD_COLOR, linestyle=":", linewidth=1)
    loss_ax.set_title(plain(title), fontsize=8.5, color=color)
    return _draw_run_curves(loss_ax, acc_ax, run, tr)


def _format_curve_axes(axes, loss_limits, acc_limits, max_epoch: int, tr: Tr) -> None:
    """The grid of panels: one y scale per row kind, labelled only on the left; epochs on
    the bottom row."""
    for loss_row, acc_row in zip(axes[0::2], axes[1::2], strict=True):
        for j, (loss_ax, acc_ax) in enumerate(zip(loss_row, acc_row, strict=True)):
            if loss_limits and loss_limits[0] > 0:
                loss_ax.set_yscale("log")
            for ax, limits in ((loss_ax, loss_limits), (acc_ax, acc_limits)):
                if limits:
                    ax.set_ylim(*limits)
                if j > 0:
                    ax.tick_params(which="both", labelleft=False)
        loss_row[0].set_ylabel(tr("fig_loss"))
        _set_ylim(loss_row[0], loss_limits, tr)
        acc_row[0].set_ylabel(tr("fig_accuracy"))
    for ax in axes[-1]:
        ax.set_xlabel(tr("fig_epoch"))
    for ax in axes.ravel():
        _integer_epochs(ax, max_epoch)


def _curves_legend(fig, runs: list[Run], tr: Tr) -> None:
    """Train, validation and (when a run finished) the chosen epoch's key."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=TRAIN_COLOR),
        Line2D([], [], color=VAL_COLOR, linestyle="--"),
    ]
    measured = any(r.train_key("acc") == "train_eval_acc" for r in runs)
    labels = [tr("fig_train_eval" if measured else "fig_train"), tr("fig_val")]
    if any(r.finished for r in runs):
        handles.append(Line2D([], [], color="0.6", linestyle=":"))
        labels.append(tr("fig_chosen_epoch"))
    fit_legend(fig, handles, labels)


def draw_curves(
    model: str,
    runs: list[Run],
    tr: Tr,
    excluded: frozenset[str] = frozenset(),
    subtitle: str = "",
):
    """Loss and accuracy per epoch for each (lr, dropout): rows lr (a loss row, then an
    accuracy row beneath it), columns dropout. Train solid, validation dashed."""
    lrs, dropouts = _values(runs, LR), _values(runs, DROPOUT)
    others = [f for f in grid_fields(runs) if f not in (LR, DROPOUT)]
    nrows, ncols = 2 * len(lrs), len(dropouts)
    fig = _figure(min(9.4, max(5.6, 1.1 + 2.1 * ncols)), 1.2 + 1.45 * nrows)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False)

    shared = drawn = False
    for i, lr in enumerate(lrs):
        for j, dropout in enumerate(dropouts):
            cell = _cell_runs(runs, lr, dropout)
            shared = shared or len(cell) > 1
            title = f"lr={fmt_value(lr)}, dropout={fmt_value(dropout)}"
            if _draw_cell(axes[2 * i][j], axes[2 * i + 1][j], cell, title, others, excluded, tr):
                drawn = True
    # A diverged run's exploding loss (or a run that never learned) would flatten every other
    # panel: scale to the healthy runs and let the others run off the edge.
    healthy = [r for r in runs if r.status != "diverged" and r.run_id not in excluded]
    loss_limits = _loss_limits(_finite_values(healthy, ("train_loss", "val_loss")))
    acc_limits = _accuracy_limits(_finite_values(healthy, ("train_acc", "val_acc"), 100))
    max_epoch = max((max(r.series("val_loss")[0], default=1) for r in runs), default=1)
    _format_curve_axes(axes, loss_limits, acc_limits, max_epoch, tr)
    title = tr("fig_curves_title", model=model) + subtitle
    if others and shared:
        title += "\n" + tr("fig_curves_shared", fields=", ".join(others))
    fig.suptitle(plain(title), fontsize=11.5)
    if drawn:
        _curves_legend(fig, runs, tr)
    return fig


def curves(model: str, runs: list[Run], tr: Tr | None = None, **kwargs) -> bytes:
    return render(draw_curves, model, runs, tr=tr or Tr("en"), **kwargs)


# ---------------------------------------------------------------- lr x dropout heatmap
def draw_heatmap(model: str, cells: dict, lrs: list, dropouts: list, tr: Tr, subtitle: str = ""):
    """Validation and test accuracy on the lr x dropout grid. `cells` maps (lr key, dropout
    key) -> (val, test, mark) with accuracies as fractions and mark '', '*' or '†'."""
    from matplotlib.colors import Normalize

    nrows, ncols = len(lrs), len(dropouts)
    grids = {k: np.full((nrows, ncols), np.nan) for k in ("val", "test")}
    marks = {}
    for i, lr in enumerate(lrs):
        for j, d in enumerate(dropouts):
            cell = cells.get((value_key(lr), value_key(d)))
            if cell is None:
                continue
            val, test, mark = cell
            grids["val"][i, j] = np.nan if val is None else 100 * val
            grids["test"][i, j] = np.nan if test is None else 100 * test
            marks[i, j] = mark
    # The colour scale spans the runs that learned: one at chance would make the rest one colour.
    learned = [
        v
        for k in grids
        for (i, j), v in np.ndenumerate(grids[k])
        if np.isfinite(v) and marks.get((i, j)) != "†"
    ]
    everything = [v for k in grids for v in grids[k].ravel() if np.isfinite(v)]
    scale = learned or everything or [0.0, 100.0]
    norm = Normalize(
        vmin=min(scale), vmax=max(scale) if max(scale) > min(scale) else min(scale) + 0.01
    )
    width = min(9.4, max(6.4, 1.6 + 2 * (0.95 * ncols + 0.9)))
    fig = _figure(width, 1.5 + 0.62 * nrows)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    image = None
    for ax, key in zip(axes, ("val", "test"), strict=True):
        image = ax.imshow(grids[key], cmap="viridis", norm=norm, aspect="auto")
        for (i, j), value in np.ndenumerate(grids[key]):
            text = "—" if not np.isfinite(value) else f"{value:.2f}{marks.get((i, j), '')}"
            shade = norm(value) if np.isfinite(value) else 1.0
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shade < 0.55 else "black",
            )
        ax.set_xticks(range(ncols), [fmt_value(d) for d in dropouts])
        ax.set_yticks(range(nrows), [fmt_value(lr) for lr in lrs])
        ax.set_xlabel("dropout")
        ax.set_title(tr("fig_val_acc") if key == "val" else tr("fig_test_acc"), fontsize=10)
    axes[0].set_ylabel(tr("fig_lr"))
    axes[1].tick_params(labelleft=False)
    fig.colorbar(image, ax=list(axes), shrink=0.9, label=tr("fig_accuracy"))
    title = tr("fig_heatmap_title", model=model) + subtitle
    if any(marks.values()):
        title += "\n" + tr("fig_heatmap_marks")
    fig.suptitle(plain(title), fontsize=11)
    return fig


def heatmap(
    model: str, cells: dict, lrs: list, dropouts: list, tr: Tr | None = None, **kw
) -> bytes:
    return render(draw_heatmap, model, cells, lrs, dropouts, tr=tr or Tr("en"), **kw)


# ---------------------------------------------------------------- every model's best run
def draw_best_runs(bests: list[Best], tr: Tr, subtitle: str = ""):
    """Validation loss and accuracy per epoch of each model's best run, on one figure; the
    training curves faint and dotted behind."""
    from matplotlib.lines import Line2D

    with_history = [b for b in bests if b.run.history]
    if not with_history:
        return None
    fig = _figure(8.6, 3.9)
    loss_ax, acc_ax = fig.subplots(1, 2)
    handles, labels = [], []
    colors = [f"C{i % 10}" for i in range(len(with_history))]
    styles = ["-", "--", "-.", ":"]
    max_epoch = 1
    for k, (best, color) in enumerate(zip(with_history, colors, strict=True)):
        run = best.run
        epochs, val_loss = run.series("val_loss")
        _, train_loss = run.series(run.train_key("loss"))
        _, val_acc = run.series("val_acc")
        _, train_acc = run.series(run.train_key("acc"))
        max_epoch = max(max_epoch, max(epochs, default=1))
        line = styles[(k // 10) % len(styles)]
        marker = {"marker": "o", "markersize": 3} if len(epochs) <= 30 else {}
        loss_ax.plot(epochs, val_loss, color=color, linestyle=line, **marker)
        loss_ax.plot(epochs, train_loss, color=color, linestyle=":", alpha=0.45, linewidth=1)
        acc_ax.plot(epochs, [100 * v for v in val_acc], color=color, linestyle=line, **marker)
        acc_ax.plot(
            epochs,
            [100 * v for v in train_acc],
            color=color,
            linestyle=":",
            alpha=0.45,
            linewidth=1,
        )
        handles.append(Line2D([], [], color=color, linestyle=line, marker="o", markersize=3))
        labels.append(plain(best.model))
    handles.append(Line2D([], [], color="0.4", linestyle=":", alpha=0.6))
    labels.append(tr("fig_train_faint"))
    runs = [b.run for b in with_history]
    loss_ax.set_ylabel(tr("fig_val_loss"))
    _set_ylim(loss_ax, _loss_limits(_finite_values(runs, ("val_loss", "train_loss"))), tr)
    _set_ylim(acc_ax, _accuracy_limits(_finite_values(runs, ("val_acc", "train_acc"), 100)))
    acc_ax.set_ylabel(tr("fig_val_accuracy"))
    _epoch_axes((loss_ax, acc_ax), max_epoch, tr)
    fig.suptitle(plain(tr("fig_best_runs_title") + subtitle), fontsize=11)
    fit_legend(fig, handles, labels, fontsize=8.5)
    return fig


def best_runs(bests: list[Best], tr: Tr | None = None, **kw) -> bytes | None:
    return render(draw_best_runs, bests, tr=tr or Tr("en"), **kw)


# ---------------------------------------------------------------- size and time
def _plain_log_axis(axis) -> None:
    """Seconds as 200, 500, 1000 rather than 2x10^2: label the 1, 2 and 5 ticks."""
    from matplotlib.ticker import FuncFormatter

    def label(value, _pos) -> str:
        lead = f"{value:e}"[0]
        return f"{value:g}" if lead in "125" else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def _scatter(ax, xs, ys, labels) -> None:
    ax.scatter(xs, ys, color=TRAIN_COLOR, zorder=3)
    for x, y, label in zip(xs, ys, labels, strict=True):
        ax.annotate(plain(label), (x, y), xytext=(5, 4), textcoords="offset points", fontsize=9)
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.18, y=0.15)


def draw_accuracy_vs(bests: list[Best], x: str, tr: Tr, subtitle: str = ""):
    """Test accuracy (with its 95% interval) of each model's best run against params or time."""
    points = [
        (b.params if x == "params" else b.seconds, b, b.model)
        for b in bests
        if b.mean("test_acc") is not None
        and (b.params if x == "params" else b.seconds) not in (None, 0)
    ]
    if not points:
        return None
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    xs = [p[0] for p in points]
    ys = [100 * p[1].mean("test_acc") for p in points]
    for xv, (_, best, _) in zip(xs, points, strict=True):
        interval = best.test_interval()
        if interval:
            mean = 100 * best.mean("test_acc")
            ax.errorbar(
                [xv],
                [mean],
                yerr=[[mean - 100 * interval[0]], [100 * interval[1] - mean]],
                color="0.55",
                capsize=3,
                zorder=2,
            )
    _scatter(ax, xs, ys, [p[2] for p in points])
    if x == "seconds":
        _plain_log_axis(ax.xaxis)
    ax.set_xlabel(tr("fig_params_log") if x == "params" else tr("fig_time_log"))
    ax.set_ylabel(tr("fig_test_acc"))
    key = "fig_acc_vs_params" if x == "params" else "fig_acc_vs_time"
    ax.set_title(plain(tr(key) + subtitle), fontsize=10.5)
    return fig


def accuracy_vs(bests: list[Best], x: str, tr: Tr | None = None, **kw) -> bytes | None:
    return render(draw_accuracy_vs, bests, x, tr=tr or Tr("en"), **kw)


def draw_time_vs_params(bests: list[Best], runs: list[Run], tr: Tr, subtitle: str = ""):
    points = [(b.params, b.seconds, b.model) for b in bests if b.params and b.seconds]
    if not points:
        return None
    fig = _figure(6.4, 4.6)
    ax = fig.subplots()
    # Every finished run faintly behind: shows how much time varies within one model.
    others = [(r.params, r.seconds) for r in runs if r.finished and r.params and r.seconds]
    handles, labels = [], []
    if others:
        handles.append(ax.scatter(*zip(*others, strict=True), color="0.75", s=12, zorder=2))
        labels.append(tr("fig_all_runs"))
    xs, ys, names = zip(*points, strict=True)
    _scatter(ax, xs, ys, names)
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    fit = log_fit(bests)
    if fit:
        line_x = np.logspace(math.log10(min(xs)), math.log10(max(xs)), 50)
        (line,) = ax.plot(
            line_x,
            10 ** (fit["intercept"] + fit["slope"] * np.log10(line_x)),
            color=VAL_COLOR,
            linestyle="--",
        )
        handles.append(line)
        labels.append(tr("fig_fit", slope=f"{fit['slope']:.2f}"))
        title = tr("fig_time_title_fit", r=f"{fit['r']:.2f}", p=p_text(fit["p"]), n=fit["n"])
    else:
        title = tr("fig_time_title", n=len(points))
    ax.set_title(plain(title + subtitle), fontsize=10.5)
    ax.set_xlabel(tr("fig_params_log"))
    ax.set_ylabel(tr("fig_time_log"))
    if handles:
        fit_legend(fig, handles, labels, fontsize=8.5)
    return fig


def time_vs_params(bests: list[Best], runs: list[Run], tr: Tr | None = None, **kw) -> bytes | None:
    return render(draw_time_vs_params, bests, runs, tr=tr or Tr("en"), **kw)


# ---------------------------------------------------------------- the best model's errors
def draw_confusion(matrix: list[list[int]], title: str, tr: Tr):
    counts = np.asarray(matrix, dtype=np.int64)  # (true, pred)
    k = counts.shape[0]
    fig = _figure(1.8 + 0.5 * k, 1.4 + 0.5 * k)
    ax = fig.subplots()
    # log scale: the diagonal is ~100x the errors, which would otherwise all look white.
    shade = np.log1p(counts)
    ax.imshow(shade, cmap="Blues")
    if k <= 20:
        dark = shade.max() * 0.6 if shade.max() > 0 else 1
        for t in range(k):
            for p in range(k):
                if counts[t, p]:
                    ax.text(
                        p,
                        t,
                        str(counts[t, p]),
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if shade[t, p] > dark else "black",
                    )
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel(tr("fig_predicted"))
    ax.set_ylabel(tr("fig_true"))
    ax.set_title(plain(title), fontsize=9.5, wrap=True)
    return fig


def confusion(matrix: list[list[int]], title: str, tr: Tr | None = None) -> bytes:
    return render(draw_confusion, matrix, title, tr=tr or Tr("en"))


def draw_misclassified(images: np.ndarray, items: list[tuple[int, int, int]], title: str, tr: Tr):
    """A grid of test digits, each titled `true→pred`; images is (N, H, W) uint8. Eight to a
    row, so that each prints about 2 cm wide on A4."""
    cols = min(8, len(items))
    rows = math.ceil(len(items) / cols)
    fig = _figure(max(4.0, 0.95 * cols + 0.3), 1.05 * rows + 0.7)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (index, true, pred) in zip(axes, items, strict=False):
        ax.imshow(images[index], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{true}→{pred}", fontsize=9)
    fig.suptitle(plain(title), fontsize=10.5)
    return fig


def misclassified(images, items, title: str, tr: Tr | None = None) -> bytes:
    return render(draw_misclassified, images, items, title, tr=tr or Tr("en"))


# ---------------------------------------------------------------- a search's trials
PRUNED_COLOR, TEST_COLOR, MUTED_COLOR = "0.35", "0.15", "0.62"


def _title_lines(text: str, width_in: float, fontsize: float) -> str:
    """A title that fits the figure's width: broken after its "label:" and then wrapped, a
    Chinese character counted as two Latin ones (model names can be long)."""
    import textwrap

    fits = int(width_in * 72 / (fontsize * 0.62))

    def size(line: str) -> int:
        return sum(2 if "\u2e80" <= c <= "\u9fff" or "\uff00" <= c <= "\uffef" else 1 for c in line)

    if size(text) <= fits:
        return text
    for mark in (": ", "："):
        head, sep, tail = text.partition(mark)
        if sep:
            text = f"{head}{sep.strip()}\n{tail}"
            break
    lines = []
    for line in text.split("\n"):
        if size(line) <= fits:
            lines.append(line)
        else:
            budget = fits if size(line) == len(line) else fits // 2
            lines += textwrap.wrap(line, budget, break_long_words=True) or [line]
    return "\n".join(lines)


def _search_position(run: Run, dim) -> float | None:
    """Where a trial sits on a setting's axis: its value, or the index of its choice for
    choices that are not numbers (with a small fixed offset so equal choices do not hide
    each other)."""
    import zlib

    from .trials import is_ordered

    value = run.fields.get(dim.name)
    if is_ordered(dim):
        from .runs import finite

        return finite(value)
    keys = [value_key(c) for c in dim.choices]
    if value_key(value) not in keys:
        return None
    jitter = (zlib.crc32(run.run_id.encode()) % 9 - 4) * 0.035
    return keys.index(value_key(value)) + jitter


def _search_x_axis(ax, dim, tr: Tr) -> None:
    from .trials import is_log, is_ordered

    if not is_ordered(dim):
        names = [plain(fmt_value(c)) for c in dim.choices]
        # Long choice names would run into each other: slant them.
        slant = {"rotation": 25, "ha": "right"} if max(map(len, names)) > 6 else {}
        ax.set_xticks(range(len(dim.choices)), names, **slant)
        ax.set_xlim(-0.6, len(dim.choices) - 0.4)
        ax.set_xlabel(plain(dim.name))
        return
    log = is_log(dim)
    if log:
        ax.set_xscale("log")
    values = [float(c) for c in dim.choices] if dim.choices is not None else None
    low, high = (min(values), max(values)) if values else (float(dim.low), float(dim.high))
    if high > low:  # the searched range, whole, with a little room on both sides
        if log:
            pad = (high / low) ** 0.05
            ax.set_xlim(low / pad, high * pad)
        else:
            pad = 0.05 * (high - low)
            ax.set_xlim(low - pad, high + pad)
    if values is not None:
        ax.set_xticks(values, [fmt_value(c) for c in dim.choices])
        ax.minorticks_off()
    ax.set_xlabel(plain(tr("fig_setting_log", name=dim.name) if log else dim.name))


class _Trials(NamedTuple):
    """A search's trials, sorted by how the scatter draws them."""

    learned: list[Run]  # finished and learned: validation and test accuracy
    failed: list[Run]  # finished but did not learn: muted dots
    pruned: list[Run]  # stopped by the pruner: hollow triangles with the epochs they trained
    diverged: list[Run]  # crosses on the floor

    @classmethod
    def sort(cls, runs: list[Run], usable: frozenset[str]) -> _Trials:
        scored = [r for r in runs if r.metric("val_acc") is not None]
        return cls(
            learned=[r for r in scored if r.run_id in usable],
            failed=[r for r in scored if r.finished and r.run_id not in usable],
            pruned=[r for r in scored if r.status == "pruned"],
            diverged=[r for r in runs if r.status == "diverged"],
        )


class _AccuracyScale:
    """The scatter's accuracy axis, low to high (percent). A point below it is drawn on a
    floor just above `low` with its value written, so that one failed trial cannot flatten
    the rest; `below` says whether any was."""

    def __init__(self, low: float, high: float):
        self.low, self.high = low, high
        self.floor = low + 0.04 * (high - low)
        self.below = False

    def place(self, ax, x: float, y: float, **style_) -> float:
        """Scatter one point, or put it on the floor with its value if it lies below; returns
        the height it was drawn at."""
        if y >= self.low:
            ax.scatter([x], [y], **style_)
            return y
        self.below = True
        ax.scatter([x], [self.floor], **(style_ | {"marker": "v"}))
        ax.annotate(
            f"{y:.1f}", (x, self.floor), xytext=(4, 3), textcoords="offset points", fontsize=7
        )
        return self.floor


def _search_scale(trials: _Trials) -> _AccuracyScale:
    """The scale spans the finished trials that learned and the pruned trials that got past
    guessing (they are the search's story, only shorter); trials near chance or that did not
    learn would flatten the rest, so they go on the floor, unless they lie close enough."""
    from .analysis import NEAR_CHANCE

    core = [
        100 * v
        for r in trials.learned
        for k in ("val_acc", "test_acc")
        if (v := r.metric(k)) is not None
    ]
    core += [
        100 * r.metric("val_acc")
        for r in trials.pruned
        if r.metric("val_acc") >= 1 / r.num_classes + NEAR_CHANCE
    ]
    others = [100 * r.metric("val_acc") for r in trials.failed + trials.pruned]
    low, high = _limits(core or others or [0.0, 100.0], ceiling=100.5)
    if others and min(others) < low and min(others) >= low - 1.5 * (high - low):
        low, high = _limits(core + others, ceiling=100.5)  # close enough: show them all
    return _AccuracyScale(low, high)


def _positioned(runs: list[Run], dim):
    """(run, x) for each of `runs` that has a place on the setting's axis."""
    for run in runs:
        x = _search_position(run, dim)
        if x is not None:
            yield run, x


def _draw_search_panel(ax, dim, trials: _Trials, best: str | None, scale: _AccuracyScale):
    """Every trial's accuracy against one searched setting."""
    ax.grid(True, which="both", alpha=0.3)
    for run, x in _positioned(trials.learned, dim):
        y = scale.place(ax, x, 100 * run.metric("val_acc"), color=VAL_COLOR, s=30, zorder=3)
        if run.run_id == best:
            ax.scatter(
                [x], [y], s=150, facecolors="none", edgecolors="black", linewidths=1.3, zorder=4
            )
        test = run.metric("test_acc")
        if test is not None:
            scale.place(ax, x, 100 * test, color=TEST_COLOR, marker="+", s=45, zorder=3)
    for run, x in _positioned(trials.failed, dim):
        scale.place(ax, x, 100 * run.metric("val_acc"), color=MUTED_COLOR, s=26, zorder=2)
    for run, x in _positioned(trials.pruned, dim):
        y = scale.place(
            ax, x, 100 * run.metric("val_acc"), marker="^", s=44,
            facecolors="none", edgecolors=PRUNED_COLOR, linewidths=1.1, zorder=3,
        )  # fmt: skip
        ax.annotate(
            str(run.epochs_run),
            (x, y),
            xytext=(-4, -2),
            textcoords="offset points",
            ha="right",
            va="top",
            fontsize=7.5,
            color=PRUNED_COLOR,
        )
    for _, x in _positioned(trials.diverged, dim):
        ax.scatter([x], [scale.floor], color=BAD_COLOR, marker="x", s=40, zorder=3)


def _trend_title(runs: list[Run], usable: frozenset[str], dim, tr: Tr) -> str:
    """Spearman's rho of accuracy against an ordered setting, over the trials it counts."""
    from .trials import setting_trend

    n, test = setting_trend(runs, usable, dim)
    return tr("fig_rho", rho=f"{test.rho:.2f}", n=n) if test else tr("fig_rho_none", n=n)


def _search_legend(fig, trials: _Trials, best: str | None, below: bool, tr: Tr) -> None:
    """A key for each kind of point the panels show."""
    from matplotlib.lines import Line2D

    def dot(**kw):
        return Line2D([], [], linestyle="", **kw)

    keys = []
    if trials.learned:
        keys.append((dot(color=VAL_COLOR, marker="o"), "fig_search_val"))
        keys.append((dot(color=TEST_COLOR, marker="+"), "fig_search_test"))
    if best is not None and trials.learned:
        ring = dot(marker="o", markersize=10, markerfacecolor="none", markeredgecolor="black")
        keys.append((ring, "fig_search_best"))
    if trials.pruned:
        triangle = dot(marker="^", markerfacecolor="none", markeredgecolor=PRUNED_COLOR)
        keys.append((triangle, "fig_search_pruned"))
    if trials.failed:
        keys.append((dot(color=MUTED_COLOR, marker="o"), "fig_not_learned_key"))
    if trials.diverged:
        keys.append((dot(color=BAD_COLOR, marker="x"), "fig_search_diverged"))
    if below:
        keys.append((dot(color="0.3", marker="v"), "fig_search_below"))
    if keys:
        fit_legend(fig, [h for h, _ in keys], [tr(k) for _, k in keys], fontsize=8.5)


def draw_search_scatter(
    label: str,
    runs: list[Run],
    dims: list,
    tr: Tr,
    usable: frozenset[str],
    best: str | None = None,
    subtitle: str = "",
):
    """Accuracy against each searched setting, one panel per setting: every finished trial's
    validation accuracy (the selection metric) and its test accuracy; pruned trials apart,
    as hollow triangles labelled with the epochs they trained; diverged trials on the floor.
    Trials far below the others are drawn on the floor with their value written, so that one
    failed trial cannot flatten the rest."""
    from .trials import is_ordered

    if not dims:
        return None
    ncols = min(len(dims), 3)
    nrows = math.ceil(len(dims) / ncols)
    width = min(9.4, max(5.8, 0.9 + 3.0 * ncols))
    fig = _figure(width, 1.4 + 2.9 * nrows)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(len(dims))]
    trials = _Trials.sort(runs, usable)
    scale = _search_scale(trials)
    for ax, dim in zip(axes, dims, strict=True):
        _draw_search_panel(ax, dim, trials, best, scale)
        _search_x_axis(ax, dim, tr)
        ax.set_ylim(scale.low, scale.high)
        if is_ordered(dim):
            ax.set_title(_trend_title(runs, usable, dim, tr), fontsize=9)
    for ax in axes[::ncols]:  # the first column
        ax.set_ylabel(tr("fig_accuracy"))
    title = _title_lines(tr("fig_search_title", label=label) + subtitle, width, 11)
    fig.suptitle(plain(title), fontsize=11)
    _search_legend(fig, trials, best, scale.below, tr)
    return fig


def search_scatter(label: str, runs: list[Run], dims: list, tr: Tr | None = None, **kw):
    return render(draw_search_scatter, label, runs, dims, tr=tr or Tr("en"), **kw)


def _trial_kind(run: Run, best: str | None, usable: frozenset[str]):
    """How a trial's curves are drawn: (kind, line style), or None for a trial still running."""
    if run.run_id == best:
        return "best", {"color": "black", "linewidth": 2.2, "zorder": 5}
    if run.run_id in usable:
        return "finished", {"color": VAL_COLOR, "linewidth": 1.1, "alpha": 0.75}
    if run.status == "pruned":
        return "pruned", {"color": PRUNED_COLOR, "linewidth": 1.0, "linestyle": "--"}
    if run.status == "diverged":
        return "diverged", {"color": BAD_COLOR, "linewidth": 1.0}
    if run.finished:
        return "failed", {"color": MUTED_COLOR, "linewidth": 1.0, "linestyle": ":"}
    return None


def _draw_trial(loss_ax, acc_ax, run: Run, kind: str, style_: dict):
    """One trial's validation loss and accuracy (%) curves, a pruned trial's ending in a
    cross where it was stopped; returns the two series drawn."""
    epochs, loss = run.series("val_loss")
    acc = [100 * v for v in run.series("val_acc")[1]]
    marker = {"marker": "o", "markersize": 2.5} if len(epochs) <= 30 else {}
    for ax, values in ((loss_ax, loss), (acc_ax, acc)):
        ax.plot(epochs, values, **style_, **marker)
        if kind == "pruned" and epochs and math.isfinite(values[-1]):
            ax.plot(
                [epochs[-1]], [values[-1]], marker="x", color=PRUNED_COLOR, markersize=7,
                linestyle="",
            )  # fmt: skip
    return loss, acc


def _trials_legend(fig, acc_ax, drawn: dict[str, list[float]], tr: Tr) -> None:
    """A key for each kind of trial drawn; a kind whose accuracies all lie off the axis
    (trials that did not learn or diverged) says so."""
    from matplotlib.lines import Line2D

    keys = {
        "best": (Line2D([], [], color="black", linewidth=2.2), "fig_search_best"),
        "finished": (Line2D([], [], color=VAL_COLOR), "fig_trials_finished"),
        "pruned": (
            Line2D([], [], color=PRUNED_COLOR, linestyle="--", marker="x"),
            "fig_trials_pruned",
        ),
        "failed": (Line2D([], [], color=MUTED_COLOR, linestyle=":"), "fig_not_learned_key"),
        "diverged": (Line2D([], [], color=BAD_COLOR), "fig_search_diverged"),
    }
    shown = [k for k in keys if k in drawn]
    low, high = acc_ax.get_ylim()

    def text(kind: str) -> str:
        hidden = not any(low <= v <= high for v in drawn[kind])
        return tr(keys[kind][1]) + (tr("fig_off_axis") if hidden else "")

    fit_legend(fig, [keys[k][0] for k in shown], [text(k) for k in shown], 8.5)


def draw_trial_curves(
    label: str,
    runs: list[Run],
    tr: Tr,
    usable: frozenset[str],
    best: str | None = None,
    subtitle: str = "",
):
    """Validation loss and accuracy per epoch of every trial of a search on one figure: the
    best finished trial bold, pruned trials dashed and ending in a cross where they were
    stopped, diverged ones red."""
    with_history = [r for r in runs if r.history]
    if not with_history:
        return None
    fig = _figure(8.6, 3.9)
    loss_ax, acc_ax = fig.subplots(1, 2)
    drawn: dict[str, list[float]] = {}  # kind -> its finite values on the accuracy axis
    healthy_loss, healthy_acc = [], []
    max_epoch = 1
    # Draw order: muted lines first, the best trial last (on top).
    for run in sorted(with_history, key=lambda r: (r.run_id == best, r.run_id in usable)):
        max_epoch = max(max_epoch, max(run.series("val_loss")[0], default=1))
        styled = _trial_kind(run, best, usable)
        if styled is None:
            continue
        kind, style_ = styled
        loss, acc = _draw_trial(loss_ax, acc_ax, run, kind, style_)
        drawn.setdefault(kind, []).extend(v for v in acc if math.isfinite(v))
        if kind in ("best", "finished", "pruned"):
            healthy_loss += [v for v in loss if math.isfinite(v)]
            healthy_acc += [v for v in acc if math.isfinite(v)]
    loss_ax.set_ylabel(tr("fig_val_loss"))
    _set_ylim(loss_ax, _loss_limits(healthy_loss), tr)
    _set_ylim(acc_ax, _accuracy_limits(healthy_acc))
    acc_ax.set_ylabel(tr("fig_val_accuracy"))
    _epoch_axes((loss_ax, acc_ax), max_epoch, tr)
    title = tr("fig_trials_title", label=label, n=len(with_history)) + subtitle
    fig.suptitle(plain(_title_lines(title, 8.6, 11)), fontsize=11)
    _trials_legend(fig, acc_ax, drawn, tr)
    return fig


def trial_curves(label: str, runs: list[Run], tr: Tr | None = None, **kw) -> bytes | None:
    return render(draw_trial_curves, label, runs, tr=tr or Tr("en"), **kw)
