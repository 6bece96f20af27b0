"""``prepare_batch`` for MONAI engines whose networks take extra inputs and whose losses take a dict of targets.

MONAI's default ``prepare_batch`` returns ``(image, label)``. The models of this project need more:
SADAAn is trained against several targets (masks, presence, attention), the GRU batch model needs the sequence
lengths as a forward argument, IAM4VP needs the time value. One class serves all of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from monai.engines.utils import PrepareBatch
from monai.utils import CommonKeys

__all__ = ["DictTargetPrepareBatch"]


def _as_mapping(keys: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    if keys is None:
        return {}
    if isinstance(keys, str):
        return {keys: keys}
    if isinstance(keys, Mapping):
        return dict(keys)
    return {k: k for k in keys}


class DictTargetPrepareBatch(PrepareBatch):
    """Move a dict batch to the device and split it into network input, targets dict and forward kwargs.

    Args:
        image_key: batch key of the network input.
        target_keys: names the loss sees, as a list (same names in the batch) or a mapping
            ``{target_name: batch_key}``. The targets reach the loss as a dict.
        forward_kwargs_keys: extra keyword arguments of ``network.forward``, as a list or a mapping
            ``{argument_name: batch_key}`` (for example ``{"lengths": "lengths"}``).

    Returns ``(image, targets)`` or, with forward kwargs, ``(image, targets, (), kwargs)``: the two forms
    MONAI's ``SupervisedTrainer`` and ``SupervisedEvaluator`` accept.

    Raises:
        KeyError: a key is missing from the batch; the message lists the keys that came.
    """

    def __init__(
        self,
        image_key: str = CommonKeys.IMAGE,
        target_keys: Sequence[str] | Mapping[str, str] = (CommonKeys.LABEL,),
        forward_kwargs_keys: Sequence[str] | Mapping[str, str] | None = None,
    ) -> None:
        self.image_key = image_key
        self.target_keys = _as_mapping(target_keys)
        self.forward_kwargs_keys = _as_mapping(forward_kwargs_keys)

    @staticmethod
    def _fetch(batchdata: Mapping[str, Any], key: str, device: Any, non_blocking: bool, **kwargs: Any) -> Any:
        if key not in batchdata:
            raise KeyError(f"expected key {key!r} in the batch, got keys {sorted(batchdata)}")
        value = batchdata[key]
        if isinstance(value, torch.Tensor):
            return value.to(device=device, non_blocking=non_blocking, **kwargs)
        return value

    def __call__(
        self,
        batchdata: dict[str, Any],
        device: str | torch.device | None = None,
        non_blocking: bool = False,
        **kwargs: Any,
    ) -> tuple[Any, dict[str, Any]] | tuple[Any, dict[str, Any], tuple, dict[str, Any]]:
        if not isinstance(batchdata, Mapping):
            raise TypeError(f"expected a dict batch, got {type(batchdata).__name__}")
        image = self._fetch(batchdata, self.image_key, device, non_blocking, **kwargs)
        targets = {n: self._fetch(batchdata, k, device, non_blocking, **kwargs) for n, k in self.target_keys.items()}
        if not self.forward_kwargs_keys:
            return image, targets
        fwd = {n: self._fetch(batchdata, k, device, non_blocking, **kwargs) for n, k in self.forward_kwargs_keys.items()}
        return image, targets, (), fwd
