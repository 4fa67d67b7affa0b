"""Writing files so that a crash, a kill or a full disk never leaves half a file behind.

Every file the tool writes that matters goes through here: written to a temporary name in the
same folder, flushed to disk, renamed into place, and the folder itself synced so the rename
survives a power cut. Failures of the disk (read-only, full, no permission) become one-line
`UserError`s naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import sqlite3
import stat
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from .errors import UserError

# A temporary file of an interrupted write is named `.<target>.<random>.tmp`.
TMP_SUFFIX = ".tmp"


class OutputError(UserError):
    """A file or folder could not be written (read-only, full disk, no permission)."""


def describe_os_error(path: str | os.PathLike, exc: OSError) -> str:
    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }.get(exc.errno, exc.strerror or type(exc).__name__)
    return f"cannot write {path}: {reason}"


# What a path that is not a regular file is, for the one line that refuses it.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def regular_file_problem(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a regular file ("no such file", "is a named pipe (FIFO),
    not a regular file", ...), or None when it can. Judged by `stat` alone, never by opening:
    opening a FIFO blocks until a writer comes, and reading /dev/zero never ends."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a broken link" if os.path.islink(path) else "no such file"
    except OSError as exc:  # a name too long, a loop of links, no permission on a folder
        return f"cannot read ({exc.strerror or type(exc).__name__})"
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    via = f" (a link to {os.path.realpath(path)})" if os.path.islink(path) else ""
    return f"is {kind}{via}, not a regular file"


def make_dirs(path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(f"cannot write {path}: a file of that name is in the way") from None
    except OSError as exc:
        raise OutputError(describe_os_error(path, exc)) from None
    return path


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as exc:
        raise OutputError(describe_os_error(path, exc)) from None
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results should be readable like any file
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(describe_os_error(path, exc)) from None
        raise
    # Some platforms (Windows) cannot open a folder: the rename still happened.
    with contextlib.suppress(OSError):
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def json_bytes(obj: Any) -> bytes:
    # allow_nan=False: NaN and Infinity are not JSON, and other tools refuse to read them.
    return (json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n").encode()


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json_bytes(obj))


def write_torch(path: str | os.PathLike, obj: Any) -> None:
    import torch  # start-up cost: most writers here (the report, preprocess) need no torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_copy(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    atomic_write_bytes(destination, Path(source).read_bytes())


SQLITE_HEADER = b"SQLite format 3\x00"


def sqlite_tables(path: Path, where: str, what: str, hint: str = "") -> set[str] | None:
    """The table names of the SQLite file `path`, read after SQLite's quick check on a
    read-only connection (nothing is written into a file that may be someone else's); None
    for an empty file, which SQLite makes a new database. Errors are one line: `where`
    starts it, `what` names the role the file was to play ("an MLflow store"), `hint` ends it."""
    end = f"; {hint}" if hint else ""
    if not path.is_file():
        raise UserError(f"{where}: not a regular file, so not {what}{end}")
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise UserError(f"{where}: cannot read {what}: {exc.strerror}") from None
    if not head:
        return None
    if head != SQLITE_HEADER:
        raise UserError(f"{where}: not an SQLite file, so not {what}{end}")
    readonly = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(readonly, uri=True, timeout=60)) as db:
            check = db.execute("PRAGMA quick_check").fetchone()
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise UserError(f"{where}: a damaged SQLite file ({exc}){end}") from None
    if check != ("ok",):
        raise UserError(f"{where}: a damaged SQLite file ({check[0]}){end}")
    return tables
