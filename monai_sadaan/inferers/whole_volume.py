"""Whole-volume inference for SADAAn.

The learned position prior belongs to the whole field of view, so SADAAn must see the whole volume at its
``spatial_size``. A sliding window would show each patch the prior of another place. This inferer resizes the
whole input to ``spatial_size``, runs the network once, and maps the voxel-wise outputs back to the input grid.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from monai.inferers import Inferer

from monai_sadaan.networks.presence import call_presence, presence_masks

__all__ = ["WholeVolumeInferer"]

_VOXEL_PROB_KEYS = ("attention_maps", "position_priors", "segmentation_probs")
_VOXEL_LOGIT_KEYS = ("feature_responses", "segmentation_logits")


class WholeVolumeInferer(Inferer):
    """Run a SADAAn network on whole volumes of any size.

    Args:
        spatial_size: the network's input size (D, H, W). ``None``: read ``network.spatial_size``.
        mode: interpolation for the image and for voxel-wise outputs (``"trilinear"`` or ``"nearest"``).
        presence_threshold: passed to the network; structures below it come out with empty masks.
        mask_threshold: voxel probability above which a present structure's mask is on, after resizing back.

    ``__call__(inputs, network)``: ``inputs`` [B, C, *spatial] of any spatial size. Returns the network's dict with
    voxel-wise entries ([B, S, *spatial]) at the input's spatial size; ``segmentation_masks`` is recomputed from
    the resized probabilities and the presence calls, so a structure judged absent stays empty.
    """

    def __init__(
        self,
        spatial_size: Sequence[int] | None = None,
        mode: str = "trilinear",
        presence_threshold: float = 0.5,
        mask_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.spatial_size = tuple(int(s) for s in spatial_size) if spatial_size is not None else None
        self.mode = mode
        self.presence_threshold = presence_threshold
        self.mask_threshold = mask_threshold

    def _resize(self, x: torch.Tensor, size: Sequence[int], mode: str) -> torch.Tensor:
        if tuple(x.shape[2:]) == tuple(size):
            return x
        kwargs = {"align_corners": False} if mode in ("linear", "bilinear", "trilinear") else {}
        return F.interpolate(x.float(), size=tuple(size), mode=mode, **kwargs)

    def __call__(self, inputs: torch.Tensor, network: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not isinstance(inputs, torch.Tensor) or inputs.ndim != 5:
            shape = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs).__name__
            raise ValueError(f"expected a batch of 3D volumes of shape (B, C, D, H, W), got {shape}")
        target = self.spatial_size or getattr(network, "spatial_size", None)
        if target is None:
            raise ValueError("WholeVolumeInferer needs spatial_size, or a network with a spatial_size attribute")
        original = tuple(inputs.shape[2:])
        x = self._resize(torch.as_tensor(inputs), target, self.mode)
        try:
            out = network(x, *args, presence_threshold=self.presence_threshold, **kwargs)
        except TypeError:  # exported wrappers (TorchScript) take the image only
            out = network(x, *args, **kwargs)
        if original == tuple(target):
            return out
        if isinstance(out, Mapping):
            return self._restore_dict(dict(out), original)
        if isinstance(out, (tuple, list)):
            return type(out)(self._resize(o, original, self.mode) if o.ndim == 5 else o for o in out)
        return self._resize(out, original, self.mode)

    def _restore_dict(self, out: dict[str, Any], size: Sequence[int]) -> dict[str, Any]:
        for k in _VOXEL_PROB_KEYS + _VOXEL_LOGIT_KEYS:
            if k in out and isinstance(out[k], torch.Tensor) and out[k].ndim == 5:
                out[k] = self._resize(out[k], size, self.mode)
        if "segmentation_probs" in out:
            calls = call_presence(out["presence_probs"], self.presence_threshold, out.get("presence_calls"))
            out["segmentation_masks"] = presence_masks(out["segmentation_probs"], calls, self.mask_threshold)
        return out
