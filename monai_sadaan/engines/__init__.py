from __future__ import annotations

from .loss_adapter import ComponentLoss, LossComponentsHandler
from .output_transforms import PickFromDictOutput
from .parameter_groups import presence_head_parameter_groups
from .prepare_batch import DictTargetPrepareBatch

__all__ = ["ComponentLoss", "DictTargetPrepareBatch", "LossComponentsHandler", "PickFromDictOutput", "presence_head_parameter_groups"]
