"""The report's views and hand-in features: the lr x dropout tables and heatmaps, the overlay
of best runs, the user's results beside ours, the Chinese report, and the atomic build."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import history, read_csv, record, write_ledger

from mnistlab.cli import main
from mnistlab.report import build_report
from mnistlab.report.document import Bullets, Heading, Paragraph, TableBlock
from mnistlab.report.i18n import CATALOGUES, Tr, placeholders

CJK = re.compile(r"[\u4e00-\u9fff]")
SEED_REPORT = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_1c7c314122d354e4.txt"


def grid(model="lenet", lrs=(1e-3, 5e-3, 5e-4), dropouts=(0.5, 0.25, 0.3, 0.75), **extra):
    out = []
    for i, lr in enumerate(lrs):
        for j, d in enumerate(dropouts):
            val = 0.95 + 0.004 * i + 0.002 * j
            out.append(
                record(model, lr, d, val_acc=val, test_acc=val - 0.001, test_used=1000, **extra)
            )
    return out


def tour() -> list[dict]:
    """Like the quick tour: a lenet grid on one budget, four other models on another, one of
    which did not learn."""
    small = {"train_subset": 2000, "eval_subset": 500}
    return [
        *grid("lenet", lrs=(1e-3, 5e-3), dropouts=(0.25, 0.5), train_subset=8000, epochs=3),
        record("alexnet", 5e-4, 0.3, val_acc=0.93, test_used=500, **small),
        record("resnet18", 5e-4, 0.3, val_acc=0.95, test_used=500, **small),
        record("vgg11_seed", 5e-4, 0.3, val_acc=0.258, test_acc=0.26, test_used=500, **small),
        record("wrn16_4", 5e-4, 0.3, val_acc=0.94, test_used=500, **small),
    ]


# ---------------------------------------------------------------- the views
def test_lr_dropout_table_and_heatmap_per_model(tmp_path):
    records = grid() + [record("lenet", 1e-2, 0.25, status="diverged", hist=history(2))]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    report = (out / "report.md").read_text()
    assert "**lenet: validation / test accuracy (%)**" in report
    assert "| lr \\ dropout | 0.25 | 0.3 | 0.5 | 0.75 |" in report
    # The best cell is marked; rows follow the learning rate in numeric order.
    assert "| 0.0005 | 96.00 / 95.90 | 96.20 / 96.10 | 95.80 / 95.70 | 96.40 / 96.30 * |" in report
    assert "| 0.01 | diverged | — | — | — |" in report
    assert (
        "Test accuracies judged on 1,000 images: each has a 95% interval of about ±1.18 points "
        "(e.g. 96.30%: 94.94–97.30%)"
    ) in report
    assert "![lenet: validation / test accuracy (%)](heatmap_lenet.png)" in report
    assert (out / "heatmap_lenet.png").stat().st_size > 5000


def test_overlay_of_best_runs_and_accuracy_curves(tmp_path):
    records = [*grid("lenet", lrs=(1e-3,), dropouts=(0.25, 0.5)), record("m5", val_acc=0.99)]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    report = (out / "report.md").read_text()
    assert "## Every model's best run" in report and "(best_runs.png)" in report
    assert "## Loss and accuracy curves per combination" in report
    assert (out / "best_runs.png").stat().st_size > 5000


def test_the_users_results_beside_ours_with_the_budget_difference(tmp_path):
    out = build_report(write_ledger(tmp_path / "s", tour())).parent
    report = (out / "report.md").read_text()
    assert "## The user's reported results beside ours" in report
    assert (
        "| lenet | user's report | lr=0.005, dropout=0.3 | 61,990 | 99.10 | 99.28 | 99.09–99.43 | 192.9 |"
        in report
    )
    assert "| lenet | this sweep (budget A) | lr=0.005, dropout=0.5 | 61,990 |" in report
    assert "| vgg11_seed | this sweep: no finished run that learned |" in report
    assert "Where our protocol differs from the user's" in report
    assert (
        "lenet: 8,000 of 54,000 training images, 3 epochs instead of 8, 1,000 test images "
        "instead of 10,000, 4 of the user's 12 lr x dropout combinations run to the end"
    ) in report


def test_no_user_table_without_the_users_architectures(tmp_path):
    out = build_report(write_ledger(tmp_path / "s", [record("m5"), record("fastnet")])).parent
    assert "user's reported results" not in (out / "report.md").read_text()


def test_the_full_user_grid_is_said_to_follow_the_users_protocol(tmp_path):
    records = grid("lenet", epochs=8, train_subset=None)
    for rec in records:
        rec["result"]["split"]["test_used"] = 10_000
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    report = (out / "report.md").read_text()
    assert "Our runs follow the user's protocol" in report


def test_user_results_are_the_seed_reports_table():
    from mnistlab.report.user_results import user_entry, user_results

    data = user_results()
    assert [m["name"] for m in data["models"]] == [
        "lenet",
        "alexnet",
        "resnet",
        "vggnet",
        "wideresnet",
    ]
    assert user_entry("vgg11_seed")["params"] == 128_806_154 and user_entry("m5") is None
    if not SEED_REPORT.is_file():
        pytest.skip("the user's report is not beside this checkout")
    text = SEED_REPORT.read_text()
    for m in data["models"]:
        row = (
            f"{m['name']}\t'lr': {m['lr']:g}, 'dropout': {m['dropout']:g}\t{m['params']}\t"
            f"{m['train_acc']:.4f}\t{m['val_acc']:.4f}\t{m['test_acc']:.4f}\t{m['seconds']:.2f}"
        )
        assert row in text, row


def test_user_results_ship_as_package_data():
    import tomllib

    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["mnistlab"]
    assert "report/*.json" in data


def test_mixed_budgets_are_said_at_the_top(tmp_path):
    out = build_report(write_ledger(tmp_path / "s", tour())).parent
    report = (out / "report.md").read_text()
    top = report.split("## Conclusions")[0]
    assert "> **This sweep mixes 2 budgets" in top
    assert "### Budget A (lenet): 8,000 of 54,000 training images × 3 epochs" in report
    rows = read_csv(out / "best_per_model.csv")
    assert {r["budget"] for r in rows} == {"A", "B"}
    assert "vgg11_seed" not in {r["model"] for r in rows}  # did not learn: not ranked
    # Figures comparing models are drawn per budget, never across.
    assert (out / "acc_vs_params_B.png").is_file() and not (out / "acc_vs_params.png").exists()
    runs = read_csv(out / "all_runs.csv")
    assert next(r for r in runs if r["model"] == "vgg11_seed")["learned"] == "no"
    # The one best model shown in full is budget A's, and its heading says so.
    assert "## Highest validation accuracy in budget A: lenet (lr=0.005, dropout=0.5)" in report
    assert "## Best model:" not in report


# ---------------------------------------------------------------- the catalogue and Chinese
def test_both_languages_have_the_same_strings():
    en, zh = CATALOGUES["en"], CATALOGUES["zh"]
    assert set(en) == set(zh)
    for key in en:
        assert placeholders(en[key]) == placeholders(zh[key]), key


def test_unknown_language_is_one_line(tmp_path, capsys):
    sweep = write_ledger(tmp_path / "s", [record()])
    with pytest.raises(SystemExit):
        main(["report", str(sweep), "--lang", "fr"])
    assert "invalid choice: 'fr'" in capsys.readouterr().err
    from mnistlab.errors import UserError

    with pytest.raises(UserError, match="unknown report language 'fr'; valid: en, zh"):
        Tr("fr")


def chinese_blocks(tmp_path):
    from mnistlab.report.analysis import analyse
    from mnistlab.report.build import assemble
    from mnistlab.report.runs import to_runs

    records = tour() + [
        record("lenet", 9e-3, 0.25, status="diverged", hist=history(2) + [{"epoch": 3}]),
        record("lenet", 8e-3, 0.25, status="failed", hist=[], error="out of memory"),
    ]
    sweep = write_ledger(tmp_path / "s", records)
    return assemble(analyse(to_runs(records)), sweep, {}, Tr("zh"))


def test_the_chinese_report_is_chinese_throughout(tmp_path):
    latin_ok = re.compile(
        r"^[\sA-Za-z0-9_.,:;=()/%×x\-–—|\\*†±'\"<>]*$"  # names, numbers, config notation
    )
    texts: list[str] = []
    for block in chinese_blocks(tmp_path):
        if isinstance(block, Paragraph):
            block = Paragraph(block.text.replace(str(tmp_path), ""))  # the sweep's path
        if isinstance(block, Heading | Paragraph):
            texts.append(block.text)
        elif isinstance(block, Bullets):
            texts += block.items
        elif isinstance(block, TableBlock):
            texts += [c for c in block.table.columns if not latin_ok.match(c)]
            texts += block.table.notes
            if block.table.caption:
                texts.append(block.table.caption)
    assert len(texts) > 30
    for text in texts:
        assert CJK.search(text), text
        words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)}
        allowed = {
            "lenet", "alexnet", "resnet", "resnet18", "wrn16_4", "vgg11_seed", "dropout", "mcnemar",
            "pearson", "json", "result", "history", "mnistlab", "report", "torch", "memory",
            "seed", "wideresnet", "vggnet", "fonts", "noto", "finished", "wilson",
        }  # fmt: skip
        assert words <= allowed, (words - allowed, text)


def test_cli_lang_zh_writes_the_whole_report_in_chinese(tmp_path, capsys):
    sweep = write_ledger(tmp_path / "s", tour())
    assert main(["report", str(sweep), "--lang", "zh"]) == 0
    out = sweep / "report"
    html = (out / "index.html").read_text()
    assert '<html lang="zh-CN">' in html and "<title>mnistlab 实验报告：s</title>" in html
    report = (out / "report.md").read_text()
    for heading in (
        "## 结论",
        "## 各模型的最佳参数组合",
        "## lr × dropout 网格上的准确率",
        "## 全部运行",
    ):
        assert heading in report
    assert "| 模型 | 学习率 | dropout | 验证准确率 (%) | 测试准确率 (%) |" in report
    # Machine-readable files keep English column names.
    assert read_csv(out / "all_runs.csv")[0].keys() >= {"model", "val_acc_pct", "test_ci_low_pct"}


# ---------------------------------------------------------------- building aside
def test_a_failed_build_leaves_the_old_report_intact(tmp_path, monkeypatch):
    sweep = write_ledger(tmp_path / "s", grid())
    out = build_report(sweep).parent
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    from mnistlab.report import plots

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "best_runs", boom)
    with pytest.raises(OSError):
        build_report(sweep)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in sweep.iterdir() if p.name.startswith(".")] == []  # no staging left

    monkeypatch.undo()
    from mnistlab.report import build as build_module

    def fail_to_write(staging, files, pdf=False):
        raise OSError(28, "No space left on device")

    real = build_module.atomic_write_bytes
    calls = []

    def write(path, payload):
        calls.append(path)
        if len(calls) == 3:
            raise build_module.OutputError(f"cannot write {path}: the disk is full")
        real(path, payload)

    monkeypatch.setattr(build_module, "atomic_write_bytes", write)
    with pytest.raises(build_module.OutputError, match="the disk is full"):
        build_report(sweep)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in sweep.iterdir() if p.name.startswith(".")] == []


def test_a_rebuild_replaces_the_folder_and_drops_stale_figures(tmp_path):
    sweep = write_ledger(tmp_path / "s", [record("lenet"), record("m5")])
    out = build_report(sweep).parent
    assert (out / "curves_m5.png").is_file()
    write_ledger(tmp_path / "t", [record("lenet")])
    (sweep / "runs" / record("m5")["run_id"] / "config.json").unlink()  # m5 leaves the sweep
    build_report(sweep)
    assert not (out / "curves_m5.png").exists() and (out / "curves_lenet.png").is_file()


def test_someone_elses_files_in_the_output_folder_are_kept(tmp_path):
    sweep = write_ledger(tmp_path / "s", [record("lenet"), record("m5")])
    out = tmp_path / "docs"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "run_files").mkdir()
    (out / "curves_gone.png").write_bytes(b"stale")  # looks like ours: removed
    build_report(sweep, out)
    assert (out / "notes.txt").read_text() == "mine" and (out / "run_files").is_dir()
    assert (out / "index.html").is_file() and not (out / "curves_gone.png").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_tables_of_every_budget_show_what_varies_across_the_sweep(tmp_path):
    # Each budget has one recipe (optimizer): a budget's own table leaves that out, the table
    # of all runs (and the machine-readable best table) keeps it to tell the budgets apart.
    records = [
        *grid("lenet", lrs=(1e-3, 5e-3), dropouts=(0.25,), train_subset=8000, optimizer="adam"),
        record("m5", 1e-2, 0.0, val_acc=0.99, test_used=1000, optimizer="adamw"),
    ]
    out = build_report(write_ledger(tmp_path / "s", records)).parent
    report = (out / "report.md").read_text()
    best_section = report.split("## Best combination per model")[1].split("\n## ")[0]
    assert "optimizer" not in best_section
    runs_header = next(
        line for line in report.split("## All runs")[1].splitlines() if line.startswith("| model")
    )
    assert " optimizer |" in runs_header
    assert {r["optimizer"] for r in read_csv(out / "best_per_model.csv")} == {"adam", "adamw"}


def test_figures_are_numbered_with_what_to_look_at_and_markdown_has_no_entities(tmp_path):
    out = build_report(write_ledger(tmp_path / "s", tour())).parent
    report = (out / "report.md").read_text()
    assert "_Figure 1: " in report and "Look " in report
    assert "&lt;" not in report and "&gt;" not in report and "&amp;" not in report
    zh = build_report(write_ledger(tmp_path / "z", tour()), tmp_path / "zh", lang="zh").parent
    text = (zh / "report.md").read_text()
    captions = [line for line in text.splitlines() if line.startswith("_图 ")]
    assert captions and all("Figure" not in c and "Look" not in c for c in captions)
