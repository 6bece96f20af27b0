"""Dictionary versions of the absence augmentations (``Foo`` -> ``Food`` / ``FooD`` / ``FooDict``): one draw per
call, applied to every key.

They edit the image and the label map only. Place :class:`~monai_sadaan.transforms.LabelMapToStructuresd` after
them: the targets (masks, presence, attention) are derived once, from the edited label map, so a structure cut out
of the field of view or resected has an empty mask, presence 0 and no attention target, and every other structure
has the targets its remaining voxels give.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
from monai.config import KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, RandomizableTransform
from monai.utils import convert_to_tensor, ensure_tuple, ensure_tuple_rep

from ..targets.array import check_label_map, structure_label_values
from .array import RandFieldOfViewCrop, RandStructureEdgeCrop, RandSyntheticResection

__all__ = [
    "RandFieldOfViewCropd",
    "RandFieldOfViewCropD",
    "RandFieldOfViewCropDict",
    "RandStructureEdgeCropd",
    "RandStructureEdgeCropD",
    "RandStructureEdgeCropDict",
    "RandSyntheticResectiond",
    "RandSyntheticResectionD",
    "RandSyntheticResectionDict",
]


class RandFieldOfViewCropd(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`~monai_sadaan.transforms.RandFieldOfViewCrop`: one cut for every key.

    The same box is applied to every key in ``keys`` (the image and the label map ``[1, D, H, W]``, all on one grid).
    Derive the targets from the cut label map afterwards (:class:`~monai_sadaan.transforms.LabelMapToStructuresd`).

    Args:
        keys: keys of the channel-first volumes to cut (all on one grid).
        prob, fraction_range, axes, max_sides, mode: as :class:`~monai_sadaan.transforms.RandFieldOfViewCrop`.
        fill_value: fill value per key or for all keys (``"fill"`` mode; 0 for a label map is background).
        allow_missing_keys: skip missing keys.
    """

    backend = RandFieldOfViewCrop.backend

    def __init__(
        self,
        keys: KeysCollection,
        prob: float = 0.5,
        fraction_range: Sequence[float] = (0.1, 0.4),
        axes: Sequence[int] = (0,),
        max_sides: int = 1,
        mode: str = "fill",
        fill_value: Sequence[float] | float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.cropper = RandFieldOfViewCrop(
            prob=1.0, fraction_range=fraction_range, axes=axes, max_sides=max_sides, mode=mode
        )
        self.fill_value = ensure_tuple_rep(fill_value, len(self.keys))

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandFieldOfViewCropd:
        super().set_random_state(seed, state)
        self.cropper.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        if not self._do_transform:
            return d
        keyed = list(self.key_iterator(d, self.fill_value))
        if not keyed:
            return d
        grids = {k: tuple(int(s) for s in d[k].shape[1:]) for k, _ in keyed}
        if len(set(grids.values())) != 1:
            raise ValueError(f"expected every cut key on one spatial grid, got {grids}")
        self._randomize_cut(d, next(iter(grids.values())))
        for key, fill in keyed:
            d[key] = self.cropper(d[key], randomize=False, fill_value=fill)
        return d

    def _randomize_cut(self, data: Mapping[Hashable, Any], spatial_shape: tuple[int, ...]) -> None:
        """Draw the box of this call (every key gets it)."""
        self.cropper.randomize(spatial_shape)


class RandStructureEdgeCropd(RandFieldOfViewCropd):
    """Dictionary version of :class:`~monai_sadaan.transforms.RandStructureEdgeCrop`: the cut is aimed with the
    label map at ``label_key`` and applied to every key, as :class:`RandFieldOfViewCropd` applies its cut.

    Args:
        keys: keys of the channel-first volumes to cut (all on one grid).
        label_key: key of the label map ``[1, D, H, W]`` the cut is aimed with (it need not be in ``keys``, but
            then it is not cut).
        prob, kept_fraction_range, axes, candidate_labels, background, mode: as
            :class:`~monai_sadaan.transforms.RandStructureEdgeCrop`.
        fill_value, allow_missing_keys: as :class:`RandFieldOfViewCropd`.
    """

    def __init__(
        self,
        keys: KeysCollection,
        label_key: str = "label",
        prob: float = 0.5,
        kept_fraction_range: Sequence[float] = (0.0, 0.3),
        axes: Sequence[int] = (0,),
        candidate_labels: Sequence[int] | Mapping[str, int] | None = None,
        background: int = 0,
        mode: str = "crop",
        fill_value: Sequence[float] | float = 0.0,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(
            keys, prob=prob, axes=axes, mode=mode, fill_value=fill_value, allow_missing_keys=allow_missing_keys
        )
        self.label_key = label_key
        self.cropper = RandStructureEdgeCrop(
            prob=1.0,
            kept_fraction_range=kept_fraction_range,
            axes=axes,
            candidate_labels=candidate_labels,
            background=background,
            mode=mode,
        )

    def _randomize_cut(self, data: Mapping[Hashable, Any], spatial_shape: tuple[int, ...]) -> None:
        if self.label_key not in data:
            raise KeyError(
                f"expected the label map under {self.label_key!r} to aim the cut, got keys {sorted(map(str, data))}"
            )
        label = data[self.label_key]
        check_label_map(label)
        if tuple(int(x) for x in label.shape[1:]) != tuple(spatial_shape):
            raise ValueError(
                f"expected the label map {self.label_key!r} on the cut grid {tuple(spatial_shape)}, got shape "
                f"{tuple(int(x) for x in label.shape)}"
            )
        self.cropper.randomize(label)


class RandSyntheticResectiond(RandomizableTransform, MapTransform):
    """Dictionary version of :class:`~monai_sadaan.transforms.RandSyntheticResection`.

    With probability ``prob`` one present structure (a ``candidates`` entry, or any structure) is removed from
    the label map and the image keys. Derive the targets from the edited label map afterwards
    (:class:`~monai_sadaan.transforms.LabelMapToStructuresd`).

    Args:
        image_keys: keys of the channel-first images to fill (one grid with the label map).
        label_key: key of the label map ``[1, D, H, W]``.
        structure_labels: ``{name: label value}`` or a sequence of label values: the structures that may be
            removed, and the names ``candidates`` may use.
        candidates: names (with a mapping) or label values that may be removed; None means all structures.
        prob: probability of a resection.
        ring_width: width in voxels of the ring the fill values are drawn from.
        min_voxels: a structure needs at least this many voxels to be removed.
        allow_missing_keys: skip missing image keys.
    """

    backend = RandSyntheticResection.backend

    def __init__(
        self,
        image_keys: KeysCollection = "image",
        label_key: str = "label",
        structure_labels: Mapping[str, int] | Sequence[int] = (),
        candidates: Sequence[str | int] | None = None,
        prob: float = 0.5,
        ring_width: int = 2,
        min_voxels: int = 1,
        allow_missing_keys: bool = False,
    ) -> None:
        image_keys = ensure_tuple(image_keys)
        MapTransform.__init__(self, (*image_keys, label_key), allow_missing_keys)
        RandomizableTransform.__init__(self, prob)
        self.image_keys = image_keys
        self.label_key = label_key
        self.label_values = structure_label_values(structure_labels)
        names = [str(k) for k in structure_labels] if isinstance(structure_labels, Mapping) else []
        candidate_values = None
        if candidates is not None:
            candidate_values = []
            for c in ensure_tuple(candidates):
                if isinstance(c, str):
                    if c not in names:
                        raise ValueError(f"unknown candidate structure {c!r}; expected one of {names}")
                    candidate_values.append(int(structure_labels[c]))  # type: ignore[index]
                elif int(c) in self.label_values:
                    candidate_values.append(int(c))
                else:
                    raise ValueError(f"unknown candidate label value {c!r}; expected one of {self.label_values}")
        self.resector = RandSyntheticResection(
            prob=1.0,
            candidate_labels=candidate_values if candidate_values is not None else self.label_values,
            ring_width=ring_width,
            min_voxels=min_voxels,
        )

    @property
    def removed_label(self) -> int | None:
        """Label value removed by the last call, or None."""
        return self.resector.removed_label

    def set_random_state(
        self, seed: int | None = None, state: np.random.RandomState | None = None
    ) -> RandSyntheticResectiond:
        super().set_random_state(seed, state)
        self.resector.set_random_state(seed, state)
        return self

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        d = dict(data)
        self.randomize(None)
        self.resector.removed_label = None
        if not self._do_transform:
            return d
        if self.label_key not in d:
            raise KeyError(f"expected the label map key {self.label_key!r}, got keys {sorted(map(str, d))}")
        label = d[self.label_key]
        self.resector.randomize(convert_to_tensor(label, track_meta=False))
        if self.resector.removed_label is None:
            return d
        for key in self.image_keys:
            if key not in d:
                if self.allow_missing_keys:
                    continue
                raise KeyError(f"expected the image key {key!r}, got keys {sorted(map(str, d))}")
            d[key], _ = self.resector(d[key], label, randomize=False)
        d[self.label_key] = self.resector.remove_from_label(label)
        return d


RandFieldOfViewCropD = RandFieldOfViewCropDict = RandFieldOfViewCropd
RandStructureEdgeCropD = RandStructureEdgeCropDict = RandStructureEdgeCropd
RandSyntheticResectionD = RandSyntheticResectionDict = RandSyntheticResectiond
