"""The ledger seen from the tools people already use: pandas, MLflow and TensorBoard.

    runs_frame(SWEEP_DIR)           one row per run (pandas); epochs_frame: one per epoch
    MlflowLogger(SWEEP_DIR, uri)    each ended run as an MLflow run, once (sync() is idempotent)
    link_tensorboard(SWEEP_DIR, ..) SWEEP_DIR/tensorboard/<readable name> -> the run's events

Everything here reads the ledger; nothing here trains or writes a run folder. So a run trained
anywhere (this process, worker processes, a Ray node) reaches MLflow the same way: the driver
logs it from the ledger once its result.json is there. pandas, mlflow and tensorboard are
optional extras, imported only when used.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from .config import IDENTITY_FIELDS
from .engine import Callback
from .errors import UserError
from .fileio import sqlite_tables
from .ledger import (
    DONE_STATUSES,
    MANIFEST,
    RESULT,
    SPLIT_METRICS,
    read_json,
    read_runs,
    run_labels,
    silent,
)
from .uris import mask_uri, mask_uris_in

TEXT_RESULTS = ("device", "precision", "git_commit", "torch_version", "error")
# Ledger result key -> column name: snake_case with the unit in the name where there is one.
# Accuracies and losses are as the ledger stores them (fractions in [0, 1], mean cross-entropy).
RESULT_COLUMNS = {
    **{key: key for key in (*SPLIT_METRICS, "best_epoch", "epochs_run", "params")},
    "total_seconds": "time_s",
    "train_seconds": "train_time_s",
    "images_per_second": "images_per_s",
    **{key: key for key in TEXT_RESULTS},
}
SPLIT_COLUMNS = {"train_used": "train_images", "val_used": "val_images", "test_used": "test_images"}
EPOCH_COLUMNS = {
    "epoch": "epoch",
    **{key: key for key in SPLIT_METRICS if not key.startswith("test")},
    "lr": "epoch_lr",  # the schedule's rate at the epoch's end (not the config's peak lr)
    "seconds": "epoch_time_s",
    "images_per_second": "images_per_s",
}
# Config fields that say where or how a run was stored, not what it computed.
NOT_A_SETTING = ("out_dir",)


def _setting_value(value):
    # A DataFrame cell (and an MLflow param) wants a scalar: model_kwargs becomes its JSON.
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value


def run_row(record: dict, label: str = "") -> dict[str, Any]:
    """One ledger record (from `read_runs`) as a flat dict of the runs table's columns."""
    result = record["result"] or {}
    row: dict[str, Any] = {
        "run_id": record["run_id"],
        "label": label,
        "model": record["config"].get("model"),
        "status": record["status"],
        **{column: result.get(key) for key, column in RESULT_COLUMNS.items()},
    }
    if not result:  # not ended: what the history says so far
        row["epochs_run"] = len(record["history"])
    split = result.get("split") or {}
    row |= {column: split.get(key) for key, column in SPLIT_COLUMNS.items()}
    for key, value in record["config"].items():
        if key not in NOT_A_SETTING and key not in row:
            row[key] = _setting_value(value)
    return row


def _pandas(what: str):
    try:
        import pandas
    except ImportError:
        raise ImportError(
            f"{what} needs pandas: pip install 'mnistlab[data]' (or pip install pandas)"
        ) from None
    return pandas


def runs_frame(sweep_dir: str | os.PathLike):
    """A pandas DataFrame of a sweep's runs, one row per run (ended or not), sorted by run id.

    Columns: run_id, label (the model and its differing settings), model, status, then the
    results at the epoch chosen by validation accuracy -- loss and accuracy (a fraction in
    [0, 1]) of train (the running average), train_eval (eval mode), val and test, best_epoch, epochs_run, params, time_s (the
    run's wall time), train_time_s, images_per_s, device, precision, git_commit,
    torch_version, error, train_images, val_images, test_images -- then every config setting
    (lr, dropout, epochs, ...; model_kwargs as JSON). Results are empty (NaN/None) for runs
    that have not ended.
    """
    pandas = _pandas("runs_frame")
    records = read_runs(sweep_dir, log=silent)
    labels = run_labels({r["run_id"]: r["config"] for r in records})
    rows = [run_row(r, labels[r["run_id"]]) for r in records]
    columns = (
        list(rows[0]) if rows else ["run_id", "label", "model", "status", *RESULT_COLUMNS.values()]
    )
    return pandas.DataFrame(rows, columns=columns)


def epochs_frame(sweep_dir: str | os.PathLike):
    """A pandas DataFrame of every recorded epoch of every run: run_id, model, status, epoch,
    train_loss, train_acc, val_loss, val_acc (fractions), epoch_lr (the schedule's learning
    rate at the epoch's end), epoch_time_s, images_per_s.
    Join it to `runs_frame` on run_id for the settings:
    `epochs_frame(d).merge(runs_frame(d)[["run_id", "lr", "dropout"]], on="run_id")`."""
    pandas = _pandas("epochs_frame")
    rows = [
        {
            "run_id": record["run_id"],
            "model": record["config"].get("model"),
            "status": record["status"],
            **{column: epoch.get(key) for key, column in EPOCH_COLUMNS.items()},
        }
        for record in read_runs(sweep_dir, log=silent)
        for epoch in record["history"]
    ]
    columns = ["run_id", "model", "status", *EPOCH_COLUMNS.values()]
    return pandas.DataFrame(rows, columns=columns)


MLFLOW_FOLDER = "mlruns"  # SWEEP_DIR/mlruns/{mlflow.db, artifacts/}: the default store
# The ledger run an MLflow run records: what makes logging idempotent.
RUN_ID_TAG = "mnistlab.run_id"
# The sweep folder an MLflow run's ledger run lives in: run ids are config hashes, so the same
# sweep rerun into another folder has the same ids, and its runs are other runs to log.
SWEEP_DIR_TAG = "mnistlab.sweep_dir"
# The run folder's files that travel as artifacts: small and self-describing. Not the
# checkpoint (megabytes to a gigabyte; `mnistlab export` is for that) nor resume.pt.
ARTIFACT_FILES = ("config.json", "history.json", "result.json", "predictions.json", "error.txt")
ARTIFACT_MAX_BYTES = 5 * 2**20
# Ledger status -> MLflow run status (diverged: FAILED). A pruned run was stopped on purpose.
MLFLOW_STATUS = {"finished": "FINISHED", "stopped": "KILLED", "pruned": "KILLED"}
# Per-epoch history -> metric keys (logged with step = epoch).
EPOCH_METRICS = (*(key for key in SPLIT_METRICS if not key.startswith("test")), "lr")
# result.json -> the run's final metrics (train/val at the chosen epoch, test once on it, the
# other numbers; text such as device is not `_finite` and stays out): the DataFrame's names,
# except that train/val get "best_", since their per-epoch curves carry the plain names.
FINAL_METRICS = {
    key: f"best_{key}" if key in EPOCH_METRICS else column for key, column in RESULT_COLUMNS.items()
}


def default_tracking_uri(sweep_dir: str | os.PathLike) -> str:
    """The store used when --mlflow is given no URI: SQLite beside the sweep. (MLflow 3 refuses
    its old ./mlruns file store unless told otherwise; SQLite is its offline default now.)"""
    return resolve_tracking_uri(None, sweep_dir)


def resolve_tracking_uri(value: str | None, sweep_dir: str | os.PathLike) -> str:
    """A tracking URI as given (sqlite:///..., http://..., databricks, ...), or a plain folder
    (an MLflow store is made in it, as for the default), or None: SWEEP_DIR/mlruns."""
    if value and ("://" in value or value.startswith(("databricks", "file:"))):
        return value
    folder = Path(value or Path(sweep_dir) / MLFLOW_FOLDER)
    return f"sqlite:///{(folder / 'mlflow.db').resolve()}"


# Seconds a tracking server gets to accept a connection before a sweep gives up on it.
STORE_CONNECT_SECONDS = 5.0
# Tables every MLflow SQL store has: a non-empty SQLite file without them is someone else's.
MLFLOW_TABLES = {"experiments", "runs", "alembic_version"}


def check_store(uri: str, flag: str = "--mlflow") -> None:
    """Check a tracking store in seconds, before any training: an SQLite store must be a
    writable SQLite file of MLflow's (or none yet, in a folder it can be made in); a server
    must accept a connection. `flag` names the option the URI came from in the error."""
    scheme = uri.partition("://")[0]
    if scheme.startswith("sqlite"):
        path = urllib.parse.urlsplit(uri).path.removeprefix("/")
        if path in ("", ":memory:") or "mode=memory" in uri:
            raise UserError(
                f"{flag} {mask_uri(uri)}: an in-memory store loses every run when the process "
                "ends; give a file (sqlite:///path/mlflow.db) or a folder"
            )
        _check_sqlite_store(Path(path), uri, flag)
    elif scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(uri)
        try:
            port = parts.port or (443 if scheme == "https" else 80)
            socket.create_connection((parts.hostname or "", port), STORE_CONNECT_SECONDS).close()
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise UserError(
                f"{flag} {mask_uri(uri)}: cannot reach the tracking server: {mask_uris_in(reason)}"
            ) from None


def _check_sqlite_store(path: Path, uri: str, flag: str) -> None:
    where = f"{flag} {mask_uri(uri)}"
    if not path.exists():
        folder = next((p for p in path.parents if p.exists()), Path("."))
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"{where}: cannot create the store: {folder} is not a writable folder")
        return
    tables = sqlite_tables(path, where, "an MLflow store")
    # SQLite writes a journal beside the file: both the file and its folder must be writable.
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError(f"{where}: the store is read-only; MLflow needs to write it")
    if tables and MLFLOW_TABLES - tables:
        raise UserError(f"{where}: an SQLite database that is not an MLflow store")


def _import_mlflow():
    # An offline lab tool: no usage reports to MLflow's servers unless the user asks for them.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow's own defaults retry a dead server for minutes (7 retries, 120 s each, backoff):
    # the store was reached a moment ago (check_store), so a few quick retries are enough.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    try:
        import mlflow  # noqa: F401
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise UserError(
            "MLflow logging needs the mlflow extra: pip install 'mnistlab[mlflow]'"
        ) from None
    # "Creating initial MLflow database tables..." and alembic's migrations: not our news.
    for name in ("mlflow.store.db.utils", "alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


def sweep_name(sweep_dir: str | os.PathLike) -> str:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        name = read_json(Path(sweep_dir) / MANIFEST)["name"]
        if isinstance(name, str) and name:
            return name
    return Path(sweep_dir).resolve().name


class MlflowLogger:
    """Logs a sweep's ended runs (finished, diverged, pruned) to MLflow, each once.

    An MLflow run carries the ledger run id in the tag `mnistlab.run_id` and the sweep folder
    in `mnistlab.sweep_dir` (the same sweep rerun into another folder logs its runs anew), so
    `sync()` can be called any number of times (after every run, at the end, from `mnistlab mlflow-import`
    on an old sweep) and logs only what is not there yet. A run whose logging was cut short
    (still RUNNING in MLflow) is deleted and logged again. Failed runs are not logged: the
    next sweep retries them.
    """

    def __init__(
        self,
        sweep_dir: str | os.PathLike,
        tracking_uri: str | None = None,
        experiment: str | None = None,
        log=print,
        flag: str = "--mlflow",
    ):
        self.sweep_dir = Path(sweep_dir)
        self.tracking_uri = resolve_tracking_uri(tracking_uri, sweep_dir)
        sqlite = self.tracking_uri.startswith("sqlite:///")
        self._db = Path(self.tracking_uri.removeprefix("sqlite:///")) if sqlite else None
        self.flag = flag  # the option the URI came from, for error lines
        self.experiment_name = experiment or sweep_name(sweep_dir)
        self.log = log
        self._client = None
        self._experiment_id: str | None = None
        self._folder = str(self.sweep_dir.resolve())
        # Runs logged before they carried their folder: the folder that made the experiment.
        self._experiment_folder: str | None = None
        self._logged: dict[str, str] | None = None  # ledger run id -> MLflow run id

    def _store_lock(self):
        """A lock on the SQLite store (beside its file): two processes that open a new store
        at once would both create its tables (alembic: "duplicate column name"), or both
        the experiment. A server does its own locking."""
        return FileLock(f"{self._db}.lock") if self._db else contextlib.nullcontext()

    @property
    def client(self):
        if self._client is None:
            client_class = _import_mlflow()
            check_store(self.tracking_uri, self.flag)
            if self._db:
                self._db.parent.mkdir(parents=True, exist_ok=True)
            with self._store_lock():
                client = client_class(tracking_uri=self.tracking_uri)
                client.search_experiments(max_results=1)  # makes a new store's tables
            self._client = client
        return self._client

    @property
    def experiment_id(self) -> str:
        if self._experiment_id is None:
            client = self.client  # takes the store lock itself: before, not inside, ours
            with self._store_lock():
                self._experiment_id = self._get_or_create_experiment(client)
        return self._experiment_id

    def _get_or_create_experiment(self, client) -> str:
        found = client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            self._experiment_folder = found.tags.get(SWEEP_DIR_TAG)
            return found.experiment_id
        self._experiment_folder = self._folder
        location = None
        if self._db:
            # Beside the database, not in ./mlartifacts of whatever folder we run in.
            location = (self._db.parent / "artifacts" / self.experiment_name).resolve().as_uri()
        return client.create_experiment(
            self.experiment_name,
            artifact_location=location,
            tags={SWEEP_DIR_TAG: self._folder},
        )

    def _our_runs(self, filter_string: str = ""):
        """The experiment's active MLflow runs that record runs of this sweep folder (not of
        the same sweep in another folder)."""
        from mlflow.entities import ViewType

        token = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string, ViewType.ACTIVE_ONLY, 1000, page_token=token
            )
            for run in page:
                if run.data.tags.get(SWEEP_DIR_TAG, self._experiment_folder) == self._folder:
                    yield run
            if not (token := page.token):
                return

    def logged(self) -> dict[str, str]:
        """Ledger run id -> MLflow run id of the runs already logged (and complete)."""
        if self._logged is None:
            # RUNNING: being logged now, or cut short (then `_find` redoes it).
            self._logged = {
                run.data.tags[RUN_ID_TAG]: run.info.run_id
                for run in self._our_runs()
                if RUN_ID_TAG in run.data.tags and run.info.status != "RUNNING"
            }
        return self._logged

    def sync(self) -> list[str]:
        """Log every ended run of the sweep not logged yet; returns their ledger run ids."""
        pending = _ended_run_ids(self.sweep_dir) - self.logged().keys()
        if not pending:
            return []
        records = read_runs(self.sweep_dir, log=silent)
        labels = run_labels({r["run_id"]: r["config"] for r in records})
        done = []
        # Two processes syncing one sweep (a sweep and an mlflow-import, two drivers) take
        # turns, and each asks the store again before logging a run: no run is logged twice.
        with FileLock(self.sweep_dir / ".mlflow-sync.lock"):
            for record in records:
                if record["run_id"] not in pending or record["status"] not in DONE_STATUSES:
                    continue
                if self._find(record["run_id"]) is None:
                    self.log_run(record, labels[record["run_id"]])
                    done.append(record["run_id"])
        return done

    def _find(self, ledger_id: str) -> str | None:
        """The MLflow run already logged for a ledger run (asking the store), or None."""
        found = None
        for run in self._our_runs(f"tags.`{RUN_ID_TAG}` = '{ledger_id}'"):
            if run.info.status == "RUNNING" or found is not None:  # cut short, or a double
                self.client.delete_run(run.info.run_id)
            else:
                found = run.info.run_id
        if found is not None:
            self.logged()[ledger_id] = found
        return found

    @contextlib.contextmanager
    def errors_as_one_line(self) -> Iterator[None]:
        """An error of the store as one line (not MLflow's traceback), naming the option the
        URI came from."""
        try:
            yield
        except UserError:
            raise
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise UserError(
                f"{self.flag} {mask_uri(self.tracking_uri)}: cannot log: {type(exc).__name__}: "
                f"{mask_uris_in(first)}"
            ) from None

    def log_run(self, record: dict, label: str) -> None:
        """Log one ended ledger record as an MLflow run (not logged yet: `sync` asks the
        store first)."""
        from mlflow.entities import Metric, Param

        result, config = record["result"], record["config"]
        end = int(time.time() * 1000)
        with contextlib.suppress(OSError):  # when result.json was written: the run's end
            end = int((Path(record["dir"]) / RESULT).stat().st_mtime * 1000)
        start = end - int(1000 * (result.get("total_seconds") or 0))
        tags = {
            RUN_ID_TAG: record["run_id"],
            SWEEP_DIR_TAG: self._folder,
            "mnistlab.sweep": self.experiment_name,
            "model": config.get("model"),
            "status": result["status"],
            "seed": config.get("seed"),
            **{key: result.get(key) for key in TEXT_RESULTS},
            "mlflow.source.git.commit": result.get("git_commit"),
            "mlflow.source.name": "mnistlab",
        }
        run = self.client.create_run(
            self.experiment_id,
            start_time=start,
            tags={k: str(v) for k, v in tags.items() if v is not None},
            run_name=label or record["run_id"],
        )
        mlflow_id = run.info.run_id
        params = [
            Param(k, str(_setting_value(v))) for k, v in config.items() if k not in NOT_A_SETTING
        ]
        metrics, elapsed = [], 0
        for row in record["history"]:
            # Spread the epochs over the run's time, so MLflow's time axis means something.
            elapsed += row.get("seconds") or 0
            metrics += [
                Metric(key, float(row[key]), start + int(1000 * elapsed), int(row["epoch"]))
                for key in EPOCH_METRICS
                if _finite(row.get(key))
            ]
        metrics += [
            Metric(name, float(result[key]), end, len(record["history"]))
            for key, name in FINAL_METRICS.items()
            if _finite(result.get(key))
        ]
        # Split into requests within MLflow's limits by the client itself.
        self.client.log_batch(mlflow_id, metrics=metrics, params=params)
        for name in ARTIFACT_FILES:
            path = Path(record["dir"]) / name
            if path.is_file() and path.stat().st_size <= ARTIFACT_MAX_BYTES:
                self.client.log_artifact(mlflow_id, str(path))
        # Last: a run that is not RUNNING any more is complete (see `logged`).
        self.client.set_terminated(mlflow_id, MLFLOW_STATUS.get(result["status"], "FAILED"), end)
        self.logged()[record["run_id"]] = mlflow_id

    def where(self) -> str:
        uri = mask_uri(self.tracking_uri)
        if self._db:
            return f"{uri} (browse: mlflow ui --backend-store-uri {uri})"
        return uri


def _ended_run_ids(sweep_dir: Path) -> set[str]:
    """Runs whose result.json says the run is over: cheap enough to poll often."""
    ended = set()
    for result in (sweep_dir / "runs").glob(f"*/{RESULT}"):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if json.loads(result.read_bytes()).get("status") in DONE_STATUSES:
                ended.add(result.parent.name)
    return ended


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class MlflowSync:
    """Logs a sweep's runs to MLflow while it trains: a background thread syncs the ledger
    every `every` seconds, and `close()` syncs once more. Whatever backend trains the runs,
    they reach MLflow from the ledger, in this process. An MLflow error is reported and
    logging stops; it never stops the sweep (`mnistlab mlflow-import` can catch up)."""

    def __init__(self, logger: MlflowLogger, every: float = 10.0, log=print):
        self.logger, self.every, self.log = logger, every, log
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._broken = False
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mlflow-sync")

    def __enter__(self) -> MlflowSync:
        # The store opens here: a bad URI or a missing extra shows before any training.
        with self.logger.errors_as_one_line():
            self.logger.sync()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sync()

    def sync(self) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                self.logger.sync()
            except Exception as exc:  # the store (or a damaged record), not the sweep's fault
                self._broken = True
                self.log(
                    f"mlflow: logging stopped: {type(exc).__name__}: {mask_uris_in(str(exc))} "
                    f"(rerun with `mnistlab mlflow-import {self.logger.sweep_dir}`)"
                )

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sync()


def import_to_mlflow(
    sweep_dir: str | os.PathLike,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> tuple[MlflowLogger, list[str]]:
    """Backfill (`mnistlab mlflow-import`): log every ended run of an existing sweep folder
    that MLflow lacks."""
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "runs").is_dir():
        raise UserError(f"{sweep_dir}: not a sweep folder (no runs/ in it)")
    logger = MlflowLogger(sweep_dir, tracking_uri, experiment, flag="--tracking-uri")
    with logger.errors_as_one_line():
        return logger, logger.sync()


TENSORBOARD_VIEW = "tensorboard"  # SWEEP_DIR/tensorboard/<label> -> runs/<run_id>/tensorboard
HPARAM_STATUS = {s: "STATUS_SUCCESS" for s in ("finished", "stopped", "pruned")}


def _hparams_summary(tag: str, **data):
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams.metadata import create_summary_metadata
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    metadata = create_summary_metadata(HParamsPluginData(**data))
    return Summary(value=[Summary.Value(tag=tag, metadata=metadata)])


def hparams_start(config: dict):
    """A run's HParams session start: its settings. Written into the run's own event files
    (the same TensorBoard run as its scalars), so the HParams table pairs each run's settings
    with its metrics (val/acc, val/best_acc, ...). No experiment summary is written: TensorBoard
    then builds the table's columns from every run's session, whatever each one searched."""
    from tensorboard.plugins.hparams.metadata import SESSION_START_INFO_TAG
    from tensorboard.plugins.hparams.plugin_data_pb2 import SessionStartInfo

    start = SessionStartInfo(start_time_secs=time.time())
    # The settings that decide what a run computes; None and dicts as text.
    for key in sorted(IDENTITY_FIELDS & set(config)):
        value = config[key]
        if isinstance(value, bool):
            start.hparams[key].bool_value = value
        elif isinstance(value, int | float):
            start.hparams[key].number_value = value
        else:
            start.hparams[key].string_value = "none" if value is None else _setting_value(value)
    return _hparams_summary(SESSION_START_INFO_TAG, session_start_info=start)


def hparams_end(status: str):
    """A run's HParams session end: success for finished and pruned runs, failure otherwise."""
    from tensorboard.plugins.hparams.api_pb2 import Status
    from tensorboard.plugins.hparams.metadata import SESSION_END_INFO_TAG
    from tensorboard.plugins.hparams.plugin_data_pb2 import SessionEndInfo

    end = SessionEndInfo(
        status=Status.Value(HPARAM_STATUS.get(status, "STATUS_FAILURE")), end_time_secs=time.time()
    )
    return _hparams_summary(SESSION_END_INFO_TAG, session_end_info=end)


def link_tensorboard(
    sweep_dir: str | os.PathLike, labels: dict[str, str], log=print
) -> Path | None:
    """SWEEP_DIR/tensorboard/<label> -> ../runs/<run_id>/tensorboard for each run, so
    `tensorboard --logdir SWEEP_DIR/tensorboard` names the runs "lenet lr=0.001 dropout=0.25"
    instead of run ids. The event files stay in the run folders (the ledger owns them: a
    retried run starts its events afresh). Links are remade from `labels` every time (labels
    change as a sweep or a search grows); anything in the folder that is not a link is left
    alone. Returns the folder, or None where links cannot be made (then point TensorBoard at
    SWEEP_DIR/runs)."""
    view = Path(sweep_dir) / TENSORBOARD_VIEW
    try:
        view.mkdir(parents=True, exist_ok=True)
        for entry in view.iterdir():
            if entry.is_symlink():
                entry.unlink()
        used: set[str] = set()
        for run_id, label in sorted(labels.items(), key=lambda kv: kv[1]):
            # One folder name: no path separators, nothing hidden, not too long.
            name = (label or run_id).replace(os.sep, "_").replace("/", "_").replace("\0", "")
            name = name.strip().lstrip(".")[:200] or "run"
            if name in used:  # two labels that read the same: keep both, told apart by id
                name = f"{name} ({run_id})"
            used.add(name)
            (view / name).symlink_to(Path("..") / "runs" / run_id / "tensorboard")
    except (OSError, NotImplementedError) as exc:
        log(
            f"tensorboard: cannot link readable run names in {view} ({exc}); use --logdir "
            f"{Path(sweep_dir) / 'runs'}"
        )
        return None
    return view


class TensorBoardCallback(Callback):
    """Writes a run's per-epoch scalars and its HParams session (settings at the start, status
    at the end) into the run folder's event files (the tensorboard extra)."""

    board = None  # the run's SummaryWriter, between on_train_start and on_train_end

    def on_train_start(self, config, folder, history) -> None:
        if folder is None:  # nowhere to write: a run without a folder is not tracked
            return
        # The tensorboard extra, only when a run asks for it.
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed attempt wrote past the epoch we resume from.
        self.board = SummaryWriter(str(folder.tensorboard_dir()), purge_step=len(history) + 1)
        self.board.file_writer.add_summary(hparams_start(config.to_dict()))

    def on_epoch_end(self, row, state) -> None:
        if self.board is None:
            return
        for key in EPOCH_METRICS:
            if row.get(key) is not None:
                self.board.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
        # What the run is chosen by: the HParams table shows its last value.
        self.board.add_scalar("val/best_acc", state.best_val_acc, row["epoch"])
        self.board.flush()

    def on_train_end(self, status: str) -> None:
        if self.board is None:
            return
        if status != "interrupted":  # an interrupted run's session goes on when it resumes
            self.board.file_writer.add_summary(hparams_end(status))
        self.board.close()
        self.board = None


def tracking_callbacks(config) -> list[Callback]:
    """The callbacks a run's own settings ask for (`tensorboard = true`)."""
    return [TensorBoardCallback()] if config.tensorboard else []
