"""Dictionary versions of the spatial transforms (``Foo`` -> ``Food`` / ``FooD`` / ``FooDict``), invertible with
MONAI's ``Invertd``."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import InvertibleTransform, MapTransform
from monai.utils import ensure_tuple_rep

from .array import CTToNetworkGrid, FitToSpatialSize

__all__ = [
    "FitToSpatialSized",
    "FitToSpatialSizeD",
    "FitToSpatialSizeDict",
    "CTToNetworkGridd",
    "CTToNetworkGridD",
    "CTToNetworkGridDict",
]


class _InvertedByFitter(MapTransform, InvertibleTransform):
    """Dictionary spatial transform whose array transform ``self.fitter`` records and undoes the change per key."""

    fitter: InvertibleTransform

    def inverse(self, data: Mapping[Hashable, torch.Tensor]) -> dict[Hashable, torch.Tensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.fitter.inverse(d[key])
        return d


class FitToSpatialSized(_InvertedByFitter):
    """Dictionary version of :class:`~monai_sadaan.transforms.FitToSpatialSize`, invertible with ``Invertd``.

    Args:
        keys: keys of the volumes to fit.
        spatial_size: output spatial size ``(D, H, W)``.
        mode: ``"resize"`` or ``"pad"``.
        interp_mode: interpolation per key (a sequence) or for all keys; ``"nearest-exact"`` for label maps, e.g.
            ``interp_mode=("trilinear", "nearest-exact")`` for ``keys=("image", "label")``, so that the label stays
            on the image's voxel centres (see :class:`~monai_sadaan.transforms.FitToSpatialSize`).
        align_corners: passed to interpolation for linear modes.
        pad_mode: padding mode for ``mode="pad"``.
        pad_value: constant padding value per key or for all keys.
        allow_missing_keys: skip missing keys.
    """

    backend = FitToSpatialSize.backend

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int],
        mode: str = "resize",
        interp_mode: Sequence[str] | str = "trilinear",
        align_corners: bool | None = None,
        pad_mode: str = "constant",
        pad_value: Sequence[float] | float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.interp_mode = ensure_tuple_rep(interp_mode, len(self.keys))
        self.pad_value = ensure_tuple_rep(pad_value, len(self.keys))
        self.fitter = FitToSpatialSize(spatial_size, mode=mode, align_corners=align_corners, pad_mode=pad_mode)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key, interp_mode, pad_value in self.key_iterator(d, self.interp_mode, self.pad_value):
            d[key] = self.fitter(d[key], interp_mode=interp_mode, pad_value=pad_value)
        return d


class CTToNetworkGridd(_InvertedByFitter):
    """Dictionary version of :class:`~monai_sadaan.transforms.CTToNetworkGrid`, invertible with MONAI's ``Invertd``.

    Args:
        keys: keys of the CT volumes.
        spatial_size, axcodes, labels, a_min, a_max, b_min, b_max, clip: see
            :class:`~monai_sadaan.transforms.CTToNetworkGrid`.
        allow_missing_keys: skip missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        spatial_size: Sequence[int],
        axcodes: str = "RAS",
        labels: Any = None,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.fitter = CTToNetworkGrid(spatial_size, axcodes, labels, a_min, a_max, b_min, b_max, clip)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.fitter(d[key])
        return d


FitToSpatialSizeD = FitToSpatialSizeDict = FitToSpatialSized
CTToNetworkGridD = CTToNetworkGridDict = CTToNetworkGridd
