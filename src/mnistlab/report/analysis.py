"""What the report may compare: runs grouped by budget, runs that did not learn set aside.

    analyse(runs) -> Analysis
        .groups     one Group per budget (training images, epochs, evaluation images), the
                    biggest first; each with its models' best combinations, ranked
        .excluded   run_id -> Exclusion: finished runs that did not learn, with the reason
        .mixed      True when the sweep mixes budgets (the report says so at the top)
        .search     a trials.SearchInfo when the sweep is a [search] (its runs are trials)

Only runs of one budget are ranked, fitted or compared with each other; a run that did not
learn is named and left out of rankings and fits, so that it cannot decide a conclusion.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .runs import Best, Budget, Run, best_per_model, budget_key, combo_fields

# A run "did not learn" when its validation accuracy is within NEAR_CHANCE of guessing, or
# less than HALF_WAY of the way from chance to the best run it is compared with (its model's
# other runs of the same budget, or, for a model with no other run, the budget's best run).
NEAR_CHANCE = 0.10
HALF_WAY = 0.5

if TYPE_CHECKING:
    from .trials import SearchInfo


@dataclass(frozen=True)
class Exclusion:
    run: Run
    reason: str  # "near_chance" | "below_model" | "below_budget"
    chance: float
    reference: Run | None  # the run it fell far below

    @property
    def val(self) -> float:
        return self.run.metric("val_acc") or 0.0


@dataclass
class Group:
    budget: Budget
    letter: str  # "A", "B", ... when the sweep mixes budgets, else ""
    runs: list[Run]  # every run of the budget, whatever its status
    usable: list[Run]  # finished runs that learned: the ones ranked and fitted
    bests: list[Best]  # each model's best combination among `usable`, best first
    fields: list[str]  # the combination fields (lr, dropout, others that vary)

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self.runs})


@dataclass
class Analysis:
    runs: list[Run]
    groups: list[Group]
    excluded: dict[str, Exclusion]
    search: SearchInfo | None = None  # the sweep is a search: views and sentences for trials

    @property
    def mixed(self) -> bool:
        return len(self.groups) > 1

    @property
    def bests(self) -> list[Best]:
        return [b for g in self.groups for b in g.bests]

    @property
    def fields(self) -> list[str]:
        """The settings that vary anywhere in the sweep: the columns of tables that hold every
        budget's runs (a group's own `fields` are those that vary within it)."""
        return combo_fields(self.runs)

    def group_of(self, run: Run) -> Group:
        key = budget_key(run)
        return next(g for g in self.groups if g.budget.key == key)


def learning_failures(runs: list[Run]) -> dict[str, Exclusion]:
    """Finished runs of one budget that did not learn (see NEAR_CHANCE and HALF_WAY).

    A model all of whose runs stayed far below the other models of its budget is judged
    against those; otherwise a run is judged against its own model's best other run."""
    rated = [r for r in runs if r.finished and r.metric("val_acc") is not None]

    def best(pool: list[Run]) -> Run | None:
        return max(pool, key=lambda r: (r.metric("val_acc"), r.run_id)) if pool else None

    def far_below(val: float, reference: Run, chance: float) -> bool:
        return val - chance < HALF_WAY * (reference.metric("val_acc") - chance)

    out: dict[str, Exclusion] = {}
    for run in rated:
        val, chance = run.metric("val_acc"), 1.0 / run.num_classes
        if val < chance + NEAR_CHANCE:
            out[run.run_id] = Exclusion(run, "near_chance", chance, None)
            continue
        model_best = best([r for r in rated if r.model == run.model])
        other_models = best([r for r in rated if r.model != run.model])
        if other_models is not None and far_below(
            model_best.metric("val_acc"), other_models, chance
        ):
            out[run.run_id] = Exclusion(run, "below_budget", chance, other_models)
            continue
        siblings = best([r for r in rated if r.model == run.model and r is not run])
        if siblings is not None and far_below(val, siblings, chance):
            out[run.run_id] = Exclusion(run, "below_model", chance, siblings)
    return out


def analyse(runs: list[Run], search: SearchInfo | None = None) -> Analysis:
    by_key: dict[tuple, list[Run]] = {}
    for run in runs:
        by_key.setdefault(budget_key(run), []).append(run)
    budgets = sorted((Budget.of(g) for g in by_key.values()), key=Budget.size)
    letters = iter(string.ascii_uppercase)
    excluded: dict[str, Exclusion] = {}
    groups = []
    for budget in budgets:
        members = by_key[budget.key]
        failures = learning_failures(members)
        excluded.update(failures)
        usable = [r for r in members if r.finished and r.run_id not in failures]
        fields = combo_fields(members)  # what varies within this budget names its runs
        groups.append(
            Group(
                budget=budget,
                letter=next(letters, "?") if len(budgets) > 1 else "",
                runs=members,
                usable=usable,
                bests=best_per_model(usable, budget, fields),
                fields=fields,
            )
        )
    return Analysis(runs=runs, groups=groups, excluded=excluded, search=search)
