"""The results ledger: one folder per run. This module is the only code that reads or writes
a run folder; the engine reports to a `RunFolder` and never builds paths.

    SWEEP_DIR/
      sweep.toml                 the sweep file as given (copied when the sweep starts)
      sweep.json                 the manifest: the run ids the sweep file expands to
      runs/<run_id>/
        config.json              the resolved TrainConfig (a dict)
        history.json             list of per-epoch dicts, rewritten after every epoch
        predictions.json         the chosen epoch's per-image test predictions, with labels
        result.json              written last: its presence means the run is over
        checkpoint.pt            weights of the epoch chosen by validation accuracy
        resume.pt                last finished epoch's full state (deleted when the run ends)
        error.txt                the error of a failed attempt
        claim.json               who trains the run now (host, pid, the process's start time,
                                 when it claimed); gone when it ends

A run's status comes from its files alone, so a sweep killed at any moment can be rerun:
`result.json` present -> its "status" ("finished", "diverged", "stopped", "pruned" or
"failed"); otherwise "pending" (never started) or "partial" (started, killed part-way). A
record that cannot be read is renamed aside (`result.json.damaged-<time>`), kept for
inspection, and the run counts as not done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import IDENTITY_FIELDS, LATER_DEFAULTS, ConfigError, TrainConfig
from .errors import UserError
from .fileio import (
    TMP_SUFFIX,
    OutputError,
    atomic_copy,  # noqa: F401  (re-exported for the sweep)
    atomic_write_bytes,
    describe_os_error,
    json_bytes,
    make_dirs,
    write_json,
    write_torch,
)

RESULT = "result.json"
CONFIG = "config.json"
HISTORY = "history.json"
PREDICTIONS = "predictions.json"
CHECKPOINT = "checkpoint.pt"
RESUME = "resume.pt"
ERROR = "error.txt"
CLAIM = "claim.json"
TENSORBOARD = "tensorboard"
MANIFEST = "sweep.json"
# Everything a run writes into its folder; reset() removes exactly these and nothing else
# (an --out-dir may name a folder that holds other things too).
RUN_FILES = (RESULT, HISTORY, PREDICTIONS, CHECKPOINT, RESUME, ERROR)
_MOVED = (*RUN_FILES, CONFIG)  # what a run trained on another machine sends home
# A run is over when its result says one of these; "failed" runs are tried again.
# A run ended early on purpose: by a callback of the user's ("stopped") or a search's pruner.
EARLY_STOP_STATUSES = ("stopped", "pruned")
DONE_STATUSES = ("finished", "diverged", *EARLY_STOP_STATUSES)
# Loss and accuracy per split, as history rows and results hold them. "train" is the running
# average over the epoch's batches (dropout and augmentation on); "train_eval" is measured in
# eval mode on a fixed training sample as large as val: the honest train-val gap.
SPLIT_METRICS = tuple(
    f"{split}_{kind}"
    for split in ("train", "train_eval", "val", "test")
    for kind in ("loss", "acc")
)

# A claim's holder refreshes it this often; a claim from another machine that has not been
# refreshed for CLAIM_STALE_SECONDS belongs to a process that died.
CLAIM_HEARTBEAT_SECONDS = 30.0
CLAIM_STALE_SECONDS = 300.0
NOT_IDENTITY_FIELDS = frozenset(f.name for f in dataclasses.fields(TrainConfig)) - IDENTITY_FIELDS


def silent(*_args) -> None:
    """A `log` that drops its lines: for readers and workers whose output nobody reads."""


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


def run_id_for(config: TrainConfig | dict) -> str:
    """Same resolved config -> same id; any change to what the run computes -> a new id."""
    values = config.to_dict() if isinstance(config, TrainConfig) else config
    identity = {
        k: v
        for k, v in values.items()
        if k not in NOT_IDENTITY_FIELDS and not (k in LATER_DEFAULTS and v == LATER_DEFAULTS[k])
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:10]
    return f"{values['model']}-{digest}"


def run_labels(configs: dict[str, TrainConfig | dict]) -> dict[str, str]:
    """run_id -> a short label unique among `configs`: the model and the settings that tell a
    run from the same model's other runs ("lenet lr=0.001 dropout=0.25"). A pure function of
    the configs, so the sweep, --status, MLflow and the report all name a run alike."""
    defaults = TrainConfig().to_dict()
    values = {
        run_id: defaults | (c.to_dict() if isinstance(c, TrainConfig) else c)
        for run_id, c in configs.items()
    }
    by_model: dict[str, list[str]] = {}
    for run_id, config in values.items():
        by_model.setdefault(config["model"], []).append(run_id)
    labels = {}
    for model, run_ids in by_model.items():
        varying = sorted(
            key
            for key in IDENTITY_FIELDS - {"model"}
            if len({_as_text(values[r][key]) for r in run_ids}) > 1
        )
        for run_id in run_ids:
            parts = [model] + [f"{key}={_shown(values[run_id][key])}" for key in varying]
            labels[run_id] = " ".join(parts)
    return labels


def _as_text(value) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def _shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else _as_text(value)


@dataclass
class TrainResult:
    """What one run produced; `to_dict()` is the ledger's result.json."""

    config: dict[str, Any]
    status: str  # finished | diverged | pruned | interrupted
    history: list[dict[str, Any]]
    best_epoch: int | None
    metrics: dict[str, float | None]  # train/val at best_epoch, test once on its weights
    params: int
    train_seconds: float
    total_seconds: float
    images_per_second: float
    device: str
    precision: str
    split: dict[str, Any]
    torch_version: str = ""
    per_class_accuracy: list[float] = field(default_factory=list)
    test_confusion: list[list[int]] = field(default_factory=list)
    test_misclassified: list[list[int]] = field(default_factory=list)
    # The chosen epoch's prediction for every test image judged, and those images' labels:
    # what a paired test between two runs needs. Kept in predictions.json, not result.json.
    test_predictions: list[int] = field(default_factory=list)
    test_labels: list[int] = field(default_factory=list)
    run_id: str | None = None
    out_dir: str | None = None
    git_commit: str | None = None
    error: str | None = None  # why a run diverged or was pruned, in one line
    # Wall-clock start and end (Unix seconds): runs of one sweep whose spans overlap shared
    # the machine, so their times are not single-run speeds.
    started_at: float | None = None
    ended_at: float | None = None
    model: Any = field(default=None, repr=False)  # the trained module (chosen epoch), in memory

    def to_dict(self) -> dict[str, Any]:
        kept = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_IN_RESULT
        }
        return (
            self.metrics
            | kept
            | {
                "model": self.config["model"],
                "epochs_run": len(self.history),
                "seed": self.config["seed"],
                "train_subset": self.config["train_subset"],
            }
        )


# Kept in history.json and predictions.json, or in memory only: not in result.json.
_NOT_IN_RESULT = ("history", "metrics", "test_predictions", "test_labels", "out_dir", "model")


class RunFolder:
    """One run's folder: claim it, record its progress, finish or fail it, reset it.

    Every write is atomic (temporary file, fsync, rename), so a kill at any moment leaves
    either the old file or the new one. The engine calls `check_same_run`, then `start`,
    `epoch_done`, `save_checkpoint` and `finish`; the sweep calls `claim`, `fail` and `reset`.
    """

    def __init__(self, path: str | os.PathLike, log=print):
        self.path = Path(path)
        self.log = log
        self._claim: _Claim | None = None

    @property
    def run_id(self) -> str:
        return self.path.name

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def _read_record(self, name: str):
        """A JSON file of the run, or None; a damaged one is set aside and reported."""
        path = self.path / name
        try:
            value = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8
            return self._set_aside(path, type(exc).__name__)
        expected = list if name == HISTORY else dict
        if not isinstance(value, expected):
            return self._set_aside(
                path, f"a JSON {type(value).__name__}, not a {expected.__name__}"
            )
        if name == RESULT and not isinstance(value.get("status"), str):
            return self._set_aside(path, "no status")
        return value

    def _set_aside(self, path: Path, why: str) -> None:
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            path.rename(aside)
        except OSError as exc:
            raise OutputError(describe_os_error(path, exc)) from None
        self.log(f"{path}: damaged ({why}); kept as {aside.name}, the run will be redone")

    def read_config(self) -> dict | None:
        """The run's config, or None. A result beside a damaged config cannot be trusted to
        belong to this run, so it is set aside too."""
        existed = (self.path / CONFIG).is_file()
        config = self._read_record(CONFIG)
        if config is None and existed and (self.path / RESULT).is_file():
            self._set_aside(self.path / RESULT, "its config.json was damaged")
        return config

    def read_result(self) -> dict | None:
        if (self.path / CONFIG).is_file():
            self.read_config()  # a damaged config takes its result aside with it
        return self._read_record(RESULT)

    def read_history(self) -> list[dict]:
        return self._read_record(HISTORY) or []

    def status(self) -> str:
        result = self.read_result()
        if result is not None:
            return result["status"]
        if any((self.path / name).is_file() for name in (CONFIG, HISTORY, RESUME)):
            return "partial"
        return "pending"

    def is_done(self) -> bool:
        return self.status() in DONE_STATUSES

    def check_same_run(self, config: TrainConfig) -> None:
        """Refuse a folder this run must not write into: another run's, or one holding run
        files that mnistlab did not write (the rule: never replace what the tool did not
        create). The tool knows its own by their config.json: a run writes it first, so run
        files in a folder without one (or without the damaged one set aside,
        `config.json.damaged-*`) came from somebody else."""
        try:  # first: reading a damaged config below sets it aside
            ours = (self.path / CONFIG).is_file() or any(self.path.glob(f"{CONFIG}.damaged-*"))
            foreign = [] if ours else [n for n in RUN_FILES if os.path.lexists(self.path / n)]
        except OSError:
            foreign = []
        if foreign:
            raise ConfigError(
                f"{self.path}: holds {', '.join(foreign)} that mnistlab did not write (no "
                f"{CONFIG} of a run beside them); use another out_dir"
            )
        recorded = self.read_config()
        if recorded is not None and (
            not isinstance(recorded.get("model"), str) or run_id_for(recorded) != run_id_for(config)
        ):
            raise ConfigError(
                f"{self.path}: holds a run with a different config; use another out_dir"
            )

    def claim(self) -> bool:
        """Take the run for this process; False when a live process elsewhere holds it.

        The claim is a file created exclusively (O_EXCL works across processes and, on NFS
        v3+, across machines). A claim whose process is gone (same host: its pid is dead;
        another host: no heartbeat for CLAIM_STALE_SECONDS) is taken over. Temporary files
        left by an interrupted write are removed once the run is ours.
        """
        make_dirs(self.path)
        if os.path.lexists(self.path / CLAIM) and not os.path.isfile(self.path / CLAIM):
            # Not one of ours (a claim is a file mnistlab creates): never taken over, since
            # taking over renames it aside and deletes it.
            kind = "a folder" if os.path.isdir(self.path / CLAIM) else "not a regular file"
            raise UserError(
                f"{self.path / CLAIM}: is {kind}, not a claim file mnistlab wrote; move it "
                "away and rerun"
            )
        claim = _Claim(self.path / CLAIM)
        if not claim.acquire(self.log):
            return False
        self._claim = claim
        for leftover in self.path.glob(f".*{TMP_SUFFIX}"):
            leftover.unlink(missing_ok=True)
        return True

    def release(self) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None

    def claim_alive(self) -> bool:
        """True while a live process holds the run's claim (this one included)."""
        return _Claim(self.path / CLAIM).alive()

    def claimed_by(self) -> str | None:
        """Who holds the run now ("host pid N since HH:MM"), or None."""
        return _Claim(self.path / CLAIM).holder()

    def start(self, config: TrainConfig) -> None:
        make_dirs(self.path)
        write_json(self.path / CONFIG, config.to_dict())

    def load_resume(self, map_location) -> dict | None:
        path = self.path / RESUME
        if not path.is_file():
            return None
        import torch  # start-up cost: reading a ledger (the report, --status) needs no torch

        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # a damaged resume state costs the epochs, not the run
            self._set_aside(path, f"unreadable: {type(exc).__name__}")
            return None

    def epoch_done(self, history: list[dict], resume_state: dict | None = None) -> None:
        write_json(self.path / HISTORY, history)
        if resume_state is not None:
            write_torch(self.path / RESUME, resume_state)
        if self._claim is not None:
            self._claim.refresh()

    def save_checkpoint(self, meta: dict) -> None:
        write_torch(self.path / CHECKPOINT, meta)

    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD

    def finish(self, result: TrainResult) -> None:
        """Record the run's end; result.json last, since its presence marks the run as over."""
        write_json(self.path / HISTORY, result.history)
        if result.test_predictions:
            write_json(
                self.path / PREDICTIONS,
                {"test_labels": result.test_labels, "test_predictions": result.test_predictions},
            )
        write_json(self.path / RESULT, result.to_dict())
        (self.path / RESUME).unlink(missing_ok=True)

    def fail(self, config: TrainConfig, error: str, details: str = "") -> None:
        """Record a failed attempt: the run is retried by the next sweep, its error kept."""
        make_dirs(self.path)
        config_dict = config.to_dict() | {"out_dir": str(self.path)}
        if self.read_config() is None:
            write_json(self.path / CONFIG, config_dict)
        atomic_write_bytes(self.path / ERROR, (details or error).encode())
        write_json(
            self.path / RESULT,
            {
                "run_id": self.run_id,
                "status": "failed",
                "error": error,
                "model": config.model,
                "config": config_dict,
                "best_epoch": None,
                "epochs_run": len(self.read_history()),
            },
        )

    def reset(self) -> None:
        """Remove the run's own files (a retry of a failed run, or --force), nothing else."""
        for name in RUN_FILES:
            (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.path / TENSORBOARD, ignore_errors=True)

    def export_files(self) -> dict[str, bytes]:
        """The run's files as bytes, for sending a run trained elsewhere to the ledger."""
        return {n: (self.path / n).read_bytes() for n in _MOVED if (self.path / n).is_file()}

    def import_files(self, files: dict[str, bytes], config: TrainConfig | None = None) -> None:
        """Write files from `export_files`, result.json last (the run is over only then).
        With `config`, the run's config (and result) record this folder as its home, not the
        scratch folder it was trained in."""
        files = dict(files)
        if config is not None:
            recorded = config.to_dict() | {"out_dir": str(self.path)}
            files[CONFIG] = json_bytes(recorded)
            if RESULT in files:
                files[RESULT] = json_bytes(json.loads(files[RESULT]) | {"config": recorded})
        make_dirs(self.path)
        for name in sorted(files, key=lambda n: n == RESULT):
            if name not in _MOVED:
                raise ValueError(f"not a run file: {name}")
            atomic_write_bytes(self.path / name, files[name])


class _Claim:
    def __init__(self, path: Path):
        self.path = path
        self.token = uuid.uuid4().hex
        self._stop: threading.Event | None = None

    def _read(self) -> dict | None:
        try:
            value = json.loads(self.path.read_bytes())
            return value if isinstance(value, dict) else {}
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # half-written by a process killed mid-write: treat as stale

    def holder(self) -> str | None:
        info = self._read()
        if info is None:
            return None
        since = time.strftime("%H:%M", time.localtime(info.get("started", 0)))
        return f"{info.get('host', '?')} pid {info.get('pid', '?')} since {since}"

    def _is_stale(self, info: dict) -> bool:
        if "pid" not in info:  # half-written, or not a claim of ours
            return True
        if info.get("host") == socket.gethostname():
            return not process_alive(info)
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return True
        return age > CLAIM_STALE_SECONDS

    def alive(self) -> bool:
        info = self._read()
        return info is not None and not self._is_stale(info)

    def acquire(self, log) -> bool:
        payload = json.dumps(
            process_identity() | {"started": time.time(), "token": self.token}
        ).encode()
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = self._read()
                if info is None:
                    continue  # released between our open and our read: try again
                if not self._is_stale(info):
                    return False
                # Rename first: of several processes that found the same stale claim, only
                # one rename succeeds, so only one takes the run over.
                stale = self.path.with_name(f"{self.path.name}.stale-{self.token}")
                try:
                    self.path.rename(stale)
                except FileNotFoundError:
                    continue
                stale.unlink(missing_ok=True)
                log(f"{self.path.parent.name}: taking over a claim from a dead process")
                continue
            except OSError as exc:
                raise OutputError(describe_os_error(self.path, exc)) from None
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            # Other machines cannot see our pid: they judge the claim by its age, so keep it
            # young even through an epoch that takes longer than CLAIM_STALE_SECONDS.
            self._stop = stop = threading.Event()
            threading.Thread(target=self._beat, args=(stop,), daemon=True).start()
            return True
        return False

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(CLAIM_HEARTBEAT_SECONDS):
            self.refresh()

    def refresh(self) -> None:
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
        info = self._read()
        if info and info.get("token") == self.token:  # never remove a claim taken over
            self.path.unlink(missing_ok=True)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat (Linux), or None where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces or ')'.
    return stat[stat.rfind(")") + 2 :].split()


def process_start(pid: int) -> str | None:
    """When process `pid` started, as "<boot id>:<clock ticks since boot>" (Linux: field 22
    of /proc/<pid>/stat), or None where that cannot be read (another OS, no such process).
    A pid is reused once its process dies (PID 1 in every restarted container): the pid
    alone does not say that the process holding a claim is still the one that made it."""
    fields = _proc_stat(pid)
    if fields is None or len(fields) < 20:
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return f"{boot}:{fields[19]}"


def process_identity() -> dict[str, Any]:
    """This process as a claim or a search trial records it: host, pid and start time."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_start": process_start(pid)}


def process_alive(info: dict) -> bool:
    """Whether the process a `process_identity` (of this host) describes still runs: its pid
    is alive and, where both start times are known, it started when the recorded one did."""
    pid = info.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    fields = _proc_stat(pid)
    if fields and fields[0] in ("Z", "X"):  # dead, not yet reaped by its parent
        return False
    recorded, now = info.get("pid_start"), process_start(pid)
    return recorded is None or now is None or recorded == now


def run_status(run_dir: str | os.PathLike) -> str:
    return RunFolder(run_dir).status()


def read_runs(sweep_dir: str | os.PathLike, log=print) -> list[dict]:
    """Every run of a sweep as {"run_id", "dir", "status", "config", "history", "result",
    "predictions"}.

    `result` is None for runs that have not ended; `history` is [] when nothing was recorded;
    `predictions` is {"test_labels": [...], "test_predictions": [...]} for runs recorded since
    per-image predictions were kept, else None. Sorted by run id, so every reader sees the same
    order. When the sweep's manifest exists, only its runs are read: folders left by an
    earlier version of the sweep file stay on disk but out of the report. A damaged record is
    set aside (see `RunFolder`) and its run read as not done.
    """
    runs_root = Path(sweep_dir) / "runs"
    manifest = Path(sweep_dir) / MANIFEST
    wanted = None
    if manifest.is_file():
        try:
            wanted = set(read_json(manifest)["run_ids"])
        except (ValueError, KeyError, TypeError):
            raise UserError(
                f"{manifest}: damaged sweep manifest; rerun the sweep to rewrite it"
            ) from None
    records = []
    for run_dir in sorted(p for p in runs_root.glob("*") if p.is_dir()):
        if wanted is not None and run_dir.name not in wanted:
            continue
        folder = RunFolder(run_dir, log=log)
        config = folder.read_config()
        if config is None:
            continue
        result = folder.read_result()
        records.append(
            {
                "run_id": run_dir.name,
                "dir": run_dir,
                "status": result["status"] if result else folder.status(),
                "config": config,
                "history": folder.read_history(),
                "result": result,
                "predictions": folder._read_record(PREDICTIONS) if result else None,
            }
        )
    return records
