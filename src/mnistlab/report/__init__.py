"""The lab report of a sweep: tables, curves, heatmaps, confusion matrix, statistics and
conclusions, built from the ledger alone (`mnistlab report SWEEP_DIR [--lang zh] [--pdf]`).

    build_report(sweep_dir, out_dir=None, lang="en", pdf=False) -> Path of index.html
    conclusions(records, lang="en", search=None) -> list of sentences (records as from
        ledger.read_runs; search: a SearchInfo when the sweep is a [search])
    analyse(runs, search=None) -> Analysis: runs grouped by budget, bests per budget, runs
        that did not learn
    read_search(sweep_dir) -> SearchInfo | None: what a [search] sweep sampled (None: a grid)
    best_per_model(runs) -> each model's best combination by validation accuracy
"""

from .analysis import Analysis, analyse
from .build import build_report
from .conclusions import conclusions
from .runs import Best, Budget, Run, best_per_model, to_runs
from .trials import SearchInfo, read_search

__all__ = [
    "Analysis",
    "Best",
    "Budget",
    "Run",
    "SearchInfo",
    "analyse",
    "best_per_model",
    "build_report",
    "conclusions",
    "read_search",
    "to_runs",
]
