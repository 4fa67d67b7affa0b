"""The default model shipped inside the package, so `mnistlab predict digit.png` works on a
fresh install, with no training first.

The model is rebuilt by `scripts/train_default_model.py` (recipe, data and measured accuracy
in its docstring and the README). Its SHA-256 is pinned here and in the `.sha256` file beside
it; a file that does not match is refused, never loaded.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from ..errors import UserError

DEFAULT_MODEL = "fastnet-robust.pt"
DEFAULT_SHA256 = "84222671fcaf245911d63e1a5edd3ab5296a886cf63ca6fb9ed64a2e8d5fdfe9"

_digests: dict[tuple[str, int, int], str] = {}  # (path, size, mtime) -> SHA-256, per process


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def default_checkpoint(expected_sha256: str | None = None) -> Path:
    """The shipped checkpoint's path, after checking its SHA-256 (once per process per file
    version). Raises `UserError` when it is missing or does not match."""
    path = Path(str(resources.files(__name__) / DEFAULT_MODEL))
    expected = expected_sha256 or DEFAULT_SHA256
    try:
        stat = path.stat()
    except OSError:
        raise UserError(
            f"the default model is missing from the package ({path}); reinstall mnistlab, "
            "or pass a checkpoint"
        ) from None
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:  # hashed once per process while the file stays the same
        _digests[key] = file_sha256(path)
    actual = _digests[key]
    if actual != expected:
        raise UserError(
            f"the default model {path} is damaged or replaced: SHA-256 {actual}, expected "
            f"{expected}; reinstall mnistlab, or pass a checkpoint"
        )
    return path
