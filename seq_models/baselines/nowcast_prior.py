"""The optical-flow nowcast appended to a history as prior frames, for IAM4VP models that correct it."""

from __future__ import annotations

import numpy as np
import torch

from .optical_flow import optical_flow_forecast

__all__ = ["append_nowcast_prior"]


def append_nowcast_prior(
    history: torch.Tensor | np.ndarray, steps: int, method: str = "farneback"
) -> torch.Tensor | np.ndarray:
    """The history followed by its optical-flow extrapolation of ``steps`` lead times, along time.

    This is the input of an IAM4VP built with ``prior_steps = steps`` (see
    :class:`seq_models.networks.iam4vp.IAM4VP`): the model predicts a correction to these prior frames. The
    history's NaN are kept; the prior frames have none (:func:`optical_flow_forecast` fills NaN before it
    estimates the motion).

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)`` tensor or array, values in ``[0, 1]``, ``T >= 2``.
        steps: ``P``, prior frames (lead times 1..P).
        method: optical-flow method, ``"farneback"`` or ``"tvl1"``.

    Returns:
        ``(B, T + P, C, H, W)`` or ``(T + P, C, H, W)``, the type and float dtype of ``history``.
    """
    prior = optical_flow_forecast(history, steps, method)
    axis = 1 if history.ndim == 5 else 0
    if isinstance(history, torch.Tensor):
        return torch.cat([history, prior.to(history.dtype)], dim=axis)
    return np.concatenate([history, prior.astype(history.dtype, copy=False)], axis=axis)
