"""The Ray backend on a cluster the tests start: Ray's own `ray.cluster_utils.Cluster` head
node with no CPUs (the driver's machine, as when a laptop drives a cluster) and two worker
nodes with one CPU each.

No shared disk: where this machine allows a private mount namespace (root and `unshare -m`),
each worker node runs in its own, with an empty tmpfs over DRIVER_ONLY, the folder that holds
every sweep folder and data folder of these tests. The workers cannot see the driver's ledger
at all; at the same path they see a stale sweep.json instead (issue 15's silent-loss case).
Elsewhere the worker nodes are plain `Cluster.add_node` nodes and the tests that need the
isolation are skipped. Only SHARED (beside DRIVER_ONLY) is seen by every node, like a network
mount, for `--storage`.

Everything Ray writes lives in one short private folder (RAY_TMPDIR), so no other Ray
instance on the machine is touched, nor is found by `--address auto` meanwhile. Runs are tiny
(lenet and mlp, one or two epochs on 300 images).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip(
    "ray", reason="the ray backend's tests need the ray extra: pip install 'mnistlab[ray]'"
)
from ray.cluster_utils import Cluster  # noqa: E402

from mnistlab import ledger  # noqa: E402
from mnistlab.backends import ray as ray_backend  # noqa: E402
from mnistlab.backends.ray import run_ray  # noqa: E402
from mnistlab.errors import UserError  # noqa: E402
from mnistlab.sweep import load_sweep, prepare  # noqa: E402

pytestmark = pytest.mark.slow  # a cluster takes ~10 s to start; every test trains or probes

STALE_MANIFEST = '{"name": "stale", "run_ids": [], "description": "a leftover local copy"}'

# One worker node, started as `Cluster.add_node` starts one, in whatever mount namespace it is
# launched in; SIGTERM stops its processes.
NODE_SCRIPT = """
import json, signal, sys, time
import ray._private.node, ray._private.parameter

params = ray._private.parameter.RayParams(
    num_cpus=1, num_gpus=0, object_store_memory=150 * 1024 * 1024, min_worker_port=0,
    max_worker_port=0, gcs_address=sys.argv[1], include_log_monitor=False, node_manager_port=0,
)
params.dashboard_agent_listen_port = None
node = ray._private.node.Node(params, head=False, shutdown_at_exit=False, spawn_reaper=False)
print("node", node.node_id, flush=True)

def stop(*_):
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(1)
"""

TINY = """
[sweep]
name = "{name}"
[base]
epochs = {epochs}
train_subset = 300
eval_subset = 200
{extra}
[grid]
{grid}
"""


def can_isolate(folder: Path) -> bool:
    """Whether a process may get a private mount namespace with a tmpfs over `folder`."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "probe", folder],
        capture_output=True,
        timeout=10,
    )
    return probe.returncode == 0


@dataclass
class RayCluster:
    cluster: Cluster
    driver_only: Path  # the driver's disk: isolated worker nodes see an empty tmpfs here
    shared: Path  # seen by every node, like a network mount
    isolated: bool
    nodes: dict[str, Any] = field(default_factory=dict)  # node id -> process or Ray Node

    def worker_view(self, node_id: str, path: Path) -> Path:
        """`path` as the worker node `node_id` sees it (its own mount namespace)."""
        return Path(f"/proc/{self.nodes[node_id].pid}/root") / path.relative_to("/")

    def kill(self, node_id: str) -> None:
        """The node is lost at once, as if its machine lost power."""
        node = self.nodes.pop(node_id)
        if self.isolated:
            os.killpg(node.pid, signal.SIGKILL)  # the node and every process it started
            node.wait(timeout=30)
        else:
            self.cluster.remove_node(node, allow_graceful=False)


def _start_isolated_node(root: Path, driver_only: Path, address: str, n: int):
    script = root / "node.py"
    script.write_text(NODE_SCRIPT)
    stale = driver_only / "grid"
    command = (
        f"mount -t tmpfs mnistlab-test {driver_only} && mkdir -p {stale} && "
        f"printf '%s' '{STALE_MANIFEST}' > {stale}/sweep.json && "
        f"exec {sys.executable} {script} {address}"
    )
    output = root / f"node-{n}.log"
    with open(output, "w") as out:
        # Its own session: the node and all its processes are one process group to kill.
        process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", command],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, output


def _node_id(process: subprocess.Popen, output: Path) -> str:
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        for line in output.read_text().splitlines():
            if line.startswith("node "):
                return line.split()[1]
        time.sleep(0.1)
    raise RuntimeError(f"a worker node did not start: {output.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def cluster():
    # Ray's socket paths must stay under ~107 characters: a short folder, not pytest's.
    root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
    driver_only, shared = root / "driver", root / "shared"
    driver_only.mkdir()
    shared.mkdir()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_TMPDIR", str(root))  # Ray's files and its address file: ours alone
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        env.delenv("RAY_ADDRESS", raising=False)
        # Dummy credentials for the local S3 server; the nodes inherit them.
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.setenv(key, "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        # As conftest does for this process: no node writes to the user's data cache.
        env.setenv("MNISTLAB_DATA_CACHE", str(root / "cache"))
        env.setenv("MNISTLAB_DATA_MIRROR", "http://127.0.0.1:9/")
        head = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        test_cluster = RayCluster(head, driver_only, shared, can_isolate(driver_only))
        started: list[subprocess.Popen] = []
        try:
            if test_cluster.isolated:
                for n in (1, 2):  # one after the other: each node picks free ports on start
                    process, output = _start_isolated_node(root, driver_only, head.address, n)
                    started.append(process)
                    test_cluster.nodes[_node_id(process, output)] = process
            else:
                for _ in range(2):
                    node = head.add_node(num_cpus=1)
                    test_cluster.nodes[node.node_id] = node
            ray.init(address=head.address, logging_level="WARNING")
            deadline = time.monotonic() + 60
            while sum(n["Alive"] for n in ray.nodes()) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            yield test_cluster
        finally:
            ray.shutdown()
            for process in started:
                if process.poll() is None:
                    process.terminate()  # graceful: the node stops its own processes
            for process in started:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
            head.shutdown()  # the head, and the worker nodes it started itself
            shutil.rmtree(root, ignore_errors=True)


def tiny_sweep(tmp_path: Path, out: Path, *, name="grid", epochs=1, extra="", grid=None):
    path = tmp_path / f"{name}.toml"
    grid = grid or 'model = ["lenet", "mlp"]\nlr = [1e-3, 2e-3]'
    path.write_text(TINY.format(name=name, epochs=epochs, extra=extra, grid=grid))
    return load_sweep(str(path), str(out), check_device=False)


def attempts_of(marks: Path) -> dict[str, int]:
    return {p.name: len(p.read_text()) for p in marks.iterdir() if p.is_file()}


# ---------------------------------------------------------------- a sweep, no shared disk
@pytest.fixture(scope="module")
def grid(cluster, tmp_path_factory):
    """One sweep of four runs over the two worker nodes, into the driver's own disk."""
    sweep = tiny_sweep(tmp_path_factory.mktemp("grid"), cluster.driver_only / "grid")
    lines: list[str] = []
    outcomes = run_ray(sweep, prepare(sweep), cpus_per_run=1, log=lines.append)
    return sweep, outcomes, lines


def test_a_sweep_over_two_nodes_ends_in_the_drivers_ledger(cluster, grid):
    sweep, outcomes, lines = grid
    assert sorted(o["run_id"] for o in outcomes) == sorted(r.run_id for r in sweep.runs)
    assert {o["status"] for o in outcomes} == {"finished"}
    assert {o["node_id"] for o in outcomes} == set(cluster.nodes)  # both nodes trained
    records = ledger.read_runs(sweep.out_dir)
    assert [r["status"] for r in records] == ["finished"] * 4
    for record in records:
        assert record["result"]["epochs_run"] == 1 and record["predictions"]
        assert record["config"]["out_dir"] == str(record["dir"])  # this folder, not a scratch one
        assert (record["dir"] / ledger.CHECKPOINT).is_file()
        assert not (record["dir"] / ledger.CLAIM).exists()
    assert prepare(sweep) == []

    # Start-up says where the sweep runs; every epoch line reached the driver, by run.
    assert any(line.startswith("ray: 3 node(s), 2 CPUs, 0 GPUs") for line in lines)
    for run in sweep.runs:
        assert any(
            line.startswith(f"    {run.label}: {run.config.model} epoch 1/1") for line in lines
        ), run.label
    finished = [line for line in lines if line.startswith("[") and ": finished (" in line]
    assert len(finished) == 4 and all(" on " in line for line in finished)


def test_workers_never_touch_the_sweep_folder_and_a_stale_copy_swallows_nothing(cluster, grid):
    if not cluster.isolated:
        pytest.skip("needs a private mount namespace per node (root and `unshare -m`)")
    sweep, outcomes, _ = grid
    assert {o["status"] for o in outcomes} == {"finished"}
    for node_id in cluster.nodes:
        seen = cluster.worker_view(node_id, sweep.out_dir)
        # The node's view of the sweep folder: only the stale copy planted there, untouched.
        assert sorted(p.name for p in seen.iterdir()) == ["sweep.json"]
        assert (seen / "sweep.json").read_text() == STALE_MANIFEST
    # The driver's folder holds the real manifest and every run.
    manifest = ledger.read_json(sweep.out_dir / ledger.MANIFEST)
    assert sorted(manifest["run_ids"]) == sorted(r.run_id for r in sweep.runs)
    assert len(ledger.read_runs(sweep.out_dir)) == 4


# ---------------------------------------------------------------- what fails fast
def test_storage_the_nodes_do_not_share_stops_the_sweep_before_any_run(cluster, tmp_path):
    if not cluster.isolated:
        pytest.skip("needs a private mount namespace per node (root and `unshare -m`)")
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow: pip install 'mnistlab[ray]'")
    sweep = tiny_sweep(tmp_path, cluster.driver_only / "unshared")
    # The driver can write there, but each node has its own (empty) disk at that path.
    with pytest.raises(UserError, match=r"is not the same storage on node .* as on the driver"):
        run_ray(
            sweep,
            prepare(sweep),
            storage=str(cluster.driver_only / "store"),
            log=lambda *a: None,
        )
    assert not (sweep.out_dir / "runs").exists() or not any((sweep.out_dir / "runs").iterdir())


def test_a_gpu_share_on_a_cluster_without_gpus_stops_before_anything_is_written(
    cluster, tmp_path, capsys
):
    from mnistlab.cli import main

    tiny_sweep(tmp_path, cluster.driver_only / "unused")  # writes grid.toml
    out = cluster.driver_only / "gpu"
    argv = ["sweep", str(tmp_path / "grid.toml"), "--backend", "ray", "--out", str(out)]
    assert main([*argv, "--gpus-per-run", "0.5"]) == 2
    error = capsys.readouterr().err.strip()
    assert "--gpus-per-run 0.5 but no node of this cluster has a GPU" in error, error
    assert len(error.splitlines()) == 1
    assert not out.exists()  # not even sweep.toml: the cluster was asked first


def test_a_data_error_on_a_node_fails_at_once_without_retries(
    cluster, tmp_path, make_idx_dir, monkeypatch
):
    # Data that exists on the driver's disk only: the driver's checks pass, the node fails.
    data = cluster.driver_only / "idx"
    shutil.move(make_idx_dir(1000, 200), data)
    sweep = tiny_sweep(
        tmp_path,
        cluster.driver_only / "data",
        name="data",
        extra=f'data_dir = "{data}"',
        grid='model = ["lenet"]',
    )
    if not cluster.isolated:
        shutil.rmtree(data)  # the same for the nodes: the folder is gone
    marks = tmp_path / "attempts"
    marks.mkdir()
    original, where = ray_backend._train_one, str(marks)

    def counted(config, data_dir, run_id, *args):  # a closure: Ray ships it by value
        with open(Path(where) / run_id, "a") as f:
            f.write("x")
        return original(config, data_dir, run_id, *args)

    monkeypatch.setattr(ray_backend, "_train_one", counted)
    [outcome] = run_ray(sweep, prepare(sweep), retries=2, log=lambda *a: None)

    assert attempts_of(marks) == {sweep.runs[0].run_id: 1}
    assert outcome["status"] == "failed" and outcome["permanent"]
    assert outcome["error"] == f"{data}: data directory not found"
    result = ledger.read_json(sweep.folder(sweep.runs[0]).path / ledger.RESULT)
    assert result["status"] == "failed" and result["error"] == outcome["error"]


# ---------------------------------------------------------------- storage
def test_s3_storage_on_a_local_server(cluster, tmp_path, monkeypatch):
    server_module = pytest.importorskip(
        "moto.server",
        reason="the s3:// storage test needs a local S3 server: pip install 'moto[server]'",
    )
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow: pip install 'mnistlab[ray]'")
    import logging

    import pyarrow.fs as pafs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        options = f"endpoint_override={host}:{port}&scheme=http"
        s3, _ = pafs.FileSystem.from_uri(f"s3://sweeps?{options}&allow_bucket_creation=true")
        s3.create_dir("sweeps")

        # A bucket that does not exist: refused before Ray is even asked.
        sweep = tiny_sweep(
            tmp_path,
            cluster.driver_only / "s3",
            name="s3",
            epochs=2,
            grid='model = ["lenet", "mlp"]',
        )
        with pytest.raises(UserError, match=r"^--storage s3://nowhere/x\?.* cannot be used from"):
            run_ray(sweep, prepare(sweep), storage=f"s3://nowhere/x?{options}")

        marks = tmp_path / "stored"
        marks.mkdir()
        original, where = ray_backend._train_one, str(marks)

        def storing(config, data_dir, run_id, *args):  # every epoch stores its resume state
            import mnistlab.engine as engine
            from mnistlab.backends import ray as backend

            plain, threshold = backend.StoredRunFolder.epoch_done, engine.RESUME_MIN_EPOCH_SECONDS

            def epoch_done(self, history, resume_state=None):
                plain(self, history, resume_state)
                stored = sorted(n for n in ("config.json", "history.json", "resume.pt")
                                if self.store.read(f"{self.key}/{n}"))  # fmt: skip
                (Path(where) / f"{run_id}-{len(history)}").write_text(json.dumps(stored))

            engine.RESUME_MIN_EPOCH_SECONDS = 0.0
            backend.StoredRunFolder.epoch_done = epoch_done
            try:
                return original(config, data_dir, run_id, *args)
            finally:  # the worker process is reused by later tasks
                engine.RESUME_MIN_EPOCH_SECONDS = threshold
                backend.StoredRunFolder.epoch_done = plain

        monkeypatch.setattr(ray_backend, "_train_one", storing)
        lines: list[str] = []
        outcomes = run_ray(
            sweep, prepare(sweep), storage=f"s3://sweeps/runs?{options}", log=lines.append
        )

        assert {o["status"] for o in outcomes} == {"finished"}
        assert any("storage s3://sweeps/runs?" in line and "2 node(s)" in line for line in lines)
        for outcome in outcomes:
            # Epoch 1 of 2 stored what a retry elsewhere needs (the last epoch needs none).
            stored = json.loads((marks / f"{outcome['run_id']}-1").read_text())
            assert stored == ["config.json", "history.json", "resume.pt"]
        # Recorded in the ledger, so their resume state is spent; no probe is left behind.
        left = s3.get_file_info(pafs.FileSelector("sweeps", recursive=True, allow_not_found=True))
        assert [f.path for f in left if f.type == pafs.FileType.File] == []
    finally:
        server.stop()


# ---------------------------------------------------------------- a node lost mid-run
# Last: it leaves the cluster with one worker node.
def test_a_lost_node_is_retried_on_the_other_and_resumes_from_storage(
    cluster, tmp_path, monkeypatch
):
    pytest.importorskip("pyarrow", reason="--storage needs pyarrow: pip install 'mnistlab[ray]'")
    sweep = tiny_sweep(
        tmp_path,
        cluster.driver_only / "lost",
        name="lost",
        epochs=2,
        grid='model = ["lenet"]\nlr = [1e-3, 2e-3]',
    )
    victim = sweep.runs[0]
    marks = tmp_path / "attempts"
    marks.mkdir()
    stalled = tmp_path / "stalled.json"
    store = cluster.shared / "store"
    original, where, victim_id = ray_backend._train_one, str(marks), victim.run_id
    stall_record = str(stalled)

    def stalls_once(config, data_dir, run_id, *args):
        import mnistlab.engine as engine
        from mnistlab.backends import ray as backend

        with open(Path(where) / run_id, "a") as f:
            f.write("x")
        first = len((Path(where) / run_id).read_text()) == 1
        plain, threshold = backend.StoredRunFolder.epoch_done, engine.RESUME_MIN_EPOCH_SECONDS

        def epoch_done(self, history, resume_state=None):
            plain(self, history, resume_state)  # stored: now lose the node
            node = ray.get_runtime_context().get_node_id()
            Path(stall_record).write_text(json.dumps([node, history]))
            time.sleep(120)  # the test kills this node meanwhile
            os._exit(1)

        engine.RESUME_MIN_EPOCH_SECONDS = 0.0
        if run_id == victim_id and first:
            backend.StoredRunFolder.epoch_done = epoch_done
        try:
            return original(config, data_dir, run_id, *args)
        finally:
            engine.RESUME_MIN_EPOCH_SECONDS = threshold
            backend.StoredRunFolder.epoch_done = plain

    killed: list[str] = []

    def kill_when_stalled() -> None:
        deadline = time.monotonic() + 120
        while not stalled.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if stalled.exists():
            node = json.loads(stalled.read_text())[0]
            cluster.kill(node)
            killed.append(node)

    monkeypatch.setattr(ray_backend, "_train_one", stalls_once)
    killer = threading.Thread(target=kill_when_stalled, daemon=True)
    killer.start()
    lines: list[str] = []
    outcomes = {
        o["run_id"]: o
        for o in run_ray(sweep, prepare(sweep), retries=2, storage=str(store), log=lines.append)
    }
    killer.join(timeout=5)

    assert len(killed) == 1
    assert attempts_of(marks) == {victim.run_id: 2, sweep.runs[1].run_id: 1}
    assert {o["status"] for o in outcomes.values()} == {"finished"}
    assert outcomes[victim.run_id]["node_id"] != killed[0]  # retried on the other node
    # ... from its last stored epoch: epoch 1 as the lost node trained it, then epoch 2.
    assert f"    {victim.label}: resuming lenet after epoch 1" in lines, "\n".join(lines)
    history = ledger.read_json(sweep.folder(victim).path / ledger.HISTORY)
    stalled_history = json.loads(stalled.read_text())[1]
    assert [h["epoch"] for h in history] == [1, 2] and history[0] == stalled_history[0]
    assert ledger.run_status(sweep.folder(victim).path) == "finished"
    assert not any(store.rglob("*.pt"))  # spent once recorded
