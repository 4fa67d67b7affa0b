"""Every kind of conclusion sentence, fed data where its claim is true, where it is false, and
where the compared quantity crosses zero (or ties exactly)."""

from __future__ import annotations

import re

import pytest
from test_report import history, record

from mnistlab.report import conclusions
from mnistlab.report.analysis import analyse
from mnistlab.report.runs import to_runs
from mnistlab.report.stats import p_text

TEN = [i % 10 for i in range(1000)]


def preds(wrong: set[int], labels=TEN) -> dict:
    """Per-image predictions on `labels`, wrong exactly on the indices in `wrong`."""
    return {
        "test_labels": list(labels),
        "test_predictions": [(y + 1) % 10 if i in wrong else y for i, y in enumerate(labels)],
    }


def pair(only_a: int, only_b: int, both: int = 10) -> tuple[dict, dict]:
    """Predictions of A and B on the same 1,000 images: `both` wrong for both, `only_a` images
    only A got right (B wrong), `only_b` only B got right."""
    common = set(range(both))
    a_wrong = common | set(range(500, 500 + only_b))
    b_wrong = common | set(range(100, 100 + only_a))
    return preds(a_wrong), preds(b_wrong)


def one(said: list[str], marker: str) -> str:
    found = [s for s in said if marker in s]
    assert len(found) == 1, (marker, said)
    return found[0]


def none(said: list[str], marker: str) -> None:
    assert not any(marker in s for s in said), (marker, said)


def quick(model, val, *, lr=1e-3, dropout=0.25, test=None, **kw) -> dict:
    """A finished run on 2,000 images x 4 epochs, judged on 1,000 test images."""
    test = val if test is None else test
    return record(model, lr, dropout, val_acc=val, test_acc=test, test_used=1000, **kw)


# ---------------------------------------------------------------- budgets
def test_one_budget_has_no_budget_sections():
    said = conclusions([quick("lenet", 0.97), quick("m5", 0.96)])
    none(said, "Budget ")
    one(said, "Best model by validation accuracy: lenet")


def test_mixed_budgets_are_ranked_apart_and_said_at_the_top():
    records = [
        quick("lenet", 0.99, train_subset=8000),  # more images: it would win any ranking
        quick("m5", 0.97),
        quick("mlp", 0.93),
        quick("alexnet", 0.92, train_subset=3000, eval_subset=500),
    ]
    analysis = analyse(to_runs(records))
    assert [g.models for g in analysis.groups] == [["lenet"], ["alexnet"], ["m5", "mlp"]]
    said = conclusions(records)
    assert said[0].startswith("Budget A (lenet): 8,000 of 54,000 training images × 4 epochs")
    # Ranked within budget C only: lenet (budget A) is never set against m5 or mlp.
    ranking = one(said, "Validation accuracy of each model's best combination")
    assert "m5 97.00%" in ranking and "mlp 93.00%" in ranking and "lenet" not in ranking
    assert sum(s.startswith("Best model by validation accuracy") for s in said) == 3
    from mnistlab.report.conclusions import mixed_budget_note
    from mnistlab.report.i18n import Tr

    note = mixed_budget_note(analysis, Tr("en"))
    assert note.startswith("This sweep mixes 3 budgets") and "never across" in note


def test_a_budgets_runs_are_named_by_what_varies_within_that_budget():
    # batch_size and schedule differ between the budgets only (as in configs/quick.toml): they
    # say nothing about the choice inside a budget, so they stay out of its runs' names.
    records = [
        quick("lenet", v, lr=lr, dropout=d, train_subset=8000, batch_size=64)
        for lr, d, v in [(1e-3, 0.25, 0.97), (5e-3, 0.25, 0.98), (5e-3, 0.5, 0.96)]
    ] + [
        quick(m, v, batch_size=32, schedule="onecycle", eval_subset=500)
        for m, v in [("alexnet", 0.90), ("vgg", 0.93)]
    ]
    said = conclusions(records)
    best_a = one(said, "Best model by validation accuracy: lenet")
    assert "lenet (lr=0.005, dropout=0.25) with" in best_a
    best_b = one(said, "Best model by validation accuracy: vgg")
    assert "vgg (lr=0.001, dropout=0.25) with" in best_b
    named = [s for s in said if "the user's reported" not in s]  # those list protocol changes
    assert not any("batch_size=" in s or "schedule=" in s for s in named), said
    # Within one budget a field that varies is named.
    mixed = [quick("lenet", v, batch_size=b) for b, v in [(32, 0.97), (64, 0.98)]]
    best = one(conclusions(mixed), "Best model by validation accuracy")
    assert "lenet (lr=0.001, dropout=0.25, batch_size=64) with" in best


def test_evaluation_images_alone_make_a_different_budget():
    records = [quick("m5", 0.97), quick("mlp", 0.95, eval_subset=500)]
    assert len(analyse(to_runs(records)).groups) == 2
    none(conclusions(records), "runner-up")  # nothing to compare within either budget


def test_no_time_fit_across_budgets():
    records = [
        quick("lenet", 0.97),
        quick("wrn", 0.98),
        quick("vgg", 0.96, train_subset=3000),  # a third model, but on another budget
    ]
    none(conclusions(records), "Pearson")
    records[-1] = quick("vgg", 0.96)
    one(conclusions(records), "Pearson")


# ---------------------------------------------------------------- runs that did not learn
def test_a_run_near_chance_is_named_and_excluded():
    records = [quick("lenet", 0.97), quick("vgg", 0.1123, lr=5e-3), quick("vgg", 0.96)]
    said = conclusions(records)
    text = one(said, "Did not learn")
    assert (
        "vgg (lr=0.005, dropout=0.25) at 11.23% validation accuracy, within 10 points of chance (10%)"
        in text
    )
    assert "vgg 11.23" not in " ".join(said)


def test_a_run_far_below_its_models_other_runs_is_excluded():
    records = [quick("lenet", 0.97), quick("lenet", 0.45, lr=5e-3), quick("m5", 0.96)]
    text = one(conclusions(records), "Did not learn")
    assert (
        "lenet (lr=0.005, dropout=0.25) at 45.00% validation accuracy, less than half-way" in text
    )
    assert "its model's best other run (lenet (lr=0.001, dropout=0.25), 97.00%)" in text


def test_a_model_far_below_the_other_models_of_its_budget_is_excluded_from_rankings():
    records = [quick("resnet", 0.95), quick("vgg", 0.258), quick("alexnet", 0.93)]
    said = conclusions(records)
    text = one(said, "Did not learn")
    assert "vgg (lr=0.001, dropout=0.25) at 25.80% validation accuracy" in text
    assert "to the best of the other models on this budget (resnet, 95.00%)" in text
    ranking = one(said, "Validation accuracy of each model's best combination")
    assert "vgg" not in ranking


def test_a_weak_run_that_learned_is_kept():
    records = [quick("lenet", 0.97), quick("lenet", 0.90, lr=5e-3), quick("mlp", 0.60)]
    none(conclusions(records), "Did not learn")


def test_exactly_half_way_is_not_excluded():
    # chance 10%; the best other run at 90%: half-way is 50%.
    records = [quick("lenet", 0.90), quick("lenet", 0.50, lr=5e-3)]
    none(conclusions(records), "Did not learn")
    records[1] = quick("lenet", 0.4999, lr=5e-3)
    one(conclusions(records), "Did not learn")


def test_excluded_runs_leave_fits_out():
    records = [quick("lenet", 0.97), quick("wrn", 0.98), quick("vgg", 0.11)]
    none(conclusions(records), "Pearson")  # only 2 models learned


# ---------------------------------------------------------------- the best model
def test_best_model_sentence_carries_the_interval_for_its_images():
    said = conclusions([quick("lenet", 0.992, test=0.992), quick("m5", 0.98)])
    assert said[0] == (
        "Best model by validation accuracy: lenet (lr=0.001, dropout=0.25) with 99.20% "
        "validation and 99.20% test accuracy (95% interval 98.43–99.59%, 1,000 test images; "
        "61,990 parameters, 190 s)."
    )


def test_repeated_seeds_are_mean_std_with_n():
    records = [quick("lenet", v, seed=s, test=v) for s, v in ((0, 0.990), (1, 0.992), (2, 0.994))]
    said = conclusions(records)
    assert "with 99.20% ± 0.20 (n=3) validation and 99.20% ± 0.20 (n=3) test accuracy" in said[0]
    assert "95% t interval of the mean 98.70–99.70%, n=3" in said[0]


@pytest.mark.parametrize(
    "other_test, claimed",
    [(0.995, True), (0.985, False), (0.990, False)],  # higher, lower, equal
)
def test_test_higher_sentence_only_when_a_lower_ranked_model_scores_higher(other_test, claimed):
    said = conclusions([quick("resnet", 0.993, test=0.990), quick("lenet", 0.992, test=other_test)])
    if claimed:
        text = one(said, "On test accuracy")
        assert "lenet's best combination scores higher (99.50% vs 99.00%)" in text
    else:
        none(said, "On test accuracy")


@pytest.mark.parametrize(
    "only_lenet, only_resnet, verdict",
    [
        (40, 5, "the difference is significant (p<0.001)"),
        (12, 7, "the two are not distinguishable (p=0.36)"),
    ],
)
def test_a_higher_test_score_says_whether_it_is_more_than_noise(only_lenet, only_resnet, verdict):
    lenet, resnet = pair(only_lenet, only_resnet)
    n = 1000
    said = conclusions(
        [
            quick("resnet", 0.993, test=(n - 10 - only_lenet) / n, predictions=resnet),
            quick("lenet", 0.992, test=(n - 10 - only_resnet) / n, predictions=lenet),
        ]
    )
    text = one(said, "On test accuracy")
    assert text.startswith("On test accuracy lenet's best combination scores higher")
    assert f"on the same 1,000 test images, exact McNemar test: {verdict}), but" in text


@pytest.mark.parametrize(
    "second, tied",
    [(0.978, True), (0.960, False), (0.980, True)],  # inside, outside, equal (difference zero)
)
def test_ranking_marks_ties_within_noise(second, tied):
    said = conclusions([quick("resnet", 0.980), quick("lenet", second)])
    ranking = one(said, "Validation accuracy of each model's best combination")
    if tied:
        assert "(tied with the top within noise)" in ranking
        assert "inside the top's 95% interval for 6,000 validation images" in ranking
    else:
        assert "tied" not in ranking


# ---------------------------------------------------------------- paired tests
@pytest.mark.parametrize(
    "p, text",
    [
        (0.41, "p=0.41"),
        (0.0031, "p=0.0031"),
        (0.0004, "p<0.001"),
        (1.0, "p=1"),
        (0.0496, "p=0.0496"),
        (0.0502, "p=0.0502"),  # not "p=0.05" beside "not significant"
        (0.05, "p=0.05"),
    ],
)
def test_p_values_are_printed_so_the_text_agrees_with_the_verdict(p, text):
    assert p_text(p) == text
    shown = float(text.split("=")[1]) if "=" in text else 0.0
    assert (shown < 0.05) == (p < 0.05)


@pytest.mark.parametrize(
    "only_a, only_b, verdict",
    [
        (30, 5, "the difference is significant (p<0.001)"),
        (10, 8, "the two are not distinguishable (p=0.81)"),
        (7, 7, "the two are not distinguishable (p=1)"),  # no difference at all
        (5, 12, "the two are not distinguishable (p=0.14)"),  # the runner-up was right more
    ],
)
def test_best_against_runner_up_by_exact_mcnemar(only_a, only_b, verdict):
    a, b = pair(only_a, only_b)
    said = conclusions([quick("resnet", 0.99, predictions=a), quick("lenet", 0.98, predictions=b)])
    text = one(said, "runner-up")
    assert text.startswith("resnet (99.00% test) against the runner-up lenet (98.00% test)")
    assert (
        f"on the same 1,000 test images: only resnet was right on {only_a}, only lenet on {only_b}"
        in text
    )
    assert text.endswith(f"exact McNemar test: {verdict}.")


def test_no_paired_test_without_predictions_or_on_different_images():
    a, _ = pair(10, 2)
    said = conclusions([quick("resnet", 0.99, predictions=a), quick("lenet", 0.98)])
    assert one(said, "runner-up").endswith(
        "no paired test, because per-image test predictions were not recorded for both runs."
    )
    other = preds(set(), labels=[(i + 3) % 10 for i in range(1000)])
    said = conclusions(
        [quick("resnet", 0.99, predictions=a), quick("lenet", 0.98, predictions=other)]
    )
    assert one(said, "runner-up").endswith(
        "no paired test, because they were judged on different test images."
    )


def test_best_against_the_users_choice():
    ours, theirs = pair(40, 10)
    records = [
        quick("lenet", 0.990, lr=1e-3, dropout=0.25, predictions=ours),
        quick("lenet", 0.985, lr=5e-3, dropout=0.3, predictions=theirs),  # the user's pick
    ]
    text = one(conclusions(records), "the user's choice")
    assert text.startswith(
        "lenet: the best combination here (lr=0.001, dropout=0.25; 99.00% test) against the "
        "user's choice (lr=0.005, dropout=0.3; 98.50% test) on the same 1,000 test images"
    )
    assert "only ours was right on 40, only the user's choice on 10" in text
    assert "significant (p<0.001)" in text
    # Where the user's combination wins here, the sentence says so instead.
    records[1] = quick("lenet", 0.995, lr=5e-3, dropout=0.3, predictions=theirs)
    assert "the best combination here is the user's own choice (lr=0.005, dropout=0.3)" in one(
        conclusions(records), "user's own choice"
    )
    # First of a tie within noise is not a win (the H200 report's lenet, first edition).
    records[1] = quick("lenet", 0.991, lr=5e-3, dropout=0.3, predictions=theirs)
    tied = one(conclusions(records), "user's own choice")
    assert tied == (
        "lenet: the user's own choice (lr=0.005, dropout=0.3) is first here by validation "
        "accuracy, but it is one of 2 combinations tied within noise, so this grid does not "
        "single it out."
    )
    # Not run: nothing said.
    none(conclusions(records[:1]), "user's choice")


# ---------------------------------------------------------------- the MLP baseline
BASELINE = "Convolution against none"


def baseline(only_cnn: int, only_mlp: int, both: int = 20, **mlp_kw) -> list[dict]:
    """resnet (the best CNN by validation), lenet (higher on test, lower on validation) and
    the mlp baseline on the same 1,000 test images; the test accuracies agree with the
    predictions: resnet is wrong on both + only_mlp images, mlp on both + only_cnn."""
    cnn, mlp = pair(only_cnn, only_mlp, both)
    return [
        quick("resnet", 0.99, test=(1000 - both - only_mlp) / 1000, predictions=cnn),
        quick("lenet", 0.985, test=0.999, predictions=preds(set())),
        quick(
            "mlp", mlp_kw.pop("val", 0.95), test=(1000 - both - only_cnn) / 1000, predictions=mlp
        ),
    ]


def test_baseline_where_convolution_clearly_helped():
    text = one(conclusions(baseline(60, 10)), BASELINE)
    assert text == (
        "Convolution against none: mlp, the baseline multilayer perceptron with no convolutions, "
        "reached a test accuracy of 92.00% (95% interval 90.15–93.53%, 1,000 test images); "
        "resnet, the best convolutional network by validation accuracy, 97.00% (95% interval "
        "95.75–97.89%): resnet 5.00 points higher. On the same 1,000 test images only resnet was "
        "right on 60, only mlp on 10; exact McNemar test: the difference is significant "
        "(p<0.001). So on this budget resnet was the more accurate, and mlp's lower accuracy is "
        "the expected finding for a baseline, not a failed run; the two differ in far more than "
        "convolution (depth, width, normalisation, parameters), so the gap is not what "
        "convolution alone adds."
    )


@pytest.mark.parametrize(
    "only_cnn, only_mlp, diff, p",
    [
        (12, 8, "resnet 0.40 points higher", "p=0.5"),  # CNN ahead, within noise
        (10, 10, "the same accuracy", "p=1"),  # exactly zero
        (8, 12, "mlp 0.40 points higher", "p=0.5"),  # the sign crossed: MLP ahead, within noise
    ],
)
def test_baseline_within_noise_claims_nothing_for_convolution(only_cnn, only_mlp, diff, p):
    text = one(conclusions(baseline(only_cnn, only_mlp)), BASELINE)
    assert f"by validation accuracy, {(980 - only_mlp) / 10:.2f}% " in text
    assert f": {diff}. On the same 1,000 test images only resnet was right on {only_cnn}, " in text
    assert f"exact McNemar test: the two are not distinguishable ({p})." in text
    assert text.endswith(
        "So on this budget the baseline without convolutions was as accurate as the best "
        "convolutional network, as far as these test images can tell."
    )
    assert "bought" not in text and "failed run" not in text


def test_baseline_that_beat_every_cnn_is_said_plainly():
    # The MLP is even first on validation: the comparison is still with the best CNN.
    said = conclusions(baseline(10, 60, val=0.995))
    assert said[0].startswith("Best model by validation accuracy: mlp")
    text = one(said, BASELINE)
    assert "resnet, the best convolutional network by validation accuracy, 92.00%" in text
    assert (
        ": mlp 5.00 points higher. On the same 1,000 test images only resnet was right on 10"
        in text
    )
    assert "the difference is significant (p<0.001)" in text
    assert text.endswith(
        "So on this budget the baseline without convolutions was more accurate than the best "
        "convolutional network."
    )
    assert "bought" not in text and "failed run" not in text


def test_baseline_without_predictions_gives_the_numbers_and_no_verdict():
    records = [quick("resnet", 0.99, test=0.97), quick("mlp", 0.95, test=0.92)]
    text = one(conclusions(records), BASELINE)
    assert text.endswith(
        "95.75–97.89%): resnet 5.00 points higher; no paired test, because per-image test "
        "predictions were not recorded for both runs."
    )
    assert "bought" not in text


def test_baseline_needs_the_mlp_and_a_cnn_that_learned_on_one_budget():
    none(conclusions([quick("resnet", 0.99), quick("lenet", 0.98)]), BASELINE)  # no MLP
    none(conclusions([quick("mlp", 0.95)]), BASELINE)  # no CNN
    said = conclusions([quick("mlp", 0.95), quick("vgg", 0.11)])  # the CNN did not learn
    one(said, "Did not learn")
    none(said, BASELINE)
    said = conclusions([quick("resnet", 0.99), quick("mlp", 0.11)])  # the MLP did not learn
    none(said, BASELINE)
    records = [quick("resnet", 0.99), quick("mlp", 0.95, train_subset=3000)]  # two budgets
    none(conclusions(records), BASELINE)


# ---------------------------------------------------------------- ties within one model
def test_exact_tie_is_broken_by_time_and_said():
    fast = quick("lenet", 0.971, lr=1e-3)
    slow = quick("lenet", 0.971, lr=5e-3)
    slow["result"]["total_seconds"] = 300.0
    text = one(conclusions([slow, fast]), "tie within noise")
    assert text.startswith("lenet: 2 combinations tie within noise on validation accuracy")
    assert (
        "Shown as best: lr=0.001, dropout=0.25, tied exactly on validation accuracy and size"
        in text
    )
    assert "chosen for the shorter running time" in text


def test_near_tie_names_the_highest_and_a_clear_gap_is_no_tie():
    said = conclusions([quick("lenet", 0.975, lr=1e-3), quick("lenet", 0.973, lr=5e-3)])
    assert "the highest validation accuracy of them" in one(said, "tie within noise")
    said = conclusions([quick("lenet", 0.990, lr=1e-3), quick("lenet", 0.960, lr=5e-3)])
    none(said, "tie within noise")


# ---------------------------------------------------------------- efficiency and time
@pytest.mark.parametrize(
    "small_val, expected",
    [
        # Inside the top's 95% interval for 6,000 validation images (96.64-97.50%).
        (0.9670, ": lenet with 61,990 parameters (180x fewer than resnet)"),
        (0.9650, "resnet itself — no smaller model came that close"),  # 0.60 points below
        # Equal: the smaller model is ranked first (fewer parameters break the tie).
        (0.9710, "lenet itself, which is also the smallest model compared (61,990 parameters)"),
    ],
)
def test_efficiency_sentence(small_val, expected):
    said = conclusions([quick("resnet", 0.9710), quick("lenet", small_val)])
    text = one(said, "Most accurate per parameter")
    assert expected in text
    top = "lenet" if small_val == 0.9710 else "resnet"
    assert f"not distinguishable from the top's ({top}, 97.10%; inside its 95% interval" in text
    assert "for 6,000 validation images)" in text
    if "no smaller" in expected:
        assert "(0.60 points lower)" in text


def test_efficiency_without_a_validation_count_uses_a_tenth_of_a_point():
    records = [quick("resnet", 0.9710), quick("lenet", 0.9705)]
    for rec in records:
        del rec["result"]["split"]["val_size"], rec["result"]["split"]["val_used"]
    text = one(conclusions(records), "Most accurate per parameter")
    assert "within 0.1 points of the top (resnet, 97.10%): lenet with 61,990 parameters" in text


def times(seconds: dict[str, float]) -> list[dict]:
    out = []
    for model, secs in seconds.items():
        rec = quick(model, 0.97)
        rec["result"]["total_seconds"] = secs
        out.append(rec)
    return out


NOT_ESTABLISHED = "No relation between running time and parameter count is established"


@pytest.mark.parametrize(
    "seconds, start, p",
    [
        (
            {"lenet": 100, "wrn": 400, "resnet": 900, "vgg": 2000},
            "Running time and parameter count rose together",
            "p=0.017",
        ),
        (
            {"lenet": 2000, "wrn": 400, "resnet": 200, "vgg": 100},
            "Running time fell as parameter count rose",
            "p=0.0056",
        ),
        # Around zero: no direction either way.
        ({"lenet": 200, "wrn": 100, "resnet": 100, "vgg": 200}, NOT_ESTABLISHED, "p=0.69"),
        # r = 0.99 over three models is still chance at the 5% level: no claim of growth.
        ({"lenet": 100, "wrn": 400, "resnet": 900}, NOT_ESTABLISHED, "p=0.07"),
        ({"lenet": 900, "wrn": 400, "resnet": 100}, NOT_ESTABLISHED, "p=0.26"),
    ],
)
def test_time_sentence_claims_a_direction_only_when_the_correlation_is_significant(
    seconds, start, p
):
    text = one(conclusions(times(seconds)), "Pearson")
    assert text.startswith(start)
    assert f"({p})" in text


# ---------------------------------------------------------------- what the curves show
def curve(val_loss, train_loss=None, val_acc=None) -> list[dict]:
    """A history with these validation losses; training loss falls unless given."""
    n = len(val_loss)
    train_loss = train_loss or [0.4 / e for e in range(1, n + 1)]
    val_acc = val_acc or [0.97 + 0.001 * e for e in range(1, n + 1)]
    rows = zip(train_loss, val_loss, val_acc, strict=True)
    return [
        {"epoch": e, "train_loss": t, "train_acc": 0.99, "val_loss": v, "val_acc": a, "seconds": 1}
        for e, (t, v, a) in enumerate(rows, start=1)
    ]


def curves_of(*losses, **kw) -> list[str]:
    records = [
        quick("lenet", 0.98, lr=1e-3 * (i + 1), hist=curve(v, **kw)) for i, v in enumerate(losses)
    ]
    return conclusions(records)


def test_over_fitting_is_read_where_validation_loss_turns_up_while_training_loss_falls():
    text = one(curves_of([1.0, 0.625, 0.7, 0.8], [1.0, 0.5, 0.4, 0.3]), "lenet, curves of 2 runs")
    assert "1 of them over-fitted" in text
    assert "lr=0.001, dropout=0.25 (lowest at epoch 2, then up 0.175 over 2 epochs)" in text
    assert "The kept epoch (best validation accuracy) was the last one in 2 of 2 runs." in text


def test_no_over_fitting_when_training_loss_rose_too_or_the_rise_is_one_epoch():
    rising_train = [0.1, 0.2, 0.3, 0.4]
    text = one(curves_of([1.0, 0.625, 0.7, 0.8], train_loss=rising_train), "lenet, curves of 1 run")
    assert "no run over-fitted" in text
    one(curves_of([1.0, 0.8, 0.625, 0.8]), "no run over-fitted")  # one epoch after the low


def test_over_fitting_boundary_is_a_rise_of_exactly_a_fifth():
    one(curves_of([1.0, 0.625, 0.7, 0.75]), "1 of them over-fitted")  # 0.125 = 20% of 0.625
    one(curves_of([1.0, 0.625, 0.7, 0.74]), "no run over-fitted")


def test_a_single_epoch_has_no_curve_to_read():
    none(curves_of([0.5]), "curves of")


@pytest.mark.parametrize("fall, collapsed", [(0.11, True), (0.1999, True), (0.2, False)])
def test_collapse_after_learning_is_flagged_with_the_epoch_kept(fall, collapsed):
    hist = curve([0.3, 0.2, 2.3, 2.3], val_acc=[0.9, 0.95, fall, fall])
    rec = quick("alexnet", 0.95, lr=5e-3, dropout=0.3, hist=hist)
    rec["result"]["best_epoch"] = 2
    said = conclusions([rec, quick("alexnet", 0.97)])
    if collapsed:
        assert one(said, "collapsed") == (
            f"alexnet (lr=0.005, dropout=0.3) collapsed: after reaching 95.00% validation "
            f"accuracy it fell to {fall * 100:.2f}%, near chance, at epoch 3; the weights kept "
            "(and tested) are those of epoch 2."
        )
    else:
        none(said, "collapsed")


def test_a_run_that_never_learned_did_not_collapse():
    hist = curve([2.3] * 4, val_acc=[0.11] * 4)
    said = conclusions([quick("alexnet", 0.11, lr=5e-3, hist=hist), quick("alexnet", 0.97)])
    none(said, "collapsed")
    one(said, "Did not learn")


# ---------------------------------------------------------------- learning rate and dropout
def grid(model: str, val: dict[tuple[float, float], float]) -> list[dict]:
    return [quick(model, v, lr=lr, dropout=d) for (lr, d), v in val.items()]


LRS, DROPOUTS = (5e-4, 1e-3, 5e-3), (0.25, 0.5, 0.75)


def test_a_factor_that_ranks_alike_at_every_level_of_the_other_differs():
    # lr 5e-3 worst and 5e-4 best at every dropout: Friedman chi2 = 6 over 3 blocks, p=0.04979.
    val = {
        (lr, d): 0.99 - 0.01 * i - 0.001 * j
        for i, lr in enumerate(LRS)
        for j, d in enumerate(DROPOUTS)
    }
    text = one(conclusions(grid("lenet", val)), "lenet, lr:")
    assert text.startswith(
        "lenet, lr: validation accuracy differs between the 3 values of lr (Friedman test over "
        "the 3 values of dropout as blocks, p=0.04979); median over dropout: 0.0005: 98.90%, "
        "0.001: 97.90%, 0.005: 96.90%; best lr at each dropout: lr=0.0005 at dropout=0.25"
    )
    # dropout too ranks alike in every block: the same test, the same verdict.
    assert "validation accuracy differs" in one(conclusions(grid("lenet", val)), "lenet, dropout:")


def test_a_factor_whose_order_changes_between_blocks_is_not_distinguishable():
    order = [[0, 1, 2], [1, 2, 0], [2, 0, 1]]  # a Latin square: no level is better overall
    val = {
        (lr, d): 0.99 - 0.001 * order[i][j]
        for i, lr in enumerate(LRS)
        for j, d in enumerate(DROPOUTS)
    }
    text = one(conclusions(grid("lenet", val)), "lenet, dropout:")
    assert "the 3 values of dropout are not distinguishable on validation accuracy" in text
    assert "as blocks, p=1)" in text


def test_a_factor_with_one_block_or_two_levels_and_no_blocks_is_not_tested():
    none(conclusions(grid("lenet", {(1e-3, d): 0.98 for d in DROPOUTS})), "lenet, dropout:")
    two = grid(
        "lenet", {(lr, d): 0.98 + 0.001 * i for i, lr in enumerate((1e-3, 5e-3)) for d in DROPOUTS}
    )
    assert "(sign test over the 3 values of dropout as blocks, p=0.25)" in one(
        conclusions(two), "lenet, lr:"
    )


# ---------------------------------------------------------------- gap, errors, the user's table
def test_the_gap_uses_eval_mode_training_accuracy_or_says_why_there_is_none():
    rec = quick("lenet", 0.98)
    one(conclusions([rec]), "did not measure training accuracy in eval mode")
    rec["history"][-1]["train_eval_acc"] = 0.9905
    rec["history"][-1]["val_acc"] = 0.9905  # zero gap: said as 0.00 points, not a sign
    text = one(conclusions([rec]), "Train-validation gap")
    assert "lenet 99.05% train (eval mode) vs 99.05% validation at epoch 4, 0.00 points" in text


def test_errors_list_the_most_frequent_confusions():
    rec = quick("lenet", 0.98)
    assert one(conclusions([rec]), "The best model's errors") == (
        "The best model's errors: lenet misclassified 2 test images; its most frequent "
        "confusion (true→predicted) is 7→1 (2), 100% of its errors."
    )
    matrix = rec["result"]["test_confusion"]
    matrix[4][9], matrix[5][3], matrix[7][1] = 5, 5, 0
    text = one(conclusions([rec]), "The best model's errors")
    assert "its 2 most frequent confusions (true→predicted) are 4→9 (5), 5→3 (5)" in text


def test_ours_against_the_users_table_with_every_protocol_difference():
    rec = quick("lenet", 0.99, test=0.9928, augment=True, batch_size=128, schedule="onecycle")
    text = one(conclusions([rec]), "the user's reported")
    assert text.startswith(
        "lenet: our best 99.28% test (1,000 images) against the user's reported 99.28% "
        "(10,000 images), by an unpaired two-proportion test"
    )
    assert "the two are not distinguishable (p=0.94)" in text
    for part in ("4 epochs instead of 8", "1,000 test images instead of 10,000",
                 "batch_size=128 instead of 64", "augment=true instead of false",
                 "schedule=onecycle instead of constant"):  # fmt: skip
        assert part in text, part
    low = one(conclusions([quick("lenet", 0.99, test=0.97)]), "the user's reported")
    assert "the difference is significant (p<0.001)" in low


# ---------------------------------------------------------------- statuses
def test_pruned_runs_are_counted_as_not_finished():
    records = [quick("lenet", 0.97), record("lenet", 5e-3, status="pruned", hist=history(2))]
    records[1]["result"]["status"] = "pruned"
    said = conclusions(records)
    assert "1 run has not finished (1 pruned); it is not ranked." in said


# ---------------------------------------------------------------- Chinese
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_sentence_kind_has_a_chinese_version():
    a, b = pair(30, 5)
    records = [
        *grid("lenet", {(lr, d): 0.98 + 0.001 * j for lr in LRS for j, d in enumerate(DROPOUTS)}),
        quick(
            "resnet", 0.95, lr=5e-3, hist=curve([1, 0.625, 0.8, 0.9], val_acc=[0.9, 0.95, 0.1, 0.1])
        ),
        quick("m5", 0.99, predictions=a),
        quick("wrn", 0.98, predictions=b),
        quick("mlp", 0.97, predictions=b),
        quick("vgg", 0.11),
        quick("alexnet", 0.93, train_subset=3000),
        record("lenet", 9e-3, status="diverged", hist=history(2) + [{"epoch": 3}]),
        record("lenet", 8e-3, status="failed", hist=[], error="boom"),
    ]
    english = conclusions(records)
    chinese = conclusions(records, lang="zh")
    assert len(chinese) == len(english)
    for text in chinese:
        assert CJK.search(text), text
        # Only names, numbers and config notation stay in Latin letters.
        words = {w.lower() for w in re.findall(r"[A-Za-z]{4,}", text)}
        allowed = {
            "lenet",
            "resnet",
            "dropout",
            "mcnemar",
            "alexnet",
            "pearson",
            "boom",
            "friedman",
        }
        assert words <= allowed, (words, text)


@pytest.mark.parametrize(
    ("second", "named"),
    [(0.980, True), (0.979, False), (0.981, False)],  # equal, just below, just above the top
)
def test_an_exact_tie_between_models_says_why_one_is_named_first(second, named):
    said = conclusions([quick("resnet", 0.980), quick("lenet", second)])
    if named:
        # Equal validation accuracy: the smaller model (lenet) is named, and the reason given.
        line = one(said, "is named first against")
        assert line.startswith("lenet is named first against resnet: tied exactly")
        assert "fewer parameters" in line
    else:
        none(said, "is named first against")


# ---------------------------------------------------------------- what the ledger says of runs
def test_paired_tests_from_a_complete_list_of_misclassified_images():
    rec = quick("lenet", 0.98, test=0.998)  # 1,000 images, 2 wrong
    rec["predictions"] = None
    rec["result"]["test_misclassified"] = [[3, 3, 5], [9, 9, 4]]
    run = to_runs([rec])[0]
    assert run.correct == [i not in (3, 9) for i in range(1000)]
    rec["result"]["test_misclassified"] = [[3, 3, 5]]  # one error missing: no answers
    assert to_runs([rec])[0].correct is None


def test_an_unfinished_run_shows_how_far_it_got():
    partial = record("resnet", 1e-3, status="partial", hist=curve([0.3, 0.2, 0.25]))
    said = conclusions([quick("lenet", 0.98), partial])
    assert one(said, "resnet did not finish") == (
        "resnet did not finish: its runs stopped after 3 of 4 epochs; the best validation "
        "accuracy so far is 97.30% (resnet (lr=0.001, dropout=0.25), epoch 3). It is not ranked: "
        "finished runs chose among all 4 epochs."
    )
    assert to_runs([record("resnet", status="partial", hist=[])])[0].so_far() is None


def test_concurrency_counts_overlapping_runs_and_touching_ones_as_apart():
    from mnistlab.report.runs import Run, concurrency

    def run(start, end):
        return Run("r", "finished", {}, {}, [], None, span=(start, end))

    assert concurrency([run(0, 10), run(5, 15), run(6, 7)]) == 3
    assert concurrency([run(0, 10), run(10, 20)]) == 1  # one after the other
    assert concurrency([Run("r", "finished", {}, {}, [], None)]) == 1  # times unknown


def test_times_of_runs_that_trained_together_are_labelled():
    records = times({"lenet": 100, "wrn": 400, "resnet": 900, "vgg": 2000})
    for i, rec in enumerate(records):
        rec["result"] |= {"started_at": 1000.0 + i, "ended_at": 3000.0}
    assert "with up to 4 runs of this sweep training at once" in one(
        conclusions(records), "Pearson"
    )
    for i, rec in enumerate(records):
        rec["result"] |= {"started_at": 1000.0 * i, "ended_at": 1000.0 * i + 999}
    none(conclusions(records), "training at once")


def test_an_interaction_is_not_claimed_from_one_run_per_cell():
    val = {(lr, d): 0.98 for lr in LRS for d in DROPOUTS}
    one(conclusions(grid("lenet", val)), "cannot be told from noise")
    none(conclusions([quick("lenet", 0.98)]), "cannot be told from noise")  # no grid, no word
