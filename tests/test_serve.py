"""`mnistlab serve`: the JSON API (TestClient) and the drawing page (headless Chromium)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import sys
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from use_helpers import drawn_face, png_with_header

from mnistlab import cli
from mnistlab.checkpoint import read_checkpoint
from mnistlab.pretrained import default_checkpoint
from mnistlab.serve import MAX_BODY_BYTES, create_app
from mnistlab.serve import app as serve_app
from mnistlab.serve.app import SERVE_EXTRA


@pytest.fixture(scope="module")
def app(checkpoint):
    return create_app(checkpoint)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def digit(mnist):
    """A test digit (a 7) as MNIST stores it, and as a user would photograph it."""
    image, label = mnist.test_images[0].numpy(), int(mnist.test_labels[0])
    big = Image.fromarray(255 - image).resize((200, 200), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    return image, label, buffer.getvalue()


def _check_prediction(body: dict, label: int) -> None:
    assert body["label"] == label
    assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-4
    assert [t["label"] for t in body["top3"]][0] == label and len(body["top3"]) == 3
    seen = np.array(body["preprocessed"])
    assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() == 255
    assert all(isinstance(v, int) for v in body["preprocessed"][0])


# ------------------------------------------------------------------ good requests
def test_health_and_model(client):
    assert client.get("/api/health").json() == {"status": "ok"}
    info = client.get("/api/model").json()
    assert info["model"] == "lenet" and info["parameters"] == 61_990
    assert 0.9 < info["test_accuracy"] <= 1
    assert info["normalization"] == {"mean": 0.1307, "std": 0.3081}
    assert info["num_classes"] == 10 and info["image_size"] == [28, 28]


def test_multipart_upload(client, digit):
    _, label, png = digit
    response = client.post("/api/predict", files={"image": ("seven.png", png, "image/png")})
    assert response.status_code == 200, response.text
    _check_prediction(response.json(), label)


def test_raw_image_body(client, digit):
    _, label, png = digit
    response = client.post("/api/predict", content=png, headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    _check_prediction(response.json(), label)


def test_json_pixels(client, digit):
    image, label, _ = digit
    response = client.post("/api/predict", json={"pixels": image.tolist()})
    assert response.status_code == 200, response.text
    _check_prediction(response.json(), label)
    # Already in MNIST form: "preprocess": false uses the pixels exactly as sent.
    response = client.post("/api/predict", json={"pixels": image.tolist(), "preprocess": False})
    assert response.status_code == 200
    assert response.json()["preprocessed"] == image.tolist()


def test_page_is_self_contained(client):
    response = client.get("/")
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    assert "default-src 'self'" in response.headers["content-security-policy"]
    html = response.text
    assert '<canvas id="pad"' in html and 'id="clear"' in html and "api/predict" in html
    # Works offline: nothing is fetched from anywhere else.
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN


# ------------------------------------------------------------------ bad requests
def _fails(response, status: int, text: str) -> None:
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and text in detail and "\n" not in detail


def test_wrong_content_type_is_415(client):
    _fails(
        client.post("/api/predict", content=b"hello", headers={"Content-Type": "text/plain"}),
        415,
        "unsupported Content-Type 'text/plain'",
    )
    _fails(client.post("/api/predict", content=b"hello"), 415, "missing Content-Type")


def test_too_large_is_413(client):
    big = b"\x00" * (MAX_BODY_BYTES + 1)
    _fails(  # one byte over: the sizes in bytes, not "2.0 MB; the limit is 2.0 MB"
        client.post("/api/predict", content=big, headers={"Content-Type": "image/png"}),
        413,
        "request body is 2,097,153 bytes; the limit is 2,097,152 bytes (2.0 MB)",
    )
    _fails(
        client.post("/api/predict", content=big * 2, headers={"Content-Type": "image/png"}),
        413,
        "request body is 4.0 MB; the limit is 2.0 MB",
    )
    _fails(
        client.post("/api/predict", files={"image": ("big.png", big, "image/png")}), 413, "limit"
    )

    def chunks():  # no Content-Length: the limit must hold on the bytes that arrive
        for _ in range(40):
            yield b"\x00" * 65536

    _fails(
        client.post("/api/predict", content=chunks(), headers={"Content-Type": "image/png"}),
        413,
        "larger than the 2.0 MB limit",
    )


def test_empty_is_400(client):
    _fails(
        client.post("/api/predict", content=b"", headers={"Content-Type": "image/png"}),
        400,
        "empty",
    )
    _fails(
        client.post("/api/predict", content=b"", headers={"Content-Type": "application/json"}),
        400,
        "empty",
    )
    _fails(client.post("/api/predict", files={"image": ("e.png", b"", "image/png")}), 400, "empty")


def test_not_an_image_is_400(client):
    _fails(
        client.post(
            "/api/predict", content=b"GIF89a nonsense", headers={"Content-Type": "image/gif"}
        ),
        400,
        "not an image",
    )
    _fails(
        client.post("/api/predict", files={"image": ("x.png", b"plain text", "image/png")}),
        400,
        "x.png: not an image",
    )
    _fails(
        client.post("/api/predict", files={"picture": ("x.png", b"123", "image/png")}),
        400,
        "file field named 'image'",
    )
    bomb = png_with_header(100_000, 100_000)
    _fails(
        client.post("/api/predict", content=bomb, headers={"Content-Type": "image/png"}),
        422,
        "decompression bomb",
    )


def test_bad_json_and_wrong_shapes(client):
    post = client.post
    _fails(
        post("/api/predict", content=b"{oops", headers={"Content-Type": "application/json"}),
        400,
        "not valid JSON",
    )
    _fails(post("/api/predict", json=[1, 2]), 422, 'object with "pixels"')
    _fails(post("/api/predict", json={"pixels": [[0] * 28] * 27}), 422, "28x28")
    _fails(post("/api/predict", json={"pixels": [[0] * 27] * 28}), 422, "row 0 has 27 values")
    _fails(post("/api/predict", json={"pixels": [[0] * 28] * 27 + [[0] * 27 + ["x"]]}), 422, '"x"')
    _fails(post("/api/predict", json={"pixels": [[0] * 28] * 27 + [[0] * 27 + [256]]}), 422, "256")
    _fails(post("/api/predict", json={"pixels": 7}), 422, "28x28")


def test_blank_is_422(client):
    _fails(client.post("/api/predict", json={"pixels": [[0] * 28] * 28}), 422, "no digit found")
    white = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(white, format="JPEG")
    _fails(
        client.post(
            "/api/predict", content=white.getvalue(), headers={"Content-Type": "image/jpeg"}
        ),
        422,
        "blank image",
    )


def test_other_methods_and_paths(client):
    assert client.get("/api/predict").status_code == 405
    assert client.get("/nothing-here").status_code == 404


# ------------------------------------------------------------------ the CLI verb
def test_serve_cli_errors(checkpoint, tmp_path, monkeypatch, capsys):
    assert cli.main(["serve", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", str(checkpoint), "--port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert cli.main(["serve", str(checkpoint)]) == 2
    assert SERVE_EXTRA in capsys.readouterr().err


def test_default_host_is_loopback():
    parser = cli.build_parser()
    args = parser.parse_args(["serve", "x.pt"])
    assert args.host == "127.0.0.1" and args.port == 8000


# ------------------------------------------------------------------ the page, in a browser
@contextlib.contextmanager
def running(app):
    """The app served as `mnistlab serve` serves it (its limits included), on a free port."""
    sock = serve_app.listen("127.0.0.1", 0)
    server = serve_app.make_server(app, sock)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def live_server(app):
    with running(app) as port:
        yield f"http://127.0.0.1:{port}/"


# ------------------------------------------------------------------ slow clients, real sockets
def _health(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096)


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while s.recv(4096):  # an error answer may come first; then the end of the stream
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_half_sent_requests_are_cut_and_health_still_answers(app, monkeypatch):
    """Idle half-sent headers, and a body that never completes, are closed after the request
    deadline; connections past the cap are closed at once; /api/health answers throughout
    once the slow ones are gone (before: they were held open forever, ~20,000 of them used
    up the file descriptors)."""
    monkeypatch.setattr(serve_app, "REQUEST_TIMEOUT_S", 1.0)
    monkeypatch.setattr(serve_app, "MAX_CONNECTIONS", 8)
    with running(app) as port:
        slow = []
        for i in range(12):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # headers never end
            else:
                s.sendall(
                    b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                    b"Content-Length: 1000\r\n\r\n0123456789"  # 10 of 1000 body bytes
                )
            slow.append(s)
        started = time.monotonic()
        assert all(_closed_by_server(s, 15) for s in slow)
        assert time.monotonic() - started < 10
        assert _health(port).startswith(b"HTTP/1.1 200")
        for s in slow:
            s.close()


def test_a_request_received_whole_is_answered_however_slow_the_client_was(app, monkeypatch):
    monkeypatch.setattr(serve_app, "REQUEST_TIMEOUT_S", 2.0)
    with running(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for part in (b"GET /api/health HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n"):
            s.sendall(part)
            time.sleep(0.3)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # a keep-alive connection's next request gets its own deadline
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


def test_oversized_headers_are_refused(app):
    with running(app) as port, socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
        assert s.recv(4096).startswith(b"HTTP/1.1 400")


@pytest.mark.browser
def test_drawing_a_one_in_the_browser(browser, live_server):
    problems = []
    page = browser.new_page(viewport={"width": 900, "height": 700})
    try:
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(live_server)
        page.wait_for_function("document.getElementById('model').textContent.includes('lenet')")
        assert page.locator("#prediction").inner_text() == "–"

        box = page.locator("#pad").bounding_box()
        x = box["x"] + box["width"] / 2
        page.mouse.move(x, box["y"] + box["height"] * 0.15)
        page.mouse.down()
        page.mouse.move(x, box["y"] + box["height"] * 0.85, steps=25)
        page.mouse.up()
        from playwright.sync_api import expect

        # Live answers arrive during the stroke too; wait for the final one rather than the first.
        expect(page.locator("#prediction")).to_have_text("1")
        assert "% sure" in page.locator("#confidence").inner_text()
        # The 28x28 the server returned is drawn: its centre column is ink.
        centre = page.evaluate(
            "() => document.getElementById('seen').getContext('2d').getImageData(14, 14, 1, 1).data[0]"
        )
        assert centre > 128
        assert page.locator("#bars .fill.best").count() == 1

        page.click("#clear")
        assert page.locator("#prediction").inner_text() == "–"
        assert page.locator("#bars .fill.best").count() == 0
    finally:
        page.close()
    assert problems == []


# ------------------------------------------------------------------ hostile requests (issue 13)
def test_absurd_json_numbers_are_422(client):
    # Issue 13, item 17: 10**400 is a valid JSON integer; float() of it overflowed into a 500.
    row = [0] * 28
    for value in (10**400, -(10**400), 2**64):
        pixels = [row] * 27 + [row[:-1] + [value]]
        _fails(client.post("/api/predict", json={"pixels": pixels}), 422, "row 27 holds")
    for literal in (b"1e400", b"-1e400", b"NaN", b"Infinity"):
        body = b'{"pixels": [' + b",".join([b"[" + b",".join([literal] * 28) + b"]"] * 28) + b"]}"
        response = client.post(
            "/api/predict", content=body, headers={"Content-Type": "application/json"}
        )
        _fails(response, 422, "row 0 holds")


def test_http_pixel_cap_is_smaller_than_for_local_files(client):
    from mnistlab.preprocess import MAX_PIXELS, ImageError, preprocess_image
    from mnistlab.serve.app import MAX_HTTP_PIXELS

    assert MAX_HTTP_PIXELS < MAX_PIXELS
    header = png_with_header(4000, 4000)  # 16 megapixels: a local file may be this large
    with pytest.raises(ImageError) as info:
        preprocess_image(header)
    assert info.value.reason == "corrupt"  # decoded (the data is fake), not refused for size
    _fails(
        client.post("/api/predict", content=header, headers={"Content-Type": "image/png"}),
        422,
        f"the limit is {MAX_HTTP_PIXELS / 1e6:g} megapixels",
    )


def test_concurrent_decodes_are_bounded(checkpoint, digit):
    # Issue 13, item 10: 16 concurrent large images were all decoded at once (4.65 GB peak).
    from mnistlab.serve.app import MAX_CONCURRENT_DECODES

    app = create_app(checkpoint)
    predictor = app.state.predictor
    real, lock = predictor.predict, threading.Lock()
    state = {"now": 0, "most": 0}

    def slow_predict(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        try:
            time.sleep(0.15)
            return real(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    predictor.predict = slow_predict
    _, label, png = digit
    codes = []
    with TestClient(app) as c:

        def post():
            response = c.post("/api/predict", content=png, headers={"Content-Type": "image/png"})
            codes.append((response.status_code, response.json().get("label")))

        threads = [threading.Thread(target=post) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert codes == [(200, label)] * 8
    assert 1 <= state["most"] <= MAX_CONCURRENT_DECODES < 8


MEMORY_PROBE = """
import io, sys, threading, time
from PIL import Image, ImageDraw
from fastapi.testclient import TestClient
from mnistlab.serve import create_app

def rss_mb():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 // 2**20

side = 2000  # 4 megapixels of RGBA: ~65 MB to decode and flatten, from a 19 KB PNG
image = Image.new("RGBA", (side, side), (255, 255, 255, 255))
ImageDraw.Draw(image).line([(1000, 200), (1000, 1800)], fill=(0, 0, 0, 255), width=120)
buffer = io.BytesIO()
image.save(buffer, format="PNG")
png = buffer.getvalue()
small = io.BytesIO()
image.resize((200, 200)).save(small, format="PNG")
del image, buffer
with TestClient(create_app(sys.argv[1])) as client:
    post = lambda: client.post("/api/predict", content=png, headers={"Content-Type": "image/png"})
    # Warm up (imports, the model's first forward pass) with a small picture of the digit.
    warm = client.post("/api/predict", content=small.getvalue(), headers={"Content-Type": "image/png"})
    assert warm.status_code == 200
    base, peak, running = rss_mb(), 0, True

    def sample():  # the peak of this phase only (ru_maxrss also remembers the start-up)
        global peak
        while running:
            peak = max(peak, rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    running = False
    sampler.join()
print(peak - base, rss_mb() - base)
"""


def test_server_memory_is_bounded_and_given_back(checkpoint):
    # Issue 13, item 10. Four 4-megapixel requests at once: with two decode slots the peak is
    # about two decodes (measured +137 to +142 MB; with four slots +244 to +291 MB), and the
    # process ends where it started. (That `release_memory` gives freed memory back is
    # tested on its own in test_predict.)
    import subprocess

    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", MEMORY_PROBE, str(checkpoint)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grew, kept = map(int, done.stdout.split())
    assert grew < 200, (grew, kept)
    assert kept < 20, (grew, kept)


# ------------------------------------------------------------------ photos, warnings, the default model (issue 14)
def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _two_digits(mnist) -> bytes:
    row = np.concatenate([np.pad(d, ((0, 0), (2, 2))) for d in mnist.test_images[:2].numpy()], 1)
    return _png(Image.fromarray(255 - row).resize((row.shape[1] * 6, row.shape[0] * 6)))


def test_answers_carry_calibration_and_warnings(client, digit, mnist):
    _, label, png = digit
    body = client.post("/api/predict", files={"image": ("seven.png", png, "image/png")}).json()
    assert body["label"] == label and body["warning"] is None and body["calibrated"] is True
    two = client.post("/api/predict", files={"image": ("72.png", _two_digits(mnist), "image/png")})
    assert two.status_code == 200 and "side by side" in two.json()["warning"]
    info = client.get("/api/model").json()
    assert info["calibrated"] is True and info["default_model"] is False


def test_without_a_checkpoint_the_default_model_is_served(digit):
    _, label, png = digit
    with TestClient(create_app()) as default:
        info = default.get("/api/model").json()
        assert info["default_model"] is True and info["model"] == "fastnet"
        assert info["realworld"]["accuracy_reporting_half"] >= 0.95
        response = default.post("/api/predict", content=png, headers={"Content-Type": "image/png"})
        assert response.json()["label"] == label


def test_serve_without_a_checkpoint_says_so(monkeypatch):
    import uvicorn

    from mnistlab.serve import app as serve_app

    monkeypatch.setattr(uvicorn.Server, "run", lambda *a, **k: None)
    lines = []
    serve_app.run_server(None, "127.0.0.1", 0, log=lines.append)
    assert "serving the default model, fastnet" in lines[0]
    port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", lines[0]).group(1))
    assert port > 0  # --port 0: the port the system chose, not 0
    assert "mnistlab serve CHECKPOINT" in lines[1]


@pytest.mark.browser
def test_uploading_a_photo_in_the_browser(browser, live_server, digit, mnist, tmp_path):
    _, label, png = digit
    photo = tmp_path / "seven.png"
    photo.write_bytes(png)
    two = tmp_path / "seventy-two.png"
    two.write_bytes(_two_digits(mnist))
    from playwright.sync_api import expect

    problems = []
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(live_server)
        expect(page.locator("#model")).to_contain_text("lenet")
        assert "calibrated probabilities" in page.locator("#model").inner_text()

        # Waits by Playwright's own locators: polling page JavaScript would need eval, which
        # the page's Content-Security-Policy refuses.
        page.set_input_files("#file", str(photo))
        expect(page.locator("#prediction")).to_have_attribute("data-label", re.compile("^[0-9]$"))
        assert page.locator("#prediction").inner_text() == str(label)
        assert "% sure (calibrated)" in page.locator("#confidence").inner_text()
        assert page.locator("#warning").inner_text() == ""
        assert page.locator("#photo-preview").is_visible()
        assert "seven.png" in page.locator("#drop-text").inner_text()
        # What the model saw, drawn from the server's 28x28: a 7's stem crosses the middle row.
        row = page.evaluate(
            "() => Array.from(document.getElementById('seen').getContext('2d')"
            ".getImageData(0, 14, 28, 1).data.filter((_, i) => i % 4 === 0))"
        )
        assert max(row) > 128 and min(row) == 0

        # Two digits in one photo: answered, with the warning shown.
        page.set_input_files("#file", str(two))
        expect(page.locator("#warning")).to_contain_text("probably")
        assert "side by side" in page.locator("#warning").inner_text()
        assert page.locator("#warning").is_visible()

        # Dropping a file on the drop zone does the same as choosing it.
        data = list(photo.read_bytes())
        page.evaluate(
            """bytes => {
                const file = new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"});
                const transfer = new DataTransfer();
                transfer.items.add(file);
                document.getElementById("drop").dispatchEvent(
                    new DragEvent("drop", {dataTransfer: transfer, bubbles: true, cancelable: true}));
            }""",
            data,
        )
        expect(page.locator("#drop-text")).to_contain_text("dropped.png")
        # The drop clears the answer at once and the new one comes later: wait for the answer,
        # not for the cleared warning (that raced on CI).
        expect(page.locator("#prediction")).to_have_text(str(label))
        assert page.locator("#warning").inner_text() == ""

        # A phone-sized photo over the server's 2 MB limit is shrunk by the page first.
        rng = np.random.default_rng(0)
        big = np.asarray(Image.open(photo).convert("L").resize((1400, 1400)), np.int16)
        noisy = np.clip(big[..., None] + rng.integers(-25, 25, (1400, 1400, 3)), 0, 255)
        large = tmp_path / "phone.png"
        Image.fromarray(noisy.astype(np.uint8), "RGB").save(large)
        assert large.stat().st_size > MAX_BODY_BYTES
        page.set_input_files("#file", str(large))
        expect(page.locator("#drop-text")).to_contain_text("phone.png")
        expect(page.locator("#prediction")).to_have_text(str(label))
        assert page.locator("#status").inner_text() == ""

        # Drawing afterwards still works, and clears the photo's warning.
        page.click("#clear")
        assert page.locator("#warning").inner_text() == ""
        if os.environ.get("MNISTLAB_SCREENSHOT"):  # for a person to look at the page
            page.set_input_files("#file", str(two))
            expect(page.locator("#warning")).to_contain_text("probably")
            page.screenshot(path=os.environ["MNISTLAB_SCREENSHOT"], full_page=True)
    finally:
        page.close()
    assert problems == []


@pytest.mark.browser
def test_the_page_quotes_the_reporting_half_for_the_default_model(browser):
    # Issue 22: never a real-world figure that includes the half used for tuning.
    from playwright.sync_api import expect

    real = read_checkpoint(default_checkpoint())["realworld"]
    with running(create_app()) as port:
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        try:
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#model")).to_contain_text("not used for tuning")
            held = f"{100 * real['accuracy_reporting_half']:.1f}% on 898 held-out scanned digits"
            assert held in page.locator("#model").inner_text()
        finally:
            page.close()


# ------------------------------------------------------------------ whole numbers (issue 22)
def _stroke(page, box, points) -> None:
    """One pen stroke through `points` given as fractions of the pad."""
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=15)
    page.mouse.up()


@pytest.mark.browser
def test_writing_a_number_in_the_browser(browser, live_server, tmp_path):
    from playwright.sync_api import expect

    problems = []
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(live_server)
        expect(page.locator("#model")).to_contain_text("lenet")
        page.check("#number-mode")
        box = page.locator("#pad").bounding_box()
        assert box["width"] > 2.5 * box["height"]  # the pad is wide for a number
        # 1, 1, 7: two upright strokes, then a bar and a slanting stem.
        _stroke(page, box, [(0.15, 0.15), (0.15, 0.85)])
        _stroke(page, box, [(0.38, 0.15), (0.38, 0.85)])
        _stroke(page, box, [(0.55, 0.18), (0.78, 0.18), (0.62, 0.85)])
        expect(page.locator("#prediction")).to_have_text("117")
        assert page.locator("#confidence").inner_text() == "3 of 3 digits read"
        page.screenshot(path=str(tmp_path / "number.png"))
        # Three boxes are drawn over the drawing: the overlay holds green pixels at each
        # box's left edge row, and none far from the ink.
        green = page.evaluate(
            """() => { const c = document.getElementById('boxes').getContext('2d');
                const d = c.getImageData(0, 0, 840, 280).data; let n = 0;
                for (let i = 0; i < d.length; i += 4) if (d[i + 1] > 150 && d[i] < 100) n++;
                return n; }"""
        )
        assert green > 300
        page.click("#clear")
        assert page.locator("#prediction").inner_text() == "–"
    finally:
        page.close()
    assert problems == []


def test_number_api(client, mnist):
    digits = mnist.test_images[:3].numpy()  # 7, 2, 1
    row = np.concatenate([np.pad(d, ((4, 4), (6, 6))) for d in digits], 1)
    png = _png(Image.fromarray(255 - row).resize((row.shape[1] * 4, row.shape[0] * 4)))
    body = client.post("/api/number", content=png, headers={"Content-Type": "image/png"}).json()
    assert body["number"] == "721" and body["complete"] is True
    assert [d["box"][0] for d in body["digits"]] == sorted(d["box"][0] for d in body["digits"])
    assert all(0 <= d["box"][0] < d["box"][2] <= row.shape[1] * 4 for d in body["digits"])
    _fails(client.post("/api/number", json={"pixels": []}), 415, "unsupported Content-Type")
    blank = _png(Image.new("L", (200, 80), 255))
    _fails(
        client.post("/api/number", content=blank, headers={"Content-Type": "image/png"}),
        422,
        "no digit",
    )


@pytest.mark.browser
def test_a_face_is_not_a_digit_in_the_browser(browser, live_server, tmp_path):
    from playwright.sync_api import expect

    path = tmp_path / "face.png"
    drawn_face(path)
    problems = []
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    try:
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(live_server)
        expect(page.locator("#model")).to_contain_text("lenet")
        page.set_input_files("#file", str(path))
        expect(page.locator("#confidence")).to_have_text("not a digit")
        assert page.locator("#prediction").inner_text() == "?"
        assert "not a digit: " in page.locator("#warning").inner_text()
    finally:
        page.close()
    assert problems == []
