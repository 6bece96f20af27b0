"""What the SADAAn cumulative metrics share: reducing the values they gathered, NaN when there is nothing to score."""

from __future__ import annotations

from collections.abc import Callable

import torch
from monai.metrics import CumulativeIterationMetric

__all__ = ["aggregate_buffer"]


def aggregate_buffer(
    metric: CumulativeIterationMetric, reduce: Callable[[torch.Tensor], torch.Tensor], nan_is_missing: bool = True
) -> torch.Tensor:
    """``reduce`` of the values ``metric`` has gathered, or a NaN scalar when there are none to score.

    Args:
        metric: a MONAI cumulative metric; its buffer is read with ``get_buffer()``.
        reduce: the gathered tensor (as stored, e.g. [N, S]) -> the aggregate.
        nan_is_missing: a buffer of NaN only counts as empty (NaN marks a pair the metric does not score).

    Returns:
        ``reduce(buffer)``, or ``tensor(nan)`` when the buffer is not a tensor, is empty or (with ``nan_is_missing``)
        holds NaN only.
    """
    data = metric.get_buffer()
    if not isinstance(data, torch.Tensor) or data.numel() == 0:
        return torch.tensor(float("nan"))
    if nan_is_missing and bool(torch.isnan(data).all()):
        return torch.tensor(float("nan"))
    return reduce(data)
