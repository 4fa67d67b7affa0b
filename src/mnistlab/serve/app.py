"""FastAPI app for the draw-a-digit demo, and the JSON API behind it.

    GET  /             the page (static/index.html: one file, no external assets, works offline)
    GET  /api/health   {"status": "ok"}
    GET  /api/model    model name, parameters, test accuracy, normalisation, classes
    POST /api/predict  an image (multipart field "image", or raw bytes with an image/* type),
                       or JSON {"pixels": 28x28 grey levels 0-255, "preprocess": true}
                       -> {"label", "class_name", "probabilities" (calibrated), "top3",
                           "warning" (null, or why it is probably not one digit),
                           "preprocessed", "not_a_digit" (null, or why it is no digit)}
    POST /api/number   an image of a written number (as for /api/predict)
                       -> {"number" ("?" for a piece not read), "complete", "digits": [{"box"
                           [left, top, right, bottom) in the image's pixels, "label",
                           "class_name", "probability", "problem"}]}

The page takes a drawing on its canvas, or a photo or scan uploaded or dropped beside it.
With no checkpoint, the default model shipped in the package is served.

Request bodies are untrusted: at most MAX_BODY_BYTES (checked from Content-Length and from
the bytes actually received), decoded with the caps in `mnistlab.preprocess` but a smaller
pixel cap (MAX_HTTP_PIXELS), at most MAX_CONCURRENT_DECODES at a time (the others wait, then
get a 503), with freed memory handed back after each; every bad input is answered with a 4xx
and {"detail": one line}, never a 500.
"""

import asyncio
import importlib.util
import json
import math
import os
import socket
import weakref
from importlib import resources
from numbers import Integral
from typing import Any

import numpy as np

from ..errors import UserError
from ..predict import Predictor
from ..preprocess import ImageError, release_memory

SERVE_EXTRA = "the web demo needs the serve extra: pip install 'mnistlab[serve]'"
MAX_BODY_BYTES = 2 * 2**20  # a drawn digit is a few KB; a phone photo should be resized first
# A local file may have 40 megapixels; over HTTP, 8 (a 3264x2448 photo). Decoding an
# 8-megapixel RGBA PNG peaks at ~130 MB (measured), and a 2 MB body can hold far more pixels
# than that, so the cap and the number of decodes at once bound the server's memory together.
MAX_HTTP_PIXELS = 8_000_000
MAX_CONCURRENT_DECODES = 2  # image decodes at once; the rest wait (the CPU is the limit anyway)
# Slow clients: a request (headers and body) must arrive whole within REQUEST_TIMEOUT_S of the
# connection opening or of the previous answer on it, or the connection is closed; at most
# MAX_CONNECTIONS are open at once (more are closed as they come; uvicorn answers 503 to a
# request that arrives while the limit is reached). Without these, ~20,000 idle half-sent
# requests used up the file descriptors and /api/health stopped answering. 2 MB at a slow
# 100 KB/s is 20 s.
REQUEST_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 256
MAX_HEADER_BYTES = 16 * 1024  # h11's cap on a request line and headers still incomplete
DECODE_WAIT_S = 30.0  # a request waits this long for a decode slot, then gets a 503
# What `ImageError.reason` means for HTTP; the other reasons (missing, not_an_image, corrupt)
# are a 400.
STATUS_FOR_REASON = {"too_large": 413, "too_many_pixels": 422, "blank": 422, "bad_array": 422}
PAGE_HEADERS = {
    # Everything the page needs comes from this server: the policy makes "works offline" a
    # property the browser enforces, not just a promise.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Plain ASGI middleware: 413 when Content-Length says the body is too large, and again
    when the bytes received exceed the limit (chunked uploads and lying headers)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_detail(send, 400, "Content-Length is not a number")
                return
            if declared > MAX_BODY_BYTES:
                await _send_detail(send, 413, self._message(declared))
                return
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_detail(send, 413, self._message(None))

    def _message(self, size: int | None) -> str:
        limit = f"{MAX_BODY_BYTES / 2**20:.1f} MB"
        if size is None:  # counted while streaming: reading stopped, so the total is unknown
            return f"request body is larger than the {limit} limit"
        shown = f"{size / 2**20:.1f} MB"
        if shown == limit:  # just over: rounded, the two would read the same
            return (
                f"request body is {size:,} bytes; the limit is {MAX_BODY_BYTES:,} bytes ({limit})"
            )
        return f"request body is {shown}; the limit is {limit}"


async def _send_detail(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    length = (b"content-length", str(len(body)).encode())
    headers = [(b"content-type", b"application/json"), length, (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def pixels_to_array(pixels: Any, size: int) -> np.ndarray:
    """JSON pixels -> (size, size) float64, or `ValueError` saying what is wrong with them."""
    expected = f"a {size}x{size} array of numbers 0-255"
    if not isinstance(pixels, list) or len(pixels) != size:
        rows = len(pixels) if isinstance(pixels, list) else type(pixels).__name__
        raise ValueError(f"pixels must be {expected}; got {rows} rows")
    for i, row in enumerate(pixels):
        if not isinstance(row, list) or len(row) != size:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise ValueError(f"pixels must be {expected}; row {i} has {got}")
        for value in row:
            # bool is an int in Python, but true/false in an image is a client bug. JSON
            # integers are unbounded (10**400 is valid JSON): compared as integers, never
            # converted to float first, where they overflow.
            number = isinstance(value, int | float) and not isinstance(value, bool)
            finite = number and (isinstance(value, Integral) or math.isfinite(value))
            if not (finite and 0 <= value <= 255):
                text = json.dumps(value) if not isinstance(value, float) else repr(value)
                shown = text if len(text) <= 24 else text[:20] + "..."
                raise ValueError(f"pixels must be {expected}; row {i} holds {shown}")
    return np.asarray(pixels, dtype=np.float64)


def _answer(result: dict) -> dict:
    keys = ("label", "class_name", "probabilities", "top3", "warning", "not_a_digit", "calibrated")
    return {k: result[k] for k in keys} | {"preprocessed": result["preprocessed"].tolist()}


def _number_answer(result: dict) -> dict:
    keys = ("box", "label", "class_name", "probability", "problem")
    digits = [{k: d[k] for k in keys} for d in result["digits"]]
    return {"number": result["number"], "complete": result["complete"], "digits": digits}


def create_app(checkpoint: str | os.PathLike | None = None, device: str = "cpu"):
    """The FastAPI app serving `checkpoint` (None: the default model); raises `UserError` for
    a bad checkpoint or a missing `serve` extra."""
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.responses import HTMLResponse, JSONResponse
        from starlette.concurrency import run_in_threadpool
    except ImportError:
        raise UserError(SERVE_EXTRA) from None
    # FastAPI parses uploads with python-multipart; before 0.0.13 its module was `multipart`.
    if not any(importlib.util.find_spec(name) for name in ("python_multipart", "multipart")):
        raise UserError(SERVE_EXTRA)

    predictor = Predictor(checkpoint, device)
    # At most MAX_CONCURRENT_DECODES at once, one semaphore per event loop (a test client
    # starts a new loop each time; a server has one).
    slots: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    model_info = predictor.describe()
    page = (resources.files("mnistlab.serve") / "static" / "index.html").read_text("utf-8")

    # Swagger and ReDoc pages load their scripts from a CDN: off, so nothing here needs a network.
    app = FastAPI(title="mnistlab", docs_url=None, redoc_url=None)
    app.state.predictor = predictor

    def run(source, name, number: bool = False, release: bool = False):
        try:
            if number:
                return _number_answer(predictor.read_number(source, name, MAX_HTTP_PIXELS))
            return _answer(predictor.predict(source, name, MAX_HTTP_PIXELS))
        except ImageError as exc:
            raise HTTPException(STATUS_FOR_REASON.get(exc.reason, 400), str(exc)) from None
        except UserError as exc:  # the model's fault (e.g. outputs that are not numbers)
            raise HTTPException(500, str(exc)) from None
        finally:
            if release:  # after an image decode
                release_memory()

    async def decode(data: bytes, name: str, number: bool):
        """One image decode in a worker thread, once a slot is free. The waiting happens in
        the event loop, not in worker threads, so health checks and small requests are never
        starved of threads."""
        loop = asyncio.get_running_loop()
        semaphore = slots.setdefault(loop, asyncio.Semaphore(MAX_CONCURRENT_DECODES))
        try:
            async with asyncio.timeout(DECODE_WAIT_S):
                await semaphore.acquire()
        except TimeoutError:
            raise HTTPException(
                503, "the server is busy decoding other images; try again shortly"
            ) from None
        try:
            return await run_in_threadpool(run, data, name, number, True)
        finally:
            semaphore.release()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # Still JSON, still one line; the traceback goes to the server log.
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse)
    def index():
        return HTMLResponse(page, headers=PAGE_HEADERS)

    @app.get("/api/health")
    def health():
        return {"status": "ok"}

    @app.get("/api/model")
    def model():
        return model_info

    async def image_answer(request: Request, ctype: str, number: bool):
        """The answer for an image body (multipart field 'image', or raw image/* bytes); a 415
        for any other body."""
        if ctype.startswith("image/"):
            data = await request.body()
            if not data:
                raise HTTPException(400, "empty request body: send the image's bytes")
            return await decode(data, "upload", number)
        if ctype != "multipart/form-data":
            if not ctype and not number:
                raise HTTPException(
                    415,
                    "missing Content-Type: send multipart/form-data, image/*, or application/json",
                )
            or_json = "" if number else ' or JSON {"pixels": [[...], ...]}'
            raise HTTPException(
                415,
                f"unsupported Content-Type {ctype!r}: send an image (multipart field 'image', or "
                f"the raw bytes as image/png, image/jpeg, ...){or_json}",
            )
        try:
            form = await request.form(max_files=1, max_fields=8, max_part_size=MAX_BODY_BYTES)
        except _BodyTooLarge:
            raise
        except Exception as exc:  # malformed multipart, too many parts
            detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
            raise HTTPException(400, f"bad multipart body: {detail}") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart body needs a file field named 'image'")
        data = await upload.read()
        if not data:
            raise HTTPException(400, "the uploaded image is empty")
        await upload.close()
        return await decode(data, upload.filename or "upload", number)

    def content_type(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    @app.post("/api/predict")
    async def predict(request: Request):
        ctype = content_type(request)
        if not (ctype == "application/json" or ctype.endswith("+json")):
            return await image_answer(request, ctype, number=False)
        body = await request.body()
        if not body.strip():
            raise HTTPException(400, 'empty request body: send {"pixels": [[...], ...]}')
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            raise HTTPException(400, "request body is not valid JSON") from None
        if not isinstance(payload, dict) or "pixels" not in payload:
            raise HTTPException(422, 'JSON body must be an object with "pixels"')
        try:
            pixels = pixels_to_array(payload["pixels"], predictor.image_size)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        if payload.get("preprocess", True) is not False:
            return await run_in_threadpool(run, pixels, "pixels")
        # The client says the digit is already in MNIST form: no cropping or centring.
        digit = np.rint(pixels).astype(np.uint8)
        probabilities = await run_in_threadpool(predictor.probabilities, digit[None])
        return _answer(predictor.result(digit, probabilities[0], "pixels"))

    @app.post("/api/number")
    async def number(request: Request):
        return await image_answer(request, content_type(request), number=True)

    # Around the routes, parsers and exception handlers: the limit holds before they see a byte.
    app.add_middleware(BodySizeLimit)
    return app


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, bound here so that a port in use fails with one line
    (uvicorn would log and exit with a bare 1) and port 0's real port is known."""
    sock = None
    try:  # socket.gaierror (an unknown host) is an OSError too
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _slow_client_protocol():
    """uvicorn's h11 protocol with a deadline for each whole request and a connection cap
    (see REQUEST_TIMEOUT_S). Built on first use: uvicorn is the serve extra."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class SlowClientLimits(H11Protocol):
        _deadline = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > MAX_CONNECTIONS:
                transport.close()  # the newcomer goes, not the requests being answered
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(REQUEST_TIMEOUT_S, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:  # cancelling one that has fired does nothing
                self._deadline.cancel()

        def _expire(self) -> None:
            # IDLE: headers never completed; SEND_BODY: the body never completed. A request
            # received whole (DONE) is the app's to answer, however long that takes.
            if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return SlowClientLimits


def make_server(app, sock: socket.socket):
    """A uvicorn server for `app` on the bound socket `sock` (from `listen`), with the slow
    client limits above; `server.run(sockets=[sock])` serves until stopped."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http=_slow_client_protocol(),
        log_level="warning",
        server_header=False,
        timeout_keep_alive=5,
        limit_concurrency=MAX_CONNECTIONS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
    )
    return uvicorn.Server(config)


def run_server(
    checkpoint: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    log=print,
) -> None:
    """Serve the demo until Ctrl-C."""
    if importlib.util.find_spec("uvicorn") is None:  # checked before the model is loaded
        raise UserError(SERVE_EXTRA)
    if not 0 <= port <= 65535:
        raise UserError(f"port must be in 0-65535, got {port}")
    app = create_app(checkpoint)
    sock = listen(host, port)
    port = sock.getsockname()[1]  # port 0: the one the system chose
    info = app.state.predictor.describe()
    acc = info["test_accuracy"]
    accuracy = f", test acc {acc:.4f}" if acc is not None else ""
    which = "the default model, " if info["default_model"] else ""
    log(
        f"serving {which}{info['model']} ({info['parameters']:,} parameters{accuracy}) on "
        f"http://{f'[{host}]' if ':' in host else host}:{port}/ (Ctrl-C stops)"
    )
    if info["default_model"]:
        log("no checkpoint given: `mnistlab serve CHECKPOINT` serves your own")
    if host not in ("127.0.0.1", "localhost", "::1"):
        log(f"note: bound to {host}, so other machines on the network can reach this server")
    try:
        make_server(app, sock).run(sockets=[sock])
    finally:
        sock.close()
