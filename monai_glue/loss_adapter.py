"""Adapters between losses that return several components and MONAI engines that expect one scalar."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from monai.engines import Workflow
from monai.engines.utils import IterationEvents

__all__ = ["ComponentLoss", "LossComponentsHandler"]


class ComponentLoss(torch.nn.Module):
    """Wrap ``loss(pred, target)`` that returns a dict of components and return the scalar total.

    MONAI's ``SupervisedTrainer`` calls ``loss_function(pred, target).mean()``. A loss that returns
    ``{"total": ..., "dice": ..., ...}`` is wrapped here; the detached components of the last call are kept in
    :attr:`components` so :class:`LossComponentsHandler` can put them in the engine's output for logging.

    Args:
        loss: callable ``(pred, target) -> Tensor | Mapping[str, Tensor]``.
        total_key: key of the total in the returned mapping.
    """

    def __init__(self, loss: Callable[[Any, Any], Any], total_key: str = "total") -> None:
        super().__init__()
        self.loss = loss
        self.total_key = total_key
        self.components: dict[str, float] = {}

    def forward(self, pred: Any, target: Any) -> torch.Tensor:
        out = self.loss(pred, target)
        if isinstance(out, Mapping):
            if self.total_key not in out:
                raise KeyError(f"expected the loss to return key {self.total_key!r}, got keys {sorted(out)}")
            self.components = {k: float(v.detach()) for k, v in out.items() if isinstance(v, torch.Tensor)}
            return out[self.total_key]
        self.components = {self.total_key: float(out.detach().mean())}
        return out


class LossComponentsHandler:
    """After each loss computation, copy a :class:`ComponentLoss`'s components into ``engine.state.output``
    (as ``loss_<name>``) and keep their running epoch means in ``engine.state.metrics``."""

    def __init__(self, loss: ComponentLoss, prefix: str = "loss_") -> None:
        if not isinstance(loss, ComponentLoss):
            raise TypeError(f"expected a ComponentLoss, got {type(loss).__name__}")
        self.loss = loss
        self.prefix = prefix
        self._sums: dict[str, float] = {}
        self._count = 0

    def attach(self, engine: Workflow) -> None:
        from ignite.engine import Events

        engine.add_event_handler(IterationEvents.LOSS_COMPLETED, self._on_loss)
        engine.add_event_handler(Events.EPOCH_STARTED, self._reset)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self._publish)

    def _reset(self, engine: Workflow) -> None:
        self._sums, self._count = {}, 0

    def _on_loss(self, engine: Workflow) -> None:
        for k, v in self.loss.components.items():
            engine.state.output[f"{self.prefix}{k}"] = v
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._count += 1

    def _publish(self, engine: Workflow) -> None:
        if self._count:
            for k, v in self._sums.items():
                engine.state.metrics[f"{self.prefix}{k}"] = v / self._count
