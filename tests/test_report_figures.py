"""The report's figures: nothing clipped at any grid size, accuracy beside loss, the heatmap,
the overlay of best runs, and Chinese labels with a CJK font (English without one)."""

from __future__ import annotations

import pytest
from test_report import history, record

from mnistlab.report import plots
from mnistlab.report.analysis import analyse
from mnistlab.report.i18n import Tr
from mnistlab.report.runs import to_runs

LRS = [5e-4, 1e-3, 5e-3]
DROPOUTS = [0.25, 0.3, 0.5, 0.75]


def assert_nothing_clipped(fig) -> None:
    """Every axes (with its tick labels, titles and texts), legend and figure title lies
    inside the figure: nothing is cut off even before the tight bounding box of savefig."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    artists = [*fig.axes, *fig.legends, *fig.texts]
    if fig._suptitle is not None:
        artists.append(fig._suptitle)
    assert fig.legends or fig.axes
    for artist in artists:
        extent = artist.get_tightbbox(renderer) if hasattr(artist, "get_tightbbox") else None
        extent = extent or artist.get_window_extent(renderer)
        inside = (
            extent.x0 >= box.x0 - 1
            and extent.y0 >= box.y0 - 1
            and extent.x1 <= box.x1 + 1
            and extent.y1 <= box.y1 + 1
        )
        assert inside, (type(artist).__name__, extent, box)


def grid_runs(nrows: int, ncols: int, model="mobilenetv2", **extra) -> list:
    runs = []
    for lr in LRS[:nrows]:
        for d in DROPOUTS[:ncols]:
            runs.append(record(model, lr, d, hist=history(8, gap=0.05 - 0.1 * d), **extra))
    return to_runs(runs)


SIZES = [(1, 1), (1, 2), (2, 1), (2, 2), (1, 4), (3, 1), (2, 3), (3, 4)]


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("nrows, ncols", SIZES)
def test_curves_are_never_clipped(nrows, ncols, lang):
    runs = grid_runs(nrows, ncols)
    with plots.style(Tr(lang)):
        fig = plots.draw_curves("mobilenetv2", runs, tr=plots.figure_language(Tr(lang)))
        assert_nothing_clipped(fig)
    assert len(fig.axes) == 2 * nrows * ncols  # an accuracy panel beneath every loss panel
    labels = {ax.get_ylabel() for ax in fig.axes} - {""}
    assert len(labels) == 2  # "loss" and "accuracy (%)" (or their Chinese)


def test_curves_with_long_titles_diverged_and_not_learned_runs():
    runs = to_runs(
        [
            record("lenet", 1e-3, 0.25, batch_size=32, optimizer="adamw_with_a_long_name"),
            record("lenet", 1e-3, 0.5, batch_size=64, optimizer="adam"),
            record(
                "lenet",
                5e-2,
                0.25,
                status="diverged",
                hist=history(2) + [{"epoch": 3, "train_loss": None, "val_loss": None}],
            ),
            record("lenet", 5e-2, 0.5, val_acc=0.11, hist=history(4, gap=2.0)),
        ]
    )
    excluded = frozenset(analyse(runs).excluded)
    assert len(excluded) == 1
    fig = plots.draw_curves("lenet", runs, tr=Tr("en"), excluded=excluded, subtitle=" (budget B)")
    assert_nothing_clipped(fig)
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "DIVERGED at epoch 3" in titles and "DID NOT LEARN" in titles


@pytest.mark.parametrize("nrows, ncols", SIZES)
def test_heatmap_is_never_clipped(nrows, ncols):
    from mnistlab.report.runs import value_key

    cells = {
        (value_key(lr), value_key(d)): (
            0.97 + 0.001 * i,
            0.96 + 0.001 * j,
            "*" if i == j == 0 else "",
        )
        for i, lr in enumerate(LRS[:nrows])
        for j, d in enumerate(DROPOUTS[:ncols])
    }
    cells[(value_key(LRS[0]), value_key(DROPOUTS[ncols - 1]))] = (0.1123, 0.1135, "†")
    for lang in ("en", "zh"):
        with plots.style(Tr(lang)):
            fig = plots.draw_heatmap(
                "wrn16_4", cells, LRS[:nrows], DROPOUTS[:ncols], tr=plots.figure_language(Tr(lang))
            )
            assert_nothing_clipped(fig)
    texts = [t.get_text() for ax in fig.axes[:2] for t in ax.texts]
    assert "11.23†" in texts and len(texts) == 2 * nrows * ncols


@pytest.mark.parametrize("models", [1, 3, 9, 12])
def test_best_runs_overlay_is_never_clipped(models):
    names = [f"model_with_long_name_{i}" for i in range(models)]
    records = [record(m, 1e-3, 0.25, val_acc=0.9 + i / 1000) for i, m in enumerate(names)]
    bests = analyse(to_runs(records)).bests
    fig = plots.draw_best_runs(bests, tr=Tr("en"), subtitle=" (budget A)")
    assert_nothing_clipped(fig)
    legend = fig.legends[0]
    assert len(legend.get_texts()) == models + 1  # every model, and the train-curve key
    assert {ax.get_ylabel() for ax in fig.axes} == {
        "validation loss (log scale)",
        "validation accuracy (%)",
    }


def test_scatter_figures_are_never_clipped():
    records = [
        record(m, 1e-3, 0.25, val_acc=0.97 + i / 1000)
        for i, m in enumerate(("lenet", "wrn", "resnet", "vgg", "mobilenetv2_long_name"))
    ]
    runs = to_runs(records)
    bests = analyse(runs).bests
    for fig in (
        plots.draw_accuracy_vs(bests, "params", tr=Tr("en")),
        plots.draw_accuracy_vs(bests, "seconds", tr=Tr("en")),
        plots.draw_time_vs_params(bests, runs, tr=Tr("en")),
    ):
        assert_nothing_clipped(fig)


def test_confusion_and_gallery_are_never_clipped():
    import numpy as np

    matrix = [[100 if i == j else 1 for j in range(10)] for i in range(10)]
    title = "Confusion matrix: mobilenetv2, test set (10,000 images, 1,234 wrong)"
    assert_nothing_clipped(plots.draw_confusion(matrix, title, tr=Tr("en")))
    images = np.zeros((5, 28, 28), dtype=np.uint8)
    for n in (1, 5):
        fig = plots.draw_misclassified(
            images, [(i, 1, 2) for i in range(n)], "A long title " * 4, tr=Tr("en")
        )
        assert_nothing_clipped(fig)


def test_png_is_saved_whole():
    import io

    from PIL import Image

    png = plots.curves("lenet", grid_runs(3, 4, model="lenet"), tr=Tr("en"))
    image = Image.open(io.BytesIO(png))
    assert image.width > 600 and image.height > image.width  # 6 rows of 4 panels


def test_chinese_labels_need_a_cjk_font_else_english(monkeypatch):
    if plots.cjk_font() is None:
        assert plots.figure_language(Tr("zh")).lang == "en"
    else:
        assert plots.figure_language(Tr("zh")).lang == "zh"
    monkeypatch.setattr(plots, "cjk_font", lambda: None)
    assert plots.figure_language(Tr("zh")).lang == "en"
    png = plots.curves("lenet", grid_runs(1, 2, model="lenet"), tr=Tr("zh"))
    assert png[:4] == b"\x89PNG"


def test_no_text_prints_under_8_pt_on_a4():
    # A 12-inch figure is printed 7.3 inches wide: its 6 pt text would print at 3.7 pt.
    fig = plots._figure(12, 3)
    ax = fig.subplots()
    ax.set_title("small", fontsize=6)
    ax.tick_params(labelsize=5)
    png = plots._png(fig)
    width_px = int.from_bytes(png[16:20], "big")
    scale = plots.DPI * min(1 / 96, plots.PRINT_WIDTH_IN / width_px)
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    assert min(sizes) * scale >= 7.99


def test_chinese_figures_carry_no_english_words():
    import re

    from matplotlib.text import Text

    tr = plots.figure_language(Tr("zh"))
    if tr.lang != "zh":
        pytest.skip("no CJK font installed: figures fall back to English by design")
    runs = grid_runs(2, 2)
    with plots.style(tr):
        figures = [plots.draw_curves("lenet", runs, tr=tr)]
        figures.append(plots.draw_best_runs(analyse(runs).bests, tr=tr))
        for fig in figures:
            plots._png(fig)  # draws the tick labels too
    for fig in figures:
        for text in (t.get_text() for t in fig.findobj(Text)):
            text = re.sub(r"\$[^$]*\$", "", text)  # mathtext: log-axis tick labels
            words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)}
            assert words <= {"lenet", "dropout", "mobilenetv"}, text
