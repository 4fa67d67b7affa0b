"""The report's figures, each returned as PNG bytes.

Figures are drawn on `matplotlib.figure.Figure` directly, never through pyplot: no global
backend is selected or changed (the Agg canvas renders the PNG), so building a report inside
a notebook or a server leaves its plotting state alone. matplotlib is imported lazily.
"""

from __future__ import annotations

import io
import math

import numpy as np

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

DPI = 110
TRAIN_COLOR, VAL_COLOR, BAD_COLOR = "#1f77b4", "#ff7f0e", "#c62828"


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def plain(text: str) -> str:
    """Text from configs shown literally: a `$` would otherwise start matplotlib mathtext."""
    return str(text).replace("$", r"\$")


def _pick(runs: list[Run]) -> Run:
    """The run a panel shows when several share its lr and dropout: best by validation."""

    def rank(run: Run):
        val = run.metric("val_acc")
        return (not run.finished, -val if val is not None else math.inf, -len(run.history))

    return min(runs, key=rank)


def curves(model: str, runs: list[Run]) -> bytes:
    """Train/val loss per epoch; one panel per (lr, dropout), rows lr, columns dropout."""
    lrs = sorted(
        {value_key(r.fields.get(LR)): r.fields.get(LR) for r in runs}.values(), key=sort_key
    )
    dropouts = sorted(
        {value_key(r.fields.get(DROPOUT)): r.fields.get(DROPOUT) for r in runs}.values(),
        key=sort_key,
    )
    others = [f for f in grid_fields(runs) if f not in (LR, DROPOUT)]
    shared = False  # does any panel stand for several runs?
    nrows, ncols = len(lrs), len(dropouts)
    fig = _figure(1.0 + 3.0 * ncols, 0.9 + 2.4 * nrows)
    axes = np.atleast_2d(fig.subplots(nrows, ncols, sharex=True, sharey=True, squeeze=False))

    # A diverged run's exploding loss would flatten every other panel on the shared axis:
    # scale to the healthy runs and let the diverged curve run off the top.
    healthy = [
        v
        for r in runs
        if r.status != "diverged"
        for key in ("train_loss", "val_loss")
        for v in r.series(key)[1]
        if math.isfinite(v)
    ]
    max_epoch = max((max(r.series("val_loss")[0], default=1) for r in runs), default=1)
    handles = None
    for i, lr in enumerate(lrs):
        for j, dropout in enumerate(dropouts):
            ax = axes[i][j]
            cell = [
                r
                for r in runs
                if value_key(r.fields.get(LR)) == value_key(lr)
                and value_key(r.fields.get(DROPOUT)) == value_key(dropout)
            ]
            title = f"lr={fmt_value(lr)}, dropout={fmt_value(dropout)}"
            if not cell:
                ax.set_title(title, fontsize=9)
                ax.text(
                    0.5,
                    0.5,
                    "no run",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.5",
                )
                continue
            run = _pick(cell)
            shared = shared or len(cell) > 1
            extra = ", ".join(f"{f}={fmt_value(run.fields.get(f))}" for f in others)
            if extra:
                title += f"\n{extra}"
            color = "black"
            if run.status == "diverged":
                title += f"\nDIVERGED at epoch {run.diverged_epoch}"
                color = BAD_COLOR
                ax.axvline(run.diverged_epoch, color=BAD_COLOR, linestyle=":", linewidth=1)
            elif not run.finished:
                title += f"\n({run.status.upper()})"
                color = BAD_COLOR if run.status == "failed" else "0.35"
            ax.set_title(plain(title), fontsize=8.5, color=color)
            epochs, train = run.series("train_loss")
            _, val = run.series("val_loss")
            if not any(math.isfinite(v) for v in train + val):
                ax.text(
                    0.5,
                    0.5,
                    "no finite loss recorded",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.5",
                )
                continue
            # Markers keep a one-epoch run (a line of one point) visible.
            style = {"marker": "o", "markersize": 5 if len(epochs) == 1 else 3}
            if len(epochs) > 30:
                style = {}
            (h1,) = ax.plot(epochs, train, color=TRAIN_COLOR, label="train loss", **style)
            (h2,) = ax.plot(epochs, val, color=VAL_COLOR, linestyle="--", label="val loss", **style)
            handles = handles or [h1, h2]
            best_epoch = run.metric("best_epoch")
            if run.finished and best_epoch is not None:
                ax.axvline(best_epoch, color="0.6", linestyle=":", linewidth=1)
            ax.grid(True, alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for row in axes:
        row[0].set_ylabel("loss")
    if healthy:
        low, high = min(healthy), max(healthy)
        pad = 0.06 * max(high - low, abs(high), 1e-3)  # room for markers at the extremes
        axes[0][0].set_ylim(0.0 if low >= 0 else low - pad, high + pad)
    if max_epoch <= 1:
        axes[0][0].set_xlim(0.5, 1.5)
    from matplotlib.ticker import MaxNLocator

    for ax in axes.ravel():
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    title = f"Parameter combinations for {model}"
    if others and shared:
        title += f"\n(each panel: best run by validation accuracy over {', '.join(others)})"
    fig.suptitle(plain(title), fontsize=12)
    if handles:
        handles = [*handles]
        labels = ["train loss", "val loss"]
        if any(r.finished for r in runs):
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="0.6", linestyle=":"))
            labels.append("best epoch (by val acc)")
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=9)
    return _png(fig)


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
    ax.margins(x=0.15, y=0.15)


def accuracy_vs(bests: list[Best], x: str) -> bytes | None:
    """Test accuracy of each model's best run (chosen by val) against params or seconds."""
    points = [
        (b.params if x == "params" else b.seconds, b.mean("test_acc") * 100, b.model)
        for b in bests
        if b.mean("test_acc") is not None
        and (b.params if x == "params" else b.seconds) not in (None, 0)
    ]
    if not points:
        return None
    xs, ys, labels = zip(*points, strict=True)
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    _scatter(ax, xs, ys, labels)
    if x == "seconds":
        _plain_log_axis(ax.xaxis)
    ax.set_xlabel("parameters (log scale)" if x == "params" else "running time, s (log scale)")
    ax.set_ylabel("test accuracy (%)")
    what = "parameters" if x == "params" else "running time"
    ax.set_title(
        f"Test accuracy vs {what}\n(best run per model, chosen by validation)", fontsize=11
    )
    return _png(fig)


def time_vs_params(bests: list[Best], runs: list[Run]) -> bytes | None:
    points = [(b.params, b.seconds, b.model) for b in bests if b.params and b.seconds]
    if not points:
        return None
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    # Every finished run faintly behind: shows how much time varies within one model.
    others = [(r.params, r.seconds) for r in runs if r.finished and r.params and r.seconds]
    if others:
        ax.scatter(
            *zip(*others, strict=True), color="0.75", s=12, zorder=2, label="all finished runs"
        )
    xs, ys, labels = zip(*points, strict=True)
    _scatter(ax, xs, ys, labels)
    ax.set_yscale("log")
    _plain_log_axis(ax.yaxis)
    fit = log_fit(bests)
    if fit:
        line_x = np.logspace(math.log10(min(xs)), math.log10(max(xs)), 50)
        ax.plot(
            line_x,
            10 ** (fit["intercept"] + fit["slope"] * np.log10(line_x)),
            color=VAL_COLOR,
            linestyle="--",
            label=f"log-log fit, slope {fit['slope']:.2f}",
        )
        title = (
            f"Running time vs parameters: Pearson r = {fit['r']:.2f}\n"
            f"(of log10 params vs log10 time, {fit['n']} models' best runs)"
        )
    else:
        title = f"Running time vs parameters\n(no correlation: {len(points)} model(s), need 3)"
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("running time, s (log scale)")
    ax.legend(fontsize=8, loc="upper left")
    return _png(fig)


def confusion(matrix: list[list[int]], title: str) -> bytes:
    counts = np.asarray(matrix, dtype=np.int64)  # (true, pred)
    k = counts.shape[0]
    fig = _figure(1.6 + 0.5 * k, 1.2 + 0.5 * k)
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
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(plain(title), fontsize=10)
    return _png(fig)


def misclassified(images: np.ndarray, items: list[tuple[int, int, int]], title: str) -> bytes:
    """A grid of test digits, each titled `true->pred`; images is (N, H, W) uint8."""
    cols = min(12, len(items))
    rows = math.ceil(len(items) / cols)
    fig = _figure(0.95 * cols + 0.3, 1.05 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (index, true, pred) in zip(axes, items, strict=False):
        ax.imshow(images[index], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(f"{true}->{pred}", fontsize=9)
    fig.suptitle(plain(title), fontsize=11)
    return _png(fig)
