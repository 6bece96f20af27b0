"""Per-structure training targets from an integer label map ``[1, D, H, W]``: masks ``[S, D, H, W]``, presence
``[S]`` and attention targets ``[S, D, H, W]``.

Derived once per sample, after every transform that edits the label map (absence augmentations included), so the
three always describe the label map the network is trained on. :func:`check_label_map` and
:func:`structure_label_values` are the checks of a label map and of its structure table that the absence
augmentations apply too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.config import NdarrayOrTensor
from monai.networks.layers import GaussianFilter
from monai.networks.layers.convutils import gaussian_1d
from monai.transforms import Transform
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor
from scipy.ndimage import correlate1d, find_objects

from ..spatial.functional import shape_of

__all__ = ["LabelMapToStructures", "check_label_map", "presence_from_masks", "structure_label_values"]


_TRUNCATE = 4.0  # Gaussian kernel radius of the attention halo, in standard deviations


def check_label_map(label: NdarrayOrTensor) -> None:
    """Raise ``ValueError`` unless ``label`` has shape ``(1, D, H, W)``."""
    if not hasattr(label, "shape") or len(label.shape) != 4 or label.shape[0] != 1:
        got = shape_of(label) if hasattr(label, "shape") else type(label).__name__
        raise ValueError(f"expected a label map of shape (1, D, H, W), got {got}")


def structure_label_values(structure_labels: Mapping[str, int] | Sequence[int]) -> list[int]:
    """The label values of ``structure_labels`` (a ``{name: value}`` mapping or a sequence), in channel order.

    Raises:
        ValueError: empty, non-integer, background (0) or repeated values.
    """
    values = list(structure_labels.values()) if isinstance(structure_labels, Mapping) else list(structure_labels)
    if isinstance(structure_labels, (str, bytes)) or not values:
        raise ValueError(f"expected a non-empty mapping or sequence of label values, got {structure_labels!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not float(v).is_integer():
            raise ValueError(f"expected integer label values, got {v!r} in {structure_labels!r}")
        out.append(int(v))
    if 0 in out:
        raise ValueError(f"label value 0 is background and cannot be a structure, got {structure_labels!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"expected distinct label values, got {out}")
    return out


def presence_from_masks(masks: torch.Tensor, min_voxels: int = 1) -> torch.Tensor:
    """Presence ``[S]`` (float {0, 1}) of masks ``[S, D, H, W]``: 1 where a mask has at least ``min_voxels``."""
    counts = (masks > 0.5).flatten(1).sum(1)
    return (counts >= min_voxels).to(torch.float32)


class LabelMapToStructures(Transform):
    """Integer label map ``[1, D, H, W]`` to per-structure masks, presence and attention targets.

    - masks ``[S, D, H, W]``, float32 in {0, 1}: ``label == value`` for each structure in order.
    - presence ``[S]``, float32 in {0, 1}: 1 where the structure has at least ``min_voxels`` voxels. A structure
      under the minimum counts absent and its mask is zeroed, so masks and presence always agree.
    - attention targets ``[S, D, H, W]`` in [0, 1]: the mask with a soft halo,
      ``max(mask, G_sigma * mask / max(G_sigma * mask))`` (Gaussian blur normalised to peak 1): 1 on the
      structure, decaying over about ``2 * attention_sigma`` voxels around it, 0 for absent structures.
      ``attention_sigma=0`` gives the mask itself.

    Args:
        structure_labels: ``{name: label value}`` (channel order = insertion order) or a sequence of label values.
        min_voxels: smallest voxel count for a structure to count as present (>= 1).
        attention_sigma: standard deviation in voxels of the attention halo (>= 0).

    Returns:
        ``(masks, presence, attention)``. Masks and attention are the label map's type (a ``MetaTensor`` keeps
        the label's metadata, so they can be inverted and saved); presence is a tensor or numpy array.

    Raises:
        ValueError: the label map is not ``(1, D, H, W)``, or bad arguments.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        structure_labels: Mapping[str, int] | Sequence[int],
        min_voxels: int = 1,
        attention_sigma: float = 2.0,
    ) -> None:
        self.label_values = structure_label_values(structure_labels)
        self.structure_names = (
            [str(k) for k in structure_labels] if isinstance(structure_labels, Mapping) else None
        )
        if int(min_voxels) < 1:
            raise ValueError(f"expected min_voxels >= 1, got {min_voxels}")
        if float(attention_sigma) < 0:
            raise ValueError(f"expected attention_sigma >= 0, got {attention_sigma}")
        self.min_voxels = int(min_voxels)
        self.attention_sigma = float(attention_sigma)

    @property
    def kernel(self) -> np.ndarray:
        """The 1-D Gaussian of the halo: MONAI's ``gaussian_1d`` (erf approximation, truncated at 4 sigma)."""
        return gaussian_1d(torch.tensor(self.attention_sigma), truncated=_TRUNCATE, approx="erf").numpy()

    def _targets_numpy(self, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CPU path on an integer ``[D, H, W]`` array: each structure is handled inside its bounding box (one
        ``scipy.ndimage.find_objects`` pass for all of them) grown by the kernel radius. Outside that box the
        truncated Gaussian of the mask is exactly 0, so this equals blurring whole volumes at a fraction of the
        cost."""
        num = len(self.label_values)
        masks = np.zeros((num, *lab.shape), np.float32)
        presence = np.zeros(num, np.float32)
        attention = np.zeros_like(masks)
        objects = find_objects(np.clip(lab, 0, None), max_label=max(self.label_values))
        kernel = self.kernel if self.attention_sigma > 0 else None
        radius = 0 if kernel is None else (kernel.size - 1) // 2
        for s, value in enumerate(self.label_values):
            box = objects[value - 1] if value > 0 else None
            if box is None:
                continue
            inside = lab[box] == value
            if int(np.count_nonzero(inside)) < self.min_voxels:
                continue
            presence[s] = 1.0
            masks[s][box] = inside
            grown = tuple(slice(max(b.start - radius, 0), min(b.stop + radius, n)) for b, n in zip(box, lab.shape))
            crop = masks[s][grown]
            if kernel is None:
                attention[s][grown] = crop
                continue
            blurred = crop
            for axis in range(3):
                blurred = correlate1d(blurred, kernel, axis=axis, mode="constant", cval=0.0)
            attention[s][grown] = np.maximum(crop, np.clip(blurred / max(float(blurred.max()), 1e-12), 0.0, 1.0))
        return masks, presence, attention

    def _targets_torch(self, lab: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Device path on an integer ``[D, H, W]`` tensor (whole volumes, MONAI's ``GaussianFilter``); gives the
        same values as the CPU path."""
        values = torch.as_tensor(self.label_values, device=lab.device).view(-1, 1, 1, 1)
        masks = (lab[None] == values).to(torch.float32)
        presence = presence_from_masks(masks, self.min_voxels)
        masks = masks * presence.view(-1, 1, 1, 1)
        if self.attention_sigma == 0:
            return masks, presence, masks.clone()
        gaussian = GaussianFilter(3, self.attention_sigma, truncated=_TRUNCATE).to(lab.device)
        blurred = gaussian(masks[None])[0]
        peak = blurred.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        attention = torch.maximum(masks, (blurred / peak).clamp(0.0, 1.0)) * presence.view(-1, 1, 1, 1)
        return masks, presence, attention

    def __call__(self, label: NdarrayOrTensor) -> tuple[NdarrayOrTensor, NdarrayOrTensor, NdarrayOrTensor]:
        """
        Args:
            label: integer label map ``[1, D, H, W]`` (float values are rounded to the nearest integer).
        """
        check_label_map(label)
        lab = convert_to_tensor(label, track_meta=False)[0]
        if torch.is_floating_point(lab):
            lab = lab.round()
        if lab.device.type == "cpu":
            masks_np, presence_np, attention_np = self._targets_numpy(lab.numpy().astype(np.int64, copy=False))
            masks, presence, attention = (torch.from_numpy(x) for x in (masks_np, presence_np, attention_np))
        else:
            masks, presence, attention = self._targets_torch(lab.long())
        masks_out = convert_to_dst_type(masks, label, dtype=torch.float32)[0]
        attention_out = convert_to_dst_type(attention, label, dtype=torch.float32)[0]
        if isinstance(label, np.ndarray):
            presence_out: NdarrayOrTensor = presence.numpy()
        else:
            presence_out = presence.to(device=label.device)
        return masks_out, presence_out, attention_out
