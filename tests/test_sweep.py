"""Sweeps on the local backend: a TOML grid expands into runs, each in its own ledger folder;
a rerun after a crash, a failure, a divergence or Ctrl-C does exactly the missing work, and
every bad sweep file is one clear line and exit code 2.

One tiny sweep (2 models x 2 learning rates, 128 images, 1 epoch) is trained once per module;
tests that damage it work on a copy.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from mnistlab import engine, ledger, sweep
from mnistlab.backends import local
from mnistlab.cli import main
from mnistlab.config import ConfigError, TrainConfig
from mnistlab.models import count_parameters, create_model, list_models
from mnistlab.models.mlp import MLP
from mnistlab.sweep import bundled_config, load_sweep, statuses

TINY_SWEEP = """\
[sweep]
name = "tiny"
description = "two models x two learning rates"

[base]
epochs = 1
train_subset = 128
eval_subset = 64
device = "cpu"
precision = "fp32"

[grid]
model = ["lenet", "mlp"]
lr = [1e-3, 2e-3]

[overrides.mlp]
model_kwargs = { hidden = [16] }
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sweep_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", *map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def finished(tmp_path_factory, mnist):
    root = tmp_path_factory.mktemp("finished")
    toml = write(root / "tiny.toml", TINY_SWEEP)
    code, stdout, stderr = sweep_cli(toml, "--out", root / "sweep", "--no-report")
    return SimpleNamespace(toml=toml, out=root / "sweep", code=code, stdout=stdout, stderr=stderr)


@pytest.fixture
def damaged(finished, tmp_path):
    """A private copy of the finished sweep, to break and rerun."""
    out = tmp_path / "sweep"
    shutil.copytree(finished.out, out)
    return SimpleNamespace(toml=finished.toml, out=out)


@pytest.fixture
def executed(monkeypatch):
    """The run ids the local backend trains, in order."""
    calls: list[str] = []
    real = local.execute_run

    def execute_run(config, folder, *args, **kwargs):
        calls.append(folder.run_id)
        return real(config, folder, *args, **kwargs)

    monkeypatch.setattr(local, "execute_run", execute_run)
    return calls


def run_ids(sweep_dir: Path, model: str | None = None) -> list[str]:
    ids = ledger.read_json(sweep_dir / ledger.MANIFEST)["run_ids"]
    return [i for i in ids if model is None or i.startswith(f"{model}-")]


def assert_ledger_consistent(sweep_dir: Path) -> list[dict]:
    records = ledger.read_runs(sweep_dir)
    ids = [r["run_id"] for r in records]
    assert len(ids) == len(set(ids)), "a run appears twice in the ledger"
    assert sorted(ids) == sorted(run_ids(sweep_dir))
    return records


# ------------------------------------------------------------------ end to end
def test_a_tiny_grid_runs_end_to_end(finished):
    assert finished.code == 0, finished.stderr
    assert "sweep tiny: 4 runs, 0 already done" in finished.stdout
    assert (finished.out / "sweep.toml").read_text() == TINY_SWEEP
    records = assert_ledger_consistent(finished.out)
    assert len(records) == 4
    for record in records:
        folder = record["dir"]
        assert record["status"] == "finished"
        assert (folder / ledger.CHECKPOINT).is_file()
        assert len(record["history"]) == 1
        assert record["result"]["run_id"] == folder.name
        # The folder name is the id of what the run computes, wherever it was stored.
        assert ledger.run_id_for(record["config"]) == folder.name
    combos = sorted((r["config"]["model"], r["config"]["lr"]) for r in records)
    assert combos == [("lenet", 1e-3), ("lenet", 2e-3), ("mlp", 1e-3), ("mlp", 2e-3)]
    for record in records:
        expected = {"hidden": [16]} if record["config"]["model"] == "mlp" else {}
        assert record["config"]["model_kwargs"] == expected


def test_a_rerun_of_a_finished_sweep_trains_nothing(damaged, executed):
    before = {p: p.stat().st_mtime_ns for p in damaged.out.glob("runs/*/result.json")}
    code, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0
    assert "4 runs, 4 already done" in stdout
    assert executed == []
    assert {p: p.stat().st_mtime_ns for p in damaged.out.glob("runs/*/result.json")} == before


def test_report_is_written_unless_told_not_to(damaged):
    assert not (damaged.out / "report").exists()
    code, stdout, stderr = sweep_cli(damaged.toml, "--out", damaged.out)
    assert code == 0, stderr
    index = Path(stdout.strip().splitlines()[-1].removeprefix("report: "))
    assert index.is_file()


# ------------------------------------------------------------------ crash, failure, divergence
def test_after_a_crash_only_the_missing_runs_are_trained(damaged, executed):
    mlp_a, mlp_b = run_ids(damaged.out, "mlp")
    runs = damaged.out / "runs"
    # Killed mid-run: history written, no result yet. And a run that never started.
    (runs / mlp_a / ledger.RESULT).unlink()
    (runs / mlp_a / ledger.CHECKPOINT).unlink()
    shutil.rmtree(runs / mlp_b)
    untouched = {p: p.stat().st_mtime_ns for p in runs.glob("*/result.json")}
    assert len(untouched) == 2

    code, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--status")
    assert code == 0
    assert "tiny: 2/4 done finished=2 partial=1 pending=1" in stdout
    assert executed == []  # --status only looks

    code, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0
    assert "4 runs, 2 already done" in stdout
    assert sorted(executed) == sorted([mlp_a, mlp_b])
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    records = assert_ledger_consistent(damaged.out)
    assert {r["status"] for r in records} == {"finished"}
    # The restarted run's epochs are not appended to the killed attempt's: nothing twice.
    assert [len(r["history"]) for r in records] == [1, 1, 1, 1]


def test_a_failed_run_is_recorded_the_others_finish_and_a_rerun_retries_it(
    damaged, executed, monkeypatch
):
    # One lenet run to train beside the two that fail, in the same invocation.
    for run_id in run_ids(damaged.out, "mlp") + run_ids(damaged.out, "lenet")[:1]:
        shutil.rmtree(damaged.out / "runs" / run_id)
    real_train = engine.train

    def train(config, *args, **kwargs):
        if config.model == "mlp":
            raise RuntimeError("out of memory (simulated)")
        return real_train(config, *args, **kwargs)

    monkeypatch.setattr(sweep, "train", train)
    code, _, stderr = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 1
    assert "2 run(s) failed; rerun the same command to retry them" in stderr
    by_model = {}
    for record in assert_ledger_consistent(damaged.out):
        by_model.setdefault(record["config"]["model"], []).append(record)
    assert [r["status"] for r in by_model["lenet"]] == ["finished", "finished"]
    for record in by_model["mlp"]:
        assert record["status"] == "failed"
        assert record["result"]["error"] == "RuntimeError: out of memory (simulated)"
        assert "Traceback" in (record["dir"] / ledger.ERROR).read_text()

    _, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--status")
    assert "tiny: 2/4 done failed=2 finished=2" in stdout

    monkeypatch.setattr(sweep, "train", real_train)
    executed.clear()
    code, _, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0
    assert sorted(executed) == sorted(run_ids(damaged.out, "mlp"))
    records = assert_ledger_consistent(damaged.out)
    assert {r["status"] for r in records} == {"finished"}
    assert not any((r["dir"] / ledger.ERROR).exists() for r in records)


def test_a_diverged_run_is_recorded_and_not_retried(damaged, executed, monkeypatch):
    for run_id in run_ids(damaged.out, "mlp"):
        shutil.rmtree(damaged.out / "runs" / run_id)
    real = engine.train_one_epoch

    def poison_mlp(model, *args, **kwargs):
        if isinstance(model, MLP):
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", poison_mlp)
    code, _, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0  # a divergence is a result, not a failure
    records = assert_ledger_consistent(damaged.out)
    assert sorted((r["config"]["model"], r["status"]) for r in records) == [
        ("lenet", "finished"),
        ("lenet", "finished"),
        ("mlp", "diverged"),
        ("mlp", "diverged"),
    ]

    monkeypatch.setattr(engine, "train_one_epoch", real)
    executed.clear()
    code, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0 and executed == []
    _, stdout, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--status")
    assert "tiny: 4/4 done diverged=2 finished=2" in stdout


def test_ctrl_c_stops_the_whole_sweep_and_a_rerun_finishes_it(damaged, executed, monkeypatch):
    mlp_ids = run_ids(damaged.out, "mlp")
    for run_id in mlp_ids:
        shutil.rmtree(damaged.out / "runs" / run_id)
    epochs = []
    real = engine.train_one_epoch

    def interrupted(*args, **kwargs):
        epochs.append(1)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "train_one_epoch", interrupted)
    code, _, stderr = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 130
    assert stderr.strip() == "mnistlab: interrupted"
    # One Ctrl-C stops the sweep: the next run must not start.
    assert len(epochs) == 1 and executed == mlp_ids[:1]
    assert statuses(load_sweep(str(damaged.toml), str(damaged.out))) == {
        **dict.fromkeys(run_ids(damaged.out, "lenet"), "finished"),
        mlp_ids[0]: "partial",
        mlp_ids[1]: "pending",
    }

    monkeypatch.setattr(engine, "train_one_epoch", real)
    executed.clear()
    code, _, _ = sweep_cli(damaged.toml, "--out", damaged.out, "--no-report")
    assert code == 0
    assert executed == mlp_ids
    assert {r["status"] for r in assert_ledger_consistent(damaged.out)} == {"finished"}


# ------------------------------------------------------------------ run ids
def test_run_id_changes_with_any_setting_but_not_with_where_or_on_what_it_runs():
    config = TrainConfig(model="mlp", epochs=2).to_dict()
    rid = ledger.run_id_for(config)
    assert rid.startswith("mlp-")
    assert ledger.run_id_for(dict(config)) == rid
    same = config | {"out_dir": "/elsewhere", "device": "cuda", "num_threads": 3}
    assert ledger.run_id_for(same) == rid
    for change in (
        {"lr": 2e-3},
        {"epochs": 3},
        {"dropout": 0.5},
        {"seed": 1},
        {"model_kwargs": {"hidden": [8]}},
        {"train_subset": 100},
    ):
        assert ledger.run_id_for(config | change) != rid, change


def test_a_changed_sweep_file_gives_new_run_ids(tmp_path):
    first = load_sweep(str(write(tmp_path / "a.toml", TINY_SWEEP)), str(tmp_path / "a"))
    again = load_sweep(str(write(tmp_path / "b.toml", TINY_SWEEP)), str(tmp_path / "b"))
    longer = load_sweep(
        str(write(tmp_path / "c.toml", TINY_SWEEP.replace("epochs = 1", "epochs = 2"))), None
    )
    moved = load_sweep(
        str(write(tmp_path / "d.toml", TINY_SWEEP.replace('device = "cpu"', 'device = "cuda"'))),
        None,
        check_device=False,  # a cluster's GPUs need not be on this machine
    )
    ids = [r.run_id for r in first.runs]
    assert [r.run_id for r in again.runs] == ids  # the output folder is not part of the id
    assert [r.run_id for r in moved.runs] == ids  # nor is the device
    assert not set(r.run_id for r in longer.runs) & set(ids)


def test_grid_tables_are_pooled_and_identical_runs_kept_once(tmp_path):
    path = write(
        tmp_path / "pooled.toml",
        """\
[base]
epochs = 1
[[grid]]
model = ["lenet", "mlp"]
lr = [1e-3, 5e-4]
[[grid]]
model = ["mlp"]
lr = [1e-3, 1e-2]
[overrides.mlp]
dropout = 0.5
""",
    )
    sweep = load_sweep(str(path), str(tmp_path / "out"))
    combos = sorted((r.config.model, r.config.lr) for r in sweep.runs)
    # mlp at 1e-3 is in both grids: it runs once.
    assert combos == [("lenet", 5e-4), ("lenet", 1e-3), ("mlp", 5e-4), ("mlp", 1e-3), ("mlp", 1e-2)]
    assert {r.config.dropout for r in sweep.runs if r.config.model == "mlp"} == {0.5}
    assert {r.config.dropout for r in sweep.runs if r.config.model == "lenet"} == {0.25}
    assert all(r.config.out_dir is None for r in sweep.runs)
    assert sweep.name == "pooled" and sweep.out_dir == tmp_path / "out"


def test_default_sweep_folder_comes_from_its_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "x.toml", TINY_SWEEP)
    assert load_sweep(str(path)).out_dir == Path("runs") / "tiny"


# ------------------------------------------------------------------ bad sweep files
BAD_SWEEPS = [
    ("invalid TOML", "[grid\nmodel = 1", "invalid TOML ("),
    (
        "unknown section",
        "[grd]\nmodel = ['lenet']",
        "unknown section(s) grd; valid: sweep, base, grid, overrides",
    ),
    ("unknown [sweep] key", "[sweep]\nnmae = 'x'", "unknown [sweep] key(s) nmae; valid: name"),
    (
        "grid value not a list",
        "[grid]\nlr = 0.001",
        "[grid] lr must be a non-empty list, got 0.001",
    ),
    ("empty grid axis", "[grid]\nlr = []", "[grid] lr must be a non-empty list, got []"),
    (
        "unknown model",
        "[grid]\nmodel = ['lenet', 'lenett']",
        "unknown model 'lenett'; valid models: " + ", ".join(list_models()),
    ),
    (
        "overrides for a model not in the grid",
        "[grid]\nmodel = ['lenet']\n[overrides.resnet18]\nepochs = 1",
        "[overrides.resnet18] names a model that is not in the grid",
    ),
    ("unknown setting", "[base]\nepoch = 3", "unknown setting(s) epoch; valid: model"),
    ("wrong type", "[grid]\nlr = ['fast']", "lr must be float, got 'fast'"),
    ("bad value", "[base]\nlr = -1", "lr must be > 0, got -1.0"),
    ("section that is not a table", "base = 3", "base must be a [base] table, got 3"),
    (
        "override that is not a table",
        "[grid]\nmodel = ['lenet']\n[overrides]\nlenet = 3",
        "[overrides.lenet] must be a table of settings, got 3",
    ),
    ("grid that is not tables", "grid = [1, 2]", "grid must be a [grid] table or [[grid]] tables"),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in BAD_SWEEPS], ids=[c[0] for c in BAD_SWEEPS]
)
def test_bad_sweep_files_are_one_line_and_exit_2(tmp_path, text, message, executed):
    path = write(tmp_path / "bad.toml", text + "\n")
    code, stdout, stderr = sweep_cli(path, "--out", tmp_path / "out", "--no-report")
    assert code == 2
    assert stderr.startswith("mnistlab: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "out").exists() and executed == []
    with pytest.raises(ConfigError):
        load_sweep(str(path))


def test_a_missing_sweep_file(tmp_path):
    missing = tmp_path / "nope.toml"
    code, _, stderr = sweep_cli(missing, "--out", tmp_path / "out")
    assert code == 2
    assert stderr == f"mnistlab: error: {missing}: config file not found\n"


def test_workers_must_be_positive(damaged, executed):
    code, _, stderr = sweep_cli(damaged.toml, "--out", damaged.out, "--workers", "0")
    assert code == 2 and stderr == "mnistlab: error: --workers must be >= 1, got 0\n"


@pytest.mark.parametrize("status", [[], ["--status"]])
def test_ray_options_without_the_ray_backend_are_refused(damaged, executed, status):
    """--storage was silently ignored without --backend ray (with --status)."""
    code, _, stderr = sweep_cli(damaged.toml, "--out", damaged.out, "--storage", "x", *status)
    assert code == 2
    assert stderr == "mnistlab: error: --storage: Ray options need --backend ray\n"


# ------------------------------------------------------------------ shipped sweep files
def shipped_sweeps() -> list[Path]:
    bundled = sorted(bundled_config("seed").parent.glob("*.toml"))
    repo = Path(__file__).resolve().parents[1] / "configs"
    return bundled + sorted(repo.glob("*.toml"))


def test_the_seed_sweep_is_the_users_grid():
    sweep = load_sweep("seed")  # by name: the copy inside the package
    assert sweep.name == "seed" and sweep.checkpoints is False
    assert len(sweep.runs) == 60
    combos = {(r.config.model, r.config.lr, r.config.dropout) for r in sweep.runs}
    models = {"lenet", "alexnet", "resnet18", "vgg11_seed", "wrn16_4"}
    lrs, dropouts = {1e-3, 5e-3, 5e-4}, {0.5, 0.25, 0.3, 0.75}
    assert combos == {(m, lr, d) for m in models for lr in lrs for d in dropouts}
    for run in sweep.runs:
        c = run.config
        assert (c.epochs, c.batch_size, c.optimizer, c.val_fraction) == (
            8,
            64,
            "adam",
            0.1,
        )


@pytest.mark.parametrize("path", shipped_sweeps(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_sweep_loads_and_validates(path, tmp_path):
    sweep = load_sweep(str(path), str(tmp_path / "out"))
    assert sweep.runs
    for run in sweep.runs:
        run.config.validate()


@pytest.mark.parametrize("name", ["quick", "best"])
def test_a_bare_name_loads_the_copy_inside_the_package(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here: only the package can answer
    sweep = load_sweep(name, str(tmp_path / "out"))
    assert sweep.source == bundled_config(name) and sweep.source.is_file()
    assert sweep.name == name and sweep.runs


def test_cpu_best_gives_its_fastnets_the_wider_layout(tmp_path):
    sweep = load_sweep("cpu_best", str(tmp_path / "out"))
    fastnets = [r.config for r in sweep.runs if r.config.model == "fastnet"]
    assert sorted(c.seed for c in fastnets) == [0, 1, 2]
    assert all(c.model_kwargs == {"widths": [32, 64, 128, 256]} for c in fastnets)
    assert count_parameters(create_model("fastnet", **fastnets[0].model_kwargs)) == 390_890
    lenet = [r.config for r in sweep.runs if r.config.model == "lenet"]
    assert len(lenet) == 1 and lenet[0].model_kwargs == {}


def test_status_of_an_untouched_sweep(tmp_path, executed):
    code, stdout, _ = sweep_cli("seed", "--out", tmp_path / "seed", "--status")
    assert code == 0 and executed == []
    lines = stdout.strip().splitlines()
    assert len(lines) == 61
    assert all(line.startswith("pending") for line in lines[:60])
    assert lines[-1].startswith("seed: 0/60 done pending=60")
    assert not (tmp_path / "seed").exists()  # --status writes nothing


# ------------------------------------------------------------------ --set overrides
def test_set_overrides_every_run_and_changes_its_id(tmp_path):
    path = write(tmp_path / "tiny.toml", TINY_SWEEP)
    plain = load_sweep(str(path), str(tmp_path / "out"))
    shorter = load_sweep(str(path), str(tmp_path / "out"), {"train_subset": 64, "epochs": 2})
    assert {(r.config.train_subset, r.config.epochs) for r in shorter.runs} == {(64, 2)}
    # A rehearsal with other settings must not be mistaken for the real runs.
    assert not {r.run_id for r in plain.runs} & {r.run_id for r in shorter.runs}
    code, stdout, _ = sweep_cli(
        path, "--out", tmp_path / "out", "--status", "--set", "train_subset=64", "--set", "epochs=2"
    )
    assert code == 0
    for run in shorter.runs:
        assert run.run_id in stdout


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("epochs", "KEY=VALUE, got 'epochs'"),
        ("epoch=2", "unknown setting(s) epoch"),
        ("lr=fast", "lr must be float, got 'fast'"),
        ("lr=0", "lr must be > 0"),
    ],
)
def test_bad_set_values_are_one_line_and_exit_2(setting, message, tmp_path, executed):
    path = write(tmp_path / "tiny.toml", TINY_SWEEP)
    code, _, stderr = sweep_cli(path, "--out", tmp_path / "out", "--set", setting)
    assert code == 2
    assert stderr.startswith("mnistlab: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "out").exists() and executed == []


@pytest.mark.slow  # two spawned workers each import torch and load MNIST
def test_worker_processes_write_the_same_ledger(finished, tmp_path):
    # Spawned workers load the data themselves (the monkeypatch does not reach them).
    out = tmp_path / "sweep"
    code, stdout, _ = sweep_cli(finished.toml, "--out", out, "--workers", "2", "--no-report")
    assert code == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        p.name for p in (finished.out / "runs").iterdir()
    )
    assert {r["run_id"]: r["status"] for r in ledger.read_runs(out)} == {
        r["run_id"]: "finished" for r in ledger.read_runs(finished.out)
    }
    lines = [line for line in stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 4 and lines[-1].startswith("[4/4] ") and "ETA" in lines[0]


def test_the_quick_tour_keeps_what_the_report_needs(tmp_path):
    # Issue 23: the tour is sized for a 2-core CPU but keeps the user's five architectures,
    # the user's whole lr x dropout grid for LeNet, and one budget per group of runs.
    sweep = load_sweep("quick", str(tmp_path / "out"))
    configs = [r.config for r in sweep.runs]
    assert {c.model for c in configs} >= {"lenet", "alexnet", "resnet18", "wrn", "vgg11"}
    lenet = [c for c in configs if c.model == "lenet"]
    assert sorted({c.lr for c in lenet}) == [5e-4, 1e-3, 5e-3]
    assert sorted({c.dropout for c in lenet}) == [0.25, 0.3, 0.5, 0.75]
    assert len(lenet) == 12
    others = [c for c in configs if c.model != "lenet"]
    budgets = {(c.train_subset, c.epochs, c.eval_subset, c.batch_size, c.lr) for c in others}
    assert len(budgets) == 1
