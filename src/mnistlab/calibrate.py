"""Honest confidence: temperature scaling and expected calibration error (issue 14).

A network trained with cross-entropy is usually over-confident: "100.0% sure" from a model
that is right 96% of the time. Temperature scaling (Guo et al. 2017, "On calibration of
modern neural networks") divides the logits by one number T > 0, fitted on the validation
split by minimising the negative log-likelihood; the predicted class never changes, only how
sure the model says it is.

Numbers in, numbers out: numpy arrays or torch tensors of logits (or log-probabilities,
which differ from logits by a constant per row and so calibrate the same).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax as _log_softmax

ECE_BINS = 15
# T is searched in [1/20, 20] on a log scale; an answer at either end means the logits are
# useless for calibration (all one class, or all ties), and T = 1 is kept instead.
T_RANGE = (0.05, 20.0)


def _as_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "detach"):  # a torch tensor, without importing torch here
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def log_softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    return _log_softmax(_as_numpy(logits) / temperature, axis=1)


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(logits, temperature))


def negative_log_likelihood(logits: Any, labels: Any, temperature: float = 1.0) -> float:
    labels = _as_numpy(labels).astype(np.int64)
    lp = log_softmax(logits, temperature)
    return float(-lp[np.arange(len(labels)), labels].mean()) if len(labels) else 0.0


def fit_temperature(logits: Any, labels: Any) -> float:
    """The T that minimises the mean negative log-likelihood of softmax(logits / T). The NLL
    is convex in 1/T, so a bounded scalar search over log T finds its minimum."""
    z = _as_numpy(logits)
    y = _as_numpy(labels).astype(np.int64)
    if z.ndim != 2 or len(z) != len(y) or len(y) == 0:
        raise ValueError(f"need (N, classes) logits and N labels, got {z.shape} and {y.shape}")
    low, high = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(z, y, math.exp(log_t)),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-9},
    )
    log_t = float(found.x)  # NaN fails the comparison too
    return math.exp(log_t) if low + 1e-3 < log_t < high - 1e-3 else 1.0


def expected_calibration_error(probabilities: Any, labels: Any, bins: int = ECE_BINS) -> float:
    """ECE: the gap between confidence (the top probability) and accuracy, averaged over
    `bins` equal-width confidence bins weighted by how many predictions fall in each."""
    p = _as_numpy(probabilities)
    y = _as_numpy(labels).astype(np.int64)
    if len(y) == 0:
        return 0.0
    confidence = p.max(1)
    correct = (p.argmax(1) == y).astype(np.float64)
    # Bin i holds confidences in (i/bins, (i+1)/bins]; the lowest bin also takes 0.
    index = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    # Per bin |sum(correct) - sum(confidence)| is count x |accuracy - mean confidence|.
    gaps = np.bincount(index, correct - confidence, minlength=bins)
    return float(np.abs(gaps).sum() / len(y))


def calibration_of(logits: Any, labels: Any) -> dict[str, Any]:
    """Fit T on (N, classes) `logits` and their labels (the validation split's). Returns what
    a checkpoint stores: `temperature`, and `calibration` with ECE and NLL before (T = 1) and
    after dividing by it."""
    t = fit_temperature(logits, labels)
    return {
        "temperature": t,
        "calibration": {
            "split": "val",
            "images": len(_as_numpy(labels)),
            "ece_before": expected_calibration_error(softmax(logits), labels),
            "ece_after": expected_calibration_error(softmax(logits, t), labels),
            "nll_before": negative_log_likelihood(logits, labels),
            "nll_after": negative_log_likelihood(logits, labels, t),
        },
    }
