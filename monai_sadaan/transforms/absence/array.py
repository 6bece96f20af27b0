"""Absence augmentations: transforms that make structures absent in the image and the label map, as a shorter scan
(field-of-view cuts) or a resection would.

They edit only the image and the label map; the training targets are derived afterwards, once, from the edited
label map (:class:`~monai_sadaan.transforms.LabelMapToStructures`), so they always describe what the network sees.
All take channel-first volumes ``[C, D, H, W]`` as numpy arrays, torch tensors or MONAI ``MetaTensor`` and return
the same kind. None is invertible: they are training augmentations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import RandomizableTransform, SpatialCrop
from monai.utils import TransformBackends, convert_to_dst_type, convert_to_tensor

from ..spatial.functional import check_volume, shape_of
from ..targets.array import check_label_map, structure_label_values

__all__ = ["RandFieldOfViewCrop", "RandStructureEdgeCrop", "RandSyntheticResection"]


def _fill_outside(img: torch.Tensor, starts: Sequence[int], ends: Sequence[int], value: float) -> torch.Tensor:
    out = img.clone()
    for axis, (lo, hi) in enumerate(zip(starts, ends)):
        index_lo = [slice(None)] * out.ndim
        index_lo[axis + 1] = slice(0, lo)
        out[tuple(index_lo)] = value
        index_hi = [slice(None)] * out.ndim
        index_hi[axis + 1] = slice(hi, None)
        out[tuple(index_hi)] = value
    return out


class RandFieldOfViewCrop(RandomizableTransform):
    """Cut a random slab off one or more sides of a volume, as a shorter scan would, so that structures near the
    edge of the field of view become partly or wholly absent.

    For each call, with probability ``prob``, between 1 and ``max_sides`` sides are drawn from the two ends of each
    axis in ``axes``; each loses a slab of ``round(f * size)`` voxels, ``f ~ U(fraction_range)``. At least one
    voxel per axis is kept.

    ``mode="fill"`` (default) keeps the array's shape and sets the cut slabs to ``fill_value`` (0 after
    windowing and for label maps; -1000 for HU). The geometry stays aligned with the position prior and
    arrays of a batch keep one shape, so it can run anywhere in the pipeline. ``mode="crop"`` returns the smaller
    array (affine updated on ``MetaTensor``), as a genuinely shorter scan; place it before
    :class:`~monai_sadaan.transforms.FitToSpatialSize`, which brings the volume back to ``spatial_size``. Neither is
    invertible: this is a training augmentation. Derive the targets from the cut label map afterwards
    (:class:`~monai_sadaan.transforms.LabelMapToStructures`).

    Args:
        prob: probability of cutting.
        fraction_range: ``(low, high)`` fraction of the axis length removed per chosen side, ``0 <= low <= high < 1``.
        axes: spatial axes (0 = D, 1 = H, 2 = W) whose ends may be cut.
        max_sides: largest number of sides cut in one call (1 .. 2 * len(axes)).
        mode: ``"fill"`` or ``"crop"``.
        fill_value: value of the cut region in ``"fill"`` mode.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.5,
        fraction_range: Sequence[float] = (0.1, 0.4),
        axes: Sequence[int] = (0,),
        max_sides: int = 1,
        mode: str = "fill",
        fill_value: float = 0.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        lo, hi = (float(f) for f in fraction_range)
        if not 0.0 <= lo <= hi < 1.0:
            raise ValueError(f"expected fraction_range (low, high) with 0 <= low <= high < 1, got {fraction_range}")
        axes = tuple(int(a) for a in axes)
        if not axes or any(a not in (0, 1, 2) for a in axes) or len(set(axes)) != len(axes):
            raise ValueError(f"expected distinct spatial axes from (0, 1, 2), got {axes}")
        if not 1 <= int(max_sides) <= 2 * len(axes):
            raise ValueError(f"expected max_sides in [1, {2 * len(axes)}] for axes {axes}, got {max_sides}")
        if mode not in ("fill", "crop"):
            raise ValueError(f"expected mode 'fill' or 'crop', got {mode!r}")
        self.fraction_range = (lo, hi)
        self.axes = axes
        self.max_sides = int(max_sides)
        self.mode = mode
        self.fill_value = float(fill_value)
        self.box: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def randomize(self, spatial_shape: Sequence[int]) -> None:  # type: ignore[override]
        """Draw whether to cut and, if so, the kept box ``self.box = (starts, ends)`` for ``spatial_shape``."""
        super().randomize(None)
        shape = tuple(int(s) for s in spatial_shape)
        starts, ends = [0, 0, 0], list(shape)
        if self._do_transform:
            sides = [(a, end) for a in self.axes for end in (0, 1)]
            n = int(self.R.randint(1, self.max_sides + 1))
            for i in self.R.choice(len(sides), size=n, replace=False):
                axis, end = sides[int(i)]
                cut = int(round(self.R.uniform(*self.fraction_range) * shape[axis]))
                if end == 0:
                    starts[axis] = min(cut, ends[axis] - 1)
                else:
                    ends[axis] = max(shape[axis] - cut, starts[axis] + 1)
        self.box = (tuple(starts), tuple(ends))

    def __call__(  # type: ignore[override]
        self, img: NdarrayOrTensor, randomize: bool = True, fill_value: float | None = None
    ) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first volume ``[C, D, H, W]``.
            randomize: draw a new cut; ``False`` reuses the last one (all keys of a dict get the same cut).
            fill_value: overrides ``self.fill_value`` for this call.
        """
        check_volume(img, "volume")
        if randomize:
            self.randomize(img.shape[1:])
        if self.box is None:
            raise RuntimeError("randomize() must be called before applying RandFieldOfViewCrop with randomize=False")
        if not self._do_transform:
            return img
        starts, ends = self.box
        spatial = shape_of(img)[1:]
        if any(e > s for e, s in zip(ends, spatial)):
            raise ValueError(f"expected a volume that holds the drawn box {self.box}, got shape {shape_of(img)}")
        if tuple(ends) == spatial and not any(starts):
            return img
        if self.mode == "crop":
            cropper = SpatialCrop(roi_start=starts, roi_end=ends)
            with cropper.trace_transform(False):
                cropped = cropper(img)
            return cropped if isinstance(img, torch.Tensor) else convert_to_dst_type(cropped, img)[0]
        value = self.fill_value if fill_value is None else float(fill_value)
        img_t = convert_to_tensor(img, track_meta=get_track_meta())
        out = _fill_outside(img_t, starts, ends, value)
        return convert_to_dst_type(out, img)[0]


class RandStructureEdgeCrop(RandFieldOfViewCrop):
    """Move one edge of the field of view to a structure's boundary, so that at most a sliver of it stays in view.

    Random field-of-view cuts (:class:`RandFieldOfViewCrop`) seldom land where presence is hard to call: a
    structure cut to a few slices at the edge, or one that has just left the volume. This cut aims there. With
    probability ``prob`` it draws a structure of the label map and an axis from ``axes``, keeps
    ``round(f * extent)`` of the structure's slices along that axis, ``f ~ U(kept_fraction_range)`` (0 slices: the
    structure has just left the field of view), and moves the edge on the side whose cut keeps more of the volume.
    Presence then sits near its voxel threshold, on either side of it; derive the targets from the cut label map
    afterwards (:class:`~monai_sadaan.transforms.LabelMapToStructures`).

    ``mode`` and ``fill_value`` are as :class:`RandFieldOfViewCrop`'s (``"crop"`` by default: a genuinely shorter
    scan, to be brought back to the model's grid by :class:`~monai_sadaan.transforms.FitToSpatialSize`). Not
    invertible: a training augmentation.

    Args:
        prob: probability of cutting.
        kept_fraction_range: ``(low, high)`` fraction of the structure's extent kept in view, ``0 <= low <= high
            <= 1``.
        axes: spatial axes (0 = D, 1 = H, 2 = W) the edge may move along.
        candidate_labels: label values (or a ``{name: value}`` mapping) that may be the target; None means every
            non-background value.
        background: the label map's background value.
        mode: ``"crop"`` or ``"fill"``.
        fill_value: value of the cut region in ``"fill"`` mode.

    After a call, :attr:`target_label` is the targeted label value (None when nothing was cut) and :attr:`box`
    the kept ``(starts, ends)``.
    """

    def __init__(
        self,
        prob: float = 0.5,
        kept_fraction_range: Sequence[float] = (0.0, 0.3),
        axes: Sequence[int] = (0,),
        candidate_labels: Sequence[int] | Mapping[str, int] | None = None,
        background: int = 0,
        mode: str = "crop",
        fill_value: float = 0.0,
    ) -> None:
        super().__init__(prob=prob, axes=axes, mode=mode, fill_value=fill_value)
        lo, hi = (float(f) for f in kept_fraction_range)
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(
                f"expected kept_fraction_range (low, high) with 0 <= low <= high <= 1, got {kept_fraction_range}"
            )
        self.kept_fraction_range = (lo, hi)
        self.candidate_labels = None if candidate_labels is None else structure_label_values(candidate_labels)
        self.background = int(background)
        self.target_label: int | None = None

    def randomize(self, label: NdarrayOrTensor) -> None:  # type: ignore[override]
        """Draw whether to cut and, if so, the target and the kept box ``self.box`` for the label map
        ``[1, D, H, W]``."""
        check_label_map(label)
        RandomizableTransform.randomize(self, None)
        shape = shape_of(label)[1:]
        starts, ends = [0, 0, 0], list(shape)
        self.target_label = None
        if self._do_transform:
            lab = np.asarray(convert_to_tensor(label, track_meta=False).cpu())[0]
            values = [int(v) for v in np.unique(lab) if int(v) != self.background]
            if self.candidate_labels is not None:
                values = [v for v in values if v in self.candidate_labels]
            if values:
                value = values[int(self.R.randint(len(values)))]
                axis = self.axes[int(self.R.randint(len(self.axes)))]
                other = tuple(a for a in range(3) if a != axis)
                occupied = np.flatnonzero((lab == value).any(axis=other))
                low, high = int(occupied[0]), int(occupied[-1]) + 1
                kept = int(round(self.R.uniform(*self.kept_fraction_range) * (high - low)))
                # cutting the high end keeps [0, low + kept); cutting the low end keeps [high - kept, size)
                kept_sizes = {1: low + kept, 0: shape[axis] - (high - kept)}
                usable = [end for end, size in kept_sizes.items() if size >= 1]
                if usable:
                    larger = max(usable, key=lambda end: (kept_sizes[end], end))
                    if larger == 1:
                        ends[axis] = low + kept
                    else:
                        starts[axis] = high - kept
                    self.target_label = value
        self.box = (tuple(starts), tuple(ends))

    def __call__(  # type: ignore[override]
        self,
        img: NdarrayOrTensor,
        label: NdarrayOrTensor | None = None,
        randomize: bool = True,
        fill_value: float | None = None,
    ) -> NdarrayOrTensor:
        """
        Args:
            img: channel-first volume ``[C, D, H, W]``.
            label: the label map ``[1, D, H, W]`` on ``img``'s grid that the cut is aimed with; needed when
                ``randomize`` is True.
            randomize: draw a new cut; ``False`` reuses the last one (all keys of a dict get the same cut).
            fill_value: overrides ``self.fill_value`` for this call.
        """
        check_volume(img, "volume")
        if randomize:
            if label is None:
                raise ValueError("expected the label map [1, D, H, W] to aim RandStructureEdgeCrop at, got None")
            if shape_of(label)[1:] != shape_of(img)[1:]:
                raise ValueError(
                    f"expected a label map on the image grid {shape_of(img)[1:]}, got shape {shape_of(label)}"
                )
            self.randomize(label)
        return super().__call__(img, randomize=False, fill_value=fill_value)


def _dilate(region: torch.Tensor, width: int) -> torch.Tensor:
    """Cubic binary dilation of a boolean ``[D, H, W]`` region by ``width`` voxels."""
    k = 2 * width + 1
    return F.max_pool3d(region[None, None].float(), kernel_size=k, stride=1, padding=width)[0, 0] > 0


class RandSyntheticResection(RandomizableTransform):
    """Remove one structure as if it had been resected: with probability ``prob`` pick a present label value,
    set its voxels to background in the label map and fill its image voxels with surrounding tissue.

    The fill draws, per voxel, the value of a random voxel of the *ring* around the structure (its cubic dilation
    by ``ring_width`` voxels minus the structure, restricted to background where the ring has background), the
    same draw for every channel. The filled region so takes the ring's intensity distribution, mean and noise
    level included, and stays within the ring's range.

    Args:
        prob: probability of a resection.
        candidate_labels: label values that may be removed; None means every non-background value.
        ring_width: width in voxels of the ring the fill values are drawn from (>= 1).
        min_voxels: a label value needs at least this many voxels to be a candidate.
        background: label value written in place of the structure.

    After a call, :attr:`removed_label` is the removed value or None.
    """

    backend = [TransformBackends.TORCH, TransformBackends.NUMPY]

    def __init__(
        self,
        prob: float = 0.5,
        candidate_labels: Sequence[int] | None = None,
        ring_width: int = 2,
        min_voxels: int = 1,
        background: int = 0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        if int(ring_width) < 1:
            raise ValueError(f"expected ring_width >= 1, got {ring_width}")
        if int(min_voxels) < 1:
            raise ValueError(f"expected min_voxels >= 1, got {min_voxels}")
        self.candidate_labels = None if candidate_labels is None else [int(v) for v in candidate_labels]
        if self.candidate_labels is not None and not self.candidate_labels:
            raise ValueError("expected candidate_labels to be None or non-empty, got an empty sequence")
        self.ring_width = int(ring_width)
        self.min_voxels = int(min_voxels)
        self.background = int(background)
        self.removed_label: int | None = None

    def randomize(self, label: torch.Tensor) -> None:  # type: ignore[override]
        """Draw whether to resect and which label value of ``label`` ``[1, D, H, W]`` (tensor) to remove."""
        super().randomize(None)
        self.removed_label = None
        if not self._do_transform:
            return
        values, counts = torch.unique(label.round().long(), return_counts=True)
        candidates = [
            int(v) for v, c in zip(values.tolist(), counts.tolist()) if v != self.background and c >= self.min_voxels
        ]
        if self.candidate_labels is not None:
            candidates = [v for v in candidates if v in self.candidate_labels]
        if candidates:
            self.removed_label = int(candidates[int(self.R.randint(len(candidates)))])

    def remove_from_label(self, label: NdarrayOrTensor) -> NdarrayOrTensor:
        """``label`` ``[1, D, H, W]`` with :attr:`removed_label` set to background (unchanged when None)."""
        check_label_map(label)
        if self.removed_label is None:
            return label
        lab = convert_to_tensor(label, track_meta=False)
        out = lab.clone()
        out[lab.round().long() == self.removed_label] = self.background
        return convert_to_dst_type(out, label)[0]

    def __call__(  # type: ignore[override]
        self, img: NdarrayOrTensor, label: NdarrayOrTensor, randomize: bool = True
    ) -> tuple[NdarrayOrTensor, NdarrayOrTensor]:
        """
        Args:
            img: channel-first image ``[C, D, H, W]``.
            label: label map ``[1, D, H, W]`` on the same grid.
            randomize: draw a new resection; ``False`` reuses :attr:`removed_label`.

        Returns:
            ``(image, label)`` of the input types; unchanged when nothing was removed.
        """
        check_volume(img, "image")
        check_label_map(label)
        if shape_of(img)[1:] != shape_of(label)[1:]:
            raise ValueError(
                f"expected image and label map on the same grid, got image {shape_of(img)} and label {shape_of(label)}"
            )
        lab = convert_to_tensor(label, track_meta=False)
        if randomize:
            self.randomize(lab)
        if self.removed_label is None:
            return img, label
        lab_r = lab[0].round().long()
        region = lab_r == self.removed_label
        if not bool(region.any()):
            return img, label
        ring = _dilate(region, self.ring_width) & ~region
        background_ring = ring & (lab_r == self.background)
        if bool(background_ring.any()):
            ring = background_ring
        elif not bool(ring.any()):
            ring = ~region
        img_t = convert_to_tensor(img, track_meta=False).clone()
        n_fill = int(region.sum())
        if bool(ring.any()):
            n_ring = int(ring.sum())
            idx = torch.as_tensor(self.R.randint(0, n_ring, size=n_fill), device=img_t.device, dtype=torch.long)
            for c in range(img_t.shape[0]):
                img_t[c][region] = img_t[c][ring][idx]
        return convert_to_dst_type(img_t, img)[0], self.remove_from_label(label)

