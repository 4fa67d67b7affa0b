"""Run the `mnistlab` command in this process, as the CLI tests do."""

from __future__ import annotations

import contextlib
import io

from mnistlab.cli import main


def cli(*args) -> tuple[int, str, str]:
    """Exit code, stdout, stderr; argparse's SystemExit becomes the code it carries."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()
