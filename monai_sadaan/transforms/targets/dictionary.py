"""Dictionary version of the target derivation (``LabelMapToStructures`` -> ``LabelMapToStructuresd`` /
``LabelMapToStructuresD`` / ``LabelMapToStructuresDict``) and the keys of the targets.

Target keys follow the loss and the network: ``segmentation_targets`` ``[S, D, H, W]``, ``presence_targets``
``[S]`` and ``attention_targets`` ``[S, D, H, W]`` per sample (the batch dimension comes from collation).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

from monai.config import NdarrayOrTensor
from monai.transforms import MapTransform

from .array import LabelMapToStructures

__all__ = [
    "SEGMENTATION_TARGETS",
    "PRESENCE_TARGETS",
    "ATTENTION_TARGETS",
    "LabelMapToStructuresd",
    "LabelMapToStructuresD",
    "LabelMapToStructuresDict",
]

SEGMENTATION_TARGETS = "segmentation_targets"
PRESENCE_TARGETS = "presence_targets"
ATTENTION_TARGETS = "attention_targets"


class LabelMapToStructuresd(MapTransform):
    """Dictionary version of :class:`~monai_sadaan.transforms.LabelMapToStructures`.

    Reads the label map ``d[label_key]`` ``[1, D, H, W]`` and writes ``d[segmentation_key]`` ``[S, D, H, W]``,
    ``d[presence_key]`` ``[S]`` and ``d[attention_key]`` ``[S, D, H, W]``; the label map is kept. Place it after
    every transform that edits the label map (the absence augmentations, a resize to the network's grid), so the
    targets are derived once, from the label map the network is trained on.

    Args:
        label_key: key of the label map.
        structure_labels: ``{name: label value}`` or a sequence of label values, in channel order.
        min_voxels: smallest voxel count of a present structure.
        attention_sigma: standard deviation in voxels of the attention halo (0: the mask itself).
        segmentation_key: output key of the masks.
        presence_key: output key of the presence vector.
        attention_key: output key of the attention targets, or None to skip them.
        allow_missing_keys: do nothing when the label map is missing.
    """

    backend = LabelMapToStructures.backend

    def __init__(
        self,
        label_key: str = "label",
        structure_labels: Mapping[str, int] | Sequence[int] = (),
        min_voxels: int = 1,
        attention_sigma: float = 2.0,
        segmentation_key: str = SEGMENTATION_TARGETS,
        presence_key: str = PRESENCE_TARGETS,
        attention_key: str | None = ATTENTION_TARGETS,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(label_key, allow_missing_keys)
        self.converter = LabelMapToStructures(structure_labels, min_voxels=min_voxels, attention_sigma=attention_sigma)
        self.segmentation_key = segmentation_key
        self.presence_key = presence_key
        self.attention_key = attention_key

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            masks, presence, attention = self.converter(d[key])
            d[self.segmentation_key] = masks
            d[self.presence_key] = presence
            if self.attention_key is not None:
                d[self.attention_key] = attention
        return d


LabelMapToStructuresD = LabelMapToStructuresDict = LabelMapToStructuresd
