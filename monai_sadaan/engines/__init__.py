from __future__ import annotations

from .loss_adapter import ComponentLoss, LossComponentsHandler
from .prepare_batch import DictTargetPrepareBatch

__all__ = ["ComponentLoss", "DictTargetPrepareBatch", "LossComponentsHandler"]
