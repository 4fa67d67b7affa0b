"""The one typed training config. CLI flags and TOML files both land here, and it is validated
once, before any work. The resolved config is saved beside every result.

Each field's help text, choices and run-identity flag live in its metadata (`setting(...)`),
so `mnistlab train --help`, the ledger's run id and the report read one source.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .fileio import regular_file_problem

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The writer families of mnistlab.augment (issue 22), in the order they are applied.
WRITER_FAMILIES = (
    "continental_one",
    "crossed_seven",
    "open_four",
    "looped_two",
    "hooked_nine",
    "aspect",
    "slant",
    "broken",
    "stray",
    "ink",
)

# torch.manual_seed takes any 64-bit value; the upper half is left out so a seed is the same
# number signed or unsigned wherever it is stored.
MAX_SEED = 2**63

# Every model takes these from the dataset (num_classes, in_channels) or from the top-level
# `dropout` setting; inside model_kwargs they would silently win over what the ledger records.
NOT_ARCHITECTURE = {
    "dropout": "set the top-level dropout setting (--dropout) instead",
    "num_classes": "it comes from the dataset (dataset or data_dir)",
    "in_channels": "it comes from the dataset (dataset or data_dir)",
}


class ConfigError(UserError):
    """A config value that cannot work; raised before any training starts."""


def setting(
    default: Any,
    help: str,
    *,
    identity: bool = True,
    choices: tuple[str, ...] | None = None,
    added_later: bool = False,
) -> Any:
    """A TrainConfig field with its one-line help (units or intent) in the metadata.

    identity=False: the field does not change what a run computes, so it is left out of the
    run's id (where a run is stored, which device runs it, its threads, TensorBoard logging).
    choices: the only valid values; validate() refuses others and `--help` lists them.
    added_later: a field added after runs were recorded; at its default it is left out of
    the run's id, so the ledgers written before it existed keep their ids.
    """
    metadata = {"help": help, "identity": identity, "choices": choices, "added_later": added_later}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    # --- what to train
    model: str = setting("lenet", "architecture, a name from `mnistlab models`")
    model_kwargs: dict[str, Any] = setting(
        {}, "architecture options, e.g. widen_factor=8; `mnistlab models NAME` lists them"
    )
    dataset: str = setting("mnist", "mnist (bundled), fashion-mnist or kmnist (both downloaded)")
    data_dir: str | None = setting(
        None, "a folder of IDX files; wins over the dataset's usual source"
    )
    # --- the user's grid
    lr: float = setting(1e-3, "peak learning rate")
    dropout: float = setting(0.25, "dropout probability, in [0, 1)")
    epochs: int = setting(8, "passes over the training split")
    batch_size: int = setting(64, "images per optimiser step")
    # --- optimiser and schedule
    optimizer: str = setting("adam", "optimiser", choices=OPTIMIZERS)
    momentum: float = setting(0.9, "SGD momentum, in [0, 1); sgd only")
    nesterov: bool = setting(False, "Nesterov momentum; sgd only")
    weight_decay: float = setting(0.0, "weight decay: decoupled for adamw, L2 for adam and sgd")
    schedule: str = setting(
        "constant", "learning-rate schedule, stepped per batch", choices=SCHEDULES
    )
    warmup_epochs: float = setting(
        0.0, "linear warm-up in epochs, fractions allowed; onecycle has its own"
    )
    label_smoothing: float = setting(0.0, "cross-entropy target smoothing, in [0, 1)")
    # --- augmentation: random affine on the whole batch at once, training only
    augment: bool = setting(False, "random rotation, shift and zoom of training batches")
    rotate_degrees: float = setting(10.0, "augmentation rotation in degrees, uniform in [-d, d]")
    translate: float = setting(
        0.1, "augmentation shift, a fraction of the image size per axis, uniform in [-t, t]"
    )
    scale: float = setting(0.1, "augmentation zoom, uniform in [1 - s, 1 + s]")
    robust_augment: bool = setting(
        False,
        "make part of each training batch look like people's digits: thicker or thinner "
        "strokes, blur, low resolution, elastic distortion, contrast (mnistlab.augment)",
        added_later=True,
    )
    robust_fraction: float = setting(
        0.5, "fraction of each batch that robust_augment changes, in [0, 1]", added_later=True
    )
    writer_augment: str = setting(
        "",
        "how other writers form digits, added to training batches: comma-separated families "
        f"of mnistlab.augment, or 'all' ({', '.join(WRITER_FAMILIES)})",
        added_later=True,
    )
    writer_share: float = setting(
        1.0,
        "scale of how many images each writer family changes (half a label's images and a "
        "quarter of the batch at 1), in [0, 2]",
        added_later=True,
    )
    # --- weight averaging
    ema: bool = setting(False, "evaluate an exponential moving average of the weights")
    ema_decay: float = setting(0.999, "EMA decay per step; about 1/(1 - decay) steps of memory")
    # --- protocol
    seed: int = setting(0, "seed of weight init, shuffling and augmentation, in [0, 2**63)")
    split_seed: int = setting(
        0, "seed of the train/val split; fixed across a sweep so runs share one split"
    )
    val_fraction: float = setting(
        0.1, "fraction of the training images held out for validation, stratified by class"
    )
    train_subset: int | None = setting(
        None, "train on only this many images, for quick runs (recorded); default all"
    )
    eval_subset: int | None = setting(
        None, "judge val and test on their first N images, for quick runs (recorded); default all"
    )
    # --- machine
    device: str = setting(
        "auto", "where to train; auto picks a GPU if there is one", identity=False, choices=DEVICES
    )
    precision: str = setting(
        "auto",
        "auto: bf16/fp16 on a GPU; on the CPU bf16 only where a few timed steps find it faster",
        choices=PRECISIONS,
    )
    channels_last: bool = setting(
        True, "allow the NHWC layout: always on a GPU, on the CPU where timed faster"
    )
    compile: bool = setting(
        False, "torch.compile the model: no gain measured on CPU, may help on GPU"
    )
    num_threads: int | None = setting(
        None, "torch CPU threads; default torch's choice", identity=False
    )
    eval_batch_size: int = setting(
        1024, "images per evaluation batch; no gradients, so big batches are cheap"
    )
    out_dir: str | None = setting(
        None,
        "folder for the run's files; default runs/train/RUN_ID on the CLI, none in the API",
        identity=False,
    )
    tensorboard: bool = setting(
        False, "also write TensorBoard event files to OUT_DIR/tensorboard", identity=False
    )

    def writer_families(self) -> tuple[str, ...]:
        """The families `writer_augment` names ('all' for every one), without blanks."""
        names = tuple(n.strip() for n in self.writer_augment.split(",") if n.strip())
        return WRITER_FAMILIES if names == ("all",) else names

    def validate(self) -> TrainConfig:
        """Refuse any value that cannot work, naming the setting; normalise ints given for
        floats (so `lr = 1` and `lr = 1.0` are one run). Idempotent; returns self."""
        from .models import check_model  # start-up cost, as in _check_values

        for name, value in dataclasses.asdict(self).items():
            setattr(self, name, _coerce(name, value, "config"))
        self._check_values()
        try:  # the architecture options and the parameter budget, on the meta device
            check_model(self.model, dropout=self.dropout, **self.model_kwargs)
        except UserError as exc:
            raise ConfigError(str(exc)) from exc
        return self

    def _check_values(self) -> None:
        """Each setting on its own: ranges, choices, finiteness, a known model name."""
        # Start-up cost: the CLI builds its flags from TrainConfig on every call, and the
        # models import torch (2.5 s); only validation needs them.
        from .models import list_models, unknown_model_message

        def need(ok: bool, name: str, rule: str) -> None:
            if not ok:
                raise ConfigError(f"{name} must be {rule}, got {getattr(self, name)}")

        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float):
                need(math.isfinite(value), f.name, "a finite number")
            choices = f.metadata["choices"]
            if choices is not None and value not in choices:
                raise ConfigError(f"unknown {f.name} {value!r}; valid: {', '.join(choices)}")
        if self.model not in list_models():
            raise ConfigError(unknown_model_message(self.model))
        for key in sorted(set(self.model_kwargs) & set(NOT_ARCHITECTURE)):
            raise ConfigError(
                f"model_kwargs: {key} is not an architecture option; {NOT_ARCHITECTURE[key]}"
            )
        need(self.lr > 0, "lr", "> 0")
        for name in ("epochs", "batch_size", "eval_batch_size"):
            need(getattr(self, name) >= 1, name, ">= 1")
        for name in ("dropout", "momentum", "label_smoothing", "ema_decay", "translate", "scale"):
            need(0 <= getattr(self, name) < 1, name, "in [0, 1)")
        for name in ("weight_decay", "warmup_epochs"):
            need(getattr(self, name) >= 0, name, ">= 0")
        need(0 < self.val_fraction < 1, "val_fraction", "in (0, 1)")
        need(0 <= self.rotate_degrees <= 180, "rotate_degrees", "in [0, 180]")
        need(0 <= self.robust_fraction <= 1, "robust_fraction", "in [0, 1]")
        need(0 <= self.writer_share <= 2, "writer_share", "in [0, 2]")
        for name in self.writer_families():
            if name not in WRITER_FAMILIES:
                raise ConfigError(
                    f"writer_augment: unknown family {name!r}; "
                    f"valid: all, {', '.join(WRITER_FAMILIES)}"
                )
        for name in ("seed", "split_seed"):
            need(0 <= getattr(self, name) < MAX_SEED, name, "in [0, 2**63)")
        for name in ("train_subset", "eval_subset", "num_threads"):
            need(getattr(self, name) is None or getattr(self, name) >= 1, name, ">= 1")
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise ConfigError(
                "tensorboard logging needs the tensorboard extra: pip install 'mnistlab[tensorboard]'"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what a run computes (its ledger id hashes these)."""
        return {k: v for k, v in self.to_dict().items() if k in IDENTITY_FIELDS}

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build from a plain dict and validate it: unknown keys, values of the wrong type and
        values that cannot work are refused (the first two name `source`)."""
        return cls(**_checked(values, source)).validate()


IDENTITY_FIELDS = frozenset(
    f.name for f in dataclasses.fields(TrainConfig) if f.metadata["identity"]
)
# Fields added after ledgers were written, with the default that leaves them out of an id.
LATER_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(TrainConfig) if f.metadata["added_later"]
}
# Resolved once from the annotations (strings under `from __future__ import annotations`).
FIELD_TYPES: dict[str, Any] = typing.get_type_hints(TrainConfig)


def check_settings(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Settings given apart from any config (the CLI's `--set KEY=VALUE`), checked on their
    own so a mistake is blamed on `source`: known names, right types, valid values.
    Returns them with ints given for floats made floats."""
    cleaned = _checked(values, source)
    try:
        TrainConfig(**cleaned)._check_values()  # every other field at its (valid) default
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return cleaned


def suggest(word: str, candidates: typing.Iterable[str]) -> str | None:
    """The closest candidate to a misspelt `word`, or None when nothing is close."""
    match = difflib.get_close_matches(word, list(candidates), n=1)
    return match[0] if match else None


def _checked(values: Any, source: str) -> dict[str, Any]:
    """`values` with their types checked (`_coerce`), after refusing keys that are not
    settings, listing the valid ones and the closest to each."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of settings, got {values!r}")
    unknown = sorted(set(values) - set(FIELD_TYPES))
    if unknown:
        matches = {name: suggest(str(name), FIELD_TYPES) for name in unknown}
        hints = [
            match if len(unknown) == 1 else f"{match} for {name}"
            for name, match in matches.items()
            if match
        ]
        raise ConfigError(
            f"{source}: unknown setting(s) {', '.join(map(str, unknown))}; "
            f"valid: {', '.join(FIELD_TYPES)}"
            + (f"; did you mean {', '.join(hints)}?" if hints else "")
        )
    return {name: _coerce(name, value, source) for name, value in values.items()}


def _coerce(name: str, value: Any, source: str) -> Any:
    """TOML gives ints where floats are meant (lr = 1) and JSON gives the same: accept those;
    refuse a string where a number is meant, instead of failing later mid-run."""
    hint = FIELD_TYPES[name]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    base = next(t for t in options if t is not type(None))
    origin = typing.get_origin(base) or base
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if origin is float and number:
        return float(value)
    if origin is int and number and isinstance(value, int):
        return value
    if origin in (bool, str) and isinstance(value, origin):
        return value
    if origin is dict and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return dict(value)
    # The annotation as written in the class (a string under `from __future__ import annotations`).
    raise ConfigError(
        f"{source}: {name} must be {TrainConfig.__annotations__[name]}, got {value!r}"
    )


def load_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    problem = regular_file_problem(path)  # before any open: a FIFO would block it
    if problem not in (None, "no such file") and not path.is_dir():
        raise ConfigError(f"{path}: {problem}")
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
