"""SQLite files that are not ours, for the tests of the stores the tool opens (the search's
study, MLflow's store): a foreign database, and a damaged one."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def foreign_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('mine')")


def damaged_sqlite(path: Path) -> None:
    foreign_sqlite(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page overwritten
    path.write_bytes(bytes(data))
