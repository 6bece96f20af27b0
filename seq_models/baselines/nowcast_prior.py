"""The nowcast an IAM4VP with a prior corrects: optical flow (any frames) or pysteps' S-PROG (radar rain)."""

from __future__ import annotations

import numpy as np
import torch

from .optical_flow import optical_flow_forecast
from .pysteps_nowcasts import sprog_forecast  # imports pysteps only when called

__all__ = ["NOWCAST_PRIOR_METHODS", "append_nowcast_prior", "nowcast_prior"]

NOWCAST_PRIOR_METHODS = ("farneback", "sprog")
"""Nowcasts a prior can be: ``"farneback"`` (:func:`optical_flow_forecast`, any frames in ``[0, 1]``) and
``"sprog"`` (:func:`seq_models.baselines.sprog_forecast`, radar frames in the project's rain-rate scaling; needs
the optional ``pysteps``)."""


def nowcast_prior(
    history: torch.Tensor | np.ndarray, steps: int, method: str = "farneback"
) -> torch.Tensor | np.ndarray:
    """The ``steps`` prior frames of ``history``: its nowcast of leads ``1..steps``, free of NaN.

    ``"sprog"`` leaves NaN where the advected radar domain has no value (inflow edges, outside the radar); those
    pixels take the optical-flow nowcast's value, so the model always reads a full frame.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)`` tensor or array, values in ``[0, 1]``; ``T >= 2``
            (``T >= 3`` for ``"sprog"``, its AR(2) needs three frames).
        steps: ``P``, prior frames.
        method: one of :data:`NOWCAST_PRIOR_METHODS`.

    Returns:
        ``(B, P, C, H, W)`` or ``(P, C, H, W)``, the type of ``history``, float32.

    Raises:
        ValueError: an unknown ``method`` (the message lists the known ones).
    """
    if method not in NOWCAST_PRIOR_METHODS:
        raise ValueError(f"expected a nowcast prior method in {NOWCAST_PRIOR_METHODS}, got {method!r}")
    prior = optical_flow_forecast(history, steps)
    if method == "sprog":
        sprog = sprog_forecast(history, steps)
        if isinstance(prior, torch.Tensor):
            prior = torch.where(torch.isnan(sprog), prior, sprog)
        else:
            prior = np.where(np.isnan(sprog), prior, sprog).astype(np.float32, copy=False)
    return prior


def append_nowcast_prior(
    history: torch.Tensor | np.ndarray, steps: int, method: str = "farneback"
) -> torch.Tensor | np.ndarray:
    """The history followed by its :func:`nowcast_prior` of ``steps`` lead times, along time.

    This is the input of an IAM4VP built with ``prior_steps = steps`` and ``prior_method = method`` (see
    :class:`seq_models.networks.iam4vp.IAM4VP`): the model predicts a correction to these prior frames. The
    history's NaN are kept; the prior frames have none.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)`` tensor or array, values in ``[0, 1]``, ``T >= 2``.
        steps: ``P``, prior frames (lead times 1..P).
        method: one of :data:`NOWCAST_PRIOR_METHODS`.

    Returns:
        ``(B, T + P, C, H, W)`` or ``(T + P, C, H, W)``, the type and float dtype of ``history``.
    """
    prior = nowcast_prior(history, steps, method)
    axis = 1 if history.ndim == 5 else 0
    if isinstance(history, torch.Tensor):
        return torch.cat([history, prior.to(history.dtype)], dim=axis)
    return np.concatenate([history, prior.astype(history.dtype, copy=False)], axis=axis)
