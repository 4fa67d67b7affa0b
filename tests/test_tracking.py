"""The ledger seen from other tools: MLflow (read back with MLflow's own client and checked
against result.json), TensorBoard (event files read back: readable run names, HParams), and
pandas (runs_frame, epochs_frame).

One tiny sweep (LeNet, two learning rates, 1 epoch on 300 images) is trained once per module
with --tensorboard and --mlflow; each extra's tests skip when it is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helper import cli
from sqlite_files import damaged_sqlite, foreign_sqlite

from mnistlab import ledger

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None

TINY = """\
[sweep]
name = "tiny_tracked"

[base]
model = "lenet"
epochs = 1
train_subset = 300
eval_subset = 200
device = "cpu"
precision = "fp32"

[grid]
lr = [1e-3, 2e-3]
"""


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, mnist):
    root = tmp_path_factory.mktemp("tracked")
    toml = root / "tiny.toml"
    toml.write_text(TINY)
    flags = ["--tensorboard"] if HAS_TENSORBOARD else []
    flags += ["--mlflow"] if HAS_MLFLOW else []
    code, stdout, stderr = cli("sweep", toml, "--out", root / "sweep", "--no-report", *flags)
    assert code == 0, stderr
    records = ledger.read_runs(root / "sweep")
    return SimpleNamespace(out=root / "sweep", stdout=stdout, records=records)


# ---------------------------------------------------------------- MLflow
def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _mlflow_runs(uri: str, experiment: str) -> dict[str, object]:
    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    return {run.data.tags["mnistlab.run_id"]: run for run in runs}


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_mlflow_has_every_run_with_the_ledgers_numbers(tracked):
    from mnistlab.tracking import default_tracking_uri

    uri = default_tracking_uri(tracked.out)
    assert uri.startswith("sqlite:///") and (tracked.out / "mlruns" / "mlflow.db").is_file()
    assert "mlflow: experiment 'tiny_tracked'" in tracked.stdout
    runs = _mlflow_runs(uri, "tiny_tracked")
    assert sorted(runs) == sorted(r["run_id"] for r in tracked.records)
    client = _client(uri)
    for record in tracked.records:
        result = json.loads((record["dir"] / "result.json").read_text())
        run = runs[record["run_id"]]
        metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
        assert run.info.status == "FINISHED" and tags["status"] == "finished"
        assert run.info.run_name.startswith("lenet lr=")  # the sweep's label, not the id
        assert metrics["best_val_acc"] == pytest.approx(result["val_acc"])
        assert metrics["test_acc"] == pytest.approx(result["test_acc"])
        assert metrics["test_loss"] == pytest.approx(result["test_loss"])
        assert metrics["epochs_run"] == result["epochs_run"]
        assert metrics["params"] == result["params"]
        assert float(params["lr"]) == result["config"]["lr"]
        assert params["model"] == "lenet" and params["train_subset"] == "300"
        assert tags["model"] == "lenet" and tags["seed"] == str(result["seed"])
        assert tags["device"] == result["device"]
        if result["git_commit"]:
            assert tags["git_commit"] == result["git_commit"]
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert [(m.step, m.value) for m in history] == [
            (row["epoch"], pytest.approx(row["val_acc"])) for row in record["history"]
        ]
        assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.json", "history.json", "result.json"} <= artifacts
        assert "checkpoint.pt" not in artifacts


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_mlflow_import_backfills_once_and_skips_what_is_there(tracked, tmp_path):
    store = tmp_path / "store"
    code, out, err = cli("mlflow-import", tracked.out, "--tracking-uri", store)
    assert code == 0, err
    assert "logged 2 run(s), 0 were there already" in out
    code, out, _ = cli("mlflow-import", tracked.out, "--tracking-uri", store)
    assert code == 0 and "logged 0 run(s), 2 were there already" in out
    uri = f"sqlite:///{(store / 'mlflow.db').resolve()}"
    assert len(_mlflow_runs(uri, "tiny_tracked")) == 2


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_the_same_sweep_in_another_folder_logs_its_own_runs(tracked, tmp_path):
    """Run ids are config hashes: the same sweep rerun into a new folder has the same ids.
    Its runs are new runs, and a shared store logs them (once), beside the first folder's."""
    import shutil

    store = tmp_path / "store"
    again = tmp_path / "again"
    shutil.copytree(tracked.out, again, ignore=shutil.ignore_patterns("mlruns"))
    for folder, logged in ((tracked.out, 2), (again, 2), (again, 0), (tracked.out, 0)):
        code, out, err = cli("mlflow-import", folder, "--tracking-uri", store)
        assert code == 0, err
        assert f"logged {logged} run(s), {2 - logged} were there already" in out
    client = _client(f"sqlite:///{(store / 'mlflow.db').resolve()}")
    runs = client.search_runs([client.get_experiment_by_name("tiny_tracked").experiment_id])
    folders = sorted(run.data.tags["mnistlab.sweep_dir"] for run in runs)
    assert folders == sorted([str(tracked.out.resolve())] * 2 + [str(again.resolve())] * 2)


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_a_run_whose_logging_was_cut_short_is_logged_again(tracked, tmp_path):
    from mnistlab.tracking import MlflowLogger

    logger = MlflowLogger(tracked.out, str(tmp_path / "store"), log=lambda *a: None)
    victim = tracked.records[0]["run_id"]
    # What a kill between create_run and set_terminated leaves: a RUNNING run with the tag.
    logger.client.create_run(logger.experiment_id, tags={"mnistlab.run_id": victim})
    logged = MlflowLogger(tracked.out, str(tmp_path / "store"), log=lambda *a: None).sync()
    assert sorted(logged) == sorted(r["run_id"] for r in tracked.records)
    runs = _mlflow_runs(logger.tracking_uri, "tiny_tracked")
    assert runs[victim].info.status == "FINISHED"


def test_bad_mlflow_targets_are_one_line(tracked, tmp_path):
    code, _, err = cli("mlflow-import", tmp_path / "nothing")
    assert code == 2 and "not a sweep folder" in err and len(err.strip().splitlines()) == 1
    from mnistlab.tracking import resolve_tracking_uri

    # `sweep --mlflow seed`: argparse gives "seed" to --mlflow; refused before any work.
    for misplaced in ("seed", "quick.toml"):
        code, _, err = cli("sweep", "--mlflow", misplaced, "--out", tmp_path / "sweep")
        assert code == 2 and "that is a sweep, not a tracking URI" in err
        assert f"mnistlab sweep {misplaced} --mlflow" in err
        assert not (tmp_path / "sweep").exists()
    assert resolve_tracking_uri("./seed", tmp_path).endswith("/seed/mlflow.db")
    assert resolve_tracking_uri("http://127.0.0.1:5000", tmp_path) == "http://127.0.0.1:5000"
    assert resolve_tracking_uri(None, tmp_path).endswith("/mlruns/mlflow.db")


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"not a database at all" * 50), "not an SQLite file"),
        (foreign_sqlite, "an SQLite database that is not an MLflow store"),
        (damaged_sqlite, "a damaged SQLite file"),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
)
def test_a_store_that_is_not_mlflows_is_one_line_and_left_alone(tracked, tmp_path, make, message):
    store = tmp_path / "store.db"
    make(store)
    before = store.read_bytes() if store.is_file() else None
    code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", f"sqlite:///{store}")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err and err.startswith(f"mnistlab: error: --tracking-uri sqlite:///{store}")
    assert (store.read_bytes() if store.is_file() else None) == before  # nothing written


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_a_read_only_store_is_refused_at_once(tracked, tmp_path, monkeypatch):
    """MLflow retried a read-only SQLite file for 104 s with 36 lines of warnings. (Tests run
    as root here, whom chmod does not stop: the file system's answer is stood in for.)"""
    store = tmp_path / "ro" / "mlflow.db"
    code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", store.parent)
    assert code == 0, err
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: real_access(p, mode) and not (mode & os.W_OK))
    code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", store.parent)
    assert code == 2 and "the store is read-only" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_an_in_memory_store_is_refused(tracked):
    for uri in ("sqlite:///:memory:", "sqlite://"):
        code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", uri)
        assert code == 2 and "an in-memory store loses every run" in err


@pytest.mark.skipif(not HAS_MLFLOW, reason="needs the mlflow extra")
def test_an_unreachable_server_fails_in_seconds_before_any_training(tracked, tmp_path):
    """Port 9 refuses at once: MLflow's own retries took 269 s to say so."""
    dead = "http://127.0.0.1:9"
    started = time.monotonic()
    code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", dead)
    assert code == 2 and err.startswith(f"mnistlab: error: --tracking-uri {dead}: cannot reach")
    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY)
    code, _, err = cli("sweep", toml, "--out", tmp_path / "sweep", "--mlflow", dead)
    assert code == 2 and err.startswith(f"mnistlab: error: --mlflow {dead}: cannot reach")
    assert not (tmp_path / "sweep").exists()  # checked before anything was written
    assert time.monotonic() - started < 60


def test_without_mlflow_the_flag_says_which_extra(tracked, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now fails
    code, _, err = cli("mlflow-import", tracked.out, "--tracking-uri", tracked.out / "x")
    assert code == 2 and "pip install 'mnistlab[mlflow]'" in err


# ---------------------------------------------------------------- TensorBoard
@pytest.mark.skipif(not HAS_TENSORBOARD, reason="needs the tensorboard extra")
def test_tensorboard_shows_readable_names_and_hparams(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    view = tracked.out / "tensorboard"
    assert f"tensorboard --logdir {view}" in tracked.stdout
    names = sorted(p.name for p in view.iterdir())
    assert names == ["lenet lr=0.001", "lenet lr=0.002"]
    for record in tracked.records:
        lr = record["config"]["lr"]
        events = EventAccumulator(str(view / f"lenet lr={lr:g}"))
        events.Reload()
        assert {"train/loss", "val/acc", "val/best_acc"} <= set(events.Tags()["scalars"])
        [best] = events.Scalars("val/best_acc")
        assert best.value == pytest.approx(record["result"]["val_acc"])
        content = events.PluginTagToContent(metadata.PLUGIN_NAME)
        start = metadata.parse_session_start_info_plugin_data(
            content[metadata.SESSION_START_INFO_TAG]
        )
        hparams = start.hparams
        assert hparams["lr"].number_value == pytest.approx(lr)
        assert hparams["model"].string_value == "lenet"
        assert hparams["train_subset"].number_value == 300
        assert hparams["data_dir"].string_value == "none"
        assert "out_dir" not in hparams and "device" not in hparams  # not what a run computes
        end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
        assert end.status == 1  # STATUS_SUCCESS


def test_tensorboard_links_are_remade_and_leave_other_files_alone(tmp_path):
    from mnistlab.tracking import link_tensorboard

    (tmp_path / "runs" / "a-1" / "tensorboard").mkdir(parents=True)
    view = link_tensorboard(tmp_path, {"a-1": "lenet lr=0.001", "b-2": "lenet lr=0.001"})
    assert sorted(p.name for p in view.iterdir()) == ["lenet lr=0.001", "lenet lr=0.001 (b-2)"]
    (view / "notes.txt").write_text("mine")
    link_tensorboard(tmp_path, {"a-1": "lenet a/b"})
    assert sorted(p.name for p in view.iterdir()) == ["lenet a_b", "notes.txt"]
    assert (view / "lenet a_b").resolve() == (tmp_path / "runs" / "a-1" / "tensorboard").resolve()


# ---------------------------------------------------------------- pandas
def test_runs_frame_has_one_row_per_run_with_plain_columns(tracked):
    pytest.importorskip("pandas")
    import mnistlab

    frame = mnistlab.runs_frame(tracked.out)
    assert len(frame) == 2 and list(frame["run_id"]) == [r["run_id"] for r in tracked.records]
    for column in ("val_acc", "test_acc", "time_s", "params", "lr", "dropout", "epochs"):
        assert column in frame.columns
    assert all(c == c.lower() and " " not in c and "(" not in c for c in frame.columns)
    by_id = frame.set_index("run_id")
    for record in tracked.records:
        row, result = by_id.loc[record["run_id"]], record["result"]
        assert row["val_acc"] == pytest.approx(result["val_acc"])
        assert row["test_acc"] == pytest.approx(result["test_acc"])
        assert row["time_s"] == pytest.approx(result["total_seconds"])
        assert row["lr"] == result["config"]["lr"] and row["status"] == "finished"
        assert row["label"] == f"lenet lr={result['config']['lr']:g}"
        assert row["test_images"] == 200 and row["model_kwargs"] == "{}"


def test_epochs_frame_has_one_row_per_epoch(tracked):
    pytest.importorskip("pandas")
    import mnistlab

    epochs = mnistlab.epochs_frame(tracked.out)
    assert len(epochs) == sum(len(r["history"]) for r in tracked.records)
    assert {"run_id", "epoch", "val_acc", "train_loss", "epoch_time_s"} <= set(epochs.columns)
    merged = epochs.merge(mnistlab.runs_frame(tracked.out)[["run_id", "lr"]], on="run_id")
    assert sorted(merged["lr"]) == [1e-3, 2e-3]
    assert all(math.isfinite(v) for v in epochs["val_acc"])


def test_an_empty_sweep_gives_empty_frames(tmp_path):
    pytest.importorskip("pandas")
    import mnistlab

    (tmp_path / "runs").mkdir()
    assert len(mnistlab.runs_frame(tmp_path)) == 0
    assert "val_acc" in mnistlab.epochs_frame(tmp_path).columns


def test_frames_without_pandas_say_what_to_install(tracked, monkeypatch):
    import mnistlab

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'mnistlab\[data\]'"):
        mnistlab.runs_frame(tracked.out)
    assert callable(mnistlab.read_runs)  # the plain-dict API needs nothing extra
    assert Path(mnistlab.read_runs(tracked.out)[0]["dir"]).is_dir()
