"""The one typed training config. CLI flags and TOML files both land here, and it is validated
once, before any work. The resolved config is saved beside every result."""

from __future__ import annotations

import dataclasses
import importlib.util
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# Where a run is stored, which device runs it, its thread count and whether it also logs to
# TensorBoard do not change what it computes: such fields are left out of a run's identity.
NOT_IDENTITY = {"identity": False}


class ConfigError(UserError):
    """A config value that cannot work; raised before any training starts."""


@dataclass
class TrainConfig:
    # --- what to train
    model: str = "lenet"  # a name from `mnistlab models`
    model_kwargs: dict[str, Any] = field(
        default_factory=dict
    )  # architecture options, e.g. {"widen_factor": 8}
    dataset: str = "mnist"  # mnist, fashion-mnist, kmnist
    data_dir: str | None = None  # a folder of IDX files; wins over the dataset's usual source
    # --- the user's grid
    lr: float = 1e-3  # peak learning rate
    dropout: float = 0.25  # probability, in [0, 1)
    epochs: int = 8  # passes over the training split
    batch_size: int = 64  # images per optimiser step (the user's 64)
    # --- optimiser and schedule
    optimizer: str = "adam"  # adam | adamw | sgd
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    weight_decay: float = 0.0  # decoupled for adamw, L2 for adam/sgd
    schedule: str = "constant"  # constant | onecycle | cosine (per step)
    warmup_epochs: float = (
        0.0  # linear warm-up, in epochs (fractions allowed); onecycle has its own
    )
    label_smoothing: float = 0.0  # cross-entropy target smoothing, in [0, 1)
    # --- augmentation: random affine on the whole batch at once, training only
    augment: bool = False
    rotate_degrees: float = 10.0  # uniform in [-d, d]
    translate: float = 0.1  # fraction of the image size, uniform in [-t, t] per axis
    scale: float = 0.1  # zoom uniform in [1 - s, 1 + s]
    # --- weight averaging
    ema: bool = False  # evaluate an exponential moving average of the weights
    ema_decay: float = 0.999  # per step; ~1/(1-decay) steps of memory
    # --- protocol
    seed: int = 0  # weight init, shuffling, augmentation
    split_seed: int = 0  # the train/val split; fixed across a sweep so runs share one split
    val_fraction: float = 0.1  # held out from training, stratified by class
    train_subset: int | None = None  # use only this many training images (quick runs; recorded)
    eval_subset: int | None = (
        None  # judge val and test on their first N images (quick CPU runs; recorded)
    )
    # --- machine
    device: str = field(default="auto", metadata=NOT_IDENTITY)  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 where fast, else fp32) | fp32 | bf16 | fp16
    channels_last: bool = True  # NHWC memory layout: faster convolutions on CPU and GPU
    compile: bool = False  # torch.compile the model (no gain measured on CPU; may help on GPU)
    num_threads: int | None = field(
        default=None, metadata=NOT_IDENTITY
    )  # torch CPU threads; None = torch's default
    eval_batch_size: int = 1024  # evaluation has no gradients, so bigger batches are cheap
    out_dir: str | None = field(
        default=None, metadata=NOT_IDENTITY
    )  # where the run's files go; None = don't write files
    tensorboard: bool = field(
        default=False, metadata=NOT_IDENTITY
    )  # also write TensorBoard event files to out_dir/tensorboard

    def validate(self) -> TrainConfig:
        from .models import list_models  # late: importing models pulls in torch.nn

        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(
            self.model in list_models(),
            f"unknown model {self.model!r}; valid models: {', '.join(list_models())}",
        )
        need(
            isinstance(self.model_kwargs, dict),
            "model_kwargs must be a table of architecture options",
        )
        need(self.lr > 0, f"lr must be > 0, got {self.lr}")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        need(
            self.optimizer in OPTIMIZERS,
            f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}",
        )
        need(
            self.schedule in SCHEDULES,
            f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}",
        )
        need(self.device in DEVICES, f"unknown device {self.device!r}; valid: {', '.join(DEVICES)}")
        need(
            self.precision in PRECISIONS,
            f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}",
        )
        need(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(self.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {self.warmup_epochs}")
        need(
            0 <= self.label_smoothing < 1,
            f"label_smoothing must be in [0, 1), got {self.label_smoothing}",
        )
        need(0 < self.val_fraction < 1, f"val_fraction must be in (0, 1), got {self.val_fraction}")
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay}")
        need(
            0 <= self.rotate_degrees <= 180,
            f"rotate_degrees must be in [0, 180], got {self.rotate_degrees}",
        )
        need(0 <= self.translate < 1, f"translate must be in [0, 1), got {self.translate}")
        need(0 <= self.scale < 1, f"scale must be in [0, 1), got {self.scale}")
        need(
            self.train_subset is None or self.train_subset >= 1,
            f"train_subset must be >= 1, got {self.train_subset}",
        )
        need(
            self.eval_subset is None or self.eval_subset >= 1,
            f"eval_subset must be >= 1, got {self.eval_subset}",
        )
        need(
            self.num_threads is None or self.num_threads >= 1,
            f"num_threads must be >= 1, got {self.num_threads}",
        )
        need(
            not self.tensorboard or importlib.util.find_spec("tensorboard") is not None,
            "tensorboard logging needs the tensorboard extra: pip install 'mnistlab[tensorboard]'",
        )
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what a run computes (its ledger id hashes these)."""
        return {k: v for k, v in self.to_dict().items() if k in IDENTITY_FIELDS}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a plain dict, refusing unknown keys and values of the wrong type."""
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        cleaned = {
            name: _coerce(name, value, known[name].type, source) for name, value in values.items()
        }
        return cls(**cleaned)


IDENTITY_FIELDS = frozenset(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("identity", True)
)


def _coerce(name: str, value: Any, annotation: str, source: str) -> Any:
    """TOML gives ints where floats are meant (lr = 1) and JSON gives the same: accept those;
    refuse a string where a number is meant, instead of failing later mid-run."""
    optional = "None" in annotation
    base = annotation.replace(" | None", "")
    if value is None and optional:
        return None
    if base == "float" and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base == "bool" and isinstance(value, bool):
        return value
    if base == "str" and isinstance(value, str):
        return value
    if base.startswith("dict") and isinstance(value, dict):
        return dict(value)
    raise ConfigError(f"{source}: {name} must be {annotation}, got {value!r}")


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
