"""`mnistlab export --format onnx`: the ONNX copy computes what the checkpoint computes."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from mnistlab import cli
from mnistlab.errors import UserError
from mnistlab.export import ONNX_EXTRA, export_onnx
from mnistlab.predict import Predictor


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _torch_logits(checkpoint, images: np.ndarray) -> np.ndarray:
    """The checkpoint's own logits for (N, 28, 28) uint8 digits, via the predictor's path."""
    from mnistlab.inference import to_input

    p = Predictor(checkpoint)
    with torch.inference_mode():
        return p.model(to_input(torch.from_numpy(images), p.mean, p.std, False)).numpy()


def test_static_export_matches_torch(tmp_path, checkpoint, mnist):
    out = tmp_path / "lenet.onnx"
    report = export_onnx(checkpoint, out)
    assert out.is_file() and report["path"] == str(out)
    assert report["images"] == 256 and report["max_abs_diff"] <= 1e-4 and report["agreement"] == 1.0
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["mnistlab.model"] == "lenet" and "[0, 255]" in meta["mnistlab.input"]

    session = _session(out)
    (inp,) = session.get_inputs()
    assert inp.name == "image" and inp.shape == [1, 1, 28, 28] and inp.type == "tensor(float)"
    # Raw pixels in: the graph normalises them itself.
    images = mnist.test_images[300:310].numpy()
    onnx_logits = np.concatenate(
        [
            session.run(["logits"], {"image": img[None, None].astype(np.float32)})[0]
            for img in images
        ]
    )
    reference = _torch_logits(checkpoint, images)
    assert np.abs(onnx_logits - reference).max() <= 1e-4
    assert (onnx_logits.argmax(1) == reference.argmax(1)).all()


def test_dynamic_batch_export_takes_any_batch(tmp_path, checkpoint, mnist, capsys):
    out = tmp_path / "dyn.onnx"
    code = cli.main(
        ["export", str(checkpoint), "--format", "onnx", "--out", str(out), "--dynamic-batch"]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "max |logit difference|" in printed
    assert "predictions agree 100.00%" in printed and "[batch, 1, 28, 28]" in printed

    session = _session(out)
    assert session.get_inputs()[0].shape[0] == "batch"
    images = mnist.test_images[500:507].numpy()  # a batch of 7: neither the example's 2 nor 1
    (logits,) = session.run(["logits"], {"image": images[:, None].astype(np.float32)})
    assert logits.shape == (7, 10)
    reference = _torch_logits(checkpoint, images)
    assert np.abs(logits - reference).max() <= 1e-4
    assert (logits.argmax(1) == reference.argmax(1)).all()


def test_default_path_is_beside_the_checkpoint(tmp_path, checkpoint):
    copy = tmp_path / "model.pt"
    copy.write_bytes(checkpoint.read_bytes())
    report = export_onnx(copy, check_images=16)
    assert report["path"] == str(tmp_path / "model.onnx") and (tmp_path / "model.onnx").is_file()


def test_failed_check_writes_nothing(tmp_path, checkpoint):
    out = tmp_path / "never.onnx"
    with pytest.raises(UserError, match="ONNX check failed on 16 images.*nothing written"):
        export_onnx(checkpoint, out, check_images=16, tolerance=-1.0)
    assert list(tmp_path.iterdir()) == []


def test_both_exporters_failing_is_one_line(tmp_path, checkpoint, monkeypatch):
    def broken(*args, dynamo=True, **kwargs):
        raise RuntimeError(f"unsupported operator (dynamo={dynamo})\nlong details")

    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(UserError) as info:
        export_onnx(checkpoint, tmp_path / "x.onnx")
    message = str(info.value)
    assert "both exporters" in message and "dynamo=False" in message and "dynamo=True" in message
    assert "\n" not in message


def test_missing_extra_says_how_to_install(tmp_path, checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    assert cli.main(["export", str(checkpoint), "--out", str(tmp_path / "x.onnx")]) == 2
    assert ONNX_EXTRA in capsys.readouterr().err


def test_bad_checkpoint_and_flags(tmp_path, capsys):
    assert cli.main(["export", str(tmp_path / "none.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["export", str(tmp_path / "none.pt"), "--format", "tflite"])


# ---------------------------------------------------------------- never overwrite (issue 13)
def test_out_that_is_the_checkpoint_is_refused(tmp_path, checkpoint, capsys):
    # Issue 13, item 6: `export CK --out CK` replaced the checkpoint with the ONNX file.
    copy = tmp_path / "model.pt"
    copy.write_bytes(checkpoint.read_bytes())
    for out in (copy, tmp_path / "." / "model.pt"):
        for force in ([], ["--force"]):
            assert cli.main(["export", str(copy), "--out", str(out), *force]) == 2
            err = capsys.readouterr().err
            assert "is the checkpoint being exported" in err and err.count("\n") == 1
    assert copy.read_bytes() == checkpoint.read_bytes()


def test_out_over_a_file_export_did_not_write_needs_force(tmp_path, checkpoint, capsys):
    theirs = tmp_path / "notes.onnx"
    theirs.write_bytes(b"someone's file")
    args = ["export", str(checkpoint), "--out", str(theirs), "--check-images", "8"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert f"{theirs}: exists and was not written by mnistlab export" in err and "--force" in err
    assert theirs.read_bytes() == b"someone's file"
    assert cli.main([*args, "--force"]) == 0
    assert onnx.load(str(theirs)).graph.input[0].name == "image"
    # What export wrote itself it may replace on a rerun.
    assert cli.main(args) == 0


def test_unwritable_out_is_one_line(tmp_path, checkpoint, capsys, monkeypatch):
    import errno
    import os

    blocker = tmp_path / "somefile"
    blocker.write_text("a file where a folder would go")
    args = ["export", str(checkpoint), "--check-images", "8", "--out"]
    assert cli.main([*args, str(blocker / "out.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mnistlab: error: cannot write") and err.count("\n") == 1

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    assert cli.main([*args, str(tmp_path / "out.onnx")]) == 2
    err = capsys.readouterr().err
    assert "the disk is full" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == [blocker]  # no temporary file left behind


def test_hostile_checkpoint_metadata_is_refused(tmp_path, checkpoint, capsys):
    meta = torch.load(checkpoint, weights_only=True)
    meta["normalization"] = {"mean": 0.1, "std": 0.0}
    torch.save(meta, tmp_path / "bad.pt")
    assert cli.main(["export", str(tmp_path / "bad.pt")]) == 2
    assert "std must be a finite number > 0" in capsys.readouterr().err
    assert not (tmp_path / "bad.onnx").exists()


# ---------------------------------------------------------------- torch-free consumers (issue 14)
TORCH_FREE = r"""
import json, sys
sys.modules["torch"] = None  # `import torch` now raises ImportError: nothing here may need it
import numpy as np
import onnxruntime as ort
from mnistlab.preprocess import preprocess_image

session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
temperature = float(meta["mnistlab.temperature"])
results = []
for path in sys.argv[2:]:
    x = preprocess_image(path)[None, None].astype(np.float32)  # (1, 1, 28, 28), 0-255
    (logits,) = session.run(["logits"], {"image": x})
    z = logits[0].astype(np.float64) / temperature
    p = np.exp(z - z.max())
    results.append({"label": int(p.argmax()), "probabilities": (p / p.sum()).tolist()})
loaded = sorted({m.split(".")[0] for m, mod in sys.modules.items() if mod is not None})
print(json.dumps({"results": results, "torch_loaded": "torch" in loaded}))
"""


def test_onnx_with_numpy_pillow_and_onnxruntime_alone_matches_predict(
    tmp_path, checkpoint, mnist, capsys
):
    import json
    import os
    import subprocess
    from pathlib import Path

    from PIL import Image

    out = tmp_path / "model.onnx"
    export_onnx(checkpoint, out, dynamic_batch=True, check_images=16)
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert "mnistlab.preprocess.preprocess_image" in meta["mnistlab.preprocessing"]
    assert "numpy and Pillow" in meta["mnistlab.preprocessing"]
    assert "centre of mass" in meta["mnistlab.preprocessing"]
    assert float(meta["mnistlab.temperature"]) == pytest.approx(
        torch.load(checkpoint, weights_only=True)["temperature"]
    )
    # Raw picture files, as a user has them: photographed dark on light, JPEG and PNG.
    files = []
    for i in range(6):
        digit = mnist.test_images[i].numpy()
        picture = Image.fromarray(255 - digit).resize((140, 140), Image.Resampling.BICUBIC)
        files.append(tmp_path / f"d{i}.{'jpg' if i % 2 else 'png'}")
        picture.convert("RGB").save(files[-1])
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(out), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["torch_loaded"] is False

    assert cli.main(["predict", str(checkpoint), *map(str, files), "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)
    for mine, theirs in zip(answer["results"], expected, strict=True):
        assert mine["label"] == theirs["label"]
        assert np.abs(np.array(mine["probabilities"]) - theirs["probabilities"]).max() < 1e-4
