"""The training engine: it learns, picks the epoch by validation, looks at the test set once,
records divergence and Ctrl-C without losing history, is deterministic, resumes exactly,
and writes checkpoints that reload to the same weights.

Most runs use a 2-layer MLP (25k parameters) on a few hundred images: the mechanics under
test do not depend on the architecture, and the suite must stay fast on 2 shared cores.
"""

from __future__ import annotations

import math

import pytest
import torch

from mnistlab import device, engine, inference, ledger
from mnistlab.augment import random_affine
from mnistlab.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, read_checkpoint
from mnistlab.config import ConfigError, TrainConfig
from mnistlab.errors import UserError
from mnistlab.evaluate import evaluate_checkpoint

NUMBERS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
BF16 = pytest.mark.skipif(
    not device.cpu_has_fast_bf16(),
    reason="this CPU has no native bf16 (AVX512-BF16 or AMX): autocast would be emulated and slow",
)


def tiny(**overrides) -> TrainConfig:
    settings = dict(
        model="mlp",
        model_kwargs={"hidden": [32]},
        epochs=2,
        train_subset=256,
        eval_subset=128,
        batch_size=64,
        device="cpu",
        precision="fp32",
    )
    settings.update(overrides)
    return TrainConfig(**settings)


def quiet(*_args) -> None:
    pass


def run(config: TrainConfig, dataset) -> engine.TrainResult:
    return engine.train(config, dataset, log=quiet, progress=False)


def numbers(history: list[dict]) -> list[tuple]:
    # Everything but wall-clock time, which no two runs share.
    return [tuple(row[k] for k in NUMBERS) for row in history]


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Spy:
    """Wraps engine.prepare_data and engine.evaluate_split: records which split each evaluation
    saw (by identity, since val and test can have the same size) and the weights it judged."""

    def __init__(self, monkeypatch, val_accs: list[float] | None = None):
        self.splits: dict[str, engine.DeviceSplit] = {}
        self.calls: list[tuple[str, dict, torch.nn.Module]] = []
        self.val_accs = val_accs
        real_prepare, real_evaluate = engine.prepare_data, engine.evaluate_split

        def prepare_data(*args, **kwargs):
            train, val, test, probe, info = real_prepare(*args, **kwargs)
            self.splits = {"train": train, "val": val, "test": test, "train_eval": probe}
            return train, val, test, probe, info

        def evaluate(model, data, *args, **kwargs):
            out = real_evaluate(model, data, *args, **kwargs)
            which = next(name for name, split in self.splits.items() if split is data)
            self.calls.append((which, state_copy(model), model))
            if which == "val" and self.val_accs is not None:
                out["acc"] = self.val_accs[len(self.of("val")) - 1]
            return out

        monkeypatch.setattr(engine, "prepare_data", prepare_data)
        monkeypatch.setattr(engine, "evaluate_split", evaluate)

    def of(self, split: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == split]


# ------------------------------------------------------------------ it learns
def test_lenet_learns_beyond_chance(mnist):
    result = run(
        tiny(
            model="lenet",
            model_kwargs={},
            epochs=3,
            train_subset=300,
            eval_subset=200,
            batch_size=16,
        ),
        mnist,
    )
    losses = [row["train_loss"] for row in result.history]
    assert result.status == "finished"
    assert losses[-1] < losses[0]
    # Measured over seeds 0-4: final val acc 0.82-0.875, test 0.81-0.875; chance is 0.1. The
    # bar sits far below the worst, so a slower-but-correct change does not make it flaky.
    assert result.history[-1]["val_acc"] > 0.5
    assert result.metrics["test_acc"] > 0.5


# ------------------------------------------------------------------ the protocol
def test_best_epoch_is_chosen_by_validation_and_test_is_seen_once(mnist, tmp_path, monkeypatch):
    # Epoch 4 ties epoch 2: ties keep the earlier epoch, and the last epoch is not the best.
    spy = Spy(monkeypatch, val_accs=[0.5, 0.9, 0.7, 0.9])
    out = tmp_path / "run"
    result = run(tiny(epochs=4, out_dir=str(out)), mnist)

    assert result.status == "finished"
    assert [row["val_acc"] for row in result.history] == [0.5, 0.9, 0.7, 0.9]
    assert result.best_epoch == 2
    best_row = result.history[1]
    for key in ("train_loss", "train_acc", "train_eval_loss", "train_eval_acc", "val_loss"):
        assert result.metrics[key] == best_row[key]
    assert result.metrics["val_acc"] == best_row["val_acc"]

    # Each epoch judged on val and on the fixed training sample; one look at the test set,
    # after training, on epoch 2's weights.
    assert [c[0] for c in spy.calls] == ["val", "train_eval"] * 4 + ["test"]
    probe, val = spy.splits["train_eval"], spy.splits["val"]
    assert len(probe) == len(val) and result.split["train_eval_used"] == len(val)
    epoch2, epoch4, test_weights = spy.of("val")[1][1], spy.of("val")[3][1], spy.of("test")[0][1]
    assert same_state(test_weights, epoch2)
    assert not same_state(test_weights, epoch4)

    checkpoint = torch.load(out / ledger.CHECKPOINT, map_location="cpu", weights_only=True)
    assert checkpoint["epoch"] == 2
    assert checkpoint["metrics"]["val_acc"] == 0.9
    assert same_state(checkpoint["state_dict"], epoch2)

    saved = ledger.read_json(out / ledger.RESULT)
    assert (saved["status"], saved["best_epoch"], saved["epochs_run"]) == ("finished", 2, 4)
    assert saved["val_acc"] == 0.9 and saved["test_acc"] == result.metrics["test_acc"]
    assert ledger.read_json(out / ledger.HISTORY) == result.history
    assert ledger.read_json(out / ledger.CONFIG) == result.config


def test_result_json_has_every_contract_field(mnist, tmp_path):
    out = tmp_path / "run"
    result = run(tiny(epochs=1, out_dir=str(out)), mnist)
    saved = ledger.read_json(out / ledger.RESULT)
    contract = {
        "run_id",
        "status",
        "error",
        "model",
        "params",
        "config",
        "best_epoch",
        "epochs_run",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
        "train_seconds",
        "total_seconds",
        "images_per_second",
        "device",
        "precision",
        "torch_version",
        "git_commit",
        "seed",
        "split",
        "train_subset",
        "per_class_accuracy",
        "test_confusion",
        "test_misclassified",
    }
    assert contract <= set(saved)
    assert saved["run_id"] == "run" and saved["error"] is None
    assert saved["split"]["test_used"] == 128 and saved["train_subset"] == 256
    confusion = torch.tensor(saved["test_confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 128
    # The confusion matrix, misclassified list and accuracy must tell one story.
    assert confusion.diag().sum() / 128 == pytest.approx(result.metrics["test_acc"])
    assert len(saved["test_misclassified"]) == 128 - confusion.diag().sum()
    for index, true, predicted in saved["test_misclassified"]:
        assert true != predicted and int(mnist.test_labels[index]) == true
    assert not (out / ledger.RESUME).exists()


# ------------------------------------------------------------------ divergence and Ctrl-C
def test_a_huge_learning_rate_is_recorded_as_diverged(mnist, tmp_path):
    out = tmp_path / "run"
    # LeNet with SGD at lr 1e6 overflows to NaN in its first epoch (every seed tried).
    result = run(
        tiny(model="lenet", model_kwargs={}, optimizer="sgd", lr=1e6, epochs=2, out_dir=str(out)),
        mnist,
    )
    assert result.status == "diverged"
    assert len(result.history) == 1 and result.history[0]["train_loss"] is None
    assert result.best_epoch is None and result.metrics["test_acc"] is None
    saved = ledger.read_json(out / ledger.RESULT)
    assert saved["status"] == "diverged" and saved["epochs_run"] == 1
    assert ledger.read_json(out / ledger.HISTORY) == result.history
    assert not (out / ledger.CHECKPOINT).exists()  # no epoch was ever good enough to keep


def test_divergence_after_a_good_epoch_keeps_that_epoch(mnist, tmp_path, monkeypatch):
    real = engine.train_one_epoch
    calls = []

    def poison_second_epoch(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", poison_second_epoch)
    out = tmp_path / "run"
    result = run(tiny(epochs=3, out_dir=str(out)), mnist)
    assert result.status == "diverged"
    assert len(calls) == 2  # the run stops at the first non-finite loss
    assert [row["val_acc"] is None for row in result.history] == [False, True]
    assert result.best_epoch == 1
    assert math.isfinite(result.metrics["test_loss"])
    assert ledger.read_json(out / ledger.RESULT)["status"] == "diverged"
    checkpoint = read_checkpoint(out / ledger.CHECKPOINT)
    assert checkpoint["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["state_dict"].values())


def test_ctrl_c_keeps_the_history_and_leaves_the_run_unfinished(mnist, tmp_path, monkeypatch):
    real = engine.train_one_epoch
    calls = []

    def interrupt_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", interrupt_second_epoch)
    out = tmp_path / "run"
    result = run(tiny(epochs=3, out_dir=str(out)), mnist)
    assert result.status == "interrupted"
    assert [row["epoch"] for row in ledger.read_json(out / ledger.HISTORY)] == [1]
    # No result.json: a sweep sees the run as unfinished and runs it again.
    assert not (out / ledger.RESULT).exists()
    assert not (out / ledger.CHECKPOINT).exists()
    assert ledger.run_status(out) == "partial"
    assert result.metrics["test_acc"] is None


# ------------------------------------------------------------------ determinism and resume
@pytest.mark.parametrize(
    ("model", "precision"), [("lenet", "fp32"), pytest.param("mlp", "bf16", marks=BF16)]
)
def test_same_seed_gives_identical_numbers(mnist, model, precision):
    config = dict(
        model=model,
        model_kwargs={} if model == "lenet" else {"hidden": [32]},
        train_subset=128,
        eval_subset=64,
        precision=precision,
        dropout=0.25,
    )
    first, second = run(tiny(**config), mnist), run(tiny(**config), mnist)
    assert first.precision == precision
    assert numbers(first.history) == numbers(second.history)
    assert first.metrics == second.metrics
    other = run(tiny(seed=1, **config), mnist)
    assert numbers(other.history) != numbers(first.history)


def test_resume_runs_only_the_missing_epochs_and_matches_an_uninterrupted_run(
    mnist, tmp_path, monkeypatch
):
    monkeypatch.setattr(engine, "RESUME_MIN_EPOCH_SECONDS", 0.0)
    reference = run(tiny(epochs=3, out_dir=str(tmp_path / "straight")), mnist)

    real = engine.train_one_epoch
    calls = []

    def interrupt_mid_epoch_2(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            # Half-way through the epoch, so the in-memory weights, optimiser and generator
            # have moved on from what resume.pt holds: the rerun must not see that.
            def stop(seen, total, loss):
                if seen >= 128:
                    raise KeyboardInterrupt

            kwargs["progress"] = stop
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "train_one_epoch", interrupt_mid_epoch_2)
    folder = tmp_path / "resumed"
    assert run(tiny(epochs=3, out_dir=str(folder)), mnist).status == "interrupted"
    assert (folder / ledger.RESUME).is_file()
    assert not (folder / ledger.RESULT).exists()

    calls.clear()
    monkeypatch.setattr(engine, "train_one_epoch", lambda *a, **k: calls.append(1) or real(*a, **k))
    logs: list[str] = []
    resumed = engine.train(
        tiny(epochs=3, out_dir=str(folder)), mnist, log=logs.append, progress=False
    )
    assert len(calls) == 2  # epochs 2 and 3 only
    assert "resuming mlp after epoch 1" in logs
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3]
    assert numbers(resumed.history) == numbers(reference.history)
    assert resumed.metrics == reference.metrics
    assert resumed.best_epoch == reference.best_epoch
    assert not (folder / ledger.RESUME).exists()  # the run is over: its resume state goes
    assert same_state(
        read_checkpoint(folder / ledger.CHECKPOINT)["state_dict"],
        read_checkpoint(tmp_path / "straight" / ledger.CHECKPOINT)["state_dict"],
    )


def test_no_resume_state_for_short_epochs(mnist, tmp_path, monkeypatch):
    # Short epochs are cheaper to redo than to save; the default threshold is a minute.
    written = []
    save = ledger.write_torch
    monkeypatch.setattr(
        ledger, "write_torch", lambda path, obj: (written.append(path.name), save(path, obj))
    )
    run(tiny(epochs=2, out_dir=str(tmp_path / "run")), mnist)
    assert ledger.RESUME not in written


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_reloads_to_the_best_weights_and_reproduces_test_accuracy(
    mnist, tmp_path, monkeypatch
):
    spy = Spy(monkeypatch)
    out = tmp_path / "run"
    # LeNet: convolutions in channels_last fp32, where the layout and precision used to
    # re-evaluate must match those of training for the number to reproduce.
    result = run(
        tiny(model="lenet", model_kwargs={}, epochs=1, eval_subset=None, out_dir=str(out)), mnist
    )
    path = out / ledger.CHECKPOINT

    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert raw["format"] == CHECKPOINT_FORMAT
    assert raw["model"] == "lenet" and raw["epoch"] == result.best_epoch == 1
    assert raw["model_kwargs"] == {"num_classes": 10, "in_channels": 1, "dropout": 0.25}
    assert raw["image_size"] == [28, 28]
    assert raw["normalization"]["mean"] == pytest.approx(0.1307, abs=1e-3)
    assert raw["normalization"]["std"] == pytest.approx(0.3081, abs=1e-3)
    assert raw["config"] == result.config and raw["split"] == result.split
    assert raw["metrics"]["test_acc"] == result.metrics["test_acc"]
    assert not any(k.startswith("_orig_mod.") for k in raw["state_dict"])

    model, meta = load_checkpoint(path)
    assert not model.training
    _, best_weights, best_model = spy.of("test")[0]
    assert same_state(model.state_dict(), best_weights)
    norm = meta["normalization"]
    x = inference.to_input(mnist.test_images[:64], norm["mean"], norm["std"], channels_last=False)
    with torch.no_grad():
        assert torch.allclose(model(x), best_model(x), atol=1e-5)

    again = evaluate_checkpoint(path, device="cpu")
    assert again["images"] == 10_000
    assert again["acc"] == result.metrics["test_acc"] == again["recorded_test_acc"]
    assert again["loss"] == pytest.approx(result.metrics["test_loss"], rel=1e-6)
    with pytest.raises(UserError, match="unknown split 'train'; valid: test, val"):
        evaluate_checkpoint(path, split="train", device="cpu")


class _RunsCode:
    """Unpickling this would call `_mark` (what a malicious checkpoint would do)."""

    def __reduce__(self):
        return (_mark, ())


_MARKS: list[int] = []


def _mark():
    _MARKS.append(1)
    return 0


def test_bad_checkpoints_give_a_user_error_naming_the_file(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(UserError, match=f"{missing}: checkpoint not found"):
        load_checkpoint(missing)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(UserError, match=f"{garbage}: not a readable mnistlab checkpoint"):
        load_checkpoint(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(UserError, match=f"{foreign}: not an mnistlab checkpoint"):
        load_checkpoint(foreign)
    evil = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": _RunsCode()}, evil)
    with pytest.raises(UserError, match=f"{evil}: not a readable mnistlab checkpoint"):
        load_checkpoint(evil)
    assert _MARKS == []  # weights_only=True: the payload never ran


def test_weights_that_do_not_fit_the_model_are_a_user_error(mnist, tmp_path):
    out = tmp_path / "run"
    run(tiny(epochs=1, out_dir=str(out)), mnist)
    meta = read_checkpoint(out / ledger.CHECKPOINT)
    meta["model_kwargs"]["hidden"] = [16]
    wrong = tmp_path / "wrong.pt"
    torch.save(meta, wrong)
    with pytest.raises(UserError, match=f"{wrong}: weights do not fit model 'mlp'"):
        load_checkpoint(wrong)


def test_no_checkpoint_when_asked_not_to_save(mnist, tmp_path):
    out = tmp_path / "run"
    engine.train(
        tiny(epochs=1, out_dir=str(out)), mnist, log=quiet, progress=False, save_checkpoint=False
    )
    assert (out / ledger.RESULT).is_file() and not (out / ledger.CHECKPOINT).exists()


# ------------------------------------------------------------------ EMA
def test_ema_weights_are_evaluated_and_saved(mnist, tmp_path, monkeypatch):
    raw_models = []
    real_make_optimizer = engine.make_optimizer

    def make_optimizer(config, model, device):
        raw_models.append(model)  # the optimiser steps the raw model, never the average
        return real_make_optimizer(config, model, device)

    monkeypatch.setattr(engine, "make_optimizer", make_optimizer)
    spy = Spy(monkeypatch)
    out = tmp_path / "run"
    result = run(tiny(epochs=2, ema=True, ema_decay=0.9, out_dir=str(out)), mnist)

    (raw,) = raw_models
    _, ema_weights, evaluated = spy.of("val")[-1]
    assert evaluated is not raw
    assert not same_state(ema_weights, state_copy(raw))
    checkpoint = read_checkpoint(out / ledger.CHECKPOINT)
    assert checkpoint["ema"] is True
    best = spy.of("val")[result.best_epoch - 1][1]
    assert same_state(checkpoint["state_dict"], best)
    # The saved EMA weights load into a plain model: no AveragedModel keys leak in.
    load_checkpoint(out / ledger.CHECKPOINT)


# ------------------------------------------------------------------ augmentation
@pytest.fixture
def digits(mnist) -> torch.Tensor:
    return mnist.train_images[:16].unsqueeze(1).float().div(255)  # (16, 1, 28, 28) in [0, 1]


def test_random_affine_keeps_shape_dtype_and_range(digits):
    out = random_affine(digits, torch.Generator().manual_seed(0), 15.0, 0.1, 0.1)
    assert out.shape == digits.shape and out.dtype == digits.dtype
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    assert not torch.allclose(out, digits)


def test_random_affine_with_zero_parameters_is_the_identity(digits):
    out = random_affine(digits, torch.Generator().manual_seed(0), 0.0, 0.0, 0.0)
    assert torch.allclose(out, digits, atol=1e-5)


def test_random_affine_is_reproducible_from_its_generator(digits):
    def once(seed):
        return random_affine(digits, torch.Generator().manual_seed(seed), 10.0, 0.1, 0.1)

    assert torch.equal(once(3), once(3))
    assert not torch.equal(once(3), once(4))


def test_random_affine_keeps_each_image_in_its_place(digits):
    # If the batch were reordered, labels would no longer match their images. Each output
    # must still look most like its own input.
    out = random_affine(digits, torch.Generator().manual_seed(0), 10.0, 0.05, 0.05)
    a = torch.nn.functional.normalize(out.flatten(1), dim=1)
    b = torch.nn.functional.normalize(digits.flatten(1), dim=1)
    assert torch.equal((a @ b.T).argmax(1), torch.arange(len(digits)))


def test_zero_augmentation_trains_like_no_augmentation(mnist):
    # One epoch: the augmentation draws from the shuffling generator, so later epochs would
    # see a different order; within the first the batches and their labels must be the same.
    plain = run(tiny(epochs=1), mnist)
    zero = run(tiny(epochs=1, augment=True, rotate_degrees=0.0, translate=0.0, scale=0.0), mnist)
    (p,), (z,) = plain.history, zero.history
    assert z["train_loss"] == pytest.approx(p["train_loss"], rel=1e-4)
    assert z["val_loss"] == pytest.approx(p["val_loss"], rel=1e-4)
    assert z["val_acc"] == pytest.approx(p["val_acc"], abs=2 / 128)
    augmented = run(tiny(epochs=1, augment=True), mnist)
    assert augmented.history[0]["train_loss"] != pytest.approx(p["train_loss"], rel=1e-4)


# ------------------------------------------------------------------ schedules
def lr_trace(steps_per_epoch: int = 10, **settings) -> list[float]:
    config = TrainConfig(lr=0.1, epochs=2, **settings)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config.lr)
    scheduler = engine.make_scheduler(config, optimizer, steps_per_epoch)
    trace = [optimizer.param_groups[0]["lr"]]
    for _ in range(config.epochs * steps_per_epoch):
        optimizer.step()
        scheduler.step()
        trace.append(optimizer.param_groups[0]["lr"])
    return trace  # trace[i]: the lr used by step i (0-based)


def test_constant_schedule():
    assert lr_trace(schedule="constant") == [0.1] * 21


def test_linear_warmup_then_constant():
    trace = lr_trace(schedule="constant", warmup_epochs=0.5)  # 5 warm-up steps
    assert trace[:6] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1])
    assert trace[5:20] == pytest.approx([0.1] * 15)


def test_cosine_schedule_decays_to_zero():
    trace = lr_trace(schedule="cosine")
    assert trace[0] == pytest.approx(0.1)
    assert trace[10] == pytest.approx(0.05)  # half-way
    assert trace[19] == pytest.approx(0.05 * (1 + math.cos(math.pi * 19 / 20)))
    assert trace[20] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(trace, trace[1:], strict=False))


def test_cosine_after_warmup():
    trace = lr_trace(schedule="cosine", warmup_epochs=1.0)  # 10 warm-up steps of 20
    assert trace[0] == pytest.approx(0.01)
    assert trace[9] == pytest.approx(0.1) and trace[10] == pytest.approx(0.1)
    assert trace[15] == pytest.approx(0.05)


@pytest.mark.parametrize(("warmup_epochs", "peak_step"), [(0.0, 4), (1.0, 9)])
def test_onecycle_rises_to_the_peak_then_anneals(warmup_epochs, peak_step):
    trace = lr_trace(schedule="onecycle", warmup_epochs=warmup_epochs)
    # Torch's defaults: start at lr/25, end at lr/25/1e4; 25% warm-up unless one is given.
    assert trace[0] == pytest.approx(0.1 / 25)
    assert max(trace) == pytest.approx(0.1)
    assert trace.index(max(trace)) == peak_step
    assert trace[19] == pytest.approx(0.1 / 25 / 1e4)


def test_sgd_onecycle_cycles_momentum():
    config = TrainConfig(lr=0.1, epochs=1, optimizer="sgd", momentum=0.9, schedule="onecycle")
    optimizer = engine.make_optimizer(config, torch.nn.Linear(2, 2), torch.device("cpu"))
    engine.make_scheduler(config, optimizer, 20)
    # OneCycle starts SGD's momentum at its maximum (0.95) while the lr is lowest.
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.95)


# ------------------------------------------------------------------ device and precision
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_missing_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="device 'cuda' requested but no CUDA GPU is available"):
        device.resolve_device("cuda")
    assert device.resolve_device("cpu") == torch.device("cpu")


@BF16
def test_bf16_training_really_runs_in_bf16(mnist, monkeypatch):
    dtypes = set()
    real_create = engine.create_model

    def create_model(*args, **kwargs):
        model = real_create(*args, **kwargs)

        def record(module, inputs, output):  # returns None: a hook's return replaces the output
            # Only forwards with gradients: the engine's one-off MAC count runs in fp32 on purpose.
            if torch.is_grad_enabled():
                dtypes.add(output.dtype)

        model.register_forward_hook(record)
        return model

    monkeypatch.setattr(engine, "create_model", create_model)
    result = run(
        tiny(
            model="lenet",
            model_kwargs={},
            epochs=1,
            train_subset=128,
            eval_subset=64,
            precision="bf16",
        ),
        mnist,
    )
    assert result.precision == "bf16" and result.status == "finished"
    assert dtypes == {torch.bfloat16}
    assert 0.0 <= result.metrics["test_acc"] <= 1.0


# ------------------------------------------------------------------ TensorBoard
def test_tensorboard_event_files_hold_every_epoch(mnist, tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mnistlab.tracking import tracking_callbacks

    out = tmp_path / "run"
    config = tiny(epochs=2, out_dir=str(out), tensorboard=True)
    engine.train(config, mnist, log=quiet, progress=False, callbacks=tracking_callbacks(config))
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) >= {"train/loss", "train/acc", "val/loss", "val/acc"}
    history = ledger.read_json(out / ledger.HISTORY)
    logged = [e.value for e in events.Scalars("val/acc")]
    assert logged == pytest.approx([row["val_acc"] for row in history])
    # Logging is an observation, not part of the experiment: same run id either way.
    assert ledger.run_id_for(tiny(tensorboard=True).to_dict()) == ledger.run_id_for(
        tiny().to_dict()
    )


def test_tensorboard_without_the_extra_fails_before_work(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tensorboard" else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError, match=r"pip install 'mnistlab\[tensorboard\]'"):
        tiny(tensorboard=True).validate()


# ------------------------------------------------------------------ callbacks
class EarlyStopping(engine.Callback):
    """A user's callback: records what it is told and stops when val loss stops falling."""

    def __init__(self, patience: int):
        self.patience, self.events, self.best, self.waited = patience, [], float("inf"), 0

    def on_train_start(self, config, folder, history):
        self.events.append(("start", config.model, len(history), folder))

    def on_epoch_end(self, row, state):
        self.events.append(("epoch", row["epoch"], state.best_epoch))
        if row["val_loss"] < self.best:
            self.best, self.waited = row["val_loss"], 0
            return None
        self.waited += 1
        if self.waited >= self.patience:
            return engine.Stop(f"val loss has not fallen for {self.waited} epoch(s)")
        return None

    def on_train_end(self, status):
        self.events.append(("end", status))


def test_a_user_callback_sees_every_epoch_and_stops_the_run_early(mnist, tmp_path, monkeypatch):
    # Val losses forced to rise after epoch 2: patience 2 stops the run after epoch 4 of 6.
    losses = iter([0.9, 0.5, 0.6, 0.7, 0.8, 0.9])
    real_evaluate = engine.Session.evaluate

    def evaluate(session, data):
        out = real_evaluate(session, data)
        if data is session.val_data:
            out["loss"] = next(losses)
        return out

    monkeypatch.setattr(engine.Session, "evaluate", evaluate)
    stopper = EarlyStopping(patience=2)
    out = tmp_path / "run"
    result = engine.train(
        tiny(epochs=6, out_dir=str(out)), mnist, log=quiet, progress=False, callbacks=[stopper]
    )
    assert [e[:2] for e in stopper.events] == [
        ("start", "mlp"),
        ("epoch", 1),
        ("epoch", 2),
        ("epoch", 3),
        ("epoch", 4),
        ("end", "stopped"),
    ]
    assert stopper.events[0][2] == 0 and stopper.events[0][3].path == out
    assert result.status == "stopped" and len(result.history) == 4
    assert result.error == "val loss has not fallen for 2 epoch(s)"
    assert result.metrics["test_acc"] is not None  # the chosen epoch is still judged on test
    saved = ledger.read_json(out / ledger.RESULT)
    assert (saved["status"], saved["epochs_run"]) == ("stopped", 4)
    assert ledger.RunFolder(out).is_done()


def test_a_stop_must_name_an_early_stop_status():
    with pytest.raises(ValueError, match="Stop status must be one of"):
        engine.Stop("why", status="finished")


def test_callbacks_hear_the_end_of_a_run_that_raised(mnist, monkeypatch):
    stopper = EarlyStopping(patience=99)

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(engine, "train_one_epoch", broken)
    with pytest.raises(RuntimeError, match="simulated"):
        engine.train(tiny(), mnist, log=quiet, progress=False, callbacks=[stopper])
    assert stopper.events[-1] == ("end", "failed")
