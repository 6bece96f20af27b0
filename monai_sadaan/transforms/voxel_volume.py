"""Voxel volume of an image's current grid, in millilitres, from its affine."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.data import MetaTensor
from monai.transforms import MapTransform

from monai_sadaan.io.geometry import to_numpy, voxel_volume_ml

__all__ = ["VoxelVolumed"]


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
