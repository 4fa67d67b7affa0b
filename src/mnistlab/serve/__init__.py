"""The web demo: draw a digit in the browser, see what a checkpoint makes of it.

`create_app(checkpoint)` builds the FastAPI app (tests drive it with TestClient);
`run_server(checkpoint, host, port)` serves it with uvicorn. Both need the `serve` extra.
"""

from .app import MAX_BODY_BYTES, create_app, run_server

__all__ = ["MAX_BODY_BYTES", "create_app", "run_server"]
