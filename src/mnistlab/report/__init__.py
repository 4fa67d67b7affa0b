"""The lab report of a sweep: tables, curves, heatmaps, confusion matrix, statistics and
conclusions, built from the ledger alone (`mnistlab report SWEEP_DIR [--lang zh] [--pdf]`).

    build_report(sweep_dir, out_dir=None, lang="en", pdf=False) -> Path of index.html
    conclusions(records, lang="en") -> list of sentences (records as from ledger.read_runs)
    analyse(runs) -> Analysis: runs grouped by budget, bests per budget, runs that did not learn
    best_per_model(runs) -> each model's best combination by validation accuracy
"""

from .analysis import Analysis, analyse
from .build import build_report
from .conclusions import conclusions
from .runs import Best, Budget, Run, best_per_model, to_runs

__all__ = [
    "Analysis",
    "Best",
    "Budget",
    "Run",
    "analyse",
    "best_per_model",
    "build_report",
    "conclusions",
    "to_runs",
]
