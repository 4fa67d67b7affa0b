"""The lab report of a sweep: tables, loss curves, confusion matrix and conclusions, built
from the ledger alone (`mnistlab report SWEEP_DIR`).

    build_report(sweep_dir, out_dir=None) -> Path of index.html
    conclusions(records) -> list of sentences (records as returned by ledger.read_runs)
    best_per_model(runs) -> each model's best combination by validation accuracy
"""

from .build import build_report
from .conclusions import conclusions
from .runs import Best, Run, best_per_model, to_runs

__all__ = ["Best", "Run", "best_per_model", "build_report", "conclusions", "to_runs"]
