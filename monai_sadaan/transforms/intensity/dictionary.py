"""Dictionary version of the CT window (``CTWindow`` -> ``CTWindowd`` / ``CTWindowD`` / ``CTWindowDict``)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform

from .array import CTWindow

__all__ = ["CTWindowd", "CTWindowD", "CTWindowDict"]


class CTWindowd(MapTransform):
    """Dictionary version of :class:`~monai_sadaan.transforms.CTWindow` (HU clip and scale)."""

    backend = CTWindow.backend

    def __init__(
        self,
        keys: KeysCollection,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        dtype: Any = np.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.window = CTWindow(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=dtype)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.window(d[key])
        return d


CTWindowD = CTWindowDict = CTWindowd
