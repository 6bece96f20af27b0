"""Forecasting with an IAM4VP that corrects a nowcast: the prior frames are made on the whole frame first."""

from __future__ import annotations

from typing import Any

import torch
from monai.inferers import Inferer
from torch import nn

from monai_glue.checkpoint import unwrap_model
from seq_models.baselines.nowcast_prior import append_nowcast_prior

__all__ = ["NowcastPriorForecaster"]


class NowcastPriorForecaster(Inferer):
    """Run ``forecaster`` on the history with its nowcast appended, for a model with a nowcast prior.

    The nowcast is made on the frames as given (the whole frame, before any tiling), as the training windows'
    priors are (:class:`seq_models.data.satellite.TiledWindowDataset` with ``prior_steps``). For a model without a
    prior (``num_prior_steps == 0``) the history goes to ``forecaster`` unchanged, so a bundle can use this
    inferer for either kind of weights. The nowcast method is the model's own (``prior_method_name``, kept in its
    weights), so inference makes the prior the model was trained to correct.

    Args:
        forecaster: the inferer that runs the model (:class:`TiledForecaster` or :class:`AutoregressiveForecaster`).

    Call: ``forecaster(history, network, steps=K)`` with history ``(B, T', C, H, W)``, ``T' >= T - P`` (the last
    ``T - P`` are used) → ``(B, K, C, H, W)``, ``K <= P``.

    Raises:
        ValueError: a history shorter than the model's ``T - P`` frames (named with both counts).
    """

    def __init__(self, forecaster: Inferer) -> None:
        super().__init__()
        self.forecaster = forecaster

    def __call__(self, inputs: torch.Tensor, network: nn.Module, *args: Any, **kwargs: Any) -> torch.Tensor:
        net = unwrap_model(network)
        prior_steps = int(getattr(net, "num_prior_steps", 0))
        if not prior_steps:
            return self.forecaster(inputs, network, *args, **kwargs)
        history_steps = int(net.num_history_steps)
        if not isinstance(inputs, torch.Tensor) or inputs.ndim != 5 or inputs.shape[1] < history_steps:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(
                f"expected a history (B, T>={history_steps}, C, H, W) for a model with {history_steps} history and "
                f"{prior_steps} nowcast-prior frames, got {got}"
            )
        if kwargs.get("steps") is None and getattr(self.forecaster, "steps", None) is None:
            kwargs["steps"] = prior_steps  # the forecasters' default (T) is more than such a model forecasts
        stacked = append_nowcast_prior(inputs[:, -history_steps:], prior_steps, net.prior_method_name)
        return self.forecaster(stacked, network, *args, **kwargs)
