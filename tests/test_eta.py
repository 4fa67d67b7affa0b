"""The sweep's ETA (issue 12, item 6): from the work left, within 2x of the truth after the
first run, tested on timings recorded by a real `make run`."""

from __future__ import annotations

import pytest

from mnistlab.sweep import EVAL_COST, EtaEstimator, RunCost

# `make run` (configs/quick.toml) from a clean clone on the 2-core dev VM (Intel Xeon, no
# AVX-512 BF16, torch 2.13 CPU, fp32), 2026-11-29, in the order the runs ran: model, MACs per
# image, training images x epochs, evaluated images (val x epochs + test), total seconds.
RECORDED = [
    ("alexnet", 222_017_024, 3000, 2000, 25.97),
    ("resnet18", 455_800_832, 3000, 2000, 49.98),
    ("wrn16_4", 300_368_640, 3000, 2000, 37.77),
    ("vgg11", 95_352_832, 3000, 2000, 14.99),
    ("fastnet", 2_584_064, 3000, 2000, 0.87),
    ("mlp", 535_040, 3000, 2000, 0.34),
] + [
    ("lenet", 416_520, 30000, 28000, seconds)
    for seconds in (4.97, 5.12, 4.77, 4.62, 5.27, 5.6, 4.73, 4.68, 4.38, 4.23, 4.42, 4.28)
]


def cost(model, macs, trained, evaluated) -> RunCost:
    return RunCost(model, macs, trained + evaluated * EVAL_COST)


def test_the_eta_is_within_2x_of_the_truth_from_the_first_run_on():
    eta = EtaEstimator()
    assert eta.estimate([cost(*r[:4]) for r in RECORDED]) is None  # nothing seen: no guess
    ratios = []
    for done in range(1, len(RECORDED)):
        eta.observe(cost(*RECORDED[done - 1][:4]), RECORDED[done - 1][4])
        left = eta.estimate([cost(*r[:4]) for r in RECORDED[done:]])
        ratios.append(left / sum(r[4] for r in RECORDED[done:]))
    assert all(0.5 <= r <= 2.0 for r in ratios), ratios


def test_a_model_seen_before_is_priced_by_its_own_rate():
    eta = EtaEstimator()
    eta.observe(cost(*RECORDED[6][:4]), 5.0)
    assert eta.estimate([cost(*RECORDED[7][:4])] * 3) == pytest.approx(15.0)


def test_an_unseen_model_between_two_seen_ones_is_interpolated():
    eta = EtaEstimator()
    eta.observe(RunCost("small", 1_000_000, 1000), 1.0)  # 1 ms per image
    eta.observe(RunCost("big", 100_000_000, 1000), 100.0)  # 100 ms per image
    # Halfway in log MACs is halfway in log seconds: 10 ms per image.
    assert eta.per_image(RunCost("middle", 10_000_000, 1)) == pytest.approx(0.01)
    # Beyond the seen range: the nearest model and the default slope.
    beyond = eta.per_image(RunCost("huge", 1_000_000_000, 1))
    assert beyond == pytest.approx(0.1 * 10**EtaEstimator.DEFAULT_SLOPE)


def test_the_summary_lists_budgets_apart(tmp_path):
    from mnistlab.config import TrainConfig
    from mnistlab.experiment import summary_lines
    from mnistlab.ledger import RunFolder, TrainResult
    from mnistlab.sweep import Sweep

    def record(model, train_used, val_acc):
        config = TrainConfig(model=model, epochs=2)
        folder = RunFolder(tmp_path / "runs" / f"{model}-{train_used}")
        folder.start(config)
        split = {"train_used": train_used, "val_used": 100, "test_used": 200}
        metrics = {"val_acc": val_acc, "test_acc": 0.9, "train_acc": 1.0}
        metrics |= {"train_loss": 0.1, "val_loss": 0.2, "test_loss": 0.3}
        folder.finish(
            TrainResult(
                config.to_dict(),
                "finished",
                [],
                2,
                metrics,
                10,
                1.0,
                2.0,
                1.0,
                "cpu",
                "fp32",
                split,
            )
        )

    record("lenet", 5000, 0.97)
    record("mlp", 1000, 0.99)  # higher, but on another budget: never ranked above lenet
    sweep = Sweep("s", tmp_path, tmp_path / "s.toml", [])
    lines = summary_lines(sweep)
    headers = [i for i, line in enumerate(lines) if line.endswith("test images:")]
    assert len(headers) == 2
    blocks = [lines[headers[0] : headers[1]], lines[headers[1] :]]
    assert sum(any(line.startswith("lenet") for line in b) for b in blocks) == 1
    assert sum(any(line.startswith("mlp") for line in b) for b in blocks) == 1
    assert all(sum(line[:5] in ("lenet", "mlp  ") for line in b) == 1 for b in blocks)
    assert "90.00% (" in "\n".join(lines) and "n=200" in "\n".join(lines)
