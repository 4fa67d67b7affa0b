"""Export a checkpoint to ONNX, and prove the copy computes what the original does.

The exported graph takes raw pixels and does the normalisation itself, so a consumer needs
no mnistlab numbers to use it:

    input  "image"   float32 (B, 1, 28, 28): grey levels in [0, 255], white digit on black,
                     in MNIST form (`mnistlab.preprocess.preprocess_image` makes it); B is 1
                     (or `batch_size`), or any size with `dynamic_batch=True`
    output "logits"  float32 (B, num_classes): apply softmax for probabilities

The model name, normalisation, class names, the calibration temperature and this
description travel in the file's metadata, with the steps of the preprocessing that makes
"MNIST form" from a picture (`mnistlab.preprocess.preprocess_image`, numpy and Pillow only).
Calibrated probabilities, as `mnistlab predict` prints them, are softmax(logits / T). Before
it is written (atomically), the export is checked with onnxruntime on real test images of the
checkpoint's dataset: the largest absolute logit difference must be at most `tolerance` and
every prediction must agree.

Exporter: TorchScript-based (`dynamo=False`) first: deterministic, ~1 s, and it handles every
model in the zoo but one; torch.export-based (`dynamo=True`) as the fallback, which also
handles that one (vgg11_seed's adaptive pool upsamples 1x1 to 7x7) but takes several seconds.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import load_checkpoint
from .data import load_dataset
from .errors import UserError
from .fileio import OutputError, atomic_write_bytes, describe_os_error, regular_file_problem
from .predict import check_parents, class_names_of, same_file
from .preprocess import STEPS, first_line

ONNX_EXTRA = "ONNX export needs the onnx extra: pip install 'mnistlab[onnx]'"
INPUT_NAME, OUTPUT_NAME = "image", "logits"
TORCHSCRIPT_OPSET = 17  # well supported by onnxruntime releases of the last few years
DYNAMO_OPSET = 18  # the torch.export-based exporter's minimum
CHECK_IMAGES = 256
TOLERANCE = 1e-4
INPUT_DOC = (
    "image: float32 (B, 1, H, W) grey levels in [0, 255], white digit on black, MNIST form "
    "(20x20 box, centre of mass at the centre); the graph normalises it. "
    "logits: float32 (B, num_classes); softmax gives probabilities."
)

PREPROCESSING_DOC = (
    "pictures -> input: mnistlab.preprocess.preprocess_image(path or 2-D array) -> (28, 28) "
    "uint8, then [None, None].astype(float32); needs only numpy and Pillow (the file "
    "src/mnistlab/preprocess.py of mnistlab, importable without torch). Steps: " + STEPS
)


class WithNormalization(nn.Module):
    """The model behind the same arithmetic as `engine.to_input`: raw pixels in, logits out."""

    def __init__(self, model: nn.Module, mean: float, std: float):
        super().__init__()
        self.model = model
        self.mean, self.std = float(mean), float(std)

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # (B, 1, H, W) in [0, 255]
        return self.model((image / 255 - self.mean) / self.std)  # (B, classes)


# A fixed batch is traced and checked at full size (its input alone is 3 KB an image, its
# activations far more): 100,000 grew to 3.5 GB before onnxruntime died.
MAX_BATCH_SIZE = 1024


@contextlib.contextmanager
def _quiet_stderr():
    """The TorchScript exporter prints its whole IR graph from C++ when it fails; the fallback
    makes that noise pointless, so silence file descriptor 2 (not just sys.stderr)."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (embedded interpreters): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _export_proto(wrapper: nn.Module, example: torch.Tensor, dynamic_batch: bool):
    """(onnx.ModelProto, exporter name); TorchScript first, torch.export as the fallback."""
    import onnx

    names = {"input_names": [INPUT_NAME], "output_names": [OUTPUT_NAME]}
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    try:
        buffer = io.BytesIO()
        with warnings.catch_warnings(), _quiet_stderr():
            # The deprecation notice is about the default; choosing this exporter is deliberate.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrapper,
                (example,),
                buffer,
                dynamo=False,
                opset_version=TORCHSCRIPT_OPSET,
                do_constant_folding=True,
                dynamic_axes=axes,
                **names,
            )
        return onnx.load_from_string(buffer.getvalue()), "torchscript"
    except Exception as exc:  # unsupported operator, or the exporter is gone in a later torch
        first_error = exc
    try:
        import onnxscript  # noqa: F401  (the torch.export-based exporter is built on it)
    except ImportError:
        raise UserError(ONNX_EXTRA) from None
    # torch.export's ONNX registry logs a warning per missing torchvision operator.
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    try:
        dynamic_shapes = (
            ({0: torch.export.Dim("batch", min=1, max=65536)},) if dynamic_batch else None
        )
        logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                wrapper,
                (example,),
                dynamo=True,
                opset_version=DYNAMO_OPSET,
                verbose=False,
                dynamic_shapes=dynamic_shapes,
                **names,
            )
        return program.model_proto, "dynamo"
    except Exception as exc:
        raise UserError(
            f"ONNX export failed with both exporters: TorchScript: "
            f"{first_line(first_error)}; torch.export: {first_line(exc)}"
        ) from None
    finally:
        logger.setLevel(level)


def written_by_export(path: str | os.PathLike) -> bool:
    """Whether `path` is an ONNX model this module wrote (its metadata names an mnistlab model)."""
    import onnx

    if regular_file_problem(path) is not None:  # a FIFO would block onnx.load
        return False
    try:
        if Path(path).stat().st_size > 2**31:  # protobuf's own limit: not one of ours
            return False
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # unreadable, or not ONNX at all
        return False
    return any(p.key == "mnistlab.model" for p in proto.metadata_props)


def check_out(out: Path, checkpoint: str | os.PathLike, force: bool = False) -> None:
    """Refuse, before any work, an output that is the input, a folder, a place under a file,
    or (without `force`) a file that `export_onnx` did not write."""
    if same_file(out, Path(checkpoint)):
        raise UserError(
            f"--out {out}: is the checkpoint being exported; give another file name, "
            "e.g. one ending in .onnx"
        )
    try:
        if out.is_dir():
            raise UserError(f"{out}: is a folder; give a file name ending in .onnx")
        check_parents(out)
        exists = out.exists()
    except OSError as exc:
        raise OutputError(describe_os_error(out, exc)) from None
    if exists and not force and not written_by_export(out):
        raise UserError(
            f"{out}: exists and was not written by mnistlab export; use --force to replace it, "
            "or give another --out"
        )


def _check_images(meta: dict, data_dir: str | None, n: int) -> tuple[np.ndarray, str]:
    """(n, H, W) uint8 test images of the checkpoint's dataset; the bundled MNIST when that
    dataset is not at hand (a numeric check needs realistic inputs, not the right labels)."""
    config = meta.get("config") or {}
    name = config.get("dataset", "mnist")
    try:
        dataset = load_dataset(name, data_dir or config.get("data_dir"))
    except UserError:
        name = "mnist (bundled; the checkpoint's dataset is not available)"
        dataset = load_dataset("mnist")
    return dataset.test_images[:n].numpy(), f"{name} test"


def _describe_graph(proto, meta: dict[str, Any], num_classes: int) -> None:
    """Everything a consumer of the file needs, in its metadata: input, preprocessing, classes,
    normalisation and the temperature that calibrates its probabilities."""
    norm = meta["normalization"]
    proto.doc_string = f"mnistlab {meta['model']}. {INPUT_DOC}"
    for key, value in {
        "mnistlab.model": meta["model"],
        "mnistlab.input": INPUT_DOC,
        "mnistlab.normalization": f"mean={norm['mean']} std={norm['std']} (applied inside the graph)",
        "mnistlab.class_names": ",".join(class_names_of(meta, num_classes)),
        "mnistlab.test_acc": str((meta.get("metrics") or {}).get("test_acc")),
        "mnistlab.preprocessing": PREPROCESSING_DOC,
        "mnistlab.temperature": str(float(meta.get("temperature") or 1.0)),
        "mnistlab.probabilities": "softmax(logits / mnistlab.temperature): calibrated, as "
        "`mnistlab predict` prints them",
    }.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _compare(ort, payload: bytes, wrapper, images, dynamic_batch: bool, batch_size: int):
    """The same pixels through torch and through onnxruntime: (inputs, max |logit
    difference|, fraction of identical predictions)."""
    if not dynamic_batch:
        usable = max(batch_size, len(images) // batch_size * batch_size)
        images = np.resize(images, (usable, *images.shape[1:]))  # repeats if too few
    x = images[:, None].astype(np.float32)  # (N, 1, H, W) in [0, 255]
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    step = len(x) if dynamic_batch else batch_size
    onnx_logits = np.concatenate(
        [
            session.run([OUTPUT_NAME], {INPUT_NAME: x[i : i + step]})[0]
            for i in range(0, len(x), step)
        ]
    )
    with torch.inference_mode():
        torch_logits = wrapper(torch.from_numpy(x)).float().numpy()
    max_abs_diff = float(np.abs(onnx_logits - torch_logits).max())
    agreement = float((onnx_logits.argmax(1) == torch_logits.argmax(1)).mean())
    return x, max_abs_diff, agreement


def export_onnx(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    dynamic_batch: bool = False,
    batch_size: int = 1,
    check_images: int = CHECK_IMAGES,
    tolerance: float = TOLERANCE,
    data_dir: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write `checkpoint` as an ONNX model (default: beside it, same stem, `.onnx`) and
    check it with onnxruntime. Returns the path, the exporter used, `max_abs_diff` (largest
    absolute logit difference), `agreement` (fraction of identical predictions) and
    `images` (how many were checked). Nothing is written when the check fails. `out` is never
    the checkpoint itself, and never a file this function did not write, unless `force`."""
    try:
        import onnx
        import onnxruntime as ort
    except ImportError:
        raise UserError(ONNX_EXTRA) from None
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise UserError(
            f"batch size must be in [1, {MAX_BATCH_SIZE}], got {batch_size} (a fixed batch; "
            "--dynamic-batch accepts any size)"
        )
    if check_images < 1:
        raise UserError(f"check images must be >= 1, got {check_images}")
    model, meta = load_checkpoint(checkpoint, "cpu")
    out = Path(out) if out is not None else Path(checkpoint).with_suffix(".onnx")
    check_out(out, checkpoint, force)
    height, width = (list(meta.get("image_size") or (28, 28)) + [28, 28])[:2]
    in_channels = int(meta["model_kwargs"].get("in_channels", 1))
    norm = meta["normalization"]
    wrapper = WithNormalization(model, norm["mean"], norm["std"]).eval()
    # A dynamic batch is traced with 2, not 1: a traced 1 can be baked into the graph.
    example = torch.zeros(2 if dynamic_batch else batch_size, in_channels, height, width)
    proto, exporter = _export_proto(wrapper, example, dynamic_batch)

    num_classes = int(meta["model_kwargs"].get("num_classes", 10))
    _describe_graph(proto, meta, num_classes)
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise UserError(f"the exported ONNX model is invalid ({first_line(exc)})") from None
    payload = proto.SerializeToString()

    images, source = _check_images(meta, data_dir, check_images)
    x, max_abs_diff, agreement = _compare(ort, payload, wrapper, images, dynamic_batch, batch_size)
    batch = "batch" if dynamic_batch else batch_size
    shape = [batch, in_channels, height, width]
    report = {
        "path": str(out),
        "exporter": exporter,
        "bytes": len(payload),
        "input": {"name": INPUT_NAME, "shape": shape, "dtype": "float32", "range": [0, 255]},
        "output": {"name": OUTPUT_NAME, "shape": [batch, num_classes]},
        "images": len(x),
        "check_data": source,
        "max_abs_diff": max_abs_diff,
        "agreement": agreement,
        "tolerance": tolerance,
    }
    if not (max_abs_diff <= tolerance and agreement == 1.0):
        raise UserError(
            f"ONNX check failed on {len(x)} images: max |logit difference| {max_abs_diff:.3g} "
            f"(limit {tolerance:g}), predictions agree on {agreement:.2%}; nothing written"
        )
    atomic_write_bytes(out, payload)
    return report
