"""The Ray backend: the runs of a sweep as Ray tasks, on this machine or on a cluster.

Why Ray core tasks and not Ray Tune: the grid is already expanded by `load_sweep`, and the
ledger already records, resumes and reports every run. Tune would bring a second results
folder, its own trial names and checkpoints, and its own resume logic (`Tuner.restore`) to
keep in step with the ledger, for search algorithms and schedulers that a fixed grid never
uses. A task per run needs only what a grid needs from a cluster: placement by resources
(`num_cpus`, fractional `num_gpus`), retries of failed or killed runs (`max_retries`,
`retry_exceptions`), and results as they come (`ray.wait`). The ledger stays the one source
of truth, so `mnistlab report`, `--status` and resuming work as with the local backend.

The driver owns the ledger: a worker trains in a scratch folder on its own node and sends
the run's files back through Ray, and the driver writes them into the run folder. So the
nodes need no shared disk, and a node with a stale copy of the sweep folder cannot swallow
a result. The driver claims each run before sending it out, as the local backend does, so
several drivers (or a local sweep) on one folder still divide the runs between them.

With `storage` (a path or URI every node can reach, as Ray Tune's `storage_path`), a worker
also pushes the resume state of each long epoch there, and a run retried on another node (or
by the next sweep, after the driver died) resumes from its last stored epoch. Per-epoch lines
reach the driver through a small actor: Ray's own forwarding of worker output merges lines
that differ only in numbers ("[repeated 3x across cluster]"), which is every epoch line.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from ..data import load_dataset_cached
from ..errors import UserError
from ..fileio import atomic_write_bytes
from ..ledger import CONFIG, HISTORY, RESUME, RunFolder
from ..sweep import Sweep, SweepProgress, SweepRun, execute_run
from ..uris import mask_uri, mask_uris_in

# How long the driver waits for results before it prints the workers' epoch lines.
PROGRESS_POLL_SECONDS = 1.0
# How long each node gets to answer the storage check (a cold worker imports mnistlab).
STORAGE_CHECK_SECONDS = 120.0
# What a worker pushes to storage after a long epoch: enough to resume on another node.
STORED_FILES = (CONFIG, HISTORY, RESUME)


def run_ray(sweep: Sweep, todo: list[SweepRun], **options) -> list[dict]:
    """Run `todo` (from `prepare(sweep)`) as Ray tasks; return one outcome per run, as
    `run_local` does (see `sweep.execute_run`), plus "node" (its host) and "node_id".
    `options` are `ray_cluster`'s."""
    with ray_cluster(sweep, todo, **options) as run:
        return run(todo)


@contextlib.contextmanager
def ray_cluster(
    sweep: Sweep,
    pending: list[SweepRun],
    *,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    max_concurrent: int | None = None,
    retries: int = 2,
    storage: str | None = None,
    log=print,
) -> Iterator[Callable[[list[SweepRun]], list[dict]]]:
    """Join (or start) Ray and check that it can run `pending`, then yield the function that
    runs a list of runs on it. Everything that would fail every run (bad flags, no room for a
    run, unusable storage) is refused here, before the caller writes the sweep folder.

    `address` None starts a private Ray instance sized to this machine (or uses the one this
    process already started with `ray.init`); "auto" or "HOST:PORT" joins a running cluster.
    A run whose worker or node dies is retried up to `retries` times (Ray places the retry
    where resources are free); a run that fails with an error is recorded as failed at once,
    since running the same config again fails the same way. `storage` (a path or a URI such
    as s3://bucket/sweeps) keeps each run's resume state where a retry on another node finds
    it; it is checked from every node that can take a run before any run starts.
    """
    if not cpus_per_run > 0:
        raise UserError(f"--cpus-per-run must be > 0, got {cpus_per_run:g}")
    if not gpus_per_run >= 0:
        raise UserError(f"--gpus-per-run must be >= 0, got {gpus_per_run:g}")
    if gpus_per_run > 1 and gpus_per_run != int(gpus_per_run):
        raise UserError(f"--gpus-per-run above 1 must be a whole number, got {gpus_per_run:g}")
    if max_concurrent is not None and max_concurrent < 1:
        raise UserError(f"--max-concurrent must be >= 1, got {max_concurrent}")
    if retries < 0:
        raise UserError(f"--retries must be >= 0, got {retries}")
    wants_gpu = [r.run_id for r in pending if r.config.device == "cuda"]
    if gpus_per_run == 0 and wants_gpu:
        raise UserError(
            f"run {wants_gpu[0]} asks for device 'cuda' but --gpus-per-run is 0; give each "
            "run a share of a GPU, e.g. --gpus-per-run 1 (or 0.25 for four runs per GPU)"
        )
    if not pending:  # nothing to train: no cluster to join
        yield lambda todo: []
        return
    # Checked from this machine before Ray starts; from the nodes once it is up.
    store = Storage(storage) if storage else None
    if store is not None:
        store.check("this machine")
    try:
        import ray
    except ImportError:
        raise UserError(
            "the ray backend needs the ray extra: pip install 'mnistlab[ray]'"
        ) from None

    started = _connect(ray, address or os.environ.get("RAY_ADDRESS"), log)
    try:
        nodes, usable = _describe_cluster(
            ray, cpus_per_run, gpus_per_run, max_concurrent, started, log
        )
        if store is not None:
            _check_storage_on_nodes(ray, store, usable, nodes, log)
            log(f"ray: resume state of long epochs goes to {key_uri(store.shown, sweep.name)}")
        # Options given to ray.remote itself, not .options(): only there does a GPU task get
        # max_calls=1, a fresh worker per run, so no CUDA state leaks from one run to the next.
        # retry_exceptions stays off: an error in training recurs; a lost worker may not.
        # (The per-run .options(name=...) below keeps max_calls: Ray applies it per function.)
        task = ray.remote(
            num_cpus=cpus_per_run,
            num_gpus=gpus_per_run,
            max_retries=retries,
        )(_train_one)
        yield functools.partial(
            _schedule,
            ray,
            task,
            sweep,
            nodes=nodes,
            store=store,
            cpus_per_run=cpus_per_run,
            max_concurrent=max_concurrent,
            retries=retries,
            log=log,
        )
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------- joining the cluster
def _connect(ray, address: str | None, log) -> bool:
    """Join or start Ray; True when this call started it (and so must shut it down)."""
    if ray.is_initialized():
        log(f"ray: using this process's Ray instance at {_gcs_address(ray)}")
        return False
    how = _how_auto_finds() if address == "auto" else ""
    try:
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            # "local": a private instance even when `ray start` left one running here; its
            # servers on the loopback only (all interfaces otherwise: anyone on the network
            # could submit tasks), and a token Ray writes for it readable by this user alone.
            with _loopback_only(ray), _private_token_file():
                ray.init(
                    address="local",
                    # The CPUs this process may run on (taskset, a container's cpuset), which
                    # os.cpu_count() ignores; macOS has no sched_getaffinity.
                    num_cpus=len(os.sched_getaffinity(0))
                    if hasattr(os, "sched_getaffinity")
                    else os.cpu_count() or 1,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                )
    except (ConnectionError, ray.exceptions.AuthenticationError) as exc:
        # A wrong or missing token also shows up as "failed to connect".
        raise UserError(
            f"cannot reach a Ray cluster at {address!r}: {_plain(str(exc)).strip()} (start one "
            "with `ray start --head`; if it uses token authentication, set RAY_AUTH_MODE=token "
            "and give this machine its token; or leave out --address for a local instance)"
        ) from None
    if not address:
        log(f"ray: started a private instance at {_gcs_address(ray)} (stops with this sweep)")
    elif address == "auto":
        # "auto" finds whatever instance this machine knows of: say which, and how, so that
        # joining someone else's never goes unnoticed.
        log(f"ray: --address auto joined the instance at {_gcs_address(ray)} ({how})")
    else:
        log(f"ray: joined the cluster at {_gcs_address(ray)}")
    return True


# Ray's switch for a single-machine instance (its default on macOS and Windows): every Ray
# server binds to the loopback. `_node_ip_address="127.0.0.1"` does not do it on Linux: Ray
# replaces a loopback address with the machine's, and its servers listen on all interfaces
# (measured with Ray 2.60 and `ss -ltn`: *:PORT before, 127.0.0.1:PORT with the switch).
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@contextlib.contextmanager
def _loopback_only(ray) -> Iterator[None]:
    """Start Ray's processes (they read the environment) and resolve this process's node
    address (Ray reads a module constant, set at import) in single-machine mode; both are
    put back afterwards, so a later `--address` in this process joins clusters as usual."""
    constants = getattr(getattr(ray, "_private", None), "ray_constants", None)
    saved_env = os.environ.get(SINGLE_MACHINE_ENV)
    saved_constant = getattr(constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[SINGLE_MACHINE_ENV] = "0"
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = saved_env
        if constants is not None:
            constants.ENABLE_RAY_CLUSTER = saved_constant


# Where Ray (2.5x, token authentication) saves the token it makes for a new local instance.
RAY_TOKEN_FILE = Path("~/.ray/auth_token")


@contextlib.contextmanager
def _private_token_file() -> Iterator[None]:
    """A token file that Ray creates inside the block (with the process umask: usually
    world-readable) is made 0600; one that was there before is the user's and left alone."""
    token = RAY_TOKEN_FILE.expanduser()
    existed = os.path.lexists(token)
    try:
        yield
    finally:
        if not existed and token.is_file() and not token.is_symlink():
            with contextlib.suppress(OSError):
                token.chmod(0o600)


def _how_auto_finds() -> str:
    if os.environ.get("RAY_ADDRESS"):
        return f"from RAY_ADDRESS={os.environ['RAY_ADDRESS']}"
    try:
        from ray._common.utils import get_ray_address_file

        where = get_ray_address_file(None)
    except Exception:  # another Ray version: the file lives elsewhere
        where = "Ray's address file"
    return f"the last `ray start` on this machine, recorded in {where}"


def _gcs_address(ray) -> str:
    try:
        return ray.get_runtime_context().gcs_address
    except Exception:  # older Ray: the address is not exposed; the node list still is
        return "an unknown address"


def _describe_cluster(
    ray, cpus_per_run, gpus_per_run, max_concurrent, started, log
) -> tuple[dict[str, str], list[str]]:
    """Say what the runs get; refuse runs that no node can take (they would wait forever).
    Returns each alive node's id -> how to name it, and the ids of nodes that can take a run."""
    alive = [n for n in ray.nodes() if n.get("Alive")]
    nodes = [n["Resources"] for n in alive]
    cpus = sum(n.get("CPU", 0) for n in nodes)
    gpus = sum(n.get("GPU", 0) for n in nodes)
    need = {"CPU": cpus_per_run, "GPU": gpus_per_run}

    def runs_on(res: dict) -> float:
        return min(math.floor(res.get(k, 0) / v) if v else math.inf for k, v in need.items())

    at_once = sum(runs_on(n) for n in nodes)
    if max_concurrent:
        at_once = min(at_once, max_concurrent)
    hosts = [n.get("NodeManagerHostname", "?") for n in alive]
    names = {}
    for node, host in zip(alive, hosts, strict=True):
        res = node["Resources"]
        # Several nodes on one host (containers, a test cluster): tell them apart by id.
        names[node["NodeID"]] = host if hosts.count(host) == 1 else f"{host}/{node['NodeID'][:8]}"
        log(
            f"ray:   node {names[node['NodeID']]} ({node.get('NodeManagerAddress', '?')}): "
            f"{res.get('CPU', 0):g} CPUs, {res.get('GPU', 0):g} GPUs"
        )
    log(
        f"ray: {len(nodes)} node(s), {cpus:g} CPUs, {gpus:g} GPUs; each run gets "
        f"{cpus_per_run:g} CPU(s), {gpus_per_run:g} GPU(s): up to {at_once} runs at once"
    )
    if at_once == 0:
        wanted = ", ".join(f"{v:g} {k}" for k, v in need.items() if v)
        if gpus_per_run and not gpus and not _may_add_nodes_with("GPU"):
            raise UserError(
                f"--gpus-per-run {gpus_per_run:g} but no node of this cluster has a GPU; "
                "use --gpus-per-run 0 to train on CPUs, or add a GPU node"
            )
        if started or not _may_add_nodes_with(*need):
            raise UserError(
                f"no run can start: each needs {wanted} but no node has that much "
                f"({len(nodes)} node(s), {cpus:g} CPUs, {gpus:g} GPUs in all); lower "
                "--cpus-per-run/--gpus-per-run or add a bigger node"
            )
        # An autoscaling cluster may still add such a node; say so rather than hang silently.
        log(f"ray: warning: no node has {wanted} for one run; the runs wait until one joins")
    return names, [n["NodeID"] for n in alive if runs_on(n["Resources"]) > 0]


def _may_add_nodes_with(*keys: str) -> bool:
    """True when this cluster's autoscaler may add nodes with all of `keys` (an autoscaling
    cluster with no GPU node up yet is not a mistake)."""
    try:
        from ray._private.state import state

        config = state.get_cluster_config()
        groups = config.node_group_configs if config is not None else []
        return any(
            g.max_count != 0 and all(g.resources.get(k, 0) > 0 for k in keys) for g in groups
        )
    except Exception:  # another Ray version: no autoscaler information
        return False


# ---------------------------------------------------------------- storage
class Storage:
    """A folder for resume state on any file system `pyarrow.fs` knows (a local path,
    file://, s3://, gs://, hdfs://, abfs://) or `fsspec` does (wrapped for pyarrow), named by
    a URI as Ray Tune's `storage_path` is. Each node opens it from the URI with its own
    credentials (environment, ~/.aws, an instance role); none travel with the tasks."""

    def __init__(self, uri: str):
        if "://" not in uri:  # a plain path: absolute, so every node reads it the same way
            uri = str(Path(uri).expanduser().resolve())
        self.uri = uri.rstrip("/") or "/"
        self.shown = mask_uri(self.uri)  # what messages and logs name: no user-info
        try:
            import pyarrow.fs as pafs
        except ImportError:
            raise UserError(
                f"--storage {mask_uri(uri)}: needs pyarrow (part of the ray extra): "
                "pip install 'mnistlab[ray]'"
            ) from None
        try:
            self.fs, root = pafs.FileSystem.from_uri(self.uri)
        except OSError as exc:  # s3:// looks up the bucket's region here
            raise UserError(f"--storage {self.shown} cannot be opened: {_one_line(exc)}") from None
        except ValueError as exc:  # ArrowInvalid: a scheme pyarrow does not know
            try:
                import fsspec

                fs, root = fsspec.core.url_to_fs(self.uri)
            except (ImportError, ValueError) as fsspec_exc:
                raise UserError(
                    f"--storage {mask_uri(uri)}: not a file system pyarrow or fsspec can open "
                    f"({_plain(f'{exc}; {fsspec_exc}')})"
                ) from None
            self.fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        self.root = root.rstrip("/")
        self.local = self.fs.type_name == "local"

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        if self.local:  # a kill mid-write must not leave half a resume state
            atomic_write_bytes(path, data)
            return
        if self.fs.type_name not in ("s3", "gcs"):  # object stores have no folders
            self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with self.fs.open_output_stream(path) as out:
            out.write(data)

    def read(self, key: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(self._path(key)) as stream:
                return stream.read()
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        """Remove a folder of keys; nothing there is fine."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_dir(self._path(key))

    def check(self, where: str, probe: str | None = None) -> str:
        """Write, read back and delete a probe object from this process; one clear error if
        that fails. With `probe`, also read the probe object that key names (written by
        another machine: proves both see the same storage). Returns this check's key."""
        key = f".mnistlab-probe-{uuid.uuid4().hex}"
        try:
            seen = self.read(f"{probe}/driver") if probe is not None else None
            self.write(f"{key}/probe", key.encode())
            if self.read(f"{key}/probe") != key.encode():
                raise OSError("a probe object written there read back differently")
            self.delete(key)
        except Exception as exc:  # OSError from pyarrow, anything from an fsspec backend
            # (a UserError too: the local writer's one-line message, without the flag)
            kind = "" if isinstance(exc, UserError) else f"{type(exc).__name__}: "
            raise UserError(
                f"--storage {self.shown} cannot be used from {where}: {kind}{_one_line(exc)}"
            ) from None
        if probe is not None and seen != probe.encode():
            raise UserError(
                f"--storage {self.shown} is not the same storage on {where} as on the driver "
                "(a probe object the driver wrote is not there): give a location every node "
                "shares, e.g. s3://bucket/sweeps or a shared mount"
            )
        return key


def key_uri(uri: str, key: str) -> str:
    """The URI of `key` under storage `uri`, for messages (?options stay last)."""
    base, sep, query = uri.partition("?")
    return f"{base.rstrip('/')}/{key}{sep}{query}"


def _one_line(exc: BaseException) -> str:
    return " ".join(_plain(str(exc)).split())[:300]


def _probe_storage(uri: str, probe: str, where: str) -> None:
    """On one node: check the storage (a Ray task)."""
    Storage(uri).check(where, probe)


def _check_storage_on_nodes(ray, store: Storage, usable: list[str], names, log) -> None:
    """Every node that may take a run must reach the same storage, or a retry there would
    lose its state: a probe written here is read on each node, which writes and deletes its
    own."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = f".mnistlab-probe-{uuid.uuid4().hex}"
    store.write(f"{probe}/driver", probe.encode())
    try:
        checks = {}
        for node_id in usable:
            where = f"node {names.get(node_id, node_id[:8])}"
            task = ray.remote(num_cpus=0, max_retries=0)(_probe_storage).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
            )
            checks[task.remote(store.uri, probe, where)] = where
        ready, late = ray.wait(list(checks), num_returns=len(checks), timeout=STORAGE_CHECK_SECONDS)
        for ref in late:
            ray.cancel(ref, force=True)
        if late:
            raise UserError(
                f"--storage {store.shown}: {checks[late[0]]} did not answer the storage check in "
                f"{STORAGE_CHECK_SECONDS:g} s"
            )
        for ref in ready:
            try:
                ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause
                if isinstance(cause, UserError):
                    raise UserError(str(cause)) from None
                raise UserError(
                    f"--storage {store.shown}: the check failed on {checks[ref]}: "
                    f"{type(cause).__name__}: {cause} (is mnistlab[ray] installed there?)"
                ) from None
    finally:
        with contextlib.suppress(Exception):
            store.delete(probe)
    log(f"ray: storage {store.shown} checked from this machine and {len(checks)} node(s)")


class StoredRunFolder(RunFolder):
    """A worker's scratch run folder that also pushes each saved resume state to storage,
    so the run resumes from there if its node is lost. Writes go through `RunFolder` first:
    the ledger's format has one writer."""

    def __init__(self, path, store: Storage, key: str, log=print):
        super().__init__(path, log=log)
        self.store, self.key = store, key

    def epoch_done(self, history: list[dict], resume_state: dict | None = None) -> None:
        super().epoch_done(history, resume_state)
        if resume_state is None:  # a short epoch: cheaper to redo than to store
            return
        try:  # resume.pt before history.json: a reader takes the state, never a newer history
            for name in STORED_FILES[::-1]:
                self.store.write(f"{self.key}/{name}", (self.path / name).read_bytes())
        except Exception as exc:  # storage trouble costs resilience, never the run
            self.log(f"could not store the resume state in {self.store.shown}: {_plain(str(exc))}")

    def fetch(self, shipped: dict[str, bytes]) -> dict[str, bytes]:
        """Of the resume state shipped by the driver and the one in storage, the one with
        more finished epochs."""
        try:
            stored = {n: b for n in STORED_FILES if (b := self.store.read(f"{self.key}/{n}"))}
        except Exception as exc:
            self.log(
                f"could not read the stored resume state in {self.store.shown}: {_plain(str(exc))}"
            )
            return shipped
        return stored if _epochs(stored) > _epochs(shipped) else shipped


def _epochs(files: dict[str, bytes]) -> int:
    if RESUME not in files:
        return -1
    try:
        return len(json.loads(files.get(HISTORY, b"[]")))
    except ValueError:
        return -1


def _storage_key(sweep: Sweep, run: SweepRun) -> str:
    return f"{sweep.name}/{run.run_id}"


# ---------------------------------------------------------------- progress lines
class _ProgressSink:
    """Lines from the workers (one per epoch), held until the driver takes them."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def put(self, run_id: str, line: str) -> None:
        self.lines.append((run_id, line))

    def take(self) -> list[tuple[str, str]]:
        lines, self.lines = self.lines, []
        return lines


def _start_progress_sink(ray):
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        # On the driver's own node, which lives as long as the sweep does; "soft" placement
        # would put it on any node with free CPUs, one that may be lost mid-sweep.
        here = ray.get_runtime_context().get_node_id()
        return (
            ray.remote(num_cpus=0, max_restarts=0)(_ProgressSink)
            .options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            .remote()
        )
    except Exception:  # progress lines are a convenience: the sweep runs without them
        return None


def _drain(ray, sink, labels: dict[str, str], log):
    """Print the workers' lines; returns the sink, or None once it is gone."""
    if sink is None:
        return None
    try:
        lines = ray.get(sink.take.remote(), timeout=30)
    except Exception as exc:
        log(
            f"ray: per-epoch lines from the workers stop here ({type(exc).__name__}); "
            "each run's history.json still has every epoch"
        )
        return None
    for run_id, line in lines:
        log(f"    {labels.get(run_id, run_id)}: {line}")
    return sink


# ---------------------------------------------------------------- running
def _schedule(
    ray,
    task,
    sweep: Sweep,
    todo: list[SweepRun],
    *,
    nodes: dict[str, str],  # node id -> host name
    store: Storage | None,
    cpus_per_run: float,
    max_concurrent: int | None,
    retries: int,
    log,
) -> list[dict]:
    """Run `todo` with `task` (the remote `_train_one`, with the run's resources)."""
    if not todo:
        return []
    log(f"ray: results come back to {sweep.out_dir.resolve()} (written by this process)")
    # The ETA divides the work left by the runs that fit at once, not by the runs queued.
    fit = int(ray.cluster_resources().get("CPU", 0) // cpus_per_run) or 1
    progress = SweepProgress(sweep, todo, parallel=min(max_concurrent or fit, fit), log=log)
    limit = max_concurrent or len(todo)
    waiting = list(todo)
    labels = {run.run_id: run.label for run in todo}
    in_flight: dict[Any, tuple[SweepRun, RunFolder]] = {}
    outcomes: list[dict] = []
    sink = started_sink = _start_progress_sink(ray)
    try:
        while waiting or in_flight:
            while waiting and len(in_flight) < limit:
                run = waiting.pop(0)
                folder = sweep.folder(run, log=log)
                if not folder.claim():  # another process on this sweep folder trains it
                    outcome = {"run_id": run.run_id, "status": "claimed"}
                    progress.finish(run, outcome | {"holder": folder.claimed_by()}, announce=True)
                    outcomes.append(outcome)
                    continue
                ref = task.options(name=run.label).remote(
                    run.config,
                    _absolute(run.config.data_dir),
                    run.run_id,
                    sweep.checkpoints,
                    cpus_per_run,
                    # What a run interrupted earlier left (config, history, resume state).
                    {} if folder.status() in ("failed", "pending") else folder.export_files(),
                    (store.uri, _storage_key(sweep, run)) if store else None,
                    sink,
                )
                in_flight[ref] = (run, folder)
            if not in_flight:
                break
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=PROGRESS_POLL_SECONDS)
            # The finished run's last epoch lines before its result line.
            sink = _drain(ray, sink, labels, log)
            for ref in ready:
                run, folder = in_flight.pop(ref)
                try:
                    outcome = _collect(ray, ref, run, folder, retries)
                finally:
                    folder.release()
                if store is not None and not outcome.pop("lost", False):
                    # Recorded for good (or to start afresh): its resume state is spent. A
                    # run whose nodes were all lost keeps it, for the next sweep to resume.
                    key = _storage_key(sweep, run)
                    try:
                        store.delete(key)
                    except Exception as exc:
                        log(
                            f"ray: could not delete {key_uri(store.shown, key)} (a stale resume "
                            f"state): {_plain(str(exc))}"
                        )
                if len(nodes) > 1 and outcome.get("node_id") in nodes:
                    outcome["where"] = f" on {nodes[outcome['node_id']]}"
                progress.finish(run, outcome, announce=True)
                outcomes.append(outcome)
    finally:
        # Ctrl-C or an error in this loop: stop what still runs; those runs have no
        # result.json, so the next `mnistlab sweep` starts them again.
        for ref, (_run, folder) in in_flight.items():
            with contextlib.suppress(Exception):  # best effort while already unwinding
                ray.cancel(ref, force=True)
            folder.release()
        if started_sink is not None:
            with contextlib.suppress(Exception):
                ray.kill(started_sink)
    return outcomes


def _collect(ray, ref, run: SweepRun, folder: RunFolder, retries: int) -> dict:
    """The outcome of one finished task, its files written into the ledger by this process."""
    try:
        outcome, files = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # it raised: a second attempt would too
        cause = exc.cause
        # A UserError (a data_dir missing on that node, say) is one line that says it all.
        error = str(cause) if isinstance(cause, UserError) else f"{type(cause).__name__}: {cause}"
        folder.fail(run.config, error, _plain(str(exc)))
        return {"run_id": run.run_id, "status": "failed", "error": error, "permanent": True}
    except ray.exceptions.RayError as exc:  # the worker or its node died on every attempt
        details = _plain(str(exc)).strip()
        attempts = f"failed on all {retries + 1} attempts" if retries else "failed (no retries)"
        first = details.splitlines()[0] if details else "no details"
        error = f"{type(exc).__name__}: {first} ({attempts})"
        folder.fail(run.config, error, f"{attempts}\n\n{details}")
        return {"run_id": run.run_id, "status": "failed", "error": error, "lost": True}
    if outcome["status"] == "failed":
        folder.reset()
    folder.import_files(files, config=run.config)
    return outcome


def _plain(text: str) -> str:
    """Ray's error text without the terminal colour codes it adds, and without the user-info
    of any URI it quotes (a --storage secret)."""
    return mask_uris_in(re.sub(r"\x1b\[[0-9;]*m", "", text))


def _absolute(data_dir: str | None) -> str | None:
    # data_dir is part of the run's identity, so it stays as written in the ledger; only the
    # worker is handed the absolute path.
    return str(Path(data_dir).expanduser().resolve()) if data_dir else None


def _train_one(
    config,
    data_dir: str | None,
    run_id: str,
    checkpoints: bool,
    cpus: float,
    resume_files: dict[str, bytes],
    storage: tuple[str, str] | None = None,
    sink=None,
) -> tuple[dict, dict[str, bytes]]:
    """One run inside a Ray worker, in a scratch folder on the worker's own node: the same
    `execute_run` as every backend. Returns the outcome and the run's files for the driver;
    with `storage` (uri, key), the resume state of long epochs also goes there."""
    import ray  # the ray extra

    sent = []

    def log(*parts) -> None:
        line = " ".join(str(p) for p in parts)
        if sink is not None:
            with contextlib.suppress(Exception):
                sent.append(sink.put.remote(run_id, line))
                return
        print(line, flush=True)

    if not ray.get_gpu_ids():
        # Ray leaves CUDA_VISIBLE_DEVICES alone for tasks without GPUs, so device "auto"
        # would pick a GPU that other runs were given.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    # Ray sets OMP_NUM_THREADS from the first task a worker runs, and torch reads it once per
    # process; workers are reused, so set this run's thread count explicitly. A num_threads
    # in the config wins (train() applies it after this).
    torch.set_num_threads(max(1, int(cpus)))
    scratch = Path(tempfile.mkdtemp(prefix="mnistlab-ray-"))
    try:
        folder = RunFolder(scratch / run_id, log=log)
        if storage is not None:
            uri, key = storage
            try:
                folder = StoredRunFolder(scratch / run_id, Storage(uri), key, log=log)
            except UserError as exc:  # checked at the start; trouble now costs resilience only
                log(f"{exc}; this attempt keeps its resume state on this node only")
            else:
                resume_files = folder.fetch(resume_files)
        folder.import_files(resume_files)
        dataset = load_dataset_cached(config.dataset, data_dir)
        outcome = execute_run(config, folder, checkpoints=checkpoints, dataset=dataset, log=log)
        outcome["node"] = socket.gethostname()
        outcome["node_id"] = ray.get_runtime_context().get_node_id()
        return outcome, folder.export_files()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if sent:  # the lines reach the driver before the result does
            with contextlib.suppress(Exception):
                ray.wait(sent, num_returns=len(sent), timeout=10)
