"""Autoregressive K-step forecasting with IAM4VP, as a MONAI ``Inferer`` for trainers, evaluators and bundles."""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

from monai_glue.checkpoint import unwrap_model
from monai_glue.config_values import parse_bool

__all__ = ["AutoregressiveForecaster", "check_history", "model_geometry", "model_shape_in"]


def model_shape_in(network: nn.Module) -> tuple[int, int, int, int]:
    """``(T, C, H, W)``: the history an IAM4VP (or a wrapper with ``.module``) reads, from its ``shape_in``.

    Raises:
        TypeError: a network without ``shape_in``.
    """
    net = unwrap_model(network)
    shape_in = getattr(net, "shape_in", None)
    if shape_in is None:
        raise TypeError(f"expected an IAM4VP network (with .shape_in = (T, C, H, W)), got {type(net).__name__}")
    t, c, h, w = (int(v) for v in shape_in)
    return t, c, h, w


def model_geometry(network: nn.Module) -> tuple[int, int]:
    """``(history_steps, channels)`` of an IAM4VP (or a wrapper with ``.module``): :func:`model_shape_in`'s first two."""
    return model_shape_in(network)[:2]


def check_history(
    history: torch.Tensor, history_steps: int, channels: int, steps: int, fill_nan: bool = True
) -> torch.Tensor:
    """Validate a history ``(B, T', C, H, W)`` and return its last ``history_steps`` frames with NaN set to 0.

    With ``fill_nan=False`` the frames come back as a view, NaN kept (the caller fills them in a copy it makes
    anyway, which saves one frame-sized copy).

    Raises:
        ValueError: not 5D, wrong channel count, fewer frames than the model needs, ``steps`` outside
            ``1..history_steps``, or a frame that is entirely NaN (no data at all): each message names what was
            expected and what came.
    """
    if not isinstance(history, torch.Tensor) or history.ndim != 5:
        got = tuple(history.shape) if isinstance(history, torch.Tensor) else type(history).__name__
        raise ValueError(f"expected a history of shape (B, T, C, H, W) with C={channels}, got {got}")
    if history.shape[2] != channels:
        raise ValueError(f"expected {channels} channels, got {history.shape[2]} (history of shape {tuple(history.shape)})")
    if history.shape[1] < history_steps:
        raise ValueError(
            f"expected a history of at least {history_steps} steps, got {history.shape[1]} "
            f"(history of shape {tuple(history.shape)})"
        )
    if not 1 <= steps <= history_steps:
        raise ValueError(
            f"expected 1 <= forecast steps <= {history_steps} (the model's history length), got {steps}"
        )
    history = history[:, -history_steps:]
    empty = torch.isnan(history).flatten(2).all(dim=2)  # (B, T)
    if bool(empty.any()):
        b, t = (int(i) for i in torch.nonzero(empty)[0])
        raise ValueError(
            f"expected every history frame to hold some data, got an all-NaN frame (sample {b}, step {t} of "
            f"the last {history_steps}; {int(empty.sum())} such frames in all)"
        )
    if fill_nan and bool(torch.isnan(history).any()):
        return torch.nan_to_num(history, nan=0.0)
    return history


class AutoregressiveForecaster(Inferer):
    """Forecast ``steps`` frames by calling IAM4VP ``steps`` times on the same history.

    Call ``k`` (0-based) receives the ``k`` earlier predictions, detached and clamped to ``[0, 1]``, in its
    future slots and the time value ``time_scale * k``. Input NaNs are set to 0 first.

    Used three ways: inference (``clamp_output=True``, forecasts in ``[0, 1]``), training inside MONAI's
    ``SupervisedTrainer`` (``clamp_output=False``: gradients flow through each step's own forward pass only, so
    the loss over all steps followed by one optimiser step equals accumulating the per-step losses), and
    evaluation inside ``SupervisedEvaluator``.

    Args:
        steps: ``K``; ``None`` means the model's history length. Must not exceed it.
        time_scale: time value per step (100 in the public work).
        clamp_output: clamp the returned forecasts to ``[0, 1]`` (a bool or ``"true"`` / ``"false"``...; anything else
            is refused with a ``ValueError``).

    Call: ``forecaster(history, network)`` with history ``(B, T', C, H, W)``, ``T' >= T`` (the last ``T`` are
    used) → forecasts ``(B, K, C, H, W)``.
    """

    def __init__(self, steps: int | None = None, time_scale: float = 100.0, clamp_output: bool = True) -> None:
        super().__init__()
        self.steps = steps
        self.time_scale = float(time_scale)
        self.clamp_output = parse_bool(clamp_output, "clamp_output")

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, steps: int | None = None, **kwargs: Any) -> torch.Tensor:
        history_steps, channels = model_geometry(network)
        k_steps = int(steps or self.steps or history_steps)
        history = check_history(inputs, history_steps, channels, k_steps)
        b = history.shape[0]
        previous: list[torch.Tensor] = []
        outputs: list[torch.Tensor] = []
        for k in range(k_steps):
            t = torch.full((b,), self.time_scale * k, device=history.device)
            pred = network(history, previous, t)
            outputs.append(pred.clamp(0.0, 1.0) if self.clamp_output else pred)
            previous.append(pred.detach().clamp(0.0, 1.0))
        return torch.stack(outputs, dim=1)
