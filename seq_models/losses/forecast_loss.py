"""NaN-aware forecast loss for IAM4VP: mean absolute error plus an optional gradient-difference term."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

__all__ = ["NaNAwareForecastLoss", "nan_mae", "nan_gradient_difference"]


def nan_mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean ``|pred - target|`` over the elements where ``target`` is not NaN (0 with a graph when none is)."""
    valid = ~torch.isnan(target)
    diff = (pred - torch.nan_to_num(target)).abs() * valid
    count = valid.sum()
    if count == 0:
        return pred.sum() * 0.0
    return diff.sum() / count


def nan_gradient_difference(pred: torch.Tensor, target: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Gradient-difference loss (Mathieu et al., 2016) over the last two axes, NaN-aware.

    ``mean | |Δ target| - |Δ pred| |^alpha`` over vertical and horizontal neighbour differences, counting only
    pairs whose two target pixels are valid. Penalises blurred edges that a pixel loss alone tolerates.
    """
    terms, counts = [], []
    for dim in (-2, -1):
        n = target.shape[dim]
        if n < 2:
            continue
        t0, t1 = target.narrow(dim, 0, n - 1), target.narrow(dim, 1, n - 1)
        p0, p1 = pred.narrow(dim, 0, n - 1), pred.narrow(dim, 1, n - 1)
        valid = ~(torch.isnan(t0) | torch.isnan(t1))
        dt = torch.nan_to_num(t1 - t0).abs()
        dp = (p1 - p0).abs()
        terms.append(((dt - dp).abs().pow(alpha) * valid).sum())
        counts.append(valid.sum())
    total = sum(counts) if counts else 0
    if not counts or total == 0:
        return pred.sum() * 0.0
    return sum(terms) / total


class NaNAwareForecastLoss(nn.Module):
    """``mae + gdl_weight * gdl`` over forecasts ``(B, K, C, H, W)``, ignoring NaN targets.

    Returns a dict ``{"total", "mae", "gdl"}`` for :class:`monai_glue.ComponentLoss`.

    Args:
        gdl_weight: weight of the gradient-difference term; 0 turns it off (the term is still reported).
        alpha: exponent of the gradient-difference term.
        target_key: key of the target when the target comes as a dict (``DictTargetPrepareBatch``).
        step_weights: optional weight per lead time ``k`` (length ``K``). ``None`` (default): one MAE (and GDL)
            over all elements. Given: ``total = sum_k w_k (mae_k + gdl_weight * gdl_k) / sum_k w_k`` with each
            step's own NaN-aware means; the reported ``mae`` and ``gdl`` stay the unweighted ones over all
            elements, so runs with and without weights log comparable numbers.
    """

    def __init__(
        self, gdl_weight: float = 0.0, alpha: float = 1.0, target_key: str = "target", step_weights: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        if gdl_weight < 0:
            raise ValueError(f"expected gdl_weight >= 0, got {gdl_weight}")
        if step_weights is not None:
            step_weights = [float(w) for w in step_weights]
            if not step_weights or min(step_weights) < 0 or sum(step_weights) <= 0:
                raise ValueError(f"expected non-negative step_weights with a positive sum, got {step_weights}")
        self.gdl_weight = float(gdl_weight)
        self.alpha = float(alpha)
        self.target_key = target_key
        self.step_weights = step_weights

    def forward(self, pred: torch.Tensor, target: torch.Tensor | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Args: pred ``(B, K, C, H, W)``; target the same shape (or a dict holding it). Returns: loss dict."""
        if isinstance(target, Mapping):
            if self.target_key not in target:
                raise KeyError(f"expected target key {self.target_key!r}, got keys {sorted(target)}")
            target = target[self.target_key]
        if pred.shape != target.shape:
            raise ValueError(f"expected a target of the forecast's shape {tuple(pred.shape)}, got {tuple(target.shape)}")
        mae = nan_mae(pred, target)
        gdl = nan_gradient_difference(pred, target, self.alpha)
        if self.step_weights is None:
            total = mae + self.gdl_weight * gdl if self.gdl_weight else mae
        else:
            if len(self.step_weights) != pred.shape[1]:
                raise ValueError(f"expected {pred.shape[1]} step_weights (one per lead time), got {len(self.step_weights)}")
            total = pred.sum() * 0.0
            for k, w in enumerate(self.step_weights):
                if w:
                    step = nan_mae(pred[:, k], target[:, k])
                    if self.gdl_weight:
                        step = step + self.gdl_weight * nan_gradient_difference(pred[:, k], target[:, k], self.alpha)
                    total = total + w * step
            total = total / sum(self.step_weights)
        return {"total": total, "mae": mae.detach(), "gdl": gdl.detach()}
