"""Search sweeps ([search] with Optuna): the table is checked like the rest of a sweep file,
every trial is a normal ledger run (pruned ones recorded as "pruned" with the epochs they
trained), and a search killed part-way resumes to exactly the trials it was asked for.

The search trains LeNet for at most 2 epochs on 300 images: seconds per trial.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helper import cli
from sqlite_files import damaged_sqlite, foreign_sqlite

from mnistlab import ledger, search
from mnistlab.config import ConfigError
from mnistlab.engine import Callback
from mnistlab.experiment import load_experiment

BASE = """\
[sweep]
name = "tiny_search"

[base]
model = "lenet"
epochs = 2
train_subset = 300
eval_subset = 200
batch_size = 16
device = "cpu"
precision = "fp32"
"""

# A space with hopeless corners (lr 1e-5 learns nothing in two epochs) so the median pruner,
# once one trial has finished, has trials to stop after their first epoch.
SEARCH = """
[search]
trials = 5
sampler = "random"
pruner = "median"
startup_trials = 1
seed = 3

[search.space]
lr = { low = 1e-5, high = 3e-3, log = true }
dropout = { low = 0.0, high = 0.5 }
"""


def write(tmp_path: Path, text: str, name: str = "search.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the [search] table
@pytest.mark.parametrize(
    "table, message",
    [
        ("[search]\ntrials = 3\n", "needs a [search.space] table"),
        ("[search]\n[search.space]\nlr = {low = 1e-3, high = 1e-2}\n", "needs trials = N"),
        ("[search]\ntrials = 3\nsampel = 'tpe'\n[search.space]\nlr = {choices = [1]}\n", "sampel"),
        ("[search]\ntrials = 0\n[search.space]\nlr = {choices = [1e-3]}\n", "trials must be"),
        (
            "[search]\ntrials = 2\nsampler = 'bayes'\n[search.space]\nlr = {choices = [1e-3]}\n",
            "sampler must be one of tpe, random, grid",
        ),
        (
            "[search]\ntrials = 2\npruner = 'hyper'\n[search.space]\nlr = {choices = [1e-3]}\n",
            "pruner must be one of median, asha, none",
        ),
        (
            "[search]\ntrials = 2\n[search.space]\nlrr = {low = 1e-4, high = 1e-2}\n",
            "did you mean lr?",
        ),
        (
            "[search]\ntrials = 2\n[search.space]\ndevice = {choices = ['cpu']}\n",
            "cannot be searched",
        ),
        ("[search]\ntrials = 2\n[search.space]\nlr = [1e-3, 1e-2]\n", "must be a table"),
        (
            "[search]\ntrials = 2\n[search.space]\nlr = {low = 1e-2, high = 1e-3}\n",
            "low must be below high",
        ),
        (
            "[search]\ntrials = 2\n[search.space]\nlr = {low = 0, high = 1e-3, log = true}\n",
            "a log range needs low > 0",
        ),
        ("[search]\ntrials = 2\n[search.space]\nepochs = {low = 1, high = 2.5}\n", "whole number"),
        (
            "[search]\ntrials = 2\n[search.space]\ndropout = {low = 0.1, high = 1.0}\n",
            "space.dropout = 1.0: dropout must be in [0, 1)",
        ),
        (
            "[search]\ntrials = 2\n[search.space]\nmodel = {choices = ['lenet', 'lenett']}\n",
            "space.model = 'lenett'",
        ),
        (
            "[search]\nsampler = 'grid'\n[search.space]\nlr = {low = 1e-4, high = 1e-2}\n",
            "grid sampler needs choices",
        ),
        (
            "[search]\nsampler = 'grid'\ntrials = 3\n[search.space]\nlr = {choices = [1e-3, 1e-2]}\n",
            "only 2 combination",
        ),
        (
            "[grid]\nlr = [1e-3]\n[search]\ntrials = 2\n[search.space]\nlr = {low = 1e-4, high = 1e-2}\n",
            "both a [grid] axis and searched",
        ),
        (
            "[overrides.lenet]\nlr = 1e-3\n[search]\ntrials = 2\n[search.space]\nlr = {low = 1e-4, high = 1e-2}\n",
            "[overrides.lenet] sets lr",
        ),
    ],
)
def test_bad_search_tables_are_one_line(tmp_path, table, message):
    path = write(tmp_path, BASE + table)
    with pytest.raises(ConfigError, match=re.escape(message)) as exc:
        load_experiment(path, str(tmp_path / "out"), check=False)
    assert len(str(exc.value).splitlines()) == 1 and str(path) in str(exc.value)
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--status")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.parametrize(
    "space, message",
    [
        ("eval_subset = {low = 5, high = 200}", "space.eval_subset = 5: "),
        ("precision = {choices = ['fp32', 'fp16']}", "space.precision = 'fp16': "),
        ("data_dir = {choices = ['/nonexistent/digits']}", "space.data_dir = '/nonexistent/"),
    ],
)
def test_every_value_of_the_space_is_checked_like_a_grid_before_any_trial(
    tmp_path, mnist, space, message
):
    """A value that cannot run was accepted and failed only when sampled, after other trials
    trained; a grid with the same value is refused up front. Checked like a grid now."""
    path = write(tmp_path, BASE + f"[search]\ntrials = 3\n[search.space]\n{space}\n")
    value = message.split("= ")[1].rstrip(": ")
    grid = write(tmp_path, BASE + f"[grid]\n{space.split(' = ')[0]} = [{value}]\n", "grid.toml")
    with pytest.raises(ConfigError):
        load_experiment(grid, str(tmp_path / "grid"))  # what a grid says
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_experiment(path, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_set_cannot_fight_the_search(tmp_path):
    path = write(tmp_path, BASE + SEARCH)
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--set", "lr=0.01")
    assert code == 2 and "--set lr: the sweep's [search.space] searches it" in err
    assert not (tmp_path / "out").exists()


def test_a_search_table_becomes_a_plan_with_one_study_per_grid_combination(tmp_path):
    text = BASE + '[grid]\nmodel = ["lenet", "mlp"]\n' + SEARCH
    loaded = search.load_search(write(tmp_path, text), str(tmp_path / "out"), check=False)
    assert loaded.sweep.runs == []  # the runs are the trials, made as the search goes
    plan = loaded.plan
    assert [p.label for p in plan.points] == ["lenet", "mlp"]
    assert len({p.study for p in plan.points}) == 2
    assert plan.spec.trials == 5 and plan.spec.pruner == "median"
    config = plan.config_for(plan.points[1], {"lr": 2e-3, "dropout": 0.1})
    assert (config.model, config.lr, config.dropout, config.epochs) == ("mlp", 2e-3, 0.1, 2)


def test_without_optuna_a_search_says_which_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "optuna", None)
    path = write(tmp_path, BASE + SEARCH)
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--no-report")
    assert code == 2 and "pip install 'mnistlab[optuna]'" in err


def test_a_search_refuses_the_ray_backend(tmp_path):
    path = write(tmp_path, BASE + SEARCH)
    code, _, err = cli("sweep", path, "--out", tmp_path / "out", "--backend", "ray")
    assert code == 2 and "one after the other" in err


# ---------------------------------------------------------------- running, killing, resuming
class Killed(KeyboardInterrupt):
    pass


@pytest.fixture
def killed_then_resumed(tmp_path, monkeypatch, mnist):
    """The search killed (Ctrl-C) during the first epoch of its third trial, then rerun."""
    pytest.importorskip("optuna")
    path = write(tmp_path, BASE + SEARCH)
    out = tmp_path / "out"
    real = search.execute_run  # run_search looks it up there at each call
    calls: list[str] = []

    def execute_run(config, folder, **kwargs):
        calls.append(folder.run_id)
        if len(calls) == 3:

            class Interrupt(Callback):
                def on_epoch_end(self, row, state):
                    raise Killed  # what Ctrl-C does mid-run: train() keeps the epoch, then stops

            kwargs["callbacks"] = [Interrupt()]
        return real(config, folder, **kwargs)

    monkeypatch.setattr(search, "execute_run", execute_run)
    code, stdout, stderr = cli("sweep", path, "--out", out, "--no-report")
    assert code == 130, stderr  # interrupted
    killed_run = calls[2]
    before = {r["run_id"]: r["status"] for r in ledger.read_runs(out)}
    assert before[killed_run] == "partial" and len(before) == 3
    code, stdout, stderr = cli("sweep", path, "--out", out, "--no-report")
    assert code == 0, stderr
    return out, calls, killed_run, stdout


def test_a_killed_search_resumes_to_the_trials_asked_for(killed_then_resumed):
    import optuna
    from optuna.trial import TrialState

    out, calls, killed_run, stdout = killed_then_resumed
    records = ledger.read_runs(out)
    statuses = [r["status"] for r in records]
    # Five trials ended, each a run of its own (a continuous space: no config twice).
    assert len(records) == 5 and set(statuses) <= {"finished", "pruned", "diverged"}
    assert "pruned" in statuses and "finished" in statuses
    # The killed trial was trained again (same config, same run folder), not lost or doubled.
    assert calls.count(killed_run) == 2 and killed_run in {r["run_id"] for r in records}
    assert len(calls) == 6
    assert sorted(ledger.read_json(out / "sweep.json")["run_ids"]) == sorted(
        r["run_id"] for r in records
    )
    # Optuna agrees with the ledger, trial for trial.
    [summary] = optuna.get_all_study_summaries(search.storage_url(out))
    study = optuna.load_study(study_name=summary.study_name, storage=search.storage_url(out))
    by_state = {
        s: sorted(t.user_attrs["run_id"] for t in study.get_trials(states=(s,)))
        for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    ended = {r["run_id"]: r["status"] for r in records}
    assert by_state[TrialState.PRUNED] == sorted(i for i, s in ended.items() if s == "pruned")
    assert by_state[TrialState.COMPLETE] == sorted(i for i, s in ended.items() if s != "pruned")
    assert by_state[TrialState.FAIL] == [killed_run]  # the cut-short attempt, not counted
    assert "search: " in stdout and "pruned" in stdout


def test_pruned_trials_are_normal_ledger_runs(killed_then_resumed):
    out, *_ = killed_then_resumed
    for record in ledger.read_runs(out):
        result = record["result"]
        assert result["epochs_run"] == len(record["history"])
        if record["status"] == "pruned":
            epochs = result["epochs_run"]
            assert epochs < 2
            assert result["error"] == f"stopped after epoch {epochs} of 2 by the pruner"
            assert result["test_acc"] is not None  # judged once, like every ended run
        else:
            assert result["epochs_run"] == 2
    summary = search.search_summary(out)
    assert summary["finished"] + summary["pruned"] + summary["diverged"] == 5
    assert summary["epochs_trained"] < summary["epochs_if_unpruned"] == 10
    assert summary["best_val_acc"] == max(r["result"]["val_acc"] for r in ledger.read_runs(out))


def test_status_and_a_rerun_of_a_finished_search(killed_then_resumed, monkeypatch):
    out, calls, *_ = killed_then_resumed
    path = out.parent / "search.toml"
    code, stdout, _ = cli("sweep", path, "--out", out, "--status")
    assert code == 0 and "tiny_search: search, 5/5 trials ended" in stdout
    assert stdout.count("lenet-") == 5 and "lr=" in stdout
    before = len(calls)
    code, _, err = cli("sweep", path, "--out", out, "--no-report")
    assert code == 0, err
    assert len(calls) == before  # nothing trained again


def test_a_grid_sampler_tries_every_combination_once(tmp_path, mnist):
    pytest.importorskip("optuna")
    text = BASE.replace("epochs = 2", "epochs = 1") + (
        '[search]\nsampler = "grid"\npruner = "none"\n'
        "[search.space]\nlr = { choices = [1e-3, 2e-3] }\ndropout = { choices = [0.0, 0.5] }\n"
    )
    loaded = search.load_search(write(tmp_path, text), str(tmp_path / "out"))
    assert loaded.plan.spec.trials == 4
    search.run_search(loaded, log=lambda *a: None)
    records = ledger.read_runs(tmp_path / "out")
    combos = sorted((r["config"]["lr"], r["config"]["dropout"]) for r in records)
    assert combos == [(1e-3, 0.0), (1e-3, 0.5), (2e-3, 0.0), (2e-3, 0.5)]
    assert {r["status"] for r in records} == {"finished"}


# ---------------------------------------------------------------- two processes, one folder
TWO_PROCESSES = (
    BASE.replace("epochs = 2", "epochs = 1")
    + """
[search]
trials = 4
sampler = "random"
pruner = "none"
seed = 5

[search.space]
lr = { low = 1e-4, high = 3e-3, log = true }
"""
)


def test_two_search_processes_on_one_folder_end_exactly_the_trials_asked_for(tmp_path, mnist):
    """Two `mnistlab sweep` processes (with --mlflow, both creating the store the first time)
    search one folder at once: the study ends exactly `trials` trials, each run trained once,
    every one in the manifest (--status, the report) and in MLflow."""
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState

    path = write(tmp_path, TWO_PROCESSES)
    out = tmp_path / "out"
    flags = ["--mlflow"] if importlib.util.find_spec("mlflow") else []
    command = [sys.executable, "-m", "mnistlab", "sweep", str(path), "--out", str(out)]
    procs = [
        subprocess.Popen(
            [*command, "--no-report", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    trained = [
        line
        for stdout, _ in outputs
        for line in stdout.splitlines()
        if line.startswith("  -> ") and "not counted" not in line
    ]
    assert len(trained) == 4, outputs  # each trial trained by one process, once
    [summary] = optuna.get_all_study_summaries(search.storage_url(out))
    study = optuna.load_study(study_name=summary.study_name, storage=search.storage_url(out))
    ended = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(ended) == 4
    assert not study.get_trials(states=(TrialState.RUNNING,))
    run_ids = sorted(t.user_attrs["run_id"] for t in ended)
    assert len(set(run_ids)) == 4  # no sample drawn twice
    assert sorted(r["run_id"] for r in ledger.read_runs(out)) == run_ids
    code, stdout, _ = cli("sweep", path, "--out", out, "--status")
    assert code == 0 and "4/4 trials ended" in stdout and stdout.count("lenet-") == 4
    if flags:
        from mlflow.tracking import MlflowClient

        from mnistlab.tracking import default_tracking_uri

        client = MlflowClient(tracking_uri=default_tracking_uri(out))
        experiment = client.get_experiment_by_name("tiny_search")
        logged = client.search_runs([experiment.experiment_id])
        assert sorted(r.data.tags["mnistlab.run_id"] for r in logged) == run_ids


# ---------------------------------------------------------------- the study file
@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"my notes, not a database\n" * 40), "not an SQLite file"),
        (foreign_sqlite, "an SQLite database that is not a search's study"),
        (damaged_sqlite, "a damaged SQLite file"),
        (lambda p: p.mkdir(), "not a regular file"),
    ],
)
def test_a_search_db_that_is_not_a_study_is_one_line_and_left_alone(tmp_path, make, message):
    """A damaged search.db gave a traceback; a foreign SQLite file got Optuna's tables."""
    pytest.importorskip("optuna")
    path = write(tmp_path, BASE + SEARCH)
    out = tmp_path / "out"
    out.mkdir()
    study = out / search.STUDY_FILE
    make(study)
    before = study.read_bytes() if study.is_file() else None
    code, _, err = cli("sweep", path, "--out", out, "--no-report")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{study}: {message}" in err
    assert (study.read_bytes() if study.is_file() else None) == before
    assert not (out / "runs").exists()  # nothing trained


def test_an_empty_search_db_becomes_the_study(tmp_path):
    pytest.importorskip("optuna")
    out = tmp_path / "out"
    out.mkdir()
    (out / search.STUDY_FILE).touch()
    search.check_study_file(out)  # SQLite makes an empty file a new database


def test_a_trial_of_a_killed_process_is_run_again_by_the_next_one(tmp_path, mnist):
    """A search process killed (-9) mid-trial leaves its trial RUNNING: the next process sees
    that trial's owner is dead (its pid gone), runs the same settings again, and the study
    ends exactly `trials` trials."""
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState

    path = write(tmp_path, TWO_PROCESSES.replace("trials = 4", "trials = 2"))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "mnistlab", "sweep", str(path), "--out", str(out)]
    victim = subprocess.Popen(
        [*command, "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        for line in victim.stdout:
            if line.startswith("[trial 1/2]"):
                break
        victim.kill()
    finally:
        victim.kill()
        victim.wait()
    study = optuna.load_study(
        study_name=optuna.get_all_study_summaries(search.storage_url(out))[0].study_name,
        storage=search.storage_url(out),
    )
    [cut_short] = study.get_trials(states=(TrialState.RUNNING,))
    code, stdout, err = cli("sweep", path, "--out", out, "--no-report")
    assert code == 0, err
    assert "1 trial(s) cut short earlier will be run again" in stdout
    ended = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    assert len(ended) == 2
    assert cut_short.user_attrs["run_id"] in {t.user_attrs["run_id"] for t in ended}
    assert [t.number for t in study.get_trials(states=(TrialState.FAIL,))] == [cut_short.number]


def test_a_running_trial_belongs_to_its_owner_while_that_process_lives(tmp_path):
    """Judged like a claim: host, pid and the process's start time; a live peer's trial is
    left to it (it was failed and queued again, so two processes trained it)."""
    optuna = pytest.importorskip("optuna")
    study = optuna.create_study()
    trial = study.ask()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        owner = {
            "host": ledger.process_identity()["host"],
            "pid": sleeper.pid,
            "pid_start": ledger.process_start(sleeper.pid),
        }
        trial.set_user_attr("owner", owner)
        assert search._owner_alive(study.trials[0])
        assert search.recover(optuna, study, log=lambda *a: None) == 0
        trial.set_user_attr("owner", owner | {"pid_start": "another:1"})  # the pid reused
        assert not search._owner_alive(study.trials[0])
    finally:
        sleeper.kill()
        sleeper.wait()
    trial.set_user_attr("owner", owner)
    assert not search._owner_alive(study.trials[0])
    assert search.recover(optuna, study, log=lambda *a: None) == 1


def test_a_trial_whose_run_a_peer_trains_waits_for_it_instead_of_drawing_again(tmp_path):
    """The settings drawn are a run another process holds (a peer drew them too): the trial
    waits for that run, taking it over when its holder dies, instead of failing the trial
    and drawing again (the same settings, in a busy loop)."""
    optuna = pytest.importorskip("optuna")
    from optuna.trial import TrialState

    text = BASE.replace("epochs = 2", "epochs = 1") + (
        '[search]\ntrials = 1\nsampler = "random"\n[search.space]\nlr = { choices = [1e-3] }\n'
    )
    path = write(tmp_path, text)
    out = tmp_path / "out"
    loaded = search.load_search(path, str(out), check=False)
    [point] = loaded.plan.points
    run_id = ledger.run_id_for(loaded.plan.config_for(point, {"lr": 1e-3}))
    folder = out / "runs" / run_id
    folder.mkdir(parents=True)
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc = None
    try:
        claim = ledger.process_identity() | {"pid": peer.pid, "started": 0, "token": "peer"}
        claim["pid_start"] = ledger.process_start(peer.pid)
        ledger.write_json(folder / ledger.CLAIM, claim)
        command = [sys.executable, "-m", "mnistlab", "sweep", str(path), "--out", str(out)]
        proc = subprocess.Popen(
            [*command, "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "waiting for it" in line:
                break
        else:
            pytest.fail("the trial did not wait for the peer's run:\n" + "".join(seen))
        peer.kill()
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        peer.kill()
        peer.wait()
        if proc is not None and proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    study = optuna.load_study(study_name=point.study, storage=search.storage_url(out))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]  # no failed redraws
    assert ledger.read_json(folder / ledger.RESULT)["status"] == "finished"
