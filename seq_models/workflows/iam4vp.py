"""MONAI engines for IAM4VP: a ``SupervisedTrainer`` and a ``SupervisedEvaluator`` built from the shared glue.

Batches are dicts ``{"history": (B, T, C, H, W), "target": (B, K, C, H, W)}``
(:class:`seq_models.data.satellite.SatelliteWindowDataset`). The trainer's inferer runs the K per-step forward
passes with detached previous predictions; the loss (NaN-aware MAE, optional gradient-difference term) is taken
over all steps and followed by one optimiser step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from monai.engines import SupervisedEvaluator, SupervisedTrainer
from monai.handlers import IgniteMetricHandler, from_engine
from torch import nn

from monai_glue import ComponentLoss, DictTargetPrepareBatch, LossComponentsHandler
from seq_models.inferers.forecaster import AutoregressiveForecaster
from seq_models.losses.forecast_loss import NaNAwareForecastLoss
from seq_models.metrics.forecast_metrics import ForecastMetric

__all__ = ["create_iam4vp_evaluator", "create_iam4vp_trainer", "forecast_prepare_batch", "lower_is_better"]


def lower_is_better(current: float, previous: float) -> bool:
    """``metric_cmp_fn`` for errors (MAE): MONAI starts the best metric at -1, which any error beats."""
    return previous < 0 or current < previous


def forecast_prepare_batch(history_key: str = "history", target_key: str = "target") -> DictTargetPrepareBatch:
    """``DictTargetPrepareBatch`` for forecast windows: network input ``history``, targets ``{"target": ...}``."""
    return DictTargetPrepareBatch(image_key=history_key, target_keys={"target": target_key})


def create_iam4vp_trainer(
    network: nn.Module,
    train_loader: Iterable,
    optimizer: torch.optim.Optimizer,
    max_epochs: int,
    device: str | torch.device = "cpu",
    steps: int | None = None,
    gdl_weight: float = 0.0,
    epoch_length: int | None = None,
    train_handlers: Sequence[Any] = (),
    step_weights: Sequence[float] | None = None,
) -> SupervisedTrainer:
    """``SupervisedTrainer`` for IAM4VP: per-step forward passes, NaN-aware MAE (+ ``gdl_weight`` · GDL).

    The loss components (``loss_total``, ``loss_mae``, ``loss_gdl``) are put into ``engine.state.output`` and
    their epoch means into ``engine.state.metrics`` by :class:`monai_glue.LossComponentsHandler`.

    Args:
        network: an :class:`~seq_models.networks.iam4vp.IAM4VP`.
        train_loader: batches of ``{"history", "target"}``; ``K`` defaults to the target length.
        optimizer: optimiser over ``network``'s parameters.
        max_epochs: epochs.
        device: device.
        steps: forecast steps per sample (``None``: the model's history length; must match the targets).
        gdl_weight: weight of the gradient-difference term.
        epoch_length: iterations per epoch (``None``: the loader's length).
        train_handlers: extra MONAI / ignite handlers.
        step_weights: optional loss weight per lead time (see :class:`NaNAwareForecastLoss`); ``None``: all equal.
    """
    loss = ComponentLoss(NaNAwareForecastLoss(gdl_weight=gdl_weight, step_weights=step_weights))
    return SupervisedTrainer(
        device=torch.device(device),
        max_epochs=max_epochs,
        train_data_loader=train_loader,
        network=network,
        optimizer=optimizer,
        loss_function=loss,
        epoch_length=epoch_length,
        prepare_batch=forecast_prepare_batch(),
        inferer=AutoregressiveForecaster(steps=steps, clamp_output=False),
        train_handlers=[LossComponentsHandler(loss), *train_handlers],
        decollate=False,
    )


def create_iam4vp_evaluator(
    network: nn.Module,
    val_loader: Iterable,
    device: str | torch.device = "cpu",
    steps: int | None = None,
    mask: torch.Tensor | None = None,
    inferer: Any | None = None,
    val_handlers: Sequence[Any] = (),
) -> SupervisedEvaluator:
    """``SupervisedEvaluator`` with forecasts clamped to ``[0, 1]`` and metrics ``val_mae`` (key), ``val_mse``,
    ``val_ssim``: means over samples, lead times and channels, NaN-aware, inside ``mask``.

    Args:
        inferer: ``None`` for :class:`AutoregressiveForecaster`; pass a :class:`TiledForecaster` for large frames.
    """

    def metric(name: str) -> IgniteMetricHandler:
        return IgniteMetricHandler(
            metric_fn=ForecastMetric(name, mask=mask), output_transform=from_engine(["pred", "label"]), save_details=False
        )

    return SupervisedEvaluator(
        device=torch.device(device),
        val_data_loader=val_loader,
        network=network,
        prepare_batch=forecast_prepare_batch(),
        inferer=inferer if inferer is not None else AutoregressiveForecaster(steps=steps, clamp_output=True),
        key_val_metric={"val_mae": metric("mae")},
        additional_metrics={"val_mse": metric("mse"), "val_ssim": metric("ssim")},
        metric_cmp_fn=lower_is_better,
        val_handlers=list(val_handlers),
        decollate=False,
    )
