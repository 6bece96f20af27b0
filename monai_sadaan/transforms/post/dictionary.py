"""Post-processing of SADAAn predictions inside MONAI pipelines (dictionary transforms), and the voxel volume the
predicted volumes are scored with.

The network returns a dict; MONAI's post-processing works on the keys of each (decollated) sample. These transforms
lift the voxel-wise prediction to the sample's ``pred`` key, keep the per-structure presence outputs beside it, and
turn probabilities into a label map in which structures judged absent are empty:

* :class:`InputGridLabelMapd` (the bundle's): the label map on the input's grid straight from the probabilities on
  the network's grid, slab by slab, with the record of :class:`~monai_sadaan.transforms.CTToNetworkGridd`; the
  probability maps on the input grid only when asked for.
* ``Invertd`` + :class:`PresenceAwareLabelMapd`: the same label map through five float32 probability channels at
  full resolution (the bundle's path before; kept for other pipelines and as the reference in the tests).
* :class:`VoxelVolumed`: the volume of one voxel of the network's grid in mL, to score predicted volumes.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_sadaan.data.geometry import voxel_volume_ml
from monai_sadaan.io.nifti import to_numpy
from monai_sadaan.networks.presence import gate_by_presence, is_called_present

from ..spatial.functional import find_network_grid_record, input_grid_labels, input_grid_probabilities

__all__ = [
    "SADAAnPredictionToItemsd",
    "SADAAnPredictionToItemsD",
    "SADAAnPredictionToItemsDict",
    "PresenceAwareLabelMapd",
    "PresenceAwareLabelMapD",
    "PresenceAwareLabelMapDict",
    "InputGridLabelMapd",
    "InputGridLabelMapD",
    "InputGridLabelMapDict",
    "VoxelVolumed",
    "VoxelVolumeD",
    "VoxelVolumeDict",
]


class SADAAnPredictionToItemsd(MapTransform):
    """Flatten a per-sample prediction dict into top-level keys.

    ``data[pred_key]`` (a dict from the network, one sample) becomes: ``data[pred_key]`` = its ``voxel_key`` entry
    ([S, D, H, W], carrying the image's metadata so ``Invertd`` works), and ``data[k]`` for each of ``item_keys``
    ([S] presence probabilities, confidence scores, presence calls), and ``data[presence_key]`` the three together as
    ``{"presence_probability", "confidence", "present"}``, the form the case writer takes.
    """

    def __init__(
        self,
        pred_key: str = "pred",
        image_key: str = "image",
        voxel_key: str = "segmentation_probs",
        item_keys: Sequence[str] = ("presence_probs", "confidence_scores", "presence_calls"),
        presence_key: str | None = "presence",
    ) -> None:
        super().__init__(keys=[pred_key])
        self.pred_key = pred_key
        self.image_key = image_key
        self.voxel_key = voxel_key
        self.item_keys = tuple(item_keys)
        self.presence_key = presence_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        pred = d.get(self.pred_key)
        if not isinstance(pred, Mapping):
            raise ValueError(f"expected a prediction dict under {self.pred_key!r}, got {type(pred).__name__}")
        missing = [k for k in (self.voxel_key, *self.item_keys) if k not in pred]
        if missing:
            raise KeyError(f"expected prediction keys {missing} in the network output, got {sorted(pred)}")
        voxels = pred[self.voxel_key]
        image = d.get(self.image_key)
        if isinstance(image, MetaTensor):
            voxels = MetaTensor(torch.as_tensor(voxels), meta=dict(image.meta))
        for k in self.item_keys:
            d[k] = torch.as_tensor(pred[k]).detach().cpu()
        d[self.pred_key] = voxels
        if self.presence_key is not None:
            d[self.presence_key] = {
                "presence_probability": d.get("presence_probs"),
                "confidence": d.get("confidence_scores"),
                "present": d.get("presence_calls"),
            }
        return d


class PresenceAwareLabelMapd(MapTransform):
    """Probabilities [S, ...] + presence calls [S] -> integer label map [1, ...].

    A voxel takes the label value of the most probable structure among those called present whose probability
    exceeds ``threshold``; everything else is background (0). A structure judged absent never appears.

    Args:
        keys: key of the probabilities.
        presence_key: key of the [S] presence calls (1 present, 0 absent).
        label_values: label value of each structure (default 1..S).
        output_key: where the label map goes (default: replaces the probabilities).
        mask_key: optional key for the binary per-structure masks [S, ...] (presence applied).
    """

    def __init__(
        self,
        keys: str = "pred",
        presence_key: str = "presence_calls",
        label_values: Sequence[int] | None = None,
        threshold: float = 0.5,
        output_key: str | None = "label_map",
        mask_key: str | None = "masks",
    ) -> None:
        super().__init__(keys=keys)
        self.presence_key = presence_key
        self.label_values = None if label_values is None else [int(v) for v in label_values]
        self.threshold = threshold
        self.output_key = output_key
        self.mask_key = mask_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            probs = d[key]
            if not isinstance(probs, torch.Tensor) or probs.ndim != 4:
                shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
                raise ValueError(f"expected per-structure probabilities of shape (S, D, H, W), got {shape}")
            present = is_called_present(d[self.presence_key], probs.device).reshape(-1)
            s = probs.shape[0]
            if present.numel() != s:
                raise ValueError(f"expected {s} presence calls, got {present.numel()}")
            values = self.label_values or list(range(1, s + 1))
            if len(values) != s:
                raise ValueError(f"expected {s} label values, got {len(values)}")
            p = gate_by_presence(torch.as_tensor(probs).float(), present)
            best, idx = p.max(dim=0, keepdim=True)
            lut = torch.tensor(values, dtype=torch.int16, device=p.device)
            labels = torch.where(best > self.threshold, lut[idx], torch.zeros_like(idx, dtype=torch.int16))
            if isinstance(probs, MetaTensor):
                labels = MetaTensor(labels, meta=dict(probs.meta))
            d[self.output_key or key] = labels
            if self.mask_key is not None:
                masks = torch.stack([(labels[0] == v) for v in values]).to(torch.uint8)
                d[self.mask_key] = MetaTensor(masks, meta=dict(probs.meta)) if isinstance(probs, MetaTensor) else masks
        return d


class InputGridLabelMapd(MapTransform):
    """Probabilities on the network's grid [S, *spatial_size] + presence calls [S] -> label map [1, X, Y, Z] on the
    input's grid, equal to ``Invertd`` (trilinear) followed by :class:`PresenceAwareLabelMapd`.

    The probabilities are resized back only inside the box of each present structure that can pass ``threshold``,
    slab by slab (:func:`~monai_sadaan.transforms.input_grid_labels`); nothing of full resolution but
    the label map itself is held. The label map is a MetaTensor with the input's own affine (as it was read, not
    recomputed) and the image's other metadata.

    Args:
        keys: key of the probabilities on the network's grid (a MetaTensor or tensor [S, D, H, W]).
        image_key: key of the preprocessed image, which carries the record of
            :class:`~monai_sadaan.transforms.CTToNetworkGridd`.
        presence_key: key of the [S] presence calls (1 present, 0 absent).
        label_values: label value of each structure (default 1..S).
        threshold: probability the best present structure must exceed.
        output_key: where the label map goes (default: replaces the probabilities).
        probability_key: when set, also put the probability maps on the input grid ([S, X, Y, Z] float32, every
            structure, presence not applied: what ``Invertd`` gives) under this key (it may be ``keys`` itself).
    """

    def __init__(
        self,
        keys: str = "pred",
        image_key: str = "image",
        presence_key: str = "presence_calls",
        label_values: Sequence[int] | None = None,
        threshold: float = 0.5,
        output_key: str | None = "label_map",
        probability_key: str | None = None,
    ) -> None:
        super().__init__(keys=keys)
        self.image_key = image_key
        self.presence_key = presence_key
        self.label_values = None if label_values is None else [int(v) for v in label_values]
        self.threshold = float(threshold)
        self.output_key = output_key
        self.probability_key = probability_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d.get(self.image_key)
        record = find_network_grid_record(image)
        meta = {k: v for k, v in image.meta.items() if k != "affine"} if isinstance(image, MetaTensor) else {}
        for key in self.key_iterator(d):
            probs = d[key]
            if not isinstance(probs, torch.Tensor) or probs.ndim != 4:
                shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
                raise ValueError(f"expected per-structure probabilities of shape (S, D, H, W), got {shape}")
            s = probs.shape[0]
            values = self.label_values or list(range(1, s + 1))
            if len(values) != s:
                raise ValueError(f"expected {s} label values, got {len(values)}")
            present = torch.as_tensor(d[self.presence_key]).reshape(-1)
            if present.numel() != s:
                raise ValueError(f"expected {s} presence calls, got {present.numel()}")
            labels = input_grid_labels(probs, record, present, values, self.threshold)
            d[self.output_key or key] = _on_input_grid(torch.from_numpy(labels)[None], meta, record.input_affine)
            if self.probability_key is not None:
                full = input_grid_probabilities(probs, record)
                d[self.probability_key] = _on_input_grid(torch.from_numpy(full), meta, record.input_affine)
        return d


def _on_input_grid(x: torch.Tensor, meta: Mapping[Hashable, Any], affine: Any) -> MetaTensor:
    """``x`` as a MetaTensor with the image's metadata and the input's own affine (exactly as it was read)."""
    out = MetaTensor(x, meta=dict(meta))
    out.affine = torch.as_tensor(affine, dtype=torch.float64)
    return out


class VoxelVolumed(MapTransform):
    """Store the volume of one voxel of ``keys`` (a MetaTensor), in mL, under ``output_key``.

    Place it after resizing to the model's grid to score predicted volumes on that grid:
    ``|det(affine[:3, :3])|`` mm³ / 1000.
    """

    def __init__(self, keys: str = "image", output_key: str = "voxel_volume_ml") -> None:
        super().__init__(keys)
        self.output_key = output_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if not isinstance(img, MetaTensor):
                raise ValueError(f"expected a MetaTensor with an affine under {key!r}, got {type(img).__name__}")
            d[self.output_key] = voxel_volume_ml(to_numpy(img.affine))
        return d


SADAAnPredictionToItemsD = SADAAnPredictionToItemsDict = SADAAnPredictionToItemsd
PresenceAwareLabelMapD = PresenceAwareLabelMapDict = PresenceAwareLabelMapd
InputGridLabelMapD = InputGridLabelMapDict = InputGridLabelMapd
VoxelVolumeD = VoxelVolumeDict = VoxelVolumed
