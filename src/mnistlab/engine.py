"""The training engine: plain functions, no Trainer class.

`train(config)` runs the user's protocol: every epoch records train and validation loss and
accuracy; the epoch with the best validation accuracy is kept; the test set is evaluated once,
at the end, on those weights. The whole dataset lives on the device as uint8 tensors and
batches are cut by index, so no per-sample Python runs on the hot path.
"""

from __future__ import annotations

import copy
import itertools
import math
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import augment_batch
from .calibrate import calibration_of
from .checkpoint import CHECKPOINT_FORMAT, attach_meta, unwrap
from .config import ConfigError, TrainConfig
from .data import Dataset, load_dataset_cached, stratified_split
from .device import (
    autocast_for,
    describe_device,
    resolve_device,
    resolve_precision,
    speed_settings,
)
from .inference import (
    DeviceSplit,
    InputFormat,
    confusion_breakdown,
    evaluate_split,
    logits_of,
)
from .ledger import EARLY_STOP_STATUSES, SPLIT_METRICS, RunFolder, TrainResult
from .models import count_parameters, create_model
from .models.summary import count_macs

# An epoch that took at least this long gets a resume state written after it: a killed run
# then loses at most one epoch.
RESUME_MIN_EPOCH_SECONDS = 60.0


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


# ------------------------------------------------------------------ one step
@dataclass
class Stepper:
    """Everything one optimiser step needs besides the model and the batch."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None = None  # fp16 only: its gradients underflow unscaled
    ema: WeightEMA | None = None
    label_smoothing: float = 0.0

    def step(self, model: nn.Module, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(model)


# ------------------------------------------------------------------ one epoch, and evaluation
def train_one_epoch(
    model: nn.Module,
    stepper: Stepper,
    data: DeviceSplit,
    fmt: InputFormat,
    *,
    batch_size: int,
    generator: torch.Generator,
    augment: dict | None = None,
    progress=None,
) -> dict[str, Any]:
    """One shuffled pass over `data`. Returns mean loss, accuracy, seconds, images/s, and
    `diverged` (a non-finite loss stops the epoch at once)."""
    device = data.images.device
    model.train()
    order = torch.randperm(len(data), generator=generator).to(device)  # the CPU generator
    transform = None if augment is None else partial(augment_batch, generator=generator, **augment)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen, diverged = 0, False
    start = time.perf_counter()
    steps = math.ceil(len(data) / batch_size)
    for step in range(steps):
        idx = order[step * batch_size : (step + 1) * batch_size]
        y = data.labels[idx]
        # The writer families change a digit by its label (a flag only on 1s).
        x = fmt(data.images[idx], transform and partial(transform, labels=y))
        with autocast_for(device, fmt.precision):
            logits = model(x)  # (B, classes)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=stepper.label_smoothing)
        stepper.step(model, loss)
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        # Checking every step would force a device sync per step; every 50 is cheap.
        if (step % 50 == 49 or step == steps - 1) and not torch.isfinite(loss_sum):
            diverged = True
            break
        if progress is not None:
            progress(seen, len(data), loss)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {
        "loss": float("nan") if diverged else loss_sum.item() / seen,
        "acc": correct.item() / seen,
        "seconds": seconds,
        "images_per_second": 0.0 if diverged else seen / seconds,
        "diverged": diverged,
    }


class WeightEMA:
    """An exponential moving average of a model's weights and batch-norm statistics.

    The decay warms up as min(decay, (1 + n) / (10 + n)) over the first updates, as in
    TensorFlow's ExponentialMovingAverage: a fixed decay keeps the random initial weights in
    the average for hundreds of steps (docs/NOTES.md).
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
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def make_optimizer(
    config: TrainConfig, model: nn.Module, device: torch.device
) -> torch.optim.Optimizer:
    kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    # One fused kernel per step instead of a dozen per tensor: 2x the speed of the user's VGG
    # (128.8M parameters) on the 2-core CPU, where the optimiser step dominates.
    if device.type in ("cuda", "cpu"):
        kwargs["fused"] = True
    if config.optimizer == "sgd":
        kwargs |= {"momentum": config.momentum, "nesterov": config.nesterov}
    return OPTIMIZERS[config.optimizer](model.parameters(), **kwargs)


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
def _seeded_sample(idx: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    return idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))[:n]]


def split_indices(config: TrainConfig, dataset: Dataset):
    """Which images each split uses: (train indices, val indices, test count, split info).
    Raises ConfigError for a subset larger than its split or a class missing from val."""
    split = stratified_split(dataset.train_labels, config.val_fraction, config.split_seed)
    train_idx = split.train_indices
    if config.train_subset is not None:
        if config.train_subset > len(train_idx):
            raise ConfigError(
                f"train_subset {config.train_subset} is larger than the training split "
                f"({len(train_idx)} images)"
            )
        train_idx = _seeded_sample(train_idx, config.train_subset, config.split_seed)
    # The val indices are sorted, so "the first N" would favour early files: take a seeded
    # sample instead. Test keeps its order: its first N images are what `eval_subset` says.
    val_idx, n_eval = split.val_indices, config.eval_subset
    if n_eval is not None and n_eval < len(val_idx):
        val_idx = _seeded_sample(val_idx, n_eval, config.split_seed).sort().values
    per_class = torch.bincount(dataset.train_labels[val_idx], minlength=dataset.num_classes)
    fewest = int(per_class.min())
    if fewest < MIN_VAL_PER_CLASS:
        raise ConfigError(
            f"the validation split has {fewest} image(s) of class {int(per_class.argmin())} "
            f"({len(val_idx)} in all, val_fraction {config.val_fraction:g}); it needs at "
            f"least {MIN_VAL_PER_CLASS} of every class: raise val_fraction or eval_subset"
        )
    test_used = min(n_eval or len(dataset.test_labels), len(dataset.test_labels))
    split_info = split.describe() | {
        "train_used": len(train_idx),
        "val_used": len(val_idx),
        "test_used": test_used,
        "train_eval_used": min(len(val_idx), len(train_idx)),
    }
    return train_idx, val_idx, test_used, split_info


def prepare_data(config: TrainConfig, dataset: Dataset, device: torch.device):
    """The split the user asked for, a seeded training subset if any, all on `device`."""
    train_idx, val_idx, test_used, split_info = split_indices(config, dataset)
    # The generalisation gap needs training accuracy measured as validation is (eval mode, no
    # dropout or augmentation) on as many images: a fixed seeded sample of the training split.
    probe_idx = _seeded_sample(train_idx, len(val_idx), config.split_seed + 1)
    train, val, probe = (
        DeviceSplit(dataset.train_images[i].to(device), dataset.train_labels[i].to(device))
        for i in (train_idx, val_idx, probe_idx)
    )
    test = DeviceSplit(
        dataset.test_images[:test_used].to(device), dataset.test_labels[:test_used].to(device)
    )
    return train, val, test, probe, split_info


def check_runnable(
    config: TrainConfig, dataset: Dataset, check_device: bool = True
) -> dict[str, Any]:
    """Everything that would make `train(config, dataset)` fail before its first epoch, checked
    without training or allocating the model: the device, the split sizes, the architecture
    options and size (built on the meta device), the precision. Returns the split sizes, and
    the model's parameters and MACs per image."""
    config.validate()
    split_info = split_indices(config, dataset)[3]
    with torch.device("meta"):
        model = create_model(config.model, **model_kwargs_for(config, dataset.num_classes))
    shape = (1, *dataset.image_shape)
    if check_device:  # refuses a precision the device cannot run
        resolve_precision(config.precision, resolve_device(config.device))
    return split_info | {"params": count_parameters(model), "macs": count_macs(model, shape)}


def normalization_of(dataset: Dataset) -> tuple[float, float]:
    # Statistics of the whole training file: the same for every split seed, so checkpoints
    # from different runs share one preprocessing.
    pixels = dataset.train_images.float().div_(255)
    return round(pixels.mean().item(), 4), round(pixels.std().item(), 4)


def _progress_printer(epoch: int, epochs: int, enabled: bool):
    """A live bar on a terminal or in a Jupyter notebook (tqdm.auto draws a widget there, or
    text without ipywidgets); nothing otherwise (the per-epoch log line says it all)."""
    in_notebook = "ipykernel" in sys.modules  # only a Jupyter kernel imports it
    if not enabled or not (sys.stderr.isatty() or in_notebook):
        return None
    bar = tqdm(total=None, desc=f"epoch {epoch}/{epochs}", unit="img", leave=False, file=sys.stderr)
    ticks = itertools.count(1)

    def update(seen: int, total: int, loss: torch.Tensor) -> None:
        bar.total = total
        bar.update(seen - bar.n)
        if next(ticks) % 20 == 0:  # .item() syncs the device: not every step
            bar.set_postfix(loss=f"{loss.item():.4f}")

    update.close = bar.close
    return update


# A fresh classifier's loss is about ln(classes), 2.30 for ten. An epoch whose mean loss is this
# many times larger has exploded even while it stays finite (Adam at lr 50 reaches 1e7).
EXPLODED_LOSS_FACTOR = 100.0
# Every class must be in the validation split, or the epoch is chosen on a lopsided sample.
MIN_VAL_PER_CLASS = 1
# Below this many validation images or optimiser steps, chance and a slow start cannot be
# told apart, so the "did not learn" check is skipped.
MIN_VAL_FOR_CHANCE_CHECK = 100
MIN_STEPS_FOR_CHANCE_CHECK = 100


class Callback:
    """A tool that watches a run: subclass it and override the hooks you need. Hooks run in
    the training process, in the order the callbacks were given.

        on_train_start(config, folder, history)  before the first epoch trained now (`history`
                                                 holds the epochs of a resumed run)
        on_epoch_end(row, state) -> Stop | None  after each epoch is judged and recorded: `row`
                                                 is its history row, `state.best_val_acc` the
                                                 best so far; a `Stop` ends the run there
        on_train_end(status)                     once the epochs are over, before the test pass:
                                                 finished, diverged, a Stop's status,
                                                 interrupted, or failed (an exception)
    """

    def on_train_start(self, config: TrainConfig, folder: RunFolder | None, history) -> None:
        pass

    def on_epoch_end(self, row: dict[str, Any], state: TrainState) -> Stop | None:
        return None

    def on_train_end(self, status: str) -> None:
        pass


@dataclass(frozen=True)
class Stop:
    """A callback's request to end the run after this epoch. The chosen epoch's weights are
    still tested and recorded; the ledger records `status` (one of `EARLY_STOP_STATUSES`) with
    `reason`."""

    reason: str
    status: str = "stopped"

    def __post_init__(self) -> None:
        if self.status not in EARLY_STOP_STATUSES:
            raise ValueError(
                f"Stop status must be one of {EARLY_STOP_STATUSES}, got {self.status!r}"
            )


@dataclass
class Session:
    """Everything a run resolves once, before its first epoch."""

    config: TrainConfig
    dataset: Dataset
    device: torch.device
    fmt: InputFormat  # normalisation, memory layout and precision, resolved for this model
    model: nn.Module
    step_model: nn.Module  # `model`, compiled when config.compile
    stepper: Stepper
    generator: torch.Generator  # shuffling and augmentation
    train_data: DeviceSplit
    val_data: DeviceSplit
    test_data: DeviceSplit
    train_probe: DeviceSplit  # a fixed sample of train_data, as large as val: judged like val
    split_info: dict[str, Any]
    augment: dict | None

    @property
    def evaluated(self) -> nn.Module:
        """The weights judged on val and test: the EMA average when there is one."""
        return self.stepper.ema.module if self.stepper.ema is not None else self.model

    def evaluate(self, data: DeviceSplit) -> dict[str, Any]:
        return evaluate_split(self.evaluated, data, self.fmt, self.config.eval_batch_size)


def model_kwargs_for(config: TrainConfig, num_classes: int) -> dict[str, Any]:
    return (
        dict(num_classes=num_classes, in_channels=1, dropout=config.dropout) | config.model_kwargs
    )


def setup(config: TrainConfig, dataset: Dataset, speed: tuple[str, bool] | None, log) -> Session:
    """Device, precision, data, model and optimiser, each resolved once. `speed`: the
    (precision, channels_last) a resumed run started with, kept rather than timed again."""
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    resolve_precision(config.precision, device)  # refuses what the device cannot run
    if device.type == "cuda":
        # Every batch has the same shape, so cuDNN's one-off autotuning of kernels pays off.
        torch.backends.cudnn.benchmark = True
    train_data, val_data, test_data, train_probe, split_info = prepare_data(config, dataset, device)
    mean, std = normalization_of(dataset)
    torch.manual_seed(config.seed)  # weight init and dropout
    model = create_model(config.model, **model_kwargs_for(config, dataset.num_classes)).to(device)
    precision, channels_last = speed or speed_settings(
        model,
        device,
        config.precision,
        config.channels_last,
        (1, *dataset.image_shape),
        config.batch_size,
        log,
    )
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model, device)
    stepper = Stepper(
        optimizer,
        make_scheduler(config, optimizer, math.ceil(len(train_data) / config.batch_size)),
        torch.amp.GradScaler(device.type) if precision == "fp16" else None,
        WeightEMA(model, config.ema_decay) if config.ema else None,
        config.label_smoothing,
    )
    augment: dict[str, Any] = {}
    if config.augment:
        augment = {k: getattr(config, k) for k in ("rotate_degrees", "translate", "scale")}
    if config.robust_augment:
        augment["robust_fraction"] = config.robust_fraction
    if config.writer_augment:
        augment["writer_families"] = config.writer_families()
        augment["writer_share"] = config.writer_share
    return Session(
        config=config,
        dataset=dataset,
        device=device,
        fmt=InputFormat(mean, std, channels_last, precision),
        model=model,
        step_model=torch.compile(model) if config.compile else model,
        stepper=stepper,
        generator=torch.Generator().manual_seed(config.seed),
        train_data=train_data,
        val_data=val_data,
        test_data=test_data,
        train_probe=train_probe,
        split_info=split_info,
        augment=augment or None,
    )


@dataclass
class TrainState:
    """Where a run stands after its last finished epoch: what resume.pt holds besides the
    model, optimiser and random generators."""

    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    best_epoch: int | None = None
    best_val_acc: float = -1.0
    best_state: dict[str, torch.Tensor] | None = None  # the evaluated weights of best_epoch

    def note_epoch(self, row: dict[str, Any], s: Session) -> None:
        self.history.append(row)
        if row["val_acc"] is not None and row["val_acc"] > self.best_val_acc:
            # Strictly better: ties keep the earlier epoch.
            self.best_epoch, self.best_val_acc = row["epoch"], row["val_acc"]
            self.best_state = {
                k: v.detach().clone() for k, v in unwrap(s.evaluated).state_dict().items()
            }

    def to_resume(self, s: Session) -> dict[str, Any]:
        return {
            "model": unwrap(s.model).state_dict(),
            "optimizer": s.stepper.optimizer.state_dict(),
            "scheduler": s.stepper.scheduler.state_dict(),
            "ema": s.stepper.ema.state_dict() if s.stepper.ema is not None else None,
            "generator": s.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "state": {k: getattr(self, k) for k in self.__dataclass_fields__},
            # The probe that chose these may time them differently in the resuming process.
            "speed": [s.fmt.precision, s.fmt.channels_last],
        }

    @classmethod
    def resume(cls, saved: dict | None, s: Session, log) -> TrainState:
        if saved is None:
            return cls()
        s.model.load_state_dict(saved["model"])
        s.stepper.optimizer.load_state_dict(saved["optimizer"])
        s.stepper.scheduler.load_state_dict(saved["scheduler"])
        if s.stepper.ema is not None:
            s.stepper.ema.load_state_dict(saved["ema"])
        s.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        state = cls(**saved["state"])
        log(f"resuming {s.config.model} after epoch {len(state.history)}")
        return state


def why_diverged(stats: dict, val: dict | None, num_classes: int) -> str | None:
    """One line saying why an epoch's numbers mean the run has diverged, or None."""
    if stats["diverged"]:
        return "the training loss is not finite"
    if val is not None and not math.isfinite(val["loss"]):  # finite train loss, broken weights
        return "the validation loss is not finite"
    limit = EXPLODED_LOSS_FACTOR * math.log(num_classes)
    if stats["loss"] > limit:
        return f"the training loss exploded (mean {stats['loss']:.3g}, above {limit:.3g})"
    return None


def why_not_learned(state: TrainState, s: Session) -> str | None:
    """A run whose best validation accuracy is within noise of chance did not learn."""
    n, chance = len(s.val_data), 1 / s.dataset.num_classes
    steps = len(state.history) * math.ceil(len(s.train_data) / s.config.batch_size)
    if n < MIN_VAL_FOR_CHANCE_CHECK or steps < MIN_STEPS_FOR_CHANCE_CHECK:
        return None
    # Three binomial standard deviations above chance on n images.
    ceiling = chance + 3 * math.sqrt(chance * (1 - chance) / n)
    if state.best_epoch is not None and state.best_val_acc <= ceiling:
        return (
            f"it did not learn: best validation accuracy {state.best_val_acc:.1%} on {n} images "
            f"is within noise of chance ({chance:.0%})"
        )
    return None


def judge_epoch(s: Session, state: TrainState, epoch: int, stats: dict) -> str | None:
    """Judge the epoch just trained on validation and on the training sample, and note it in
    the history; returns why the run diverged, or None."""
    state.train_seconds += stats["seconds"]
    val = None if stats["diverged"] else s.evaluate(s.val_data)
    why = why_diverged(stats, val, s.dataset.num_classes)
    ok = why is None
    probe = s.evaluate(s.train_probe) if ok else None
    state.note_epoch(
        {
            "epoch": epoch,
            # The running mean over the epoch, in train mode (dropout, augmentation on).
            "train_loss": stats["loss"] if ok else None,
            "train_acc": stats["acc"],
            # The epoch's end weights judged as val is: what the train-val gap is made of.
            "train_eval_loss": probe["loss"] if ok else None,
            "train_eval_acc": probe["acc"] if ok else None,
            "val_loss": val["loss"] if ok else None,
            "val_acc": val["acc"] if ok else None,
            "lr": s.stepper.optimizer.param_groups[0]["lr"],
            "seconds": stats["seconds"],
            "images_per_second": stats["images_per_second"] if ok else None,
        },
        s,
    )
    return why


def run_epochs(
    s: Session, state: TrainState, folder, callbacks: list[Callback], *, log, progress: bool
) -> tuple[str, str | None]:
    """The epoch loop. Returns (status, why): "finished", "diverged", "interrupted", or the
    status of a callback's `Stop`."""
    config = s.config
    try:
        for epoch in range(len(state.history) + 1, config.epochs + 1):
            bar = _progress_printer(epoch, config.epochs, progress)
            stats = train_one_epoch(
                s.step_model,
                s.stepper,
                s.train_data,
                s.fmt,
                batch_size=config.batch_size,
                generator=s.generator,
                augment=s.augment,
                progress=bar,
            )
            if bar is not None:
                bar.close()
            why = judge_epoch(s, state, epoch, stats)
            if why is not None:
                log(f"epoch {epoch}: {why}: run diverged")
                return "diverged", why
            row = state.history[-1]
            log(
                f"{config.model} epoch {epoch}/{config.epochs}  train loss {row['train_loss']:.4f} "
                f"acc {row['train_acc']:.4f}  val loss {row['val_loss']:.4f} acc {row['val_acc']:.4f}  "
                f"{row['images_per_second']:.0f} img/s  {row['seconds']:.1f}s"
            )
            if folder is not None:
                # Epochs shorter than this are cheaper to redo than to save (VGG's optimiser
                # state is 1.5 GB).
                long = row["seconds"] >= RESUME_MIN_EPOCH_SECONDS and epoch < config.epochs
                folder.epoch_done(state.history, state.to_resume(s) if long else None)
            stops = [stop for cb in callbacks if (stop := cb.on_epoch_end(row, state))]
            if stops:
                return stops[0].status, stops[0].reason
    except KeyboardInterrupt:
        log(f"interrupted after {len(state.history)} finished epoch(s); history kept")
        return "interrupted", None
    return "finished", why_not_learned(state, s)


def test_once(s: Session, state: TrainState, status: str, log) -> tuple[dict, dict]:
    """Load the chosen epoch's weights and judge them on the test set: the one and only look
    (none for an interrupted run)."""
    metrics = dict.fromkeys(SPLIT_METRICS)
    if state.best_epoch is None or status == "interrupted":
        return metrics, {}
    best_row = state.history[state.best_epoch - 1]
    metrics.update({k: best_row.get(k) for k in metrics if not k.startswith("test_")})
    unwrap(s.evaluated).load_state_dict(state.best_state)
    test = s.evaluate(s.test_data)
    metrics.update(test_loss=test["loss"], test_acc=test["acc"])
    labels = s.test_data.labels.cpu()
    extra = confusion_breakdown(test["predictions"], labels, s.dataset.num_classes)
    extra["test_predictions"] = test["predictions"].tolist()
    extra["test_labels"] = labels.tolist()
    log(
        f"{s.config.model}: best epoch {state.best_epoch} (val acc {state.best_val_acc:.4f}); "
        f"test acc {test['acc']:.4f}"
    )
    return metrics, extra


def checkpoint_meta(s: Session, state: TrainState, metrics: dict) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "model": s.config.model,
        "model_kwargs": model_kwargs_for(s.config, s.dataset.num_classes),
        "normalization": {"mean": s.fmt.mean, "std": s.fmt.std},
        "image_size": list(s.dataset.image_shape),
        "config": s.config.to_dict(),
        "split": s.split_info,
        "metrics": metrics,
        "epoch": state.best_epoch,
        "ema": s.config.ema,
        # What the run actually used (auto resolves per model and machine), so an evaluation
        # can reproduce the recorded numbers exactly.
        "precision": s.fmt.precision,
        "channels_last": s.fmt.channels_last,
        "state_dict": state.best_state,
    }


def train(
    config: TrainConfig,
    dataset: Dataset | None = None,
    *,
    log=print,
    progress: bool = True,
    save_checkpoint: bool = True,
    folder: RunFolder | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train one model with `config`; the result carries the trained model (`result.model`,
    the chosen epoch's weights). With a run folder (`folder`, or `config.out_dir`), the run is
    recorded as the ledger describes, and a run killed part-way resumes from its last saved
    epoch. `callbacks` see the run start, each epoch end (and may stop the run) and the run
    end: see `Callback`."""
    if not isinstance(config, TrainConfig):
        raise TypeError(
            f"train() needs a TrainConfig, got {type(config).__name__}: "
            "train(TrainConfig(model='lenet')), or TrainConfig.from_dict({...}) for a dict"
        )
    wall_start, started_at = time.perf_counter(), time.time()
    code_version = git_commit()  # now: the checkout may change while a long run trains
    config.validate()
    if folder is None and config.out_dir:
        folder = RunFolder(config.out_dir, log=log)
    if dataset is None:
        dataset = load_dataset_cached(config.dataset, config.data_dir)
    saved = None
    if folder is not None:
        folder.check_same_run(config)
        saved = folder.load_resume(resolve_device(config.device))
    speed = tuple(saved["speed"]) if saved and "speed" in saved else None
    s = setup(config, dataset, speed, log)
    if folder is not None:  # only now: a bad architecture option must leave no empty run
        folder.start(config)
    state = TrainState.resume(saved, s, log)
    callbacks = list(callbacks)
    for callback in callbacks:
        callback.on_train_start(config, folder, state.history)
    status = "failed"  # what the callbacks hear if an exception ends the run
    try:
        status, why = run_epochs(s, state, folder, callbacks, log=log, progress=progress)
        if status == "finished" and why is not None:
            log(f"{config.model}: {why}: recorded as diverged")
            status = "diverged"
    finally:
        for callback in callbacks:
            callback.on_train_end(status)
    metrics, extra = test_once(s, state, status, log)
    meta = checkpoint_meta(s, state, metrics)
    if extra:
        # Temperature scaling on the validation split, for honest probabilities (calibrate.py).
        val_logits = logits_of(s.evaluated, s.val_data.images, s.fmt, config.eval_batch_size)
        meta |= calibration_of(val_logits, s.val_data.labels.cpu())
        if folder is not None and save_checkpoint:
            folder.save_checkpoint(meta)
    trained_images = sum(h["seconds"] * (h["images_per_second"] or 0) for h in state.history)
    result = TrainResult(
        config=config.to_dict(),
        status=status,
        history=state.history,
        best_epoch=state.best_epoch,
        metrics=metrics,
        params=count_parameters(s.model),
        train_seconds=state.train_seconds,
        total_seconds=time.perf_counter() - wall_start,
        images_per_second=trained_images / state.train_seconds if state.train_seconds else 0.0,
        device=describe_device(s.device),
        precision=s.fmt.precision,
        split=s.split_info,
        torch_version=torch.__version__,
        run_id=folder.run_id if folder is not None else None,
        out_dir=str(folder.path) if folder is not None else None,
        git_commit=code_version,
        error=why,
        started_at=started_at,
        ended_at=time.time(),
        model=unwrap(s.evaluated) if state.best_epoch is not None else None,
        **extra,
    )
    if result.model is not None:  # so predict(result.model, ...) and save_model work
        attach_meta(result.model, meta)
    if folder is not None and status != "interrupted":
        folder.finish(result)
    return result
