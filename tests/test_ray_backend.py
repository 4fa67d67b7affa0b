"""The Ray backend on a private two-CPU Ray instance, started once for the module.

Tiny grids (lenet and mlp, one epoch on 300 images) keep the training to seconds; most of
the time is Ray starting its workers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip(
    "ray", reason="the ray backend's tests need the ray extra: pip install 'mnistlab[ray]'"
)

from mnistlab import ledger  # noqa: E402
from mnistlab.backends import ray as ray_backend  # noqa: E402
from mnistlab.backends.local import run_local  # noqa: E402
from mnistlab.backends.ray import run_ray  # noqa: E402
from mnistlab.cli import main  # noqa: E402
from mnistlab.errors import UserError  # noqa: E402
from mnistlab.sweep import load_sweep, prepare  # noqa: E402

TINY = """
[sweep]
name = "tiny"
[base]
epochs = 1
train_subset = 300
eval_subset = 200
{extra}
[grid]
model = ["lenet", "mlp"]
lr = [1e-3, 2e-3]
"""


@pytest.fixture(scope="module")
def ray_instance():
    # Ray's socket paths must stay under ~107 characters: a short folder of our own, not
    # pytest's deep tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="ray_t", dir="/tmp")
    saved = os.environ.get("RAY_USAGE_STATS_ENABLED")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # tests stay offline
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _temp_dir=temp_dir,
        logging_level=logging.WARNING,
    )
    yield
    ray.shutdown()
    shutil.rmtree(temp_dir, ignore_errors=True)
    if saved is None:
        os.environ.pop("RAY_USAGE_STATS_ENABLED", None)
    else:
        os.environ["RAY_USAGE_STATS_ENABLED"] = saved


def tiny_sweep(tmp_path: Path, out: str, extra: str = ""):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.format(extra=extra))
    return load_sweep(str(path), str(tmp_path / out), check_device=False)


def result_mtimes(sweep) -> dict[str, int]:
    return {
        r.run_id: (sweep.folder(r).path / ledger.RESULT).stat().st_mtime_ns
        for r in sweep.runs
        if (sweep.folder(r).path / ledger.RESULT).is_file()
    }


def files_of(sweep) -> dict[str, list[str]]:
    return {r.run_id: sorted(p.name for p in sweep.folder(r).path.iterdir()) for r in sweep.runs}


# ---------------------------------------------------------------- without a cluster
def test_missing_ray_is_one_clear_error(tmp_path, monkeypatch):
    sweep = tiny_sweep(tmp_path, "s")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(
        UserError, match=r"^the ray backend needs the ray extra: pip install 'mnistlab\[ray\]'$"
    ):
        run_ray(sweep, sweep.runs)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpus_per_run": 0}, "--cpus-per-run must be > 0, got 0"),
        ({"gpus_per_run": -1}, "--gpus-per-run must be >= 0, got -1"),
        ({"gpus_per_run": 1.5}, "--gpus-per-run above 1 must be a whole number, got 1.5"),
        ({"max_concurrent": 0}, "--max-concurrent must be >= 1, got 0"),
        ({"retries": -1}, "--retries must be >= 0, got -1"),
    ],
)
def test_bad_options_are_refused_before_any_work(tmp_path, options, message):
    sweep = tiny_sweep(tmp_path, "s")
    with pytest.raises(UserError, match=f"^{message}$"):
        run_ray(sweep, sweep.runs, **options)


def test_cuda_runs_need_a_gpu_share(tmp_path):
    sweep = tiny_sweep(tmp_path, "s", extra='device = "cuda"')
    with pytest.raises(UserError, match=r"asks for device 'cuda' but --gpus-per-run is 0"):
        run_ray(sweep, sweep.runs)


def test_nothing_to_do_starts_nothing(tmp_path):
    assert run_ray(tiny_sweep(tmp_path, "s"), []) == []


# ---------------------------------------------------------------- storage, without a cluster
def test_storage_on_a_local_path(tmp_path, monkeypatch):
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow (the ray extra)")
    monkeypatch.chdir(tmp_path)
    store = ray_backend.Storage("store/")  # relative: made absolute for the nodes
    assert store.uri == str(tmp_path / "store") and store.local
    assert store.read("a/b") is None
    store.write("a/b", b"one")
    store.write("a/b", b"two")
    assert store.read("a/b") == b"two"
    assert [p.name for p in (tmp_path / "store" / "a").iterdir()] == ["b"]  # no temporaries
    store.delete("a")
    store.delete("a")  # nothing there is fine
    assert store.read("a/b") is None and not (tmp_path / "store" / "a").exists()
    assert store.check("this machine").startswith(".mnistlab-probe-")
    assert list((tmp_path / "store").iterdir()) == []  # the probe cleaned up after itself
    assert ray_backend.key_uri("s3://b/p/?scheme=http", "k/r") == "s3://b/p/k/r?scheme=http"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("nosuch://x/y", r"^--storage nosuch://x/y: not a file system pyarrow or fsspec can open"),
        ("{file}/sub", r"^--storage .*/file/sub cannot be used from this machine: "),
    ],
)
def test_storage_that_cannot_work_stops_the_cli_before_the_sweep_folder(
    tmp_path, capsys, uri, message
):
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow (the ray extra)")
    (tmp_path / "file").write_text("a file, not a folder")
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(extra=""))
    out = tmp_path / "out"
    storage = uri.format(file=tmp_path / "file")
    argv = ["sweep", str(config), "--backend", "ray", "--out", str(out), "--storage", storage]

    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and re.match(
        message, error.removeprefix("mnistlab: error: ")
    ), error
    assert not out.exists()


def test_a_stored_run_folder_pushes_long_epochs_and_resumes_from_the_longer_state(tmp_path):
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow (the ray extra)")
    import torch

    sweep = tiny_sweep(tmp_path, "s")
    config = sweep.runs[0].config
    store = ray_backend.Storage(str(tmp_path / "store"))
    lines: list[str] = []
    folder = ray_backend.StoredRunFolder(tmp_path / "scratch" / "r", store, "s/r", log=lines.append)
    folder.start(config)
    folder.epoch_done([{"epoch": 1}])  # a short epoch: no resume state, nothing stored
    assert store.read("s/r/resume.pt") is None
    folder.epoch_done([{"epoch": 1}, {"epoch": 2}], {"weights": torch.zeros(2)})
    stored = {n: store.read(f"s/r/{n}") for n in ("config.json", "history.json", "resume.pt")}
    assert all(stored.values()) and json.loads(stored["history.json"])[-1] == {"epoch": 2}

    shorter = {"history.json": b'[{"epoch": 1}]', "resume.pt": b"x", "config.json": b"{}"}
    longer = shorter | {"history.json": b'[{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]'}
    fresh = ray_backend.StoredRunFolder(tmp_path / "elsewhere" / "r", store, "s/r")
    assert fresh.fetch({}) == stored
    assert fresh.fetch(shorter) == stored
    assert fresh.fetch(longer) == longer  # the driver's own copy is further on

    # Storage trouble after the start costs the resume state, never the run.
    def broken(*_args):
        raise OSError("the bucket went away")

    store.write = broken
    folder.epoch_done([{"epoch": 1}, {"epoch": 2}, {"epoch": 3}], {"weights": torch.ones(2)})
    assert lines == [f"could not store the resume state in {store.uri}: the bucket went away"]
    store.read = broken
    assert fresh.fetch(shorter) == shorter


# ---------------------------------------------------------------- on a Ray instance
# Slow: starting the instance and its workers alone takes ~5 s; each test runs a sweep.
@pytest.mark.slow
def test_grid_writes_the_same_ledger_as_the_local_backend(ray_instance, tmp_path):
    sweep = tiny_sweep(tmp_path, "ray")
    lines: list[str] = []
    outcomes = run_ray(sweep, prepare(sweep), cpus_per_run=1, log=lines.append)

    assert sorted(o["run_id"] for o in outcomes) == sorted(r.run_id for r in sweep.runs)
    assert {o["status"] for o in outcomes} == {"finished"}
    progress = [line for line in lines if line.startswith("[")]
    assert [p.split("]")[0].split(",")[0] for p in progress] == ["[1/4", "[2/4", "[3/4", "[4/4"]
    assert all(": finished (" in p for p in progress)
    assert "ETA" in progress[0] and "ETA" not in progress[-1]

    local = tiny_sweep(tmp_path, "local")
    run_local(local, prepare(local), log=lambda *a: None)
    assert files_of(sweep) == files_of(local)
    assert "result.json" in files_of(sweep)[sweep.runs[0].run_id]
    for remote, here in zip(
        ledger.read_runs(sweep.out_dir), ledger.read_runs(local.out_dir), strict=True
    ):
        assert remote["status"] == here["status"] == "finished"
        assert remote["config"] | {"out_dir": None} == here["config"] | {"out_dir": None}
        assert remote["result"]["epochs_run"] == 1
    assert prepare(sweep) == []


@pytest.mark.slow
def test_a_rerun_does_only_the_runs_not_finished(ray_instance, tmp_path):
    sweep = tiny_sweep(tmp_path, "s")
    first, partial, untouched = prepare(sweep)[:2], sweep.runs[2], sweep.runs[3]
    # The driver "dies" after two runs; a third was killed mid-epoch: its folder has a
    # config and a history but no result.json.
    run_ray(sweep, first, log=lambda *a: None)
    folder = sweep.folder(partial).path
    folder.mkdir(parents=True)
    ledger.write_json(folder / ledger.CONFIG, partial.config.to_dict())
    ledger.write_json(folder / ledger.HISTORY, [{"epoch": 1, "stale": True}])
    before = result_mtimes(sweep)
    assert sorted(before) == sorted(r.run_id for r in first)

    todo = prepare(sweep)
    assert sorted(r.run_id for r in todo) == sorted([partial.run_id, untouched.run_id])
    outcomes = run_ray(sweep, todo, log=lambda *a: None)

    assert sorted(o["run_id"] for o in outcomes) == sorted([partial.run_id, untouched.run_id])
    after = result_mtimes(sweep)
    assert {k: after[k] for k in before} == before  # finished runs were not touched
    assert ledger.run_status(folder) == "finished"
    assert "stale" not in ledger.read_json(folder / ledger.HISTORY)[0]
    assert prepare(sweep) == []


@pytest.mark.slow
def test_lost_workers_are_retried_and_errors_recorded_at_once(ray_instance, tmp_path, monkeypatch):
    sweep = tiny_sweep(tmp_path, "s")
    attempts_dir = tmp_path / "attempts"
    attempts_dir.mkdir()
    raise_once, crash_once, always, clean = (r.run_id for r in sweep.runs)
    plan = {raise_once: "raise-once", crash_once: "crash-once", always: "always"}
    original = ray_backend._train_one
    marks = str(attempts_dir)

    # A closure, so Ray ships it by value to the worker processes; attempts are counted
    # in files because each attempt may run in a different process.
    def flaky(config, data_dir, run_id, *args):
        with open(Path(marks) / run_id, "a") as f:
            f.write("x")
        attempt = len((Path(marks) / run_id).read_text())
        mode = plan.get(run_id)
        if mode == "always" or (mode == "raise-once" and attempt == 1):
            raise RuntimeError(f"injected failure, attempt {attempt}")
        if mode == "crash-once" and attempt == 1:
            os._exit(1)  # the worker dies as if killed
        return original(config, data_dir, run_id, *args)

    monkeypatch.setattr(ray_backend, "_train_one", flaky)
    outcomes = {
        o["run_id"]: o for o in run_ray(sweep, prepare(sweep), retries=2, log=lambda *a: None)
    }

    attempts = {p.name: len(p.read_text()) for p in attempts_dir.iterdir()}
    # A lost worker is retried; an error is not (the same config fails the same way again).
    assert attempts == {raise_once: 1, crash_once: 2, always: 1, clean: 1}
    assert {k: o["status"] for k, o in outcomes.items()} == {
        raise_once: "failed",
        crash_once: "finished",
        always: "failed",
        clean: "finished",
    }
    assert outcomes[always]["error"] == "RuntimeError: injected failure, attempt 1"
    failed = ledger.read_json(sweep.folder(sweep.runs[2]).path / ledger.RESULT)
    assert failed["status"] == "failed"
    assert failed["error"] == "RuntimeError: injected failure, attempt 1"
    error_text = (sweep.folder(sweep.runs[2]).path / ledger.ERROR).read_text()
    assert "injected failure" in error_text and "\x1b[" not in error_text
    # The failed runs, and only they, are what the next `mnistlab sweep` redoes.
    assert sorted(r.run_id for r in prepare(sweep)) == sorted([raise_once, always])


@pytest.mark.slow
def test_a_worker_that_always_dies_is_recorded_as_failed(ray_instance, tmp_path, monkeypatch):
    sweep = tiny_sweep(tmp_path, "s")

    def crash(*args):
        os._exit(1)

    monkeypatch.setattr(ray_backend, "_train_one", crash)
    [outcome] = run_ray(sweep, prepare(sweep)[:1], retries=0, log=lambda *a: None)

    assert outcome["status"] == "failed"
    assert outcome["error"].startswith("WorkerCrashedError: ")
    result = ledger.read_json(sweep.folder(sweep.runs[0]).path / ledger.RESULT)
    assert result["status"] == "failed" and result["error"].startswith("WorkerCrashedError")


@pytest.mark.slow
def test_cli_sweep_on_ray_end_to_end(ray_instance, tmp_path, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(extra=""))
    out = tmp_path / "out"

    assert main(["sweep", str(config), "--backend", "ray", "--no-report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sweep tiny: 4 runs, 0 already done" in printed
    assert "[4/4] " in printed

    assert main(["sweep", str(config), "--status", "--out", str(out)]) == 0
    assert "tiny: 4/4 done finished=4" in capsys.readouterr().out
