"""Conclusions written from the numbers: pure functions from ledger records to sentences.

Every sentence carries the measurements it rests on, and a sentence is only written when the
data can support it: no dropout claim with one dropout value, no correlation with fewer than
three models, no "best model" when nothing finished.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable

from .runs import (
    DROPOUT,
    LR,
    SEED,
    UNFINISHED,
    Best,
    Run,
    best_per_model,
    count,
    describe,
    finite,
    fmt_value,
    log_fit,
    pct,
    sort_key,
    table_fields,
    to_runs,
    value_key,
)

# "Within 0.1 points of the best": roughly the spread between seeds of one MNIST model, so
# a smaller model inside it is as good as the best for practical purposes.
NEAR_BEST_POINTS = 0.1


def conclusions(records: Iterable) -> list[str]:
    """All conclusion sentences for a sweep, most important first."""
    runs = to_runs(records)
    bests = best_per_model(runs)
    return [
        *best_model_sentences(bests, runs),
        *efficiency_sentences(bests),
        *time_sentences(bests),
        *dropout_sentences(runs),
        *lr_sentences(runs),
        *status_sentences(runs),
    ]


def _points(a: float, b: float) -> str:
    return f"{abs(a - b) * 100:.2f} points"


def _label(run: Run, runs: list[Run]) -> str:
    return f"{run.model} ({describe(run, [f for f in table_fields(runs) if f != SEED])})"


def best_model_sentences(bests: list[Best], runs: list[Run]) -> list[str]:
    if not bests:
        if not runs:
            return ["The sweep has no runs recorded yet, so there is nothing to compare."]
        return [f"No run finished, so there is no best model yet ({len(runs)} runs recorded)."]
    top = bests[0]
    over = f", mean of {top.n} runs" if top.n > 1 else ""
    sentences = [
        f"Best model by validation accuracy: {_label(top.run, runs)} with "
        f"{pct(top.mean('val_acc'))}% validation and {pct(top.mean('test_acc'))}% test "
        f"accuracy{over} ({count(top.params)} parameters, {top.seconds or 0:.0f} s)."
    ]
    by_test = [b for b in bests if b.mean("test_acc") is not None]
    if by_test and top.mean("test_acc") is not None:
        test_top = max(by_test, key=lambda b: b.mean("test_acc"))
        if test_top is not top and test_top.mean("test_acc") > top.mean("test_acc"):
            sentences.append(
                f"On test accuracy {test_top.model}'s best combination scores higher "
                f"({pct(test_top.mean('test_acc'))}% vs {pct(top.mean('test_acc'))}%), but "
                f"choosing on the test set would bias the estimate, so the ranking uses "
                f"validation accuracy."
            )
    if len(bests) > 1:
        ranking = ", ".join(f"{b.model} {pct(b.mean('val_acc'))}%" for b in bests)
        sentences.append(f"Validation accuracy of each model's best combination: {ranking}.")
    return sentences


def efficiency_sentences(bests: list[Best]) -> list[str]:
    """The smallest model whose best validation accuracy is within NEAR_BEST_POINTS of the top."""
    sized = [b for b in bests if b.params]
    if len(sized) < 2:
        return []
    top = max(sized, key=lambda b: b.mean("val_acc"))
    top_val = top.mean("val_acc")
    near = [b for b in sized if (top_val - b.mean("val_acc")) * 100 <= NEAR_BEST_POINTS + 1e-9]
    smallest = min(near, key=lambda b: b.params)
    definition = (
        f"the smallest model whose best validation accuracy is within {NEAR_BEST_POINTS:g} "
        f"points of the top ({top.model}, {pct(top_val)}%)"
    )
    if smallest is not top:
        ratio = top.params / smallest.params
        return [
            f"Most accurate per parameter, taken as {definition}: {smallest.model} with "
            f"{count(smallest.params)} parameters ({_times(ratio)} fewer than {top.model}), "
            f"{pct(smallest.mean('val_acc'))}% validation and "
            f"{pct(smallest.mean('test_acc'))}% test accuracy."
        ]
    smaller = [b for b in sized if b.params < top.params]
    if not smaller:
        return [
            f"Most accurate per parameter, taken as {definition}: {top.model} itself, which is "
            f"also the smallest model compared ({count(top.params)} parameters)."
        ]
    closest = max(smaller, key=lambda b: b.mean("val_acc"))
    return [
        f"Most accurate per parameter, taken as {definition}: {top.model} itself — no smaller "
        f"model came that close; the best smaller one, {closest.model} "
        f"({count(closest.params)} parameters, {_times(top.params / closest.params)} fewer), "
        f"reached {pct(closest.mean('val_acc'))}% validation "
        f"({_points(top_val, closest.mean('val_acc'))} lower) and "
        f"{pct(closest.mean('test_acc'))}% test accuracy."
    ]


def time_sentences(bests: list[Best]) -> list[str]:
    fit = log_fit(bests)
    if fit is None:
        return []
    r, slope = fit["r"], fit["slope"]
    numbers = (
        f"Pearson r = {r:.2f} between log10(parameters) and log10(running time) over the "
        f"{fit['n']} models' best runs; the log-log slope is {slope:.2f}, so 10x the parameters "
        f"took about {_times(10**slope)} the time (a slope of 1 would mean time proportional to "
        f"parameters)"
    )
    if r >= 0.5 and slope > 0:
        return [f"Running time grew with parameter count: {numbers}."]
    if r <= -0.5 and slope < 0:
        return [f"Running time fell as parameter count grew: {numbers}."]
    return [f"Running time showed no clear relation to parameter count: {numbers}."]


def trend(values: list[float]) -> str:
    """'narrowed' if the values never rise along the list and fall at least once, 'widened'
    for the mirror image, 'did not change' if all are equal, else 'did not change
    consistently'."""
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    if steps and all(s <= 0 for s in steps) and any(s < 0 for s in steps):
        return "narrowed"
    if steps and all(s >= 0 for s in steps) and any(s > 0 for s in steps):
        return "widened"
    if steps and all(s == 0 for s in steps):
        return "did not change"
    return "did not change consistently"


def _num(value: float, digits: int) -> str:
    """Fixed decimals without a '-0.000' for values that round to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.1f}x"


def final_gap(run: Run) -> tuple[float, float | None] | None:
    """(val_loss - train_loss, train_acc - val_acc) at the run's last recorded epoch."""
    if not run.history:
        return None
    last = run.history[-1]
    train_loss, val_loss = finite(last.get("train_loss")), finite(last.get("val_loss"))
    if train_loss is None or val_loss is None:
        return None
    train_acc, val_acc = finite(last.get("train_acc")), finite(last.get("val_acc"))
    acc_gap = train_acc - val_acc if train_acc is not None and val_acc is not None else None
    return val_loss - train_loss, acc_gap


def _by_value(runs: list[Run], key: str) -> dict[str, tuple[object, list[Run]]]:
    groups: dict[str, tuple[object, list[Run]]] = {}
    for run in runs:
        value = run.fields.get(key)
        groups.setdefault(value_key(value), (value, []))[1].append(run)
    return dict(sorted(groups.items(), key=lambda kv: sort_key(kv[1][0])))


def dropout_sentences(runs: list[Run]) -> list[str]:
    per_model, verdicts = [], []
    for model in sorted({r.model for r in runs}):
        finished = [r for r in runs if r.model == model and r.finished and final_gap(r)]
        groups = [
            (value, [final_gap(r) for r in group])
            for value, group in _by_value(finished, DROPOUT).values()
            if finite(value) is not None
        ]
        if len(groups) < 2:
            continue
        loss_gaps = [statistics.fmean(g[0] for g in gaps) for _, gaps in groups]
        acc_gaps = [
            statistics.fmean(a) if (a := [g[1] for g in gaps if g[1] is not None]) else None
            for _, gaps in groups
        ]
        verdict = trend(loss_gaps)
        verdicts.append(verdict)
        moved = (
            f"{verdict} with dropout"
            if verdict.startswith("did not")
            else f"{verdict} as dropout rose"
        )
        loss_part = ", ".join(
            f"{_num(gap, 3)} at dropout {fmt_value(value)}"
            for (value, _), gap in zip(groups, loss_gaps, strict=True)
        )
        sentence = f"{model}: the train-validation gap {moved}: {loss_part}"
        if all(a is not None for a in acc_gaps):
            points = ", ".join(_num(a * 100, 2) for a in acc_gaps)
            sentence += f" (train minus validation accuracy: {points} points)"
        per_model.append(sentence + ".")
    if not per_model:
        return []
    sentences = [
        "Dropout: the train-validation gap below is the validation loss minus the training loss "
        "at the last epoch, averaged over a model's finished runs at each dropout value."
    ]
    sentences += per_model
    if len(verdicts) >= 2:
        tally = ", ".join(
            f"{v} in {verdicts.count(v)}"
            for v in ("narrowed", "widened", "did not change", "did not change consistently")
            if verdicts.count(v)
        )
        sentences.append(
            f"Across the {len(verdicts)} models with more than one dropout value, the gap {tally}."
        )
    return sentences


def lr_sentences(runs: list[Run]) -> list[str]:
    """How often validation loss went up from one epoch to the next, per learning rate."""
    finished = [r for r in runs if r.finished]
    stats = []
    for value, group in _by_value(finished, LR).values():
        changes = []
        for run in group:
            _, losses = run.series("val_loss")
            changes += [b - a for a, b in zip(losses, losses[1:], strict=False)]
        changes = [c for c in changes if math.isfinite(c)]
        if finite(value) is not None and changes:
            rises = sum(c > 0 for c in changes)
            mean_abs = statistics.fmean(abs(c) for c in changes)
            stats.append((value, rises, len(changes), mean_abs))
    if len(stats) < 2:
        return []
    parts = ", ".join(
        f"{rises} of {n} steps ({rises / n:.0%}) at lr {fmt_value(v)}" for v, rises, n, _ in stats
    )
    moves = ", ".join(_num(m, 4) for *_, m in stats)
    shares = [rises / n for _, rises, n, _ in stats]
    verdict = trend(shares)
    if verdict == "widened":
        summary = "larger learning rates gave less stable loss curves"
    elif verdict == "narrowed":
        summary = "larger learning rates gave steadier loss curves"
    elif verdict == "did not change":
        summary = "the share of rising epochs was the same at every learning rate"
    else:
        summary = "the share of rising epochs did not change consistently with the learning rate"
    return [
        f"Learning rate and stability: validation loss rose from one epoch to the next in "
        f"{parts} (finished runs, all models); the mean absolute epoch-to-epoch change was "
        f"{moves} in the same order — {summary}."
    ]


def status_sentences(runs: list[Run]) -> list[str]:
    sentences = []
    diverged = [r for r in runs if r.status == "diverged"]
    if diverged:
        which = "; ".join(f"{_label(r, runs)} at epoch {r.diverged_epoch}" for r in diverged)
        noun = "run" if len(diverged) == 1 else "runs"
        sentences.append(f"{len(diverged)} {noun} diverged (non-finite loss): {which}.")
        by_lr = _by_value(diverged, LR)
        if any(finite(v) is not None for v, _ in by_lr.values()):
            counts = ", ".join(f"{len(g)} at lr {fmt_value(v)}" for v, g in by_lr.values())
            sentences.append(f"Diverged runs by learning rate: {counts}.")
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        which = "; ".join(
            _label(r, runs)
            + (
                f" ({' '.join(str(r.result['error']).split())[:120]})"
                if (r.result or {}).get("error")
                else ""
            )
            for r in failed
        )
        noun = "run" if len(failed) == 1 else "runs"
        sentences.append(f"{len(failed)} {noun} failed: {which}.")
    open_runs = [r for r in runs if r.status in UNFINISHED]
    if open_runs:
        tally = ", ".join(
            f"{sum(r.status == s for r in open_runs)} {s}"
            for s in UNFINISHED
            if any(r.status == s for r in open_runs)
        )
        noun = "run has" if len(open_runs) == 1 else "runs have"
        sentences.append(f"{len(open_runs)} {noun} not finished ({tally}); they are not ranked.")
    return sentences
