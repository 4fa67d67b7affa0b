"""Issue 24's hostile cases on the "use" surfaces and the run folder: files the tool did not
create are never replaced, non-regular files are refused before they are opened, in-memory
inputs are capped like files, the Python API names a wrong type, and `predict`'s exit code
follows one rule. Each test failed before its fix."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from cli_helper import cli as cli_run
from PIL import Image

from mnistlab import cli


@contextlib.contextmanager
def unblocked(fifo, seconds: float = 10):
    """Fail (instead of hanging the suite) if the block opens `fifo`: an open() of a FIFO
    waits for a writer, so after `seconds` writers come, one every 0.2 s, until the block
    ends; then the test fails."""
    fired, done = threading.Event(), threading.Event()

    def writers() -> None:
        if done.wait(seconds):
            return
        fired.set()
        while not done.wait(0.2):
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=writers, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
    assert not fired.is_set(), f"{fifo} was opened: it blocked until a writer came"


@pytest.fixture
def digit_png(tmp_path, mnist):
    path = tmp_path / "seven.png"
    Image.fromarray(mnist.test_images[0].numpy()).save(path)
    return path


# ------------------------------------------------------------------ non-regular files (item 10)
def test_a_fifo_image_is_refused_without_blocking(tmp_path, checkpoint, digit_png, capsys):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    for args in (["predict", fifo], ["predict", checkpoint, digit_png, fifo]):
        with unblocked(fifo):
            code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert code == 2 and out == ""
        assert err == f"mnistlab: error: {fifo}: is a named pipe (FIFO), not a regular file\n"


def test_a_fifo_checkpoint_is_refused_without_blocking(tmp_path, digit_png, capsys):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)
    for args in (
        ["predict", fifo, digit_png],
        ["evaluate", fifo],
        ["export", fifo, "--out", tmp_path / "m.onnx"],
    ):
        with unblocked(fifo):
            code = cli.main([str(a) for a in args])
        err = capsys.readouterr().err
        assert code == 2, args
        assert err == f"mnistlab: error: {fifo}: is a named pipe (FIFO), not a regular file\n"


def test_a_link_to_a_device_is_named_as_one(tmp_path, checkpoint, digit_png, capsys):
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    code = cli.main(["predict", str(checkpoint), str(digit_png), str(link)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        f"mnistlab: error: {link}: is a character device (a link to /dev/zero), "
        "not a regular file\n"
    )


def test_the_python_api_refuses_a_fifo_too(tmp_path, checkpoint):
    from mnistlab import load_model, predict
    from mnistlab.errors import UserError

    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    with unblocked(fifo), pytest.raises(UserError, match="named pipe"):
        predict(checkpoint, str(fifo))
    with unblocked(fifo), pytest.raises(UserError, match="named pipe"):
        load_model(fifo)


def test_a_fifo_where_an_output_goes_is_not_opened(tmp_path, checkpoint, digit_png, capsys):
    out = tmp_path / "seen"
    out.mkdir()
    fifo = out / "seven.png"  # where --save-preprocessed would write
    os.mkfifo(fifo)
    with unblocked(fifo):
        code = cli.main(
            ["predict", str(checkpoint), str(digit_png), "--save-preprocessed", str(out)]
        )
    assert code == 2
    assert "was not written by mnistlab" in capsys.readouterr().err


# ------------------------------------------------------------------ run folders (item 1)
TINY = ["--epochs", "1", "--train-subset", "128", "--eval-subset", "64", "--device", "cpu"]
TINY_CONFIG = dict(
    model="mlp",
    model_kwargs={"hidden": [8]},
    epochs=1,
    train_subset=128,
    eval_subset=64,
    device="cpu",
    precision="fp32",
)


@pytest.mark.parametrize(
    "names", [("checkpoint.pt",), ("history.json",), ("history.json", "checkpoint.pt")]
)
def test_train_never_replaces_run_files_it_did_not_write(tmp_path, names, tiny_dataset):
    from mnistlab import TrainConfig, train
    from mnistlab.errors import UserError

    out = tmp_path / "p"
    out.mkdir()
    for name in names:
        (out / name).write_bytes(b"the user's own " + name.encode())
    message = (
        f"{out}: holds {', '.join(names)} that mnistlab did not write (no config.json of a run "
        "beside them); use another out_dir"
    )
    code, stdout, stderr = cli_run(
        "train", "--model", "mlp", "--arch", "hidden=[8]", *TINY, "--out-dir", out
    )
    assert (code, stdout, stderr) == (2, "", f"mnistlab: error: {message}\n")
    with pytest.raises(UserError, match="did not write"):
        train(TrainConfig(**TINY_CONFIG, out_dir=str(out)), tiny_dataset, progress=False)
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names:
        assert (out / name).read_bytes() == b"the user's own " + name.encode()


def test_train_still_reruns_its_own_folder(tmp_path, tiny_idx_dir):
    from mnistlab import TrainConfig, train

    out = tmp_path / "p"
    config = TrainConfig(**TINY_CONFIG, data_dir=str(tiny_idx_dir), out_dir=str(out))
    train(config, progress=False, log=lambda *a: None)
    assert (out / "checkpoint.pt").is_file() and (out / "config.json").is_file()
    code, stdout, stderr = cli_run(
        "train", "--model", "mlp", "--arch", "hidden=[8]", *TINY, "--precision", "fp32",
        "--out-dir", out, "--force", "--data-dir", tiny_idx_dir,
    )  # fmt: skip
    assert code == 0, stderr


# ------------------------------------------------------------------ URIs masked (item 7)
SECRET = "S3cr3tPW"
TINY_SWEEP = """\
[sweep]
name = "tiny"

[base]
model = "mlp"
model_kwargs = {hidden = [8]}
epochs = 1
train_subset = 128
eval_subset = 64
device = "cpu"
precision = "fp32"
"""


def test_mask_uri():
    from mnistlab.uris import mask_uri, mask_uris_in

    assert mask_uri(f"http://alice:{SECRET}@host:5000/x?a=1") == "http://***@host:5000/x?a=1"
    assert mask_uri(f"s3://KEY:{SECRET}@bucket/x") == "s3://***@bucket/x"
    assert mask_uri(f"https://{SECRET}@host/") == "https://***@host/"  # a token alone
    assert mask_uri(f"http://a:p@{SECRET}@host/") == "http://***@host/"  # an @ in the password
    for plain in ("sqlite:////tmp/m.db", "http://host:5000/", "/tmp/folder", "gs://b/p"):
        assert mask_uri(plain) == plain
    text = f"cannot open 'http://a:{SECRET}@h/p' nor s3://K:{SECRET}@b/x."
    assert mask_uris_in(text) == "cannot open 'http://***@h/p' nor s3://***@b/x."


def _no_secret_anywhere(tmp_path, args, env=None):
    """Run `mnistlab ARGS` in tmp_path; the secret is in no output and no file written."""
    (tmp_path / "tiny.toml").write_text(TINY_SWEEP)
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)} | (env or {}),
    )
    assert SECRET not in done.stdout and SECRET not in done.stderr, done.stdout + done.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert SECRET.encode() not in path.read_bytes(), path
    return done


def test_no_mlflow_secret_in_any_output_or_file(tmp_path):
    pytest.importorskip("mlflow")
    uri = f"http://alice:{SECRET}@127.0.0.1:9/"  # nobody listens on port 9
    fast = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
    args = ["sweep", "tiny.toml", "--out", "s", "--no-report", "--mlflow", uri]
    done = _no_secret_anywhere(tmp_path, args, fast)
    assert done.returncode == 2 and "http://***@127.0.0.1:9/" in done.stderr, done.stderr
    (tmp_path / "s" / "runs").mkdir(parents=True, exist_ok=True)
    done = _no_secret_anywhere(tmp_path, ["mlflow-import", "s", "--tracking-uri", uri], fast)
    assert done.returncode == 2 and "--tracking-uri http://***@127.0.0.1:9/" in done.stderr


def test_no_storage_secret_in_any_output_or_file(tmp_path):
    pytest.importorskip("pyarrow")
    args = ["sweep", "tiny.toml", "--out", "s", "--backend", "ray"]
    done = _no_secret_anywhere(tmp_path, [*args, "--storage", f"nosuch://KEY:{SECRET}@bucket/x"])
    assert done.returncode == 2 and "nosuch://***@bucket/x" in done.stderr, done.stderr


def test_the_mlflow_success_line_names_the_store_masked(tmp_path):
    from mnistlab.tracking import MlflowLogger

    where = MlflowLogger(tmp_path, f"http://alice:{SECRET}@tracking.example:5000/").where()
    assert where == "http://***@tracking.example:5000/"


# ------------------------------------------------------------------ save_model (item 2)
def test_save_model_never_replaces_a_file_it_did_not_write(tmp_path, checkpoint):
    from mnistlab import load_model, save_model
    from mnistlab.errors import UserError

    model = load_model(checkpoint)
    picture = tmp_path / "mydigit.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n the user's picture")
    with pytest.raises(UserError, match=r"mydigit.png: exists and is not an mnistlab checkpoint"):
        save_model(model, picture)
    assert picture.read_bytes() == b"\x89PNG\r\n\x1a\n the user's picture"
    with pytest.raises(UserError, match="is a folder"):
        save_model(model, tmp_path)
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with unblocked(fifo), pytest.raises(UserError, match="not an mnistlab checkpoint"):
        save_model(model, fifo)
    # Its own checkpoints are replaced; anything with force=True.
    ours = save_model(model, tmp_path / "model.pt")
    assert save_model(model, ours) == ours and load_model(ours) is not None
    save_model(model, picture, force=True)
    assert load_model(picture) is not None


# ------------------------------------------------------------------ Python API types (item 17)
@pytest.mark.parametrize("config", ["lenet", {"model": "lenet"}, None])
def test_train_names_a_config_of_the_wrong_type(config):
    from mnistlab import train

    with pytest.raises(TypeError, match=r"^train\(\) needs a TrainConfig, got (str|dict|NoneType)"):
        train(config)


def test_load_model_names_an_unknown_device(checkpoint):
    from mnistlab import load_model
    from mnistlab.errors import UserError

    with pytest.raises(UserError, match=r"^unknown device 'tpu'; valid: auto, cpu, cuda, mps$"):
        load_model(checkpoint, device="tpu")
    assert load_model(checkpoint, device="cpu:0") is not None  # torch's own forms still work


@pytest.mark.parametrize("payload", [b".", b"hello"])  # "pop from empty list", "(101)"
def test_a_file_that_is_no_checkpoint_gets_a_reason_not_the_unpicklers_stack(tmp_path, payload):
    from mnistlab import load_model
    from mnistlab.errors import UserError

    path = tmp_path / "model.pt"
    path.write_bytes(payload)
    with pytest.raises(UserError) as caught:
        load_model(path)
    message = str(caught.value)
    assert (
        message
        == f"{path}: not a readable mnistlab checkpoint (damaged or truncated, or not a checkpoint at all)"
    )


# ------------------------------------------------------------------ predict's exit code (item 18)
def test_predict_exit_code_rule(tmp_path, checkpoint, digit_png, capsys):
    """0: every picture classified; 1: some were, some files were not usable pictures;
    2: none could be classified. The README states the same rule."""
    empty, truncated, text = tmp_path / "empty.png", tmp_path / "cut.png", tmp_path / "notes.png"
    empty.write_bytes(b"")
    truncated.write_bytes(digit_png.read_bytes()[:60])
    text.write_text("not a picture")
    bad = [str(empty), str(truncated), str(text)]
    for images, code in (([str(digit_png)], 0), ([str(digit_png), *bad], 1), (bad, 2)):
        assert cli.main(["predict", str(checkpoint), *images]) == code, images
        err = capsys.readouterr().err
        assert err.count("mnistlab: error: ") == len(images) - (code != 2)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert "exit code follows one rule: 0 when every picture was classified; 1 when" in readme


# ------------------------------------------------------------------ size caps (item 13)
def test_an_array_is_capped_like_a_decoded_file(checkpoint):
    from mnistlab import predict
    from mnistlab.preprocess import ImageError

    huge = np.broadcast_to(np.uint8(0), (7000, 7000))  # 49 megapixels, no memory of its own
    with pytest.raises(ImageError, match=r"image is 7000x7000 pixels \(49 megapixels\); the "):
        predict(checkpoint, huge)
    (result,) = predict(checkpoint, [huge])
    assert result["label"] is None and "the limit is 40 megapixels" in result["error"]
    tall = np.broadcast_to(np.uint8(0), (30_000, 10))
    with pytest.raises(ImageError, match="the limit is 20,000 pixels a side"):
        predict(checkpoint, tall)


def test_export_refuses_a_huge_fixed_batch_before_any_work(tmp_path, checkpoint, capsys):
    pytest.importorskip("onnxruntime")
    out = tmp_path / "m.onnx"
    code = cli.main(["export", str(checkpoint), "--out", str(out), "--batch-size", "100000"])
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err == (
        "mnistlab: error: batch size must be in [1, 1024], got 100000 (a fixed batch; "
        "--dynamic-batch accepts any size)\n"
    )


# ------------------------------------------------------------------ the private Ray (item 8)
class _FakeRay:
    """What _connect asks of Ray, without a cluster: ray.init writes a token as Ray 2.5x
    does for a new local instance (open(path, "w"): the umask's mode, usually 0644)."""

    class exceptions:  # noqa: N801  (ray.exceptions)
        AuthenticationError = type("AuthenticationError", (Exception,), {})

    def __init__(self, token):
        self.token, self.calls = token, []
        constants = type("ray_constants", (), {"ENABLE_RAY_CLUSTER": True})
        self._private = type("_private", (), {"ray_constants": constants})

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        loopback = (
            os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0"
            and self._private.ray_constants.ENABLE_RAY_CLUSTER is False
        )
        self.calls.append(kwargs | {"loopback": loopback})
        if not self.token.exists():
            self.token.parent.mkdir(parents=True, exist_ok=True)
            self.token.write_text("secret-token")
            self.token.chmod(0o644)

    def get_runtime_context(self):
        raise RuntimeError("no context in a fake")


def test_the_private_ray_listens_on_loopback_and_keeps_its_token_private(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from mnistlab.backends import ray as ray_backend

    monkeypatch.setenv("HOME", str(tmp_path))
    token = tmp_path / ".ray" / "auth_token"
    fake = _FakeRay(token)
    assert ray_backend._connect(fake, None, log=lambda line: None) is True
    # Ray's single-machine mode while it starts (its servers bind 127.0.0.1; checked with
    # `ss -ltn` on a real start: all interfaces without it), then put back.
    assert fake.calls[0]["loopback"] and fake.calls[0]["address"] == "local"
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ
    assert fake._private.ray_constants.ENABLE_RAY_CLUSTER is True
    assert token.stat().st_mode & 0o777 == 0o600
    # A token the user had before is theirs: its mode is left alone.
    token.chmod(0o640)
    ray_backend._connect(fake, None, log=lambda line: None)
    assert token.stat().st_mode & 0o777 == 0o640


# ------------------------------------------------------------------ a claim that is a folder (item 14)
def test_a_claim_that_is_a_folder_is_one_line_and_kept(tmp_path, mnist):
    from mnistlab.sweep import load_sweep

    toml = tmp_path / "tiny.toml"
    toml.write_text(TINY_SWEEP)
    out = tmp_path / "s"
    claim = out / "runs" / load_sweep(str(toml)).runs[0].run_id / "claim.json"
    claim.mkdir(parents=True)
    (claim / "mine.txt").write_text("the user's")
    code, stdout, stderr = cli_run("sweep", toml, "--out", out, "--no-report")
    assert code == 2 and stderr == (
        f"mnistlab: error: {claim}: is a folder, not a claim file mnistlab wrote; move it away "
        "and rerun\n"
    )
    assert (claim / "mine.txt").read_text() == "the user's"  # never renamed aside nor deleted


def test_a_fifo_config_file_is_refused_without_blocking(tmp_path, capsys):
    fifo = tmp_path / "run.toml"
    os.mkfifo(fifo)
    for args in (["train", "--config", fifo], ["sweep", fifo, "--status"]):
        with unblocked(fifo):
            code = cli.main([str(a) for a in args])
        assert code == 2
        assert capsys.readouterr().err == (
            f"mnistlab: error: {fifo}: is a named pipe (FIFO), not a regular file\n"
        )
