"""The training engine: plain functions, no Trainer class.

`train(config)` runs the user's protocol: every epoch records train and validation loss and
accuracy; the epoch with the best validation accuracy is kept; the test set is evaluated once,
at the end, on those weights. The whole dataset lives on the device as uint8 tensors and
batches are cut by index, so no per-sample Python runs on the hot path.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import ledger
from .augment import random_affine
from .checkpoint import CHECKPOINT_FORMAT, unwrap
from .config import ConfigError, TrainConfig
from .data import Dataset, load_dataset, stratified_split
from .data.idx import atomic_write_bytes
from .models import count_parameters, create_model
from .models.summary import count_macs

# An epoch that took at least this long gets a resume state written after it: a killed run
# then loses at most one epoch. Shorter epochs are cheaper to redo than to save (VGG's
# optimiser state is 1.5 GB).
RESUME_MIN_EPOCH_SECONDS = 60.0


# ------------------------------------------------------------------ device and precision
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested but MPS is not available")
    return torch.device(name)


def cpu_has_fast_bf16() -> bool:
    """bf16 matmuls are only faster than fp32 on CPUs with native bf16 (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


# Below this many multiply-accumulates per image, bf16 and channels_last slow a model down on
# the CPU (measured on the 2-core development CPU: LeNet, 0.4M MACs, 10,750 img/s in fp32 and
# the plain layout, 9,540 with both; a plain 3x3 CNN of 7.8M MACs, 1,820 -> 4,540 with both).
SMALL_MODEL_MACS = 1_000_000


def resolve_precision(precision: str, device: torch.device, macs: int | None = None) -> str:
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision 'fp16' is not supported on the CPU; use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "fp32" if macs is not None and macs < SMALL_MODEL_MACS else "bf16"
    return "fp32"


def speed_settings(
    model: nn.Module, device: torch.device, precision: str, channels_last: bool, input_shape
) -> tuple[str, bool]:
    """The precision and memory layout a model trains fastest in on `device`."""
    macs = count_macs(model, input_shape)
    small_on_cpu = device.type == "cpu" and macs < SMALL_MODEL_MACS
    return resolve_precision(precision, device, macs), channels_last and not small_on_cpu


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def git_commit() -> str | None:
    """The code version behind a result, when the package runs from a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# ------------------------------------------------------------------ batches
@dataclass
class DeviceSplit:
    """One split of the data, resident on the training device."""

    images: torch.Tensor  # (N, H, W) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def to_input(
    images: torch.Tensor,  # (B, H, W) uint8
    mean: float,
    std: float,
    channels_last: bool,
    augment: dict | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    x = images.unsqueeze(1).float().div_(255)  # (B, 1, H, W) in [0, 1]
    if augment is not None:
        x = random_affine(x, generator, **augment)
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# ------------------------------------------------------------------ one epoch, and evaluation
def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    data: DeviceSplit,
    *,
    batch_size: int,
    generator: torch.Generator,
    mean: float,
    std: float,
    precision: str,
    channels_last: bool,
    label_smoothing: float = 0.0,
    augment: dict | None = None,
    ema: WeightEMA | None = None,
    scaler: torch.amp.GradScaler | None = None,
    progress=None,
) -> dict[str, Any]:
    """One shuffled pass over `data`. Returns mean loss, accuracy, seconds, images/s, and
    `diverged` (a non-finite loss stops the epoch at once)."""
    device = data.images.device
    model.train()
    order = torch.randperm(len(data), generator=generator).to(device)  # the CPU generator
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen = 0
    start = time.perf_counter()
    steps = math.ceil(len(data) / batch_size)
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x = to_input(data.images[idx], mean, std, channels_last, augment, generator)
        y = data.labels[idx]
        with autocast_for(device, precision):
            logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16 gradients underflow without loss scaling
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(model)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        # Checking every step would force a device sync per step; every 50 is cheap.
        if (step % 50 == 49 or step == steps - 1) and not torch.isfinite(loss_sum):
            return {
                "loss": float("nan"),
                "acc": correct.item() / seen,
                "diverged": True,
                "seconds": time.perf_counter() - start,
                "images_per_second": 0.0,
            }
        if progress is not None:
            progress(seen, len(data), loss)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "loss": loss_sum.item() / seen,
        "acc": correct.item() / seen,
        "seconds": seconds,
        "images_per_second": seen / seconds,
        "diverged": False,
    }


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: DeviceSplit,
    *,
    mean: float,
    std: float,
    precision: str = "fp32",
    channels_last: bool = True,
    batch_size: int = 1024,
) -> dict[str, Any]:
    """Loss, accuracy and predictions on `data`, in order (never shuffled), in eval mode."""
    device = data.images.device
    model.eval()
    loss_sum, predictions, probabilities = 0.0, [], []
    for start in range(0, len(data), batch_size):
        x = to_input(data.images[start : start + batch_size], mean, std, channels_last)
        y = data.labels[start : start + batch_size]
        with autocast_for(device, precision):
            logits = model(x).float()  # (B, classes)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").item()
        probabilities.append(logits.softmax(1).cpu())
        predictions.append(logits.argmax(1).cpu())
    preds = torch.cat(predictions) if predictions else torch.empty(0, dtype=torch.int64)
    n = max(len(data), 1)
    return {
        "loss": loss_sum / n,
        "acc": (preds == data.labels.cpu()).float().mean().item() if len(data) else 0.0,
        "predictions": preds,  # (N,) int64 on the CPU
        "probabilities": torch.cat(probabilities)
        if probabilities
        else torch.empty(0),  # (N, classes)
    }


class WeightEMA:
    """An exponential moving average of a model's weights and batch-norm statistics.

    The decay warms up as min(decay, (1 + n) / (10 + n)) over the first updates, as in
    TensorFlow's ExponentialMovingAverage: with a fixed 0.999 from the first step, the random
    initial weights still make up two thirds of the average after 400 steps (measured on an
    H200: m5's EMA weights stayed at 10-50% validation accuracy for three epochs).
    """

    def __init__(self, model: nn.Module, decay: float):
        self.module = copy.deepcopy(unwrap(model)).eval()
        self.module.requires_grad_(False)
        self.decay, self.updates = decay, 0
        ema_state, model_state = self.module.state_dict(), unwrap(model).state_dict()
        # state_dict tensors share storage with the modules: pair them once, not every step.
        pairs = [(ema_state[k], model_state[k]) for k in ema_state]
        self._floats = [p for p in pairs if p[0].is_floating_point()]
        self._others = [p for p in pairs if not p[0].is_floating_point()]  # e.g. BN's step count

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_([e for e, _ in self._floats], [m for _, m in self._floats], 1 - decay)
        for ema_tensor, model_tensor in self._others:
            ema_tensor.copy_(model_tensor)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]


# ------------------------------------------------------------------ optimiser and schedule
def make_optimizer(
    config: TrainConfig, model: nn.Module, device: torch.device
) -> torch.optim.Optimizer:
    params = model.parameters()
    # One fused kernel per step instead of a dozen per tensor: 2x the speed of the user's VGG
    # (128.8M parameters) on the 2-core CPU, where the optimiser step dominates.
    fused = {"fused": True} if device.type in ("cuda", "cpu") else {}
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, **fused)
    return torch.optim.SGD(
        params,
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
        **fused,
    )


def make_scheduler(config: TrainConfig, optimizer, steps_per_epoch: int):
    total = config.epochs * steps_per_epoch
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        pct = min(max(warmup / total, 0.01), 0.9) if warmup else 0.25
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=total,
            pct_start=pct,
            cycle_momentum=config.optimizer == "sgd",
        )

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule == "cosine":
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ------------------------------------------------------------------ the run
@dataclass
class TrainResult:
    """What one run produced; `to_dict()` is the ledger's result.json."""

    config: dict[str, Any]
    status: str  # finished | diverged | interrupted
    history: list[dict[str, Any]]
    best_epoch: int | None
    metrics: dict[str, float | None]  # train/val at best_epoch, test once on its weights
    params: int
    train_seconds: float
    total_seconds: float
    images_per_second: float
    device: str
    precision: str
    split: dict[str, Any]
    per_class_accuracy: list[float] = field(default_factory=list)
    test_confusion: list[list[int]] = field(default_factory=list)
    test_misclassified: list[list[int]] = field(default_factory=list)
    run_id: str | None = None
    out_dir: str | None = None
    git_commit: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "error": self.error,
            "model": self.config["model"],
            "params": self.params,
            "config": self.config,
            "best_epoch": self.best_epoch,
            "epochs_run": len(self.history),
            **self.metrics,
            "train_seconds": self.train_seconds,
            "total_seconds": self.total_seconds,
            "images_per_second": self.images_per_second,
            "device": self.device,
            "precision": self.precision,
            "torch_version": torch.__version__,
            "git_commit": self.git_commit,
            "seed": self.config["seed"],
            "split": self.split,
            "train_subset": self.config["train_subset"],
            "per_class_accuracy": self.per_class_accuracy,
            "test_confusion": self.test_confusion,
            "test_misclassified": self.test_misclassified,
        }


def prepare_data(config: TrainConfig, dataset: Dataset, device: torch.device):
    """The split the user asked for, a seeded training subset if any, all on `device`."""
    split = stratified_split(dataset.train_labels, config.val_fraction, config.split_seed)
    train_idx = split.train_indices
    if config.train_subset is not None:
        if config.train_subset > len(train_idx):
            raise ConfigError(
                f"train_subset {config.train_subset} is larger than the training split "
                f"({len(train_idx)} images)"
            )
        g = torch.Generator().manual_seed(config.split_seed)
        train_idx = train_idx[torch.randperm(len(train_idx), generator=g)[: config.train_subset]]
    images, labels = dataset.train_images, dataset.train_labels
    # The val indices are sorted, so "the first N" would favour early files: take a seeded
    # sample instead. Test keeps its order: its first N images are what `eval_subset` says.
    val_idx = split.val_indices
    n_eval = config.eval_subset
    if n_eval is not None and n_eval < len(val_idx):
        g = torch.Generator().manual_seed(config.split_seed)
        val_idx = val_idx[torch.randperm(len(val_idx), generator=g)[:n_eval]].sort().values
    test_end = len(dataset.test_labels) if n_eval is None else n_eval

    def on_device(imgs, labs):
        return DeviceSplit(imgs.to(device), labs.to(device))

    split_info = split.describe() | {
        "train_used": len(train_idx),
        "val_used": len(val_idx),
        "test_used": min(test_end, len(dataset.test_labels)),
    }
    return (
        on_device(images[train_idx], labels[train_idx]),
        on_device(images[val_idx], labels[val_idx]),
        on_device(dataset.test_images[:test_end], dataset.test_labels[:test_end]),
        split_info,
    )


def normalization_of(dataset: Dataset) -> tuple[float, float]:
    # Statistics of the whole training file: the same for every split seed, so checkpoints
    # from different runs share one preprocessing.
    pixels = dataset.train_images.float().div_(255)
    return round(pixels.mean().item(), 4), round(pixels.std().item(), 4)


def _progress_printer(epoch: int, epochs: int, enabled: bool):
    """A live line on a terminal; nothing otherwise (the per-epoch log line says it all)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    bar = tqdm(total=None, desc=f"epoch {epoch}/{epochs}", unit="img", leave=False, file=sys.stderr)
    state = {"last": 0, "tick": 0}

    def update(seen: int, total: int, loss: torch.Tensor) -> None:
        bar.total = total
        bar.update(seen - state["last"])
        state["last"] = seen
        state["tick"] += 1
        if state["tick"] % 20 == 0:  # .item() syncs the device: not every step
            bar.set_postfix(loss=f"{loss.item():.4f}")

    update.close = bar.close
    return update


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    *,
    log=print,
    progress: bool = True,
    save_checkpoint: bool = True,
) -> TrainResult:
    """Train one model with `config`. With `config.out_dir` set, the run's folder is written as
    the ledger describes, and a run killed part-way resumes from its last saved epoch."""
    wall_start = time.perf_counter()
    code_version = git_commit()  # now: the checkout may change while a long run trains
    config.validate()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    if device.type == "cuda":
        # Every batch has the same shape, so cuDNN's one-off autotuning of kernels pays off.
        torch.backends.cudnn.benchmark = True
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision 'bf16' is not supported on this GPU; use fp16 or fp32")
    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_dir)
    train_data, val_data, test_data, split_info = prepare_data(config, dataset, device)
    mean, std = normalization_of(dataset)
    out_dir = Path(config.out_dir) if config.out_dir else None
    config_dict = config.to_dict()

    torch.manual_seed(config.seed)  # weight init and dropout
    generator = torch.Generator().manual_seed(config.seed)  # shuffling and augmentation
    model_kwargs = {
        "num_classes": dataset.num_classes,
        "in_channels": 1,
        "dropout": config.dropout,
        **config.model_kwargs,
    }
    model = create_model(config.model, **model_kwargs).to(device)
    params = count_parameters(model)
    precision, channels_last = speed_settings(
        model, device, config.precision, config.channels_last, (1, *dataset.image_shape)
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    # The run folder appears only once the model is built: a bad architecture option
    # (a UserError from create_model) must not leave an empty run behind.
    if out_dir is not None:
        existing = out_dir / ledger.CONFIG
        if existing.is_file() and ledger.run_id_for(
            ledger.read_json(existing)
        ) != ledger.run_id_for(config_dict):
            # Resuming another config's epochs would silently mix two runs.
            raise ConfigError(
                f"{out_dir}: holds a run with a different config; use another out_dir"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        ledger.write_json(out_dir / ledger.CONFIG, config_dict)
    ema = None
    if config.ema:
        ema = WeightEMA(model, config.ema_decay)
    step_model = torch.compile(model) if config.compile else model
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    optimizer = make_optimizer(config, model, device)
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    scheduler = make_scheduler(config, optimizer, steps_per_epoch)
    augment = (
        {
            "rotate_degrees": config.rotate_degrees,
            "translate": config.translate,
            "scale": config.scale,
        }
        if config.augment
        else None
    )
    evaluated = lambda: ema.module if ema is not None else model  # noqa: E731

    history: list[dict[str, Any]] = []
    best_epoch, best_val_acc, best_state = None, -1.0, None
    train_seconds = 0.0
    resume_path = out_dir / ledger.RESUME if out_dir else None
    if resume_path is not None and resume_path.is_file():
        state = torch.load(resume_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        history, train_seconds = state["history"], state["train_seconds"]
        best_epoch, best_val_acc, best_state = (
            state["best_epoch"],
            state["best_val_acc"],
            state["best_state"],
        )
        log(f"resuming {config.model} after epoch {len(history)}")

    status = "finished"
    board = None
    if config.tensorboard and out_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a killed attempt wrote past the epoch we resume from.
        board = SummaryWriter(str(out_dir / "tensorboard"), purge_step=len(history) + 1)
    eval_kw = dict(
        mean=mean,
        std=std,
        precision=precision,
        channels_last=channels_last,
        batch_size=config.eval_batch_size,
    )
    try:
        for epoch in range(len(history) + 1, config.epochs + 1):
            bar = _progress_printer(epoch, config.epochs, progress)
            stats = train_one_epoch(
                step_model,
                optimizer,
                scheduler,
                train_data,
                batch_size=config.batch_size,
                generator=generator,
                mean=mean,
                std=std,
                precision=precision,
                channels_last=channels_last,
                label_smoothing=config.label_smoothing,
                augment=augment,
                ema=ema,
                scaler=scaler,
                progress=bar,
            )
            if bar is not None:
                bar.close()
            train_seconds += stats["seconds"]
            val = None if stats["diverged"] else evaluate(evaluated(), val_data, **eval_kw)
            if val is not None and not math.isfinite(
                val["loss"]
            ):  # finite train loss, broken weights
                stats["diverged"] = True
            if stats["diverged"]:
                status = "diverged"
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": None,
                        "train_acc": stats["acc"],
                        "val_loss": None,
                        "val_acc": None,
                        "lr": optimizer.param_groups[0]["lr"],
                        "seconds": stats["seconds"],
                        "images_per_second": None,
                    }
                )
                log(f"epoch {epoch}: loss is not finite: run diverged")
                break
            row = {
                "epoch": epoch,
                "train_loss": stats["loss"],
                "train_acc": stats["acc"],
                "val_loss": val["loss"],
                "val_acc": val["acc"],
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": stats["seconds"],
                "images_per_second": stats["images_per_second"],
            }
            history.append(row)
            if board is not None:
                for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                    board.add_scalar(key.replace("_", "/", 1), row[key], epoch)
                board.flush()
            if val["acc"] > best_val_acc:  # strictly better: ties keep the earlier epoch
                best_epoch, best_val_acc = epoch, val["acc"]
                best_state = {
                    k: v.detach().clone() for k, v in unwrap(evaluated()).state_dict().items()
                }
            log(
                f"{config.model} epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
                f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  "
                f"{row['images_per_second']:.0f} img/s  {row['seconds']:.1f}s"
            )
            if out_dir is not None:
                ledger.write_json(out_dir / ledger.HISTORY, history)
                if stats["seconds"] >= RESUME_MIN_EPOCH_SECONDS and epoch < config.epochs:
                    resume_state = {
                        "model": unwrap(model).state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "ema": ema.state_dict() if ema is not None else None,
                        "generator": generator.get_state(),
                        "torch_rng": torch.get_rng_state(),
                        "history": history,
                        "train_seconds": train_seconds,
                        "best_epoch": best_epoch,
                        "best_val_acc": best_val_acc,
                        "best_state": best_state,
                    }
                    _atomic_torch_save(resume_path, resume_state)
    except KeyboardInterrupt:
        status = "interrupted"
        log(f"interrupted after {len(history)} finished epoch(s); history kept")
    finally:
        if board is not None:
            board.close()

    if out_dir is not None:
        ledger.write_json(out_dir / ledger.HISTORY, history)

    metrics: dict[str, float | None] = dict.fromkeys(
        ("train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc")
    )
    result_extra: dict[str, Any] = {}
    if best_epoch is not None and status != "interrupted":
        best_row = history[best_epoch - 1]
        metrics.update({k: best_row[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")})
        final_model = evaluated()
        unwrap(final_model).load_state_dict(best_state)
        # The one and only look at the test set.
        test = evaluate(final_model, test_data, **eval_kw)
        metrics.update(test_loss=test["loss"], test_acc=test["acc"])
        result_extra = confusion_breakdown(
            test["predictions"], test_data.labels.cpu(), dataset.num_classes
        )
        log(
            f"{config.model}: best epoch {best_epoch} (val acc {best_val_acc:.4f}); "
            f"test acc {test['acc']:.4f}"
        )
        if out_dir is not None and save_checkpoint:
            meta = {
                "format": CHECKPOINT_FORMAT,
                "model": config.model,
                "model_kwargs": model_kwargs,
                "normalization": {"mean": mean, "std": std},
                "image_size": list(dataset.image_shape),
                "config": config_dict,
                "split": split_info,
                "metrics": metrics,
                "epoch": best_epoch,
                "ema": config.ema,
                # What the run actually used (auto resolves per model and machine), so an
                # evaluation can reproduce the recorded numbers exactly.
                "precision": precision,
                "channels_last": channels_last,
                "state_dict": best_state,
            }
            _atomic_torch_save(out_dir / ledger.CHECKPOINT, meta)

    total_seconds = time.perf_counter() - wall_start
    trained_images = sum(h["seconds"] * (h["images_per_second"] or 0) for h in history)
    result = TrainResult(
        config=config_dict,
        status=status,
        history=history,
        best_epoch=best_epoch,
        metrics=metrics,
        params=params,
        train_seconds=train_seconds,
        total_seconds=total_seconds,
        images_per_second=trained_images / train_seconds if train_seconds else 0.0,
        device=describe_device(device),
        precision=precision,
        split=split_info,
        run_id=out_dir.name if out_dir else None,
        out_dir=str(out_dir) if out_dir else None,
        git_commit=code_version,
        **result_extra,
    )
    if out_dir is not None and status != "interrupted":
        # result.json last: its presence is what marks the run as over.
        ledger.write_json(out_dir / ledger.RESULT, result.to_dict())
        if resume_path is not None:
            resume_path.unlink(missing_ok=True)
    return result


def confusion_breakdown(predictions: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)  # [true, predicted]
    confusion.index_put_((labels, predictions), torch.ones_like(labels), accumulate=True)
    per_class = (confusion.diag().float() / confusion.sum(1).clamp(min=1)).tolist()
    wrong = torch.nonzero(predictions != labels).flatten()
    return {
        "per_class_accuracy": per_class,
        "test_confusion": confusion.tolist(),
        "test_misclassified": [[int(i), int(labels[i]), int(predictions[i])] for i in wrong],
    }


def _atomic_torch_save(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
