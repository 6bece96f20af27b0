"""Masked regression loss and metrics for padded sequences: padded steps never count."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["masked_mse", "MaskedMSELoss", "MaskedRMSE", "rmse"]


def _mask(pred: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=pred.device)
    if lengths.shape != pred.shape[:1]:
        raise ValueError(f"expected lengths of shape ({pred.shape[0]},), got {tuple(lengths.shape)}")
    steps = torch.arange(pred.shape[1], device=pred.device)
    return steps[None, :] < lengths[:, None]


def masked_mse(
    pred: torch.Tensor, target: torch.Tensor, lengths: torch.Tensor | None = None, skip_first: int = 0
) -> torch.Tensor:
    """Mean squared error over the valid steps of padded sequences.

    Args:
        pred: [B, T] predictions.
        target: [B, T] targets (any values in the padding).
        lengths: [B] valid lengths; ``None`` means every step counts.
        skip_first: leave the first steps of every sequence out (a window's warm-up, where the hidden state
            has not seen enough of the series yet). Sequences no longer than this count all their steps.

    Returns:
        scalar tensor: sum of squared errors over counted steps / number of counted steps.
    """
    if pred.shape != target.shape:
        raise ValueError(f"expected target of the prediction's shape {list(pred.shape)}, got {list(target.shape)}")
    if skip_first < 0:
        raise ValueError(f"expected skip_first >= 0, got {skip_first}")
    mask = _mask(pred, lengths)
    if skip_first:
        if lengths is None:
            lengths_ = torch.full(pred.shape[:1], pred.shape[1], device=pred.device)
        else:
            lengths_ = torch.as_tensor(lengths, device=pred.device)
        steps = torch.arange(pred.shape[1], device=pred.device)[None, :]
        keep = (steps >= skip_first) | (lengths_[:, None] <= skip_first)
        mask = keep if mask is None else mask & keep
    if mask is None:
        return ((pred - target) ** 2).mean()
    err = torch.where(mask, pred - target, torch.zeros_like(pred))
    return (err**2).sum() / mask.sum().clamp_min(1)


class MaskedMSELoss(nn.Module):
    """:func:`masked_mse` as a loss for MONAI engines.

    ``target`` is a tensor [B, T] or, from :class:`monai_glue.DictTargetPrepareBatch`, a dict with
    ``target_key`` ([B, T]) and ``lengths_key`` ([B]).

    Args:
        target_key: key of the targets in a dict target.
        lengths_key: key of the lengths in a dict target.
        skip_first: warm-up steps left out of every sequence (see :func:`masked_mse`).
    """

    def __init__(self, target_key: str = "target", lengths_key: str = "lengths", skip_first: int = 0) -> None:
        super().__init__()
        self.target_key, self.lengths_key, self.skip_first = target_key, lengths_key, skip_first

    def forward(self, pred: torch.Tensor, target: torch.Tensor | Mapping[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(target, Mapping):
            if self.target_key not in target:
                raise KeyError(f"expected key {self.target_key!r} in the targets, got keys {sorted(target)}")
            return masked_mse(pred, target[self.target_key], target.get(self.lengths_key), self.skip_first)
        return masked_mse(pred, target, None, self.skip_first)


def rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Root mean squared error of two tensors of the same shape."""
    if pred.shape != target.shape:
        raise ValueError(f"expected two tensors of the same shape, got {list(pred.shape)} and {list(target.shape)}")
    return float(torch.sqrt(((pred.double() - target.double()) ** 2).mean()))


class MaskedRMSE:
    """Ignite metric: root of the masked MSE accumulated over an epoch (valid steps only).

    Reads ``(pred, targets)`` from the engine output through ``output_transform``; ``targets`` is a dict with
    ``target_key`` and ``lengths_key`` or a tensor. Created lazily as an ignite ``Metric`` so this module imports
    without ignite.

    Args:
        output_transform: engine output → ``(pred, targets)``; default reads MONAI's ``pred`` / ``label`` keys.
        target_key: key of the targets.
        lengths_key: key of the lengths.
        skip_first: leave the first steps of every sequence out (lead-in steps that only warm the hidden state up,
            such as the training steps before each validation window of
            :meth:`~seq_models.data.series.SeriesRegressionData.val_windows`); unlike the loss, a sequence no longer
            than ``skip_first`` counts nothing.
    """

    def __new__(
        cls,
        output_transform: Callable[[Any], Any] | None = None,
        target_key: str = "target",
        lengths_key: str = "lengths",
        skip_first: int = 0,
    ) -> Any:
        from ignite.metrics import Metric
        from ignite.metrics.metric import reinit__is_reduced, sync_all_reduce
        from monai.utils import CommonKeys

        if skip_first < 0:
            raise ValueError(f"expected skip_first >= 0, got {skip_first}")

        def default_transform(output: Any) -> Any:
            if isinstance(output, list):  # decollated batch (MONAI engines): stack the items back, all of them
                pred = torch.stack([torch.as_tensor(o[CommonKeys.PRED]) for o in output])
                labels = [o[CommonKeys.LABEL] for o in output]
                if isinstance(labels[0], Mapping):
                    return pred, {k: torch.stack([torch.as_tensor(lb[k]) for lb in labels]) for k in labels[0]}
                return pred, torch.stack([torch.as_tensor(lb) for lb in labels])
            return output[CommonKeys.PRED], output[CommonKeys.LABEL]

        class _MaskedRMSE(Metric):
            def reset(self) -> None:
                self._sse = 0.0
                self._n = 0

            @reinit__is_reduced
            def update(self, output: Any) -> None:
                pred, targets = output
                if isinstance(targets, Mapping):
                    target, lengths = targets[target_key], targets.get(lengths_key)
                else:
                    target, lengths = targets, None
                pred = pred.detach()
                mask = _mask(pred, lengths) if pred.dim() == 2 else None
                if skip_first and pred.dim() == 2:
                    keep = torch.arange(pred.shape[1], device=pred.device)[None, :] >= skip_first
                    mask = keep.expand_as(pred) if mask is None else mask & keep
                err = (pred - target.to(pred)) ** 2
                if mask is not None:
                    err = err[mask]
                self._sse += float(err.double().sum())
                self._n += int(err.numel())

            @sync_all_reduce("_sse", "_n")
            def compute(self) -> float:
                if self._n == 0:
                    raise RuntimeError("MaskedRMSE needs at least one valid step before compute()")
                return (self._sse / self._n) ** 0.5

        return _MaskedRMSE(output_transform=output_transform or default_transform)
