"""The ledger under hostile conditions (issue 13): damaged records, two processes on one sweep
folder, leftovers of interrupted writes, unwritable outputs, bad sweep names, runs that would
fail late, tiny validation splits, exploding losses; and the sweep's ETA estimator.

Each test names the defect it pins down. Training is tiny (MLP, a few hundred images).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helper import cli

from mnistlab import engine, ledger
from mnistlab.config import ConfigError, TrainConfig
from mnistlab.ledger import RunFolder
from mnistlab.sweep import load_sweep, pending_runs, prepare

SWEEP = """\
[sweep]
name = "{name}"
[base]
epochs = 1
train_subset = {train}
eval_subset = 100
device = "cpu"
precision = "fp32"
model = "mlp"
model_kwargs = {{ hidden = [16] }}
[grid]
lr = {lrs}
"""


def sweep_file(tmp_path: Path, name="tiny", train=128, lrs="[1e-3, 2e-3]", extra="") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name, train=train, lrs=lrs) + extra)
    return path


@pytest.fixture
def finished_sweep(tmp_path):
    path = sweep_file(tmp_path)
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--no-report")
    assert code == 0, err
    return path, tmp_path / "out"


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, never a traceback
    assert lines[0].startswith("mnistlab: error: ")
    return lines[0]


# ------------------------------------------------------------------ 1. damaged records
@pytest.mark.parametrize("damage", [b'{"status": "fin', b"\x89\xff\x00garbage", b"[]"])
def test_a_damaged_result_is_set_aside_and_its_run_redone(finished_sweep, damage):
    path, out = finished_sweep
    run_dir = sorted((out / "runs").iterdir())[0]
    (run_dir / ledger.RESULT).write_bytes(damage)
    code, stdout, err = cli("sweep", path, "--out", out, "--status")
    assert code == 0, err
    assert "damaged" in stdout and "1/2 done" in stdout
    kept = list(run_dir.glob("result.json.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == damage  # kept for inspection
    code, stdout, err = cli("sweep", path, "--out", out, "--no-report")
    assert code == 0, err
    assert "1 already done" in stdout
    assert ledger.read_json(run_dir / ledger.RESULT)["status"] == "finished"


@pytest.mark.parametrize("name", [ledger.RESULT, ledger.CONFIG])
def test_train_over_a_damaged_record_redoes_the_run(tmp_path, name):
    out = tmp_path / "run"
    args = ["train", "--model", "mlp", "--arch", "hidden=[16]", "--epochs", "1"]
    args += ["--train-subset", "128", "--eval-subset", "100", "--device", "cpu", "--out-dir", out]
    assert cli(*args)[0] == 0
    (out / name).write_bytes(b"\x00not json")
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "finished: mlp" in stdout and list(out.glob(f"{name}.damaged-*"))
    assert ledger.read_json(out / ledger.RESULT)["status"] == "finished"


# ------------------------------------------------------------------ 2. two processes
@pytest.mark.slow
def test_two_sweep_processes_divide_the_runs_and_train_each_once(tmp_path):
    path = sweep_file(tmp_path, train=2000, lrs="[1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]")
    out = tmp_path / "out"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mnistlab", "sweep", str(path), "--out", str(out)]
    procs = [
        subprocess.Popen(command + ["--no-report"], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = []
    for text in outputs:
        lines = [line.split("] ", 1)[1] for line in text.splitlines() if line.startswith("[")]
        # A run's line is printed when this process reaches it; a second line says when
        # another process held it (claimed) or had finished it (skipped).
        passed = {line.split(": ")[0] for line in lines if ": " in line}
        trained += [line for line in lines if ": " not in line and line not in passed]
    labels = [r.label for r in load_sweep(str(path), str(out), check=False).runs]
    assert sorted(trained) == sorted(labels)  # every run trained, none twice
    assert {r["status"] for r in ledger.read_runs(out)} == {"finished"}
    assert not list(out.glob("runs/*/claim.json"))  # every claim released


def test_a_peer_waits_for_a_claimed_run_and_takes_it_over_when_its_holder_dies(tmp_path):
    """A sweep process finds one run held by a live process (a sleeper standing in for a peer
    mid-run): it trains the other run, waits, and once the holder is killed trains the held
    run itself, ending with every run finished, instead of exiting 0 with a run pending."""
    path = sweep_file(tmp_path)
    out = tmp_path / "out"
    held = sorted(load_sweep(str(path), str(out), check=False).runs, key=lambda r: r.run_id)[0]
    folder = RunFolder(out / "runs" / held.run_id)
    folder.path.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    sweep = None
    try:
        ledger.write_json(
            folder.path / ledger.CLAIM,
            {
                "host": os.uname().nodename,
                "pid": sleeper.pid,
                "pid_start": ledger.process_start(sleeper.pid),
                "started": 0,
                "token": "peer",
            },
        )
        command = [sys.executable, "-m", "mnistlab", "sweep", str(path), "--out", str(out)]
        sweep = subprocess.Popen(
            command + ["--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        seen = []
        for line in sweep.stdout:
            seen.append(line)
            if line.startswith("waiting for 1 run(s)"):
                break
        else:
            pytest.fail("the sweep did not wait for the held run:\n" + "".join(seen))
        assert folder.status() == "pending"  # still the peer's
        sleeper.kill()
        stdout, stderr = sweep.communicate(timeout=60)
    finally:
        sleeper.kill()
        sleeper.wait()
        if sweep is not None and sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 0, stderr
    assert "rerun" not in stderr
    assert {r["run_id"]: r["status"] for r in ledger.read_runs(out)} == {
        r.run_id: "finished" for r in load_sweep(str(path), str(out), check=False).runs
    }
    assert not list(out.glob("runs/*/claim.json"))


def test_a_claim_held_by_a_live_process_is_respected_and_a_dead_ones_taken_over(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        claim = {"host": os.uname().nodename, "pid": sleeper.pid, "started": 0, "token": "x"}
        ledger.write_json(folder.path / ledger.CLAIM, claim)
        assert not folder.claim()
        assert f"pid {sleeper.pid}" in folder.claimed_by()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert folder.claim()  # its holder is dead now
    folder.release()
    assert not (folder.path / ledger.CLAIM).exists()


@pytest.mark.parametrize("pid", ["sleeper", 1])
def test_a_claim_whose_pid_was_reused_is_taken_over(tmp_path, pid):
    """The pid is alive, but it is another process than the one that claimed the run (the
    pid was reused, or a restarted container's PID 1): its start time tells them apart."""
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pid = sleeper.pid if pid == "sleeper" else pid
        start = ledger.process_start(pid)
        assert start is not None  # Linux: /proc/<pid>/stat
        claim = {"host": os.uname().nodename, "pid": pid, "started": 0, "token": "x"}
        ledger.write_json(folder.path / ledger.CLAIM, claim | {"pid_start": start})
        assert not folder.claim() and folder.claim_alive()  # the same process: respected
        ledger.write_json(folder.path / ledger.CLAIM, claim | {"pid_start": start + "0"})
        assert not folder.claim_alive()
        assert folder.claim()
        assert ledger.read_json(folder.path / ledger.CLAIM)["pid_start"] == ledger.process_start(
            os.getpid()
        )
        folder.release()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_silent_claim_from_another_machine_goes_stale(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    claim = {"host": "elsewhere", "pid": 1, "started": 0, "token": "x"}
    ledger.write_json(folder.path / ledger.CLAIM, claim)
    assert not folder.claim()  # fresh: its heartbeat may still come
    old = os.stat(folder.path / ledger.CLAIM).st_mtime - ledger.CLAIM_STALE_SECONDS - 5
    os.utime(folder.path / ledger.CLAIM, (old, old))
    assert folder.claim()
    folder.release()


# ------------------------------------------------------------------ 3. leftovers
def test_temporary_files_of_interrupted_writes_are_removed_on_claim(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    leftover = folder.path / ".checkpoint.pt.abc123.tmp"
    leftover.write_bytes(b"x" * 1000)
    mine = folder.path / "notes.txt"
    mine.write_text("keep")
    assert folder.claim()
    folder.release()
    assert not leftover.exists() and mine.read_text() == "keep"


# ------------------------------------------------------------------ 4. unwritable outputs
def test_a_sweep_folder_that_cannot_be_created_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli("sweep", sweep_file(tmp_path), "--out", blocker / "out", "--no-report")
    assert code == 2
    assert "cannot write" in one_line_error(err)


def test_train_into_an_unwritable_out_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["train", "--model", "mlp", "--epochs", "1", "--train-subset", "128"]
    code, _, err = cli(*args, "--eval-subset", "100", "--device", "cpu", "--out-dir", blocker / "r")
    assert code == 2
    assert "cannot write" in one_line_error(err)


def test_a_full_disk_during_a_sweep_is_one_line_and_loses_nothing(finished_sweep, monkeypatch):
    path, out = finished_sweep
    before = {p: p.read_bytes() for p in out.rglob("result.json")}
    real_replace = os.replace

    def full(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", full)
    code, _, err = cli("sweep", path, "--out", out, "--no-report", "--set", "lr=0.003")
    assert code == 2
    assert "the disk is full" in one_line_error(err)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {p: p.read_bytes() for p in out.rglob("result.json")} == before
    assert not list(out.rglob("*.tmp"))


# ------------------------------------------------------------------ 5. sweep names
@pytest.mark.parametrize("name", ['"../x"', '"/abs/path"', "5", '"a/b"', '".."', '""'])
def test_a_sweep_name_must_be_a_plain_folder_name(tmp_path, name):
    path = tmp_path / "bad.toml"
    path.write_text(f"[sweep]\nname = {name}\n[grid]\nmodel = ['mlp']\n")
    code, _, err = cli("sweep", path, "--status")
    assert code == 2
    assert "[sweep] name must be a plain folder name" in one_line_error(err)
    assert not (tmp_path / "x").exists()


# ------------------------------------------------------------------ 12. late failures
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[overrides.lenet]\nmodel_kwargs = { widht = 2 }\n", "unknown architecture option"),
        ("[overrides.lenet]\ntrain_subset = 100000\n", "train_subset 100000 is larger"),
        ('[overrides.lenet]\ndevice = "cuda"\n', "no CUDA GPU"),
    ],
)
def test_a_bad_later_run_fails_before_the_first_run_trains(tmp_path, extra, message):
    path = tmp_path / "late.toml"
    path.write_text(
        "[base]\nepochs = 1\ntrain_subset = 128\neval_subset = 100\n"
        '[grid]\nmodel = ["mlp", "lenet"]\n' + extra
    )
    if "cuda" in extra and engine.torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--no-report")
    assert code == 2
    line = one_line_error(err)
    assert message in line and "lenet" in line
    assert not (tmp_path / "out").exists()  # nothing trained, nothing created


# ------------------------------------------------------------------ 13. tiny validation
def test_a_validation_split_missing_a_class_is_refused(mnist):
    config = TrainConfig(model="mlp", val_fraction=1e-5, device="cpu", epochs=1)
    with pytest.raises(
        ConfigError, match=r"validation split has 0 image\(s\) of class .* at least 1"
    ):
        engine.train(config, mnist, log=lambda *a: None, progress=False)


# ------------------------------------------------------------------ 14. explosions
def test_an_exploding_but_finite_loss_is_recorded_as_diverged(mnist, tmp_path):
    config = TrainConfig(
        model="mlp",
        model_kwargs={"hidden": [64]},
        lr=50.0,
        epochs=2,
        train_subset=2000,
        eval_subset=200,
        device="cpu",
        precision="fp32",
        out_dir=str(tmp_path / "run"),
    )
    result = engine.train(config, mnist, log=lambda *a: None, progress=False)
    assert result.status == "diverged"
    assert "exploded" in result.error or "not finite" in result.error
    assert ledger.read_json(tmp_path / "run" / ledger.RESULT)["status"] == "diverged"


# ------------------------------------------------------------------ 15. --status labels
def test_status_labels_show_every_setting_that_differs(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        "[base]\nepochs = 1\n[grid]\nmodel = ['mlp']\nlr = [1e-3]\n"
        "label_smoothing = [0.0, 0.1]\nbatch_size = [32, 64]\n"
    )
    code, stdout, err = cli("sweep", path, "--out", tmp_path / "out", "--status")
    assert code == 0, err
    labels = [line.split("  ")[-1] for line in stdout.splitlines()[:4]]
    assert len(set(labels)) == 4
    assert "mlp batch_size=32 label_smoothing=0.1" in labels


def test_prepare_does_not_delete_a_failed_run_before_it_is_claimed(finished_sweep):
    path, out = finished_sweep
    sweep = load_sweep(str(path), str(out))
    folder = sweep.folder(sweep.runs[0])
    folder.fail(sweep.runs[0].config, "boom")
    todo = prepare(sweep)
    assert [r.run_id for r in todo] == [sweep.runs[0].run_id]
    assert (folder.path / ledger.ERROR).read_text() == "boom"  # kept until the retry starts


# ------------------------------------------------------------------ ids survive new settings
def test_runs_recorded_before_a_setting_existed_keep_their_ids():
    # Four run folders written by an earlier version (before robust_augment existed): a new
    # setting at its default must not change the id, or every old sweep would retrain.
    root = Path(__file__).resolve().parents[1] / "docs/results/cpu_fastnet_best/run_files"
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(folders) == 4
    for folder in folders:
        recorded = ledger.read_json(folder / ledger.CONFIG)
        assert "robust_augment" not in recorded
        assert ledger.run_id_for(TrainConfig.from_dict(recorded)) == folder.name
    changed = TrainConfig.from_dict(recorded | {"robust_augment": True})
    assert ledger.run_id_for(changed) != folders[-1].name


def test_the_h200_ledger_from_before_the_layers_change_resumes_with_the_same_run_ids(tmp_path):
    # The user's grid as the GPU left it (24 runs ended, others part-way or not started),
    # written by the code before the engine took callbacks and the sweep forgot the search:
    # every run id is recomputed alike, and a rerun would train only the runs not ended.
    import tarfile

    tgz = Path(__file__).resolve().parents[1] / "benchmarks/results/h200_ledgers.tgz"
    with tarfile.open(tgz) as archive:
        archive.extractall(tmp_path, filter="data")
    out = tmp_path / "seed"
    sweep = load_sweep(str(out / "sweep.toml"), str(out), check=False)
    assert [r.run_id for r in sweep.runs] == ledger.read_json(out / ledger.MANIFEST)["run_ids"]
    ended = {p.parent.name for p in (out / "runs").glob(f"*/{ledger.RESULT}")}
    assert len(sweep.runs) == 60 and len(ended) == 24
    assert {r.run_id for r in pending_runs(sweep)} == {r.run_id for r in sweep.runs} - ended
