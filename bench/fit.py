"""Fitting the ranking and abstention weights on cached features (benchmark only).

Why these models: the fused sentence score is a conditional logit (a softmax over one
document's sentences with the answer sentence as the target), the standard smooth
surrogate for "rank the answer sentence first"; it has few parameters (one per feature),
so fitting on two articles and testing on the third is meaningful.  Abstention is a plain
logistic regression (answerable vs off-topic) on the best sentence's evidence.  Both are
fitted with scipy's L-BFGS; no scikit-learn needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class Group:
    """One answerable question: its sentences' features and which contain the answer."""

    features: np.ndarray  # (n_sentences, n_features)
    positive: np.ndarray  # (n_sentences,) bool, at least one True


def _logsumexp(values: np.ndarray) -> tuple[float, np.ndarray]:
    top = float(values.max())
    weights = np.exp(values - top)
    total = float(weights.sum())
    return top + float(np.log(total)), weights / total


def fit_fusion(groups: Sequence[Group], l2: float = 0.01, start: np.ndarray | None = None) -> np.ndarray:
    """Weights maximising the (L2-penalised) conditional log-likelihood of the answer sentences."""
    dimension = groups[0].features.shape[1]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        total, gradient = l2 * float(w @ w), 2 * l2 * w
        for group in groups:
            scores = group.features.astype(np.float64) @ w
            all_lse, all_p = _logsumexp(scores)
            pos_lse, pos_p = _logsumexp(scores[group.positive])
            total += (all_lse - pos_lse) / len(groups)
            gradient = gradient + (all_p @ group.features
                                   - pos_p @ group.features[group.positive]) / len(groups)
        return total, gradient

    result = minimize(loss, start if start is not None else np.zeros(dimension), jac=True,
                      method="L-BFGS-B")
    return np.asarray(result.x)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 0.001) -> tuple[float, np.ndarray]:
    """Class-balanced logistic regression: returns (bias, coefficients)."""
    x = np.column_stack([np.ones(len(features)), features.astype(np.float64)])
    y = labels.astype(np.float64)
    weight = np.where(y > 0, 0.5 / max(y.sum(), 1), 0.5 / max((1 - y).sum(), 1))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = x @ w
        p = 1 / (1 + np.exp(-np.clip(z, -50, 50)))
        value = -float(np.sum(weight * (y * np.logaddexp(0, -z) * 1 + (1 - y) * np.logaddexp(0, z))))
        value = -value + l2 * float(w[1:] @ w[1:])
        gradient = x.T @ (weight * (p - y))
        gradient[1:] += 2 * l2 * w[1:]
        return value, gradient

    result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B")
    return float(result.x[0]), np.asarray(result.x[1:])


def threshold_for(confidence_answerable: np.ndarray, max_declined: float) -> float:
    """The highest threshold that declines at most ``max_declined`` of answerable questions."""
    ordered = np.sort(confidence_answerable)
    allowed = int(np.floor(max_declined * len(ordered)))
    return float(ordered[allowed]) if allowed < len(ordered) else float(ordered[-1])

