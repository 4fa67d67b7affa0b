"""Conclusions written from the numbers: pure functions from ledger records to sentences.

Every sentence carries the measurements it rests on, and a sentence is only written when the
data can support it:

* runs are ranked, fitted and compared only within one budget (training images, epochs,
  evaluation images); a sweep that mixes budgets gets one section per budget;
* a run that did not learn is named, with the reason, and left out of everything else;
* differences come with their noise: 95% intervals, ties within noise said as ties, and the
  best model against the runner-up by an exact McNemar test on the same test images;
* the MLP baseline (no convolutions) is set against the budget's best convolutional network
  by the same paired test, so its lower accuracy reads as the finding it is, not a failure;
* gaps are compared by size, and their sign is said separately;
* learning-rate and dropout effects are stated per model, and pooled over models only where
  every model was run at every value (otherwise the pooled effect would be a model effect);
* a search's trials are sampled, not laid on a grid: its best trials are finished ones only
  (a pruned trial trained fewer epochs), and a searched setting is said to matter only when
  its rank correlation with validation accuracy passes a stated threshold.

All wording comes from the catalogue in i18n.py, so `--lang zh` changes every sentence.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Iterable

from .analysis import NEAR_CHANCE, Analysis, Exclusion, Group, analyse
from .i18n import Tr
from .runs import (
    DROPOUT,
    LR,
    OVERFIT_RISE,
    UNFINISHED,
    Best,
    Run,
    combo_fields,
    concurrency,
    count,
    describe,
    finite,
    fmt_value,
    log_fit,
    pct,
    read_curves,
    sort_key,
    tie_break,
    to_runs,
    value_key,
)
from .stats import ALPHA, friedman, mcnemar, p_text, spearman, two_proportions
from .trials import (
    MIN_TREND_TRIALS,
    SearchInfo,
    epochs_trained,
    is_ordered,
    points,
    ranked,
    setting_trend,
    trial_label,
    value_text,
    within_noise,
)
from .user_results import user_entry, user_results

# "As good as the best" when the validation images do not say how many there were: within
# 0.1 points, roughly the spread between seeds of one MNIST model. With a count, the top's 95%
# interval decides (the same noise that makes ties in the ranking).
NEAR_BEST_POINTS = 0.1

# The multilayer-perceptron baseline (models/mlp.py): the one registered model without
# convolutions, trained to show what convolution buys. Every other model counts as a CNN.
BASELINE = "mlp"


def conclusions(records: Iterable, lang: str = "en", search: SearchInfo | None = None) -> list[str]:
    """All conclusion sentences for a sweep, most important first (sections flattened).
    `search`: the sweep is a search (see trials.read_search), so its runs are trials."""
    tr = Tr(lang)
    analysis = analyse(to_runs(records), search)
    out = []
    for title, sentences in conclusion_sections(analysis, tr):
        if title:
            out.append(title)
        out += sentences
    return out


def conclusion_sections(analysis: Analysis, tr: Tr) -> list[tuple[str | None, list[str]]]:
    """[(section title or None, sentences)]: one section per budget when budgets are mixed."""
    runs = analysis.runs
    if not runs:
        return [(None, [tr("no_runs")])]
    sections: list[tuple[str | None, list[str]]] = []
    search = analysis.search
    lead = search_overview(analysis, tr) if search is not None else []
    if not analysis.bests and not analysis.excluded:
        pruned = pruned_sentences(runs, search, tr) if search else []
        sections.append((None, [*lead, tr("no_finished", n=len(runs)), *pruned]))
    else:
        for group in analysis.groups:
            if search is not None:
                sentences = search_sentences(group, analysis, tr)
                title = budget_title(group, tr) if analysis.mixed else None
                if sentences:
                    sections.append((title, sentences))
                continue
            sentences = [
                *best_model_sentences(group, tr),
                *runner_up_sentences(group, tr),
                *baseline_sentences(group, tr),
                *user_choice_sentences(group, tr),
                *tie_sentences(group, tr),
                *efficiency_sentences(group, tr),
                *time_sentences(group, tr),
                *factor_sentences(group, tr),
                *curve_sentences(group, tr),
                *gap_sentences(group, tr),
                *error_sentences(group, tr),
                *user_sentences(group, tr, analysis.search),
                *exclusion_sentences(group, analysis.excluded, tr),
            ]
            title = budget_title(group, tr) if analysis.mixed else None
            if sentences:
                sections.append((title, sentences))
        if lead and sections and sections[0][0] is None:
            sections[0] = (None, [*lead, *sections[0][1]])
        elif lead:
            sections.insert(0, (None, lead))
    status = status_sentences(runs, tr, search)
    if status and analysis.mixed:
        sections.append((tr("other_runs_heading"), status))
    elif status and sections:
        sections[-1][1].extend(status)
    elif status:
        sections.append((None, status))
    return sections


# ---------------------------------------------------------------- wording helpers
def _num(value: float, digits: int) -> str:
    """Fixed decimals without a '-0.000' for values that round to zero."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def _times(ratio: float, tr: Tr) -> str:
    return tr("times", x=f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}")


def interval_text(interval: tuple[float, float] | None) -> str:
    return "—" if interval is None else f"{pct(interval[0])}–{pct(interval[1])}"


def combo(run: Run, group: Group, tr: Tr) -> str:
    return describe(run, group.fields) if group.fields else tr("default_settings")


def label(run: Run, group: Group, tr: Tr) -> str:
    return f"{run.model} ({combo(run, group, tr)})"


def acc_text(best: Best, key: str) -> str:
    """'99.20%' for one run; '99.20% ± 0.20 (n=3)' for a combination repeated over seeds."""
    mean, std = best.mean(key), best.std(key)
    text = f"{pct(mean)}%"
    if best.n > 1:
        text += (f" ± {std * 100:.2f}" if std is not None else "") + f" (n={best.n})"
    return text


def budget_label(group: Group, tr: Tr) -> str:
    b = group.budget
    if b.train_images is None:
        train = tr("budget_train_unknown")
    elif b.train_subset:
        train = tr("budget_train_subset", n=count(b.train_images), total=count(b.train_total))
    else:
        train = tr("budget_train", n=count(b.train_images))
    epochs = tr("budget_epochs", n=b.epochs) if b.epochs else tr("budget_epochs_unknown")
    if b.val_images is None and b.test_images is None:
        judged = tr("budget_judged_unknown")
    else:
        judged = tr(
            "budget_judged",
            val=count(b.val_images) if b.val_images else "?",
            test=count(b.test_images) if b.test_images else "?",
        )
    text = tr("budget_label", train=train, epochs=epochs, judged=judged)
    if b.dataset != "mnist":
        text = f"{b.dataset}: {text}"
    return text


def budget_title(group: Group, tr: Tr) -> str:
    return tr(
        "budget_title",
        letter=group.letter,
        models=tr.join(group.models),
        budget=budget_label(group, tr),
    )


def mixed_budget_note(analysis: Analysis, tr: Tr) -> str | None:
    """The warning at the top of a report whose runs were not trained and judged alike."""
    if not analysis.mixed:
        return None
    parts = [
        tr("budget_part", letter=g.letter, models=tr.join(g.models), budget=budget_label(g, tr))
        for g in analysis.groups
    ]
    return tr("mixed_budgets", n=len(analysis.groups), parts=tr.join(parts, strong=True))


# ---------------------------------------------------------------- rankings and tests
def best_model_sentences(group: Group, tr: Tr) -> list[str]:
    bests = group.bests
    if not bests:
        return [tr("no_usable")] if group.runs else []
    top = bests[0]
    run = top.run
    if top.n == 1:
        n = run.test_images
        ci = tr("ci_wilson", ci=interval_text(top.test_interval()), n=count(n)) if n else ""
    else:
        ci = tr("ci_seeds", ci=interval_text(top.test_interval()), n=top.n)
    interval = top.val_interval()
    tied = [b.model for b in bests[1:] if interval and b.mean("val_acc") >= interval[0] - 1e-12]
    sentences = [
        tr(
            "best_model_tied" if tied else "best_model",
            others=tr.join(tied),
            label=label(run, group, tr),
            val=acc_text(top, "val_acc"),
            test=acc_text(top, "test_acc"),
            ci=ci,
            params=count(top.params),
            seconds=f"{top.seconds or 0:.0f}",
        )
    ]
    level = [b for b in bests[1:] if b.mean("val_acc") == top.mean("val_acc")]
    if level:  # an exact tie at the top: say why this one is named
        sentences.append(
            tr(
                "best_model_tie",
                model=top.model,
                others=tr.join([b.model for b in level]),
                why=tr(f"tie_break_{tie_break(top, level[0])}"),
            )
        )
    return sentences + ranking_sentences(group, tr)


def ranking_sentences(group: Group, tr: Tr) -> list[str]:
    """Models by their best combination's validation accuracy, ties within noise said; and
    a model that scores higher on test, with why the ranking does not follow it."""
    bests = group.bests
    if not bests:
        return []
    top = bests[0]
    sentences = []
    by_test = [b for b in bests if b.mean("test_acc") is not None]
    if by_test and top.mean("test_acc") is not None:
        test_top = max(by_test, key=lambda b: b.mean("test_acc"))
        if test_top is not top and test_top.mean("test_acc") > top.mean("test_acc"):
            names = {
                "model": test_top.model,
                "a": pct(test_top.mean("test_acc")),
                "b": pct(top.mean("test_acc")),
            }
            status, test = paired(test_top.run, top.run)
            if status == "ok":  # a higher test score is news only if it is more than noise
                sentences.append(
                    tr("test_higher_paired", n=count(test.n), verdict=_verdict(test, tr), **names)
                )
            else:
                sentences.append(tr("test_higher", **names))
    if len(bests) > 1:
        interval = top.val_interval()
        tied = [b for b in bests[1:] if interval and b.mean("val_acc") >= interval[0] - 1e-12]
        items = [
            tr(
                "rank_item_tied" if b in tied else "rank_item",
                model=b.model,
                val=pct(b.mean("val_acc")),
            )
            for b in bests
        ]
        text = tr("ranking", items=tr.join(items))
        if tied:
            text += tr(
                "ranking_noise",
                ci=interval_text(interval),
                n=count(top.run.val_images),
            )
        sentences.append(text + tr("stop"))
    return sentences


def paired(a: Run, b: Run) -> tuple[str, object]:
    """('ok', McNemar) or (reason, None) for two runs judged on (hopefully) the same images."""
    right_a, right_b = a.correct, b.correct
    if right_a is None or right_b is None:
        return "no_predictions", None
    labels = (a.test_labels, b.test_labels)
    if len(right_a) != len(right_b) or (None not in labels and labels[0] != labels[1]):
        return "different_images", None
    return "ok", mcnemar(right_a, right_b)


def _paired_sentence(key: str, first: Run, second: Run, tr: Tr, **names) -> str:
    status, test = paired(first, second)
    if status != "ok":
        return tr(f"{key}_untested", reason=tr(f"untested_{status}"), **names)
    return tr(
        key,
        n=count(test.n),
        only_a=count(test.only_a),
        only_b=count(test.only_b),
        verdict=_verdict(test, tr),
        **names,
    )


def _verdict(test, tr: Tr) -> str:
    """'the difference is significant (p=0.01)' or 'the two are not distinguishable (...)'."""
    return tr("significant" if test.significant else "indistinguishable", p=p_text(test.p))


def runner_up_sentences(group: Group, tr: Tr) -> list[str]:
    if len(group.bests) < 2:
        return []
    top, second = group.bests[0], group.bests[1]
    return [
        _paired_sentence(
            "runner_up",
            top.run,
            second.run,
            tr,
            a=top.model,
            b=second.model,
            a_test=pct(top.run.metric("test_acc")),
            b_test=pct(second.run.metric("test_acc")),
        )
    ]


def baseline_sentences(group: Group, tr: Tr) -> list[str]:
    """The MLP baseline against the best CNN by validation accuracy, by an exact McNemar test
    on the same test images. The two differ in far more than convolution (depth, width,
    normalisation, parameters), so no sentence credits convolution with the difference; a
    tie within noise is said as a tie. Nothing is said unless both learned."""
    mlp = next((b for b in group.bests if b.model == BASELINE), None)
    cnn = next((b for b in group.bests if b.model != BASELINE), None)
    if mlp is None or cnn is None:
        return []
    mlp_test, cnn_test = mlp.run.metric("test_acc"), cnn.run.metric("test_acc")
    if mlp_test is None or cnn_test is None:
        return []
    images = mlp.run.test_images
    mlp_acc, cnn_acc = f"{pct(mlp_test)}%", f"{pct(cnn_test)}%"
    if images:
        ci = tr("ci_wilson", ci=interval_text(mlp.run.test_interval()), n=count(images))
        mlp_acc = tr("with_ci", acc=mlp_acc, ci=ci)
    if cnn.run.test_images:
        ci = tr("ci_only", ci=interval_text(cnn.run.test_interval()))
        cnn_acc = tr("with_ci", acc=cnn_acc, ci=ci)
    names = {"mlp": mlp.model, "cnn": cnn.model}
    lead = tr("baseline_lead", mlp_acc=mlp_acc, cnn_acc=cnn_acc, **names)
    diff = cnn_test - mlp_test  # the accuracies the sentence shows, so its arithmetic checks
    points = _num(abs(diff) * 100, 2)
    if float(points) == 0:
        difference = tr("baseline_diff_none")
    else:
        difference = tr("baseline_diff", model=cnn.model if diff > 0 else mlp.model, points=points)
    status, test = paired(cnn.run, mlp.run)
    if status != "ok":
        reason = tr(f"untested_{status}")
        return [tr("baseline_untested", lead=lead, diff=difference, reason=reason, **names)]
    if not test.significant:
        key = "baseline_level"
    else:
        key = "baseline_cnn_better" if test.only_a > test.only_b else "baseline_mlp_better"
    verdict = _verdict(test, tr)
    return [
        tr(
            key,
            lead=lead,
            diff=difference,
            points=points,
            n=count(test.n),
            only_a=count(test.only_a),
            only_b=count(test.only_b),
            verdict=verdict,
            **names,
        )
    ]


def user_choice_sentences(group: Group, tr: Tr) -> list[str]:
    """Each model's best here against the combination the user chose in their report."""
    sentences = []
    for best in group.bests:
        entry = user_entry(best.model)
        if entry is None:
            continue
        wanted = {LR: entry["lr"], DROPOUT: entry["dropout"]}
        theirs = [
            r
            for r in group.runs
            if r.model == best.model
            and r.finished
            and all(finite(r.fields.get(k)) == v for k, v in wanted.items())
        ]
        if not theirs:
            continue
        chosen = f"lr={fmt_value(entry['lr'])}, dropout={fmt_value(entry['dropout'])}"
        if any(r is best.run for r in theirs) or any(
            all(
                value_key(r.fields.get(f)) == value_key(best.run.fields.get(f))
                for f in (LR, DROPOUT)
            )
            for r in theirs
        ):
            # First of a tie within noise is not a win: say how many it shares the top with.
            key = "user_choice_tied" if best.ties else "user_choice_same"
            sentences.append(tr(key, model=best.model, combo=chosen, k=len(best.ties) + 1))
            continue
        run = max(theirs, key=lambda r: (r.metric("val_acc") or 0, r.run_id))
        sentences.append(
            _paired_sentence(
                "user_choice",
                best.run,
                run,
                tr,
                model=best.model,
                ours=combo(best.run, group, tr),
                ours_test=pct(best.run.metric("test_acc")),
                theirs=chosen,
                theirs_test=pct(run.metric("test_acc")),
            )
        )
    return sentences


def tie_sentences(group: Group, tr: Tr) -> list[str]:
    sentences = []
    for best in group.bests:
        if not best.ties:
            continue
        items = [
            f"{combo(b.run, group, tr)} ({pct(b.mean('val_acc'))}%)" for b in [best, *best.ties]
        ]
        sentences.append(
            tr(
                "ties",
                model=best.model,
                k=len(items),
                items=tr.join(items, strong=True),
                ci=interval_text(best.val_interval()),
                n=count(best.run.val_images),
                shown=combo(best.run, group, tr),
                why=tr(f"tie_break_{tie_break(best, best.ties[0])}"),
            )
        )
    return sentences


def efficiency_sentences(group: Group, tr: Tr) -> list[str]:
    """The smallest model whose best validation accuracy is within noise of the top's."""
    sized = [b for b in group.bests if b.params]
    if len(sized) < 2:
        return []
    top = max(sized, key=lambda b: b.mean("val_acc"))
    top_val = top.mean("val_acc")
    interval = top.val_interval()
    if interval is not None:
        floor = min(interval[0], top_val - NEAR_BEST_POINTS / 100)
        definition = tr(
            "efficiency_definition",
            model=top.model,
            val=pct(top_val),
            ci=interval_text(interval),
            n=count(top.run.val_images),
        )
    else:
        floor = top_val - NEAR_BEST_POINTS / 100
        definition = tr(
            "efficiency_definition_points",
            points=f"{NEAR_BEST_POINTS:g}",
            model=top.model,
            val=pct(top_val),
        )
    near = [b for b in sized if b.mean("val_acc") >= floor - 1e-12]
    smallest = min(near, key=lambda b: b.params)
    if smallest is not top:
        return [
            tr(
                "efficiency_smaller",
                definition=definition,
                model=smallest.model,
                params=count(smallest.params),
                times=_times(top.params / smallest.params, tr),
                top=top.model,
                val=pct(smallest.mean("val_acc")),
                test=pct(smallest.mean("test_acc")),
            )
        ]
    smaller = [b for b in sized if b.params < top.params]
    if not smaller:
        return [
            tr(
                "efficiency_top_smallest",
                definition=definition,
                model=top.model,
                params=count(top.params),
            )
        ]
    closest = max(smaller, key=lambda b: b.mean("val_acc"))
    return [
        tr(
            "efficiency_top",
            definition=definition,
            model=top.model,
            other=closest.model,
            params=count(closest.params),
            times=_times(top.params / closest.params, tr),
            val=pct(closest.mean("val_acc")),
            points=f"{abs(top_val - closest.mean('val_acc')) * 100:.2f}",
            test=pct(closest.mean("test_acc")),
        )
    ]


def time_sentences(group: Group, tr: Tr) -> list[str]:
    """Pearson's r of log time on log parameters: said as an association only (time follows
    the work per image and the device's load, not the parameter count as such), with a
    direction only where the correlation is significant."""
    fit = log_fit(group.bests)
    if fit is None:
        return []
    numbers = tr(
        "time_numbers",
        r=f"{fit['r']:.2f}",
        p=p_text(fit["p"]),
        n=fit["n"],
        slope=f"{fit['slope']:.2f}",
    )
    key = "time_none" if fit["p"] >= ALPHA else "time_up" if fit["slope"] > 0 else "time_down"
    shared = concurrency(group.runs)
    return [tr(key, numbers=numbers) + (tr("time_shared", n=shared) if shared > 1 else "")]


# ---------------------------------------------------------------- what the curves show
def _by_value(runs: list[Run], key: str) -> dict[str, tuple[object, list[Run]]]:
    groups: dict[str, tuple[object, list[Run]]] = {}
    for run in runs:
        value = run.fields.get(key)
        groups.setdefault(value_key(value), (value, []))[1].append(run)
    return dict(sorted(groups.items(), key=lambda kv: sort_key(kv[1][0])))


def curve_sentences(group: Group, tr: Tr) -> list[str]:
    """Per model, from every run's curves (read_curves): where validation loss bottomed out,
    which runs over-fitted after it and by how much, and how often the kept epoch was the
    last; then every run that collapsed after it had learned, with the epoch kept."""
    sentences, collapses = [], []
    for model in group.models:
        readings = [(r, x) for r in group.usable if r.model == model and (x := read_curves(r))]
        if not readings:
            continue
        over = [(r, x) for r, x in readings if x.overfit]
        items = tr.join(
            [
                tr("overfit_item", label=combo(r, group, tr) + seeded(r, readings), low=x.low,
                   k=x.overfit, rise=_num(x.rise, 3))
                for r, x in over
            ],
            strong=True,
        )  # fmt: skip
        kept = [x for _, x in readings if x.best is not None]
        lows = statistics.median_low(x.low for _, x in readings)
        sentences.append(
            tr(
                "curves_overfit" if over else "curves_no_overfit",
                model=model,
                n=len(readings),
                median=lows,
                k=len(over),
                items=items,
                rise=f"{OVERFIT_RISE:.0%}",
                last=sum(x.best == x.epochs for x in kept),
                kept=len(kept),
            )
        )
        for run, x in readings:
            if x.collapsed is not None:
                _, accs = run.series("val_acc")
                collapses.append(
                    tr(
                        "collapsed",
                        label=label(run, group, tr),
                        epoch=x.collapsed,
                        acc=pct(accs[x.collapsed - 1]),
                        peak=pct(max(a for a in accs if math.isfinite(a))),
                        kept=x.best if x.best is not None else "—",
                    )
                )
    return sentences + collapses


def seeded(run: Run, readings) -> str:
    """', seed=1' where the same combination was run over several seeds, to tell them apart."""
    seeds = {value_key(r.fields.get("seed")) for r, _ in readings}
    return f", seed={fmt_value(run.fields.get('seed'))}" if len(seeds) > 1 else ""


def gap_sentences(group: Group, tr: Tr) -> list[str]:
    """The train-validation gap at each best run's kept epoch, from training accuracy measured
    in eval mode (no dropout, no augmentation) on a training sample; where that was not
    recorded, why the running-average training accuracy is no gap."""
    items = []
    for best in group.bests:
        run = best.run
        epoch = (run.result or {}).get("best_epoch")
        row = next((h for h in run.history if h.get("epoch") == epoch), None) or {}
        train, val = finite(row.get("train_eval_acc")), finite(row.get("val_acc"))
        if train is not None and val is not None:
            points = _num((train - val) * 100, 2)
            items.append(tr("gap_item", model=best.model, train=pct(train), val=pct(val),
                            points=points, epoch=epoch))  # fmt: skip
    if items:
        return [tr("gap_eval", items=tr.join(items, strong=True))]
    return [tr("gap_not_recorded")] if group.bests else []


def factor_sentences(group: Group, tr: Tr) -> list[str]:
    """What learning rate and dropout did, per model, over the whole grid: Friedman's test of
    one factor with the other factor's levels as blocks (a sign test for two levels), on
    validation accuracy of every finished run, those that did not learn included (a rank
    test: one wild cell cannot dominate it)."""
    sentences = []
    for model in group.models:
        runs = [r for r in group.runs if r.model == model and r.finished]
        for key, other in ((LR, DROPOUT), (DROPOUT, LR)):
            levels = [v for v, _ in _by_value(runs, key).values() if finite(v) is not None]
            blocks, names = [], []
            for value, members in _by_value(runs, other).values():
                cells = {value_key(r.fields.get(key)): r.metric("val_acc") for r in members}
                row = [cells.get(value_key(v)) for v in levels]
                if None not in row:
                    blocks.append(row)
                    names.append(fmt_value(value))
            test = friedman(blocks) if len(levels) >= 2 else None
            if test is None:
                continue
            medians = [statistics.median(col) for col in zip(*blocks, strict=True)]
            listing = tr.join(
                [
                    tr("factor_item", value=fmt_value(v), val=pct(m))
                    for v, m in zip(levels, medians, strict=True)
                ]
            )
            best = [fmt_value(levels[row.index(max(row))]) for row in blocks]
            sentences.append(
                tr(
                    "factor_differs" if test.significant else "factor_same",
                    model=model,
                    factor=key,
                    other=other,
                    n=len(blocks),
                    k=len(levels),
                    test=tr("test_friedman" if len(levels) > 2 else "test_sign"),
                    p=p_text(test.p),
                    listing=listing,
                    best=tr.join(
                        [
                            tr("factor_best", at=a, value=b, factor=key, other=other)
                            for a, b in zip(names, best, strict=True)
                        ]
                    ),
                )
            )
    # One run per cell: an lr x dropout interaction cannot be told from noise; said once.
    repeats = any(b.n > 1 for b in group.bests)
    return sentences + ([tr("factor_no_interaction")] if sentences and not repeats else [])


def error_sentences(group: Group, tr: Tr) -> list[str]:
    """The best model's most frequent confusions on the test set, with counts."""
    if not group.bests:
        return []
    run = group.bests[0].run
    matrix = (run.result or {}).get("test_confusion")
    if not (isinstance(matrix, list) and matrix and all(isinstance(r, list) for r in matrix)):
        return []
    pairs = sorted(
        ((v, i, j) for i, row in enumerate(matrix) for j, v in enumerate(row) if i != j and v),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    wrong = sum(v for v, _, _ in pairs)
    if not wrong:
        return [tr("errors_none", model=run.model)]
    top = pairs[:ERRORS_LISTED]
    return [
        tr(
            "errors",
            model=run.model,
            wrong=count(wrong),
            items=tr.join([tr("error_item", true=i, pred=j, n=v) for v, i, j in top]),
            n=len(top),
            share=f"{sum(v for v, _, _ in top) / wrong:.0%}",
        )
    ]


ERRORS_LISTED = 5


def user_sentences(group: Group, tr: Tr, search=None) -> list[str]:
    """Our best of each of the user's architectures against the test accuracy printed in the
    user's report: an unpaired two-proportion test (their per-image answers are not known),
    with every way our protocol differs from theirs in the same sentence."""
    protocol, sentences = user_results()["protocol"], []
    for best in group.bests:
        entry = user_entry(best.model)
        ours, n = best.run.metric("test_acc"), best.run.test_images
        if entry is None or ours is None or not n:
            continue
        test = two_proportions(ours, entry["test_acc"], n, protocol["test_images"])
        differences = protocol_difference(group, best, protocol, tr, search)
        sentences.append(
            tr(
                "user_vs_differs" if differences else "user_vs_same",
                model=best.model,
                ours=pct(ours),
                n=count(n),
                theirs=pct(entry["test_acc"]),
                user_n=count(protocol["test_images"]),
                verdict=_verdict(test, tr),
                differences=differences,
            )
        )
    return sentences


def protocol_difference(group: Group, best: Best, protocol: dict, tr: Tr, search=None) -> str:
    """Every way our budget and training recipe for `best` differ from the user's protocol
    ('' if none): training images, epochs, test images, grid coverage, then each training
    setting (augmentation, label smoothing, EMA, schedule, batch size, ...)."""
    b, model = group.budget, best.model
    parts = []
    if b.train_subset:
        parts.append(tr("diff_train", n=count(b.train_images), total=count(b.train_total)))
    if b.epochs is not None and b.epochs != protocol["epochs"]:
        parts.append(tr("diff_epochs", n=b.epochs, user=protocol["epochs"]))
    if b.test_images is not None and b.test_images < protocol["test_images"]:
        parts.append(tr("diff_test", n=count(b.test_images), user=count(protocol["test_images"])))
    full = len(protocol["lr"]) * len(protocol["dropout"])
    if search is not None and not search.discrete:
        parts.append(tr("diff_search", n=sum(r.model == model for r in group.runs), full=full))
    else:
        wanted = {
            (value_key(lr), value_key(d)) for lr in protocol["lr"] for d in protocol["dropout"]
        }
        done = {
            (value_key(finite(r.fields.get(LR))), value_key(finite(r.fields.get(DROPOUT))))
            for r in group.runs
            if r.model == model and r.finished
        }
        if len(done & wanted) < full:
            parts.append(tr("diff_grid", n=len(done & wanted), full=full))
    entry = user_entry(model)
    if entry and best.params and best.params != entry["params"]:
        parts.append(tr("diff_params", ours=count(best.params), user=count(entry["params"])))
    for name, theirs in protocol["settings"].items():
        mine = best.run.config.get(name, theirs)
        if value_key(mine) != value_key(theirs):
            parts.append(
                tr("diff_setting", name=name, ours=fmt_value(mine), user=fmt_value(theirs))
            )
    return tr.join(parts)


# ---------------------------------------------------------------- runs set aside
def exclusion_text(exclusion: Exclusion, group: Group, tr: Tr) -> str:
    ref = exclusion.reference
    return tr(
        f"excluded_{exclusion.reason}",
        label=label(exclusion.run, group, tr),
        val=pct(exclusion.val),
        chance=f"{exclusion.chance * 100:.0f}",
        points=f"{100 * NEAR_CHANCE:.0f}",
        ref=label(ref, group, tr) if ref else "",
        ref_model=ref.model if ref else "",
        ref_val=pct(ref.metric("val_acc")) if ref else "",
    )


def exclusion_sentences(group: Group, excluded: dict[str, Exclusion], tr: Tr) -> list[str]:
    mine = [excluded[r.run_id] for r in group.runs if r.run_id in excluded]
    if not mine:
        return []
    items = [exclusion_text(e, group, tr) for e in mine]
    return [tr("excluded", n=len(items), items=tr.join(items, strong=True))]


def status_tally(runs: list[Run], tr: Tr) -> str:
    """'24 finished, 10 partial' / '已完成 24 次、部分完成 10 次'."""
    statuses = sorted({r.status for r in runs})
    return tr.join(
        [
            tr("open_item", n=sum(r.status == s for r in runs), status=tr(f"status_{s}"))
            for s in statuses
        ]
    )


def status_sentences(runs: list[Run], tr: Tr, search: SearchInfo | None = None) -> list[str]:
    """Diverged, failed and unfinished runs. In a search, pruned trials have their own
    sentence (see pruned_sentences) and diverged ones are not counted per learning rate:
    sampled rates rarely repeat."""
    fields = combo_fields(runs)

    def name(run: Run) -> str:
        if search is not None:
            return trial_label(run, search)
        return f"{run.model} ({describe(run, fields) if fields else tr('default_settings')})"

    sentences = []
    diverged = [r for r in runs if r.status == "diverged"]
    if diverged:
        which = tr.join(
            [tr("diverged_item", label=name(r), epoch=r.diverged_epoch) for r in diverged],
            strong=True,
        )
        sentences.append(tr("diverged", n=len(diverged), which=which))
        by_lr = _by_value(diverged, LR)
        if search is None and any(finite(v) is not None for v, _ in by_lr.values()):
            counts = tr.join(
                [tr("diverged_lr_item", n=len(g), lr=fmt_value(v)) for v, g in by_lr.values()]
            )
            sentences.append(tr("diverged_by_lr", counts=counts))
    failed = [r for r in runs if r.status == "failed"]
    if failed:
        items = []
        for r in failed:
            error = (r.result or {}).get("error")
            items.append(name(r) + (f" ({' '.join(str(error).split())[:120]})" if error else ""))
        sentences.append(tr("failed", n=len(failed), which=tr.join(items, strong=True)))
    waiting = [s for s in UNFINISHED if search is None or s != "pruned"]
    open_runs = [r for r in runs if r.status in waiting]
    if open_runs:
        tally = tr.join(
            [
                tr("open_item", n=sum(r.status == s for r in open_runs), status=tr(f"status_{s}"))
                for s in waiting
                if any(r.status == s for r in open_runs)
            ]
        )
        sentences.append(tr("unfinished", n=len(open_runs), tally=tally))
        for model in sorted({r.model for r in open_runs} - {r.model for r in runs if r.finished}):
            mine = [r for r in open_runs if r.model == model and r.so_far()]
            if not mine:
                continue
            top = max(mine, key=lambda r: r.so_far())
            val, epoch = top.so_far()
            reached = sorted({r.epochs_run for r in mine})
            sentences.append(
                tr(
                    "unfinished_best",
                    model=model,
                    reached=f"{reached[0]}–{reached[-1]}" if len(reached) > 1 else reached[0],
                    planned=top.planned_epochs or "?",
                    val=pct(val),
                    label=name(top),
                    epoch=epoch,
                )
            )
    return sentences


# ---------------------------------------------------------------- searches
def space_text(info: SearchInfo, tr: Tr) -> str:
    """'lr log-uniform in [0.0001, 0.01]; dropout uniform in [0.1, 0.7]'."""
    items = []
    for dim in info.space:
        if dim.choices is not None:
            choices = "{" + ", ".join(fmt_value(c) for c in dim.choices) + "}"
            items.append(tr("space_choices", name=dim.name, choices=choices))
            continue
        key = "space_int" if isinstance(dim.low, int) and isinstance(dim.high, int) else "space"
        if info.spec is None:
            key = "space_observed"
        elif dim.log:
            key += "_log"
        items.append(tr(key, name=dim.name, low=value_text(dim.low), high=value_text(dim.high)))
    return tr.join(items, strong=True)


def search_overview(analysis: Analysis, tr: Tr) -> list[str]:
    """What was searched, how, and how much of the planned training the trials did."""
    info, runs = analysis.search, analysis.runs
    trials = tr("search_trials", n=len(runs), tally=status_tally(runs, tr))
    if info.spec is None:
        first = tr("search_overview_inferred", trials=trials, space=space_text(info, tr))
    else:
        first = tr(
            "search_overview",
            trials=trials,
            sampler=tr(f"sampler_{info.spec.sampler}"),
            space=space_text(info, tr),
            pruner=tr(f"pruner_{info.spec.pruner}"),
        )
    trained, planned = epochs_trained(runs)
    if planned and trained < planned:
        first += tr(
            "search_epochs",
            trained=count(trained),
            planned=count(planned),
            saved=f"{100 * (planned - trained) / planned:.0f}",
        )
    return [first]


def search_sentences(group: Group, analysis: Analysis, tr: Tr) -> list[str]:
    """A search's conclusions for one budget: its best trials, the models' ranking where
    several were searched, each searched setting's trend, and the pruned trials."""
    info = analysis.search
    sentences = best_trial_sentences(group, info, tr)
    if len(group.bests) > 1:
        sentences += ranking_sentences(group, tr)
        sentences += runner_up_sentences(group, tr)
        sentences += baseline_sentences(group, tr)
    return [
        *sentences,
        *user_choice_sentences(group, tr),
        *efficiency_sentences(group, tr),
        *time_sentences(group, tr),
        *trend_sentences(group, info, tr),
        *pruned_sentences(group.runs, info, tr),
        *exclusion_sentences(group, analysis.excluded, tr),
    ]


NEAR_LISTED = 5  # trials named in the "within noise of the best" sentence


def best_trial_sentences(group: Group, info: SearchInfo, tr: Tr) -> list[str]:
    trials = ranked(group.runs, {r.run_id for r in group.usable})
    if not trials:
        return [tr("no_usable")] if group.runs else []
    top = trials[0]
    n = top.test_images
    ci = tr("ci_wilson", ci=interval_text(top.test_interval()), n=count(n)) if n else ""
    sentences = [
        tr(
            "search_best",
            label=trial_label(top, info),
            val=pct(top.metric("val_acc")),
            test=pct(top.metric("test_acc")),
            ci=ci,
            epoch=fmt_value((top.result or {}).get("best_epoch")),
            epochs=top.planned_epochs or top.epochs_run,
        )
    ]
    interval = top.val_interval()
    if len(trials) < 2 or interval is None:
        return sentences
    near = [r for r in trials[1:] if within_noise(top, r)]
    noise = {"ci": interval_text(interval), "images": count(top.val_images)}
    if near:
        items = [f"{trial_label(r, info)} {pct(r.metric('val_acc'))}%" for r in near]
        listed = tr.join(items[:NEAR_LISTED], strong=True)
        if len(items) > NEAR_LISTED:
            listed += tr("search_near_more", n=len(items) - NEAR_LISTED)
        sentences.append(tr("search_near", n=len(near), items=listed, **noise))
    else:
        runner = trials[1]
        sentences.append(
            tr(
                "search_clear",
                label=trial_label(runner, info),
                val=pct(runner.metric("val_acc")),
                **noise,
            )
        )
    return sentences


def trend_sentences(group: Group, info: SearchInfo, tr: Tr) -> list[str]:
    """Per point and searched setting: Spearman's rho with validation accuracy over the
    finished trials that learned; a trend is said only at p < info.alpha()."""
    usable = {r.run_id for r in group.usable}
    alpha = info.alpha()
    sentences = []
    for point in points(group, info):
        if not any(r.run_id in usable for r in point.runs):
            continue
        claimed = []
        for dim in info.axes:
            if not is_ordered(dim):
                sentences.append(_choice_sentence(point, dim, usable, tr))
                continue
            n, test = setting_trend(point.runs, usable, dim)
            names = {"label": point.label, "setting": dim.name, "n": n}
            if test is None:
                key = "trend_few" if n < MIN_TREND_TRIALS else "trend_flat"
                sentences.append(tr(key, least=MIN_TREND_TRIALS, **names))
                continue
            key = "trend_none"
            if test.p < alpha:
                key = "trend_up" if test.rho > 0 else "trend_down"
                claimed.append(dim)
            sentences.append(tr(key, rho=f"{test.rho:.2f}", p=p_text(test.p, alpha), **names))
        sentences += _entangled(point, claimed, info, usable, alpha, tr)
    if not sentences:
        return []
    k = len(info.ordered)
    shared = tr("trend_shared", n=k) if k > 1 else ""
    intro = tr("trend_intro", alpha=f"{alpha:.3g}", shared=shared, least=MIN_TREND_TRIALS)
    return [intro, *sentences] if k else sentences


def _entangled(point, claimed, info: SearchInfo, usable: set[str], alpha: float, tr: Tr):
    """A claimed trend whose setting moved together with another searched setting over the
    same trials (a sampler that narrowed in on a corner does this): the two trends cannot be
    told apart, and the sentence says so."""
    trials = [r for r in point.runs if r.run_id in usable]
    sentences = []
    for dim in claimed:
        for other in info.ordered:
            if other is dim or (
                other in claimed and info.ordered.index(other) < info.ordered.index(dim)
            ):
                continue
            pairs = [
                (finite(r.fields.get(dim.name)), finite(r.fields.get(other.name))) for r in trials
            ]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            test = spearman(*zip(*pairs, strict=True)) if len(pairs) >= MIN_TREND_TRIALS else None
            if test is not None and test.p < alpha:
                sentences.append(
                    tr(
                        "trend_entangled",
                        label=point.label,
                        a=dim.name,
                        b=other.name,
                        rho=f"{test.rho:.2f}",
                        p=p_text(test.p, alpha),
                        n=len(pairs),
                    )
                )
    return sentences


def _choice_sentence(point, dim, usable: set[str], tr: Tr) -> str:
    items = []
    for choice in dim.choices:
        members = [
            r
            for r in point.runs
            if r.run_id in usable and value_key(r.fields.get(dim.name)) == value_key(choice)
        ]
        if not members:
            items.append(tr("choice_item_none", value=fmt_value(choice)))
            continue
        best = max(r.metric("val_acc") or 0.0 for r in members)
        items.append(tr("choice_item", value=fmt_value(choice), val=pct(best), n=len(members)))
    return tr("trend_choices", label=point.label, setting=dim.name, items=tr.join(items))


def pruned_sentences(runs: list[Run], info: SearchInfo, tr: Tr) -> list[str]:
    """How many trials were pruned and after which epoch, and why they are not ranked."""
    pruned = [r for r in runs if r.status == "pruned"]
    if not pruned:
        if info.spec is not None and info.spec.pruner != "none":
            return [tr("pruned_none")]
        return []
    by_epoch = Counter(r.epochs_run for r in pruned)
    items = tr.join(
        [tr("pruned_item", n=by_epoch[e], epoch=e) for e in sorted(by_epoch)], strong=False
    )
    planned = {r.planned_epochs for r in pruned}
    of = tr("pruned_of", planned=planned.pop()) if len(planned) == 1 and None not in planned else ""
    return [tr("pruned", n=len(pruned), items=items, of=of)]
