"""The report of a search ([search] sweeps): accuracy against each searched setting instead of
the lr x dropout views, a table of the best (finished) trials, and conclusions that claim a
setting's effect only when its rank correlation passes the stated threshold. Pruned trials are
drawn apart and never ranked with finished ones. A grid sweep's report is left as it was.

Ledgers are synthetic, written in the exact result.json schema (see test_report.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import read_csv, record, write_ledger
from test_report_conclusions import none, one
from test_report_figures import assert_nothing_clipped

from mnistlab.report import build_report, conclusions, plots
from mnistlab.report.analysis import analyse
from mnistlab.report.i18n import Tr
from mnistlab.report.runs import to_runs
from mnistlab.report.stats import spearman
from mnistlab.report.trials import SearchInfo, infer_search, read_search
from mnistlab.search import Dimension, parse_search

CJK = re.compile(r"[\u4e00-\u9fff]")
SEARCH = """\
[sweep]
name = "tiny_search"

[base]
model = "lenet"
epochs = 3

[search]
trials = 8
sampler = "random"
pruner = "median"

[search.space]
lr = { low = 1e-4, high = 1e-2, log = true }
dropout = { low = 0.1, high = 0.7 }
"""
SPACE = {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.1, "high": 0.7}}
SPEC = parse_search({"trials": 8, "sampler": "random", "space": SPACE}, "test")
INFO = SearchInfo(tuple(SPEC.space.values()), SPEC)  # what read_search makes of SEARCH
LR, DROPOUT = INFO.space
BUDGET = {"epochs": 3, "eval_subset": 500, "test_used": 500}


def curve(epochs: int, final: float) -> list[dict]:
    """Validation accuracy climbing to `final` at the last epoch; losses falling."""
    rows = []
    for e in range(1, epochs + 1):
        val = final - 0.02 * (epochs - e)
        rows.append(
            {
                "epoch": e,
                "train_loss": 0.5 / e,
                "train_acc": min(1.0, val + 0.01),
                "val_loss": 0.55 / e + (1 - final),
                "val_acc": val,
                "lr": 1e-3,
                "seconds": 1.0,
                "images_per_second": 1000.0,
            }
        )
    return rows


def trial(lr, dropout, val, *, status="finished", epochs=3, model="lenet", **extra) -> dict:
    """One search trial as the ledger records it; a pruned one trained `epochs` < 3."""
    config = BUDGET | extra
    rec = record(
        model,
        lr,
        dropout,
        status=status,
        val_acc=val,
        test_acc=val - 0.002,
        hist=curve(epochs, val),
        error=f"stopped after epoch {epochs} of 3 by the pruner" if status == "pruned" else None,
        **config,
    )
    return rec


# lr rises with accuracy on every finished trial (a clear trend); dropout in no order.
FINISHED = [
    (1.2e-4, 0.41, 0.930),
    (3.1e-4, 0.12, 0.951),
    (8.4e-4, 0.66, 0.962),
    (2.2e-3, 0.27, 0.975),
    (5.3e-3, 0.55, 0.981),
    (9.1e-3, 0.33, 0.983),
]


def search_ledger() -> list[dict]:
    return [
        *(trial(lr, d, v) for lr, d, v in FINISHED),
        # Pruned early: one looks better after its single epoch than every finished trial,
        # which must not make it the best (it was judged after fewer epochs).
        trial(1.5e-4, 0.60, 0.990, status="pruned", epochs=1),
        trial(4.0e-4, 0.20, 0.900, status="pruned", epochs=2),
        trial(9.9e-3, 0.15, 0.1, status="diverged", epochs=2),
    ]


def write_search(path: Path, records: list[dict], toml: str = SEARCH) -> Path:
    sweep = write_ledger(path, records)
    (sweep / "sweep.toml").write_text(toml)
    return sweep


# ---------------------------------------------------------------- the whole report
def test_a_search_is_drawn_against_its_settings_not_as_a_grid(tmp_path):
    sweep = write_search(tmp_path / "s", search_ledger())
    out = build_report(sweep).parent
    names = {p.name for p in out.iterdir()}
    assert {"search_lenet.png", "trials_lenet.png", "best_trials.csv", "best_trials.md"} <= names
    assert not any(n.startswith(("heatmap_", "curves_")) for n in names)  # no lr x dropout views
    report = (out / "report.md").read_text()
    assert "## Search: accuracy against each searched setting" in report
    assert "Accuracy over the lr x dropout grid" not in report
    assert "![lenet: accuracy against each searched setting](search_lenet.png)" in report
    assert "![lenet: validation curves of 9 trials](trials_lenet.png)" in report

    # The best trials: finished ones only, best first, within-noise rows marked.
    assert "| # | model | lr | dropout | val acc (%) | test acc (%) | test 95% CI (%) |" in report
    assert "| 1 | lenet | 0.0091 | 0.33 | 98.30 | 98.10 | 96.36–98.91 | 3 | 190.0 |" in report
    assert "| 2 ≈ | lenet | 0.0053 | 0.55 | 98.10 |" in report
    assert "| 4 | lenet | 0.00084 | 0.66 | 96.20 |" in report
    assert "| 6 |" not in report  # a short table: five rows
    assert "2 pruned trials trained fewer epochs, so they are not ranked here" in report
    rows = read_csv(out / "best_trials.csv")
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert rows[0]["lr"] == "0.0091" and rows[0]["within_noise_of_best"] == ""
    assert [r["within_noise_of_best"] for r in rows[1:]] == ["yes", "yes", "no", "no"]
    assert all(r["val_acc_pct"] != "99.00" for r in rows)  # the pruned 99% is not ranked

    # The pruned trial that looked best after one epoch is not the best model either.
    best = read_csv(out / "best_per_model.csv")
    assert best[0]["lr"] == "0.0091" and best[0]["val_acc_pct"] == "98.30"
    # In the table of all runs, pruned trials come after the finished ones.
    statuses = [r["status"] for r in read_csv(out / "all_runs.csv")]
    assert statuses.index("pruned") > max(i for i, s in enumerate(statuses) if s == "finished")


def test_the_search_conclusions_say_only_what_the_data_supports():
    said = conclusions(search_ledger(), search=INFO)
    assert said[0] == (
        "This sweep is a search, not a grid: 9 trials (1 diverged, 6 finished, 2 pruned), "
        "their settings drawn by the random sampler from lr log-uniform in [0.0001, 0.01]; "
        "dropout uniform in [0.1, 0.7]; pruning: the median pruner (a trial is stopped when its "
        "validation accuracy falls below the median of earlier trials at the same epoch). "
        "The trials that ended trained 23 of their 27 planned epochs (15% not trained)."
    )
    assert one(said, "Best trial") == (
        "Best trial by validation accuracy, among finished trials only: lenet (lr=0.0091, "
        "dropout=0.33) with 98.30% validation and 98.10% test accuracy (95% interval "
        "96.36–98.91%, 500 test images), at epoch 3 of 3."
    )
    assert one(said, "inside the best's 95% interval") == (
        "2 other finished trials lie inside the best's 95% interval (96.87–99.19% for 500 "
        "validation images), so the search does not tell them apart: lenet (lr=0.0053, "
        "dropout=0.55) 98.10%; lenet (lr=0.0022, dropout=0.27) 97.50%."
    )
    one(said, "a trend is said only when the two-sided p < 0.025 (0.05 shared among the 2")
    assert one(said, "rose with lr") == (
        "lenet: validation accuracy rose with lr (Spearman ρ = 1.00 over 6 finished trials, "
        "p=0.0028)."
    )
    assert one(said, "lenet, dropout:") == (
        "lenet, dropout: no clear trend (Spearman ρ = 0.09 over 6 finished trials, p=0.92)."
    )
    assert one(said, "pruned,").startswith(
        "2 trials were pruned, 1 after epoch 1, 1 after epoch 2 (of 3 planned). They trained "
        "fewer epochs than the finished trials, so their accuracies are not comparable"
    )
    one(said, "1 run diverged (non-finite loss): lenet (lr=0.0099, dropout=0.15) at epoch 3.")
    # No grid sentences: no per-lr tally, no dropout gaps, no "not finished" for pruned trials.
    none(said, "Diverged runs by learning rate")
    none(said, "train-validation gap")
    none(said, "has not finished")
    none(said, "Learning rate and stability")


def shuffled(values: dict[float, float]) -> list[dict]:
    """Finished trials at the given lr -> val, dropout in a fixed scrambled order."""
    drops = [0.41, 0.12, 0.66, 0.27, 0.55, 0.33, 0.5, 0.2]
    return [trial(lr, drops[i], v) for i, (lr, v) in enumerate(values.items())]


@pytest.mark.parametrize(
    "values, claim",
    [
        # true: accuracy rises with lr on every trial
        ({1e-4: 0.90, 3e-4: 0.92, 1e-3: 0.94, 3e-3: 0.96, 9e-3: 0.97}, "rose with lr"),
        # the mirror image: it falls
        ({1e-4: 0.97, 3e-4: 0.96, 1e-3: 0.94, 3e-3: 0.92, 9e-3: 0.90}, "fell as lr rose"),
        # up then down: a strong optimum in the middle, but no monotone trend
        ({1e-4: 0.90, 3e-4: 0.95, 1e-3: 0.97, 3e-3: 0.95, 9e-3: 0.90}, "lenet, lr: no clear"),
        # a large rho that does not pass the threshold (6 trials, rho 0.83, p 0.058)
        (
            {1e-4: 0.91, 2e-4: 0.90, 5e-4: 0.93, 1e-3: 0.92, 3e-3: 0.95, 9e-3: 0.94},
            "lenet, lr: no clear trend (Spearman ρ = 0.83",
        ),
        # too few finished trials to judge
        ({1e-4: 0.90, 1e-3: 0.94, 9e-3: 0.97, 3e-3: 0.96}, "lenet, lr: 4 finished trials"),
    ],
)
def test_a_trend_is_claimed_only_past_the_threshold(values, claim):
    said = conclusions(shuffled(values), search=INFO)
    one(said, claim)
    if "rose" not in claim:
        none(said, "rose with lr")
    if "fell" not in claim:
        none(said, "fell as lr rose")


def test_pruned_and_not_learned_trials_are_left_out_of_trends():
    # Five finished trials rising with lr, and pruned trials contradicting them: the trend
    # counts only the five.
    records = shuffled({1e-4: 0.90, 3e-4: 0.92, 1e-3: 0.94, 3e-3: 0.96, 9e-3: 0.97})
    records += [trial(2e-4, 0.3, 0.99, status="pruned", epochs=1)]
    records += [trial(8e-3, 0.3, 0.5, status="pruned", epochs=2)]
    said = conclusions(records, search=INFO)
    assert "over 5 finished trials" in one(said, "rose with lr")
    one(said, "2 trials were pruned, 1 after epoch 1, 1 after epoch 2 (of 3 planned).")
    # A trial that did not learn is named and not counted: four left, too few.
    records = shuffled({1e-4: 0.11, 3e-4: 0.92, 1e-3: 0.94, 3e-3: 0.96, 9e-3: 0.97})
    said = conclusions(records, search=INFO)
    one(said, "Did not learn")
    one(said, "lenet, lr: 4 finished trials that learned, too few to judge a trend")


def test_no_pruned_trial_is_said_when_the_pruner_stopped_none():
    said = conclusions(shuffled({1e-4: 0.90, 3e-4: 0.92, 1e-3: 0.94}), search=INFO)
    one(said, "No trial was pruned.")
    none(said, "The trials that ended trained")  # nothing was cut short


def test_several_models_are_compared_per_model_and_ranked():
    space = {
        "model": {"choices": ["lenet", "m5"]},
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
    }
    spec = parse_search({"trials": 12, "space": space}, "test")
    info = SearchInfo(tuple(spec.space.values()), spec)
    lenet = {1e-4: 0.90, 3e-4: 0.92, 1e-3: 0.94, 3e-3: 0.96, 9e-3: 0.97}
    m5 = {1e-4: 0.99, 3e-4: 0.97, 1e-3: 0.985, 3e-3: 0.975, 9e-3: 0.98}
    records = [trial(lr, 0.25, v) for lr, v in lenet.items()]
    records += [trial(lr, 0.25, v, model="m5") for lr, v in m5.items()]
    said = conclusions(records, search=info)
    one(said, "Best trial by validation accuracy, among finished trials only: m5 (lr=0.0001)")
    one(said, "Validation accuracy of each model's best combination: m5 99.00%")
    one(said, "lenet: validation accuracy rose with lr")
    one(said, "m5, lr: no clear trend")
    none(said, "shared among")  # one ordered setting tested: the threshold stays 0.05
    one(said, "a trend is said only when the two-sided p < 0.05.")


def test_each_model_gets_its_own_figures(tmp_path):
    toml = SEARCH.replace(
        "[search.space]\n", '[search.space]\nmodel = {choices = ["lenet", "m5"]}\n'
    )
    records = [trial(lr, d, v) for lr, d, v in FINISHED]
    records += [trial(lr, d, v - 0.01, model="m5") for lr, d, v in FINISHED]
    out = build_report(write_search(tmp_path / "s", records, toml)).parent
    names = {p.name for p in out.iterdir()}
    assert {"search_lenet.png", "search_m5.png", "trials_lenet.png", "trials_m5.png"} <= names


def test_a_grid_sampler_search_keeps_the_grid_views_too(tmp_path):
    toml = SEARCH.replace('sampler = "random"', 'sampler = "grid"').replace("trials = 8", "")
    toml = toml.replace(
        "lr = { low = 1e-4, high = 1e-2, log = true }\ndropout = { low = 0.1, high = 0.7 }",
        "lr = { choices = [1e-3, 5e-3] }\ndropout = { choices = [0.25, 0.5] }",
    )
    records = [
        trial(1e-3, 0.25, 0.96),
        trial(1e-3, 0.5, 0.95),
        trial(5e-3, 0.25, 0.97),
        trial(5e-3, 0.5, 0.90, status="pruned", epochs=1),
    ]
    out = build_report(write_search(tmp_path / "s", records, toml)).parent
    names = {p.name for p in out.iterdir()}
    assert {"search_lenet.png", "heatmap_lenet.png", "curves_lenet.png"} <= names
    report = (out / "report.md").read_text()
    assert "| 0.005 | 97.00 / 96.80 * | pruned |" in report  # the pruned cell, not ranked


def test_an_unreadable_search_table_still_makes_a_search(tmp_path):
    toml = SEARCH.replace("[search]\n", "[search]\nfuture_key = 1\n")
    sweep = write_search(tmp_path / "s", search_ledger(), toml)
    runs = to_runs(search_ledger())
    info = read_search(sweep, runs)
    assert info is not None and info.spec is None
    assert {d.name: d.log for d in info.space} == {"lr": True, "dropout": False}
    report = (build_report(sweep).parent / "report.md").read_text()
    assert "[search] table could not be read, so the searched settings are taken" in report
    assert infer_search(to_runs([trial(1e-3, 0.25, 0.9)])) is None  # nothing varies


def test_a_grid_sweep_is_not_a_search(tmp_path):
    from test_report_views import grid

    sweep = write_ledger(tmp_path / "g", grid())
    assert read_search(sweep) is None  # no sweep.toml
    (sweep / "sweep.toml").write_text('[sweep]\nname = "g"\n[grid]\nlr = [1e-3, 5e-3]\n')
    assert read_search(sweep) is None
    (sweep / "sweep.toml").write_text("not toml [")
    assert read_search(sweep) is None
    out = build_report(sweep).parent
    names = {p.name for p in out.iterdir()}
    assert {"heatmap_lenet.png", "curves_lenet.png"} <= names
    assert not any(n.startswith(("search_", "trials_", "best_trials")) for n in names)
    report = (out / "report.md").read_text()
    assert "## Accuracy over the lr x dropout grid" in report
    assert "searched setting" not in report and "This sweep is a search" not in report


# ---------------------------------------------------------------- Chinese
def test_the_search_report_in_chinese(tmp_path):
    sweep = write_search(tmp_path / "s", search_ledger())
    english = conclusions(search_ledger(), search=INFO)
    chinese = conclusions(search_ledger(), lang="zh", search=INFO)
    assert len(chinese) == len(english)
    for text in chinese:
        assert CJK.search(text), text
        words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)}
        assert words <= {"lenet", "dropout", "spearman", "bonferroni"}, (words, text)
    one(
        chinese,
        "lenet：验证准确率随 lr 增大而上升（在 6 次已完成试验上 Spearman ρ = 1.00，p=0.0028）。",
    )
    one(chinese, "2 次试验被提前终止：第 1 轮后 1 次、第 2 轮后 1 次（原计划 3 轮）。")
    out = build_report(sweep, tmp_path / "zh", lang="zh").parent
    report = (out / "report.md").read_text()
    assert "## 搜索：准确率与各搜索参数的关系" in report and "### 最佳试验" in report
    assert "| 名次 | 模型 | 学习率 | dropout | 验证准确率 (%) |" in report


# ---------------------------------------------------------------- the figures
BATCH = Dimension("batch_size", choices=(32, 64, 128))
OPTIMIZER = Dimension("optimizer", choices=("adam", "adamw", "sgd_with_a_long_name"))


def figure_runs() -> list:
    records = search_ledger()
    records += [trial(5e-4, 0.5, 0.11, batch_size=128, optimizer="sgd_with_a_long_name")]
    for i, rec in enumerate(records):
        rec["config"]["batch_size"] = (32, 64, 128)[i % 3]
        rec["config"]["optimizer"] = OPTIMIZER.choices[i % 3]
    return to_runs(records)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("dims", [[LR], [LR, DROPOUT], [LR, DROPOUT, BATCH, OPTIMIZER]])
def test_search_scatter_is_never_clipped(dims, lang):
    runs = figure_runs()
    analysis = analyse(runs, INFO)
    usable = frozenset(r.run_id for r in analysis.groups[0].usable)
    best = max((r for r in runs if r.run_id in usable), key=lambda r: r.metric("val_acc"))
    tr = plots.figure_language(Tr(lang))
    with plots.style(tr):
        fig = plots.draw_search_scatter(
            "lenet_with_a_long_name", runs, dims, tr=tr, usable=usable, best=best.run_id,
            subtitle=" (budget A)",
        )  # fmt: skip
        assert_nothing_clipped(fig)
    assert len(fig.axes) == len(dims)
    assert fig.axes[0].get_xscale() == "log"
    if len(dims) > 1:
        assert fig.axes[1].get_xscale() == "linear"
    # Pruned trials carry the epochs they trained; a trial far below is written on the floor.
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert {"1", "2"} <= texts and "11.0" in texts
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert len(legend) == 7  # val, test, best, pruned, did not learn, diverged, below


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_trial_curves_are_never_clipped(lang):
    runs = figure_runs()
    usable = frozenset(r.run_id for r in runs if r.finished and r.metric("val_acc") > 0.5)
    tr = plots.figure_language(Tr(lang))
    with plots.style(tr):
        fig = plots.draw_trial_curves("lenet", runs, tr=tr, usable=usable, best=runs[0].run_id)
        assert_nothing_clipped(fig)
    assert len(fig.legends[0].get_texts()) == 5  # best, finished, pruned, no learning, diverged


def test_the_scatter_png_is_written_with_a_log_axis_for_log_ranges():
    png = plots.search_scatter(
        "lenet", figure_runs(), [LR, DROPOUT], tr=Tr("en"), usable=frozenset()
    )
    assert png[:4] == b"\x89PNG"
    assert plots.draw_search_scatter("lenet", [], [], tr=Tr("en"), usable=frozenset()) is None


# ---------------------------------------------------------------- the statistic
def test_spearman_exact_and_approximate_p_values():
    assert spearman([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).p == pytest.approx(2 / 120)
    falling = spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1])
    assert falling.rho == -1 and falling.p == pytest.approx(2 / 120) and falling.exact
    # scipy.stats.spearmanr(range(6), [2, 1, 4, 3, 6, 5]): rho 0.8286, exact p 0.0583
    test = spearman(range(6), [2, 1, 4, 3, 6, 5])
    assert test.rho == pytest.approx(0.828571, abs=1e-6) and test.p == pytest.approx(0.058333, 1e-4)
    # Beyond 8 points: Student's t (scipy: rho 0.95, p 8.76e-05 for these)
    approx = spearman(range(9), [1, 3, 2, 5, 4, 7, 6, 8, 9])
    assert not approx.exact and approx.p == pytest.approx(8.7625e-05, rel=1e-3)
    # Ties share ranks; constant sides and too few points have no correlation.
    assert spearman([1, 1, 2, 2, 3], [1, 2, 3, 4, 5]).rho == pytest.approx(0.948683, abs=1e-6)
    assert spearman([1, 1, 1, 1, 1], [1, 2, 3, 4, 5]) is None
    assert spearman([1, 2], [1, 2]) is None


# ---------------------------------------------------------------- printed
WIDE_SEARCH = SEARCH.replace(
    "dropout = { low = 0.1, high = 0.7 }",
    "dropout = { low = 0.1, high = 0.7 }\nbatch_size = { choices = [32, 64, 128] }\n"
    'optimizer = { choices = ["adam", "adamw", "sgd"] }\nweight_decay = { low = 1e-6, high = 0.1, log = true }',
)


def wide_search() -> list[dict]:
    records = search_ledger()
    for i, rec in enumerate(records):
        rec["config"] |= {
            "batch_size": (32, 64, 128)[i % 3],
            "optimizer": ("adam", "adamw", "sgd")[i % 3],
            "weight_decay": 1.234567e-5 * (i + 1),
        }
    return records


@pytest.mark.browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_search_report_prints_whole_on_a4(browser, tmp_path, lang):
    from test_report_print import CONTENT_HEIGHT, CONTENT_WIDTH, measure

    sweep = write_search(tmp_path / "s", wide_search(), WIDE_SEARCH)
    assert len(read_search(sweep).axes) == 5
    index = build_report(sweep, lang=lang)
    page = browser.new_page()
    try:
        found = measure(page, index)
    finally:
        page.close()
    assert found["page"] <= CONTENT_WIDTH
    for width in found["tables"]:
        assert width <= CONTENT_WIDTH, (width, CONTENT_WIDTH)
    alts = [i["alt"] for i in found["images"]]
    assert any("search_lenet" in a or "searched setting" in a or "搜索参数" in a for a in alts)
    for image in found["images"]:
        assert image["natural"] > 0, image
        assert image["left"] >= 0 and image["right"] <= CONTENT_WIDTH + 0.5, image
        assert image["height"] <= CONTENT_HEIGHT, image


def test_a_trend_shared_with_another_searched_setting_is_said_to_be_entangled():
    space = SPACE | {"weight_decay": {"low": 1e-6, "high": 0.1, "log": True}}
    spec = parse_search({"trials": 8, "space": space}, "test")
    info = SearchInfo(tuple(spec.space.values()), spec)
    rising = [(1e-4, 0.90), (3e-4, 0.92), (1e-3, 0.94), (2e-3, 0.95), (3e-3, 0.96), (9e-3, 0.97)]
    drops = (0.41, 0.12, 0.66, 0.27, 0.55, 0.33)
    # Weight decay sampled in step with lr: both "trends" rest on the same evidence.
    together = [
        trial(lr, d, v, weight_decay=lr / 10) for (lr, v), d in zip(rising, drops, strict=True)
    ]
    said = conclusions(together, search=info)
    one(said, "p < 0.0167 (0.05 shared among the 3 settings tested, Bonferroni)")
    one(said, "rose with lr")
    one(said, "rose with weight_decay")
    assert one(said, "moved together") == (
        "lenet: lr and weight_decay moved together in these 6 trials (Spearman ρ = 1.00, "
        "p=0.0028), so they cannot tell which of the two the validation accuracy followed."
    )
    chinese = one(conclusions(together, lang="zh", search=info), "同步变化")
    assert chinese.startswith("lenet：在这 6 次试验中 lr 与 weight_decay 同步变化")
    # Weight decay in no order: lr's trend stands alone.
    decays = (1e-3, 1e-5, 1e-2, 1e-6, 1e-4, 3e-3)
    apart = [
        trial(lr, d, v, weight_decay=wd)
        for (lr, v), d, wd in zip(rising, drops, decays, strict=True)
    ]
    said = conclusions(apart, search=info)
    one(said, "rose with lr")
    none(said, "rose with weight_decay")
    none(said, "moved together")


def test_a_search_with_no_finished_trial_still_says_what_was_pruned(tmp_path):
    records = [trial(1e-3, 0.3, 0.8, status="pruned", epochs=1)]
    records.append(record("lenet", 2e-3, 0.4, status="pending", hist=[], **BUDGET))
    said = conclusions(records, search=INFO)
    one(said, "No run finished, so there is no best model yet (2 runs recorded).")
    one(said, "1 trial was pruned, 1 after epoch 1 (of 3 planned).")
    one(said, "1 run has not finished (1 pending)")
    none(said, "No trial was pruned")
    out = build_report(write_search(tmp_path / "s", records)).parent
    assert (out / "search_lenet.png").is_file() and (out / "best_trials.csv").is_file()
    assert len(read_csv(out / "best_trials.csv")) == 0  # nothing finished: nothing ranked
