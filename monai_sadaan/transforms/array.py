"""Array transforms of SADAAn: label map to per-structure targets, CT windowing, fitting a volume to the
network's grid (invertibly), and the two augmentations that make structures absent (field-of-view crops and
synthetic resections).

All transforms take channel-first volumes ``[C, D, H, W]`` as numpy arrays, torch tensors or MONAI
``MetaTensor`` and return the same kind (``FitToSpatialDims`` follows MONAI's ``Resize`` and returns a tensor).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import correlate1d, find_objects
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.networks.layers import GaussianFilter
from monai.networks.layers.convutils import gaussian_1d
from monai.transforms import (
    InvertibleTransform,
    RandomizableTransform,
    Resize,
    ResizeWithPadOrCrop,
    ScaleIntensityRange,
    SpatialCrop,
    Transform,
)
from monai.utils import TraceKeys, TransformBackends, convert_to_dst_type, convert_to_tensor

__all__ = [
    "LabelMapToStructures",
    "CTWindow",
    "FitToSpatialDims",
    "RandFieldOfViewCrop",
    "RandStructureEdgeCrop",
    "RandSyntheticResection",
    "structure_label_values",
    "presence_from_masks",
    "check_label_map",
    "check_volume",
]


_TRUNCATE = 4.0  # Gaussian kernel radius of the attention halo, in standard deviations


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def check_label_map(label: NdarrayOrTensor) -> None:
    """Raise ``ValueError`` unless ``label`` has shape ``(1, D, H, W)``."""
    if not hasattr(label, "shape") or len(label.shape) != 4 or label.shape[0] != 1:
        got = _shape(label) if hasattr(label, "shape") else type(label).__name__
        raise ValueError(f"expected a label map of shape (1, D, H, W), got {got}")


def check_volume(img: NdarrayOrTensor, what: str = "image") -> None:
    """Raise ``ValueError`` unless ``img`` is a channel-first 3D volume ``(C, D, H, W)``."""
    if not hasattr(img, "shape") or len(img.shape) != 4:
        got = _shape(img) if hasattr(img, "shape") else type(img).__name__
        raise ValueError(f"expected a channel-first 3D {what} of shape (C, D, H, W), got {got}")


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


class CTWindow(ScaleIntensityRange):
    """Clip CT intensities (Hounsfield units) to ``[a_min, a_max]`` and scale them linearly to ``[b_min, b_max]``.

    The default window (-175, 250) HU is MONAI's usual abdominal soft-tissue window.

    Args:
        a_min: lower HU bound of the window.
        a_max: upper HU bound of the window (must be greater than ``a_min``).
        b_min: output value of ``a_min``.
        b_max: output value of ``a_max``.
        clip: clip the output to ``[b_min, b_max]``.
        dtype: output data type.

    Raises:
        ValueError: ``a_min >= a_max``.
    """

    def __init__(
        self,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        if not float(a_min) < float(a_max):
            raise ValueError(f"expected a_min < a_max for the CT window, got a_min={a_min}, a_max={a_max}")
        super().__init__(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=dtype)


class FitToSpatialDims(InvertibleTransform):
    """Fit a channel-first volume ``[C, D, H, W]`` to the network's grid ``spatial_dims``, invertibly.

    SADAAn's position prior covers the whole field of view, so the whole volume goes through the network at
    ``spatial_dims``. ``mode="resize"`` rescales with MONAI's :class:`~monai.transforms.Resize` (the aspect ratio
    changes, nothing is lost); ``mode="pad"`` pads or centrally crops with
    :class:`~monai.transforms.ResizeWithPadOrCrop` (voxels keep their size; what is cropped is lost). The
    applied operation is recorded on ``MetaTensor`` inputs, so :meth:`inverse` (and MONAI's ``Invertd``)
    maps a prediction back to the original grid: exactly for padding, by interpolation for resizing.

    Args:
        spatial_dims: output spatial size ``(D, H, W)``.
        mode: ``"resize"`` or ``"pad"``.
        interp_mode: interpolation of ``"resize"``: ``"nearest"``, ``"nearest-exact"``, ``"trilinear"`` or
            ``"area"``. Use ``"nearest-exact"`` for label maps: it samples at the voxel centres, as ``"trilinear"``
            (``align_corners=False``) does for the image. PyTorch's ``"nearest"`` samples at the output voxels'
            low corners instead (input index ``floor(i * s)`` for a size ratio ``s``), ``s / 2`` input voxels short of
            the centre, so a label lands half an output voxel off its image towards the high indices, and the last
            input slices of an axis are never read once ``s >= 2``.
        align_corners: passed to ``torch.nn.functional.interpolate`` for linear modes.
        pad_mode: padding mode of ``"pad"`` (``"constant"``, ``"edge"``/``"replicate"``, ``"reflect"``, ...).
        pad_value: constant used with ``pad_mode="constant"`` (0 after windowing, -1000 for HU).
    """

    backend = [TransformBackends.TORCH]

    def __init__(
        self,
        spatial_dims: Sequence[int],
        mode: str = "resize",
        interp_mode: str = "trilinear",
        align_corners: bool | None = None,
        pad_mode: str = "constant",
        pad_value: float = 0.0,
    ) -> None:
        dims = tuple(spatial_dims) if isinstance(spatial_dims, Sequence) else ()
        if len(dims) != 3 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in dims):
            raise ValueError(f"expected spatial_dims as three positive integers (D, H, W), got {spatial_dims!r}")
        if mode not in ("resize", "pad"):
            raise ValueError(f"expected mode 'resize' or 'pad', got {mode!r}")
        self.spatial_dims = tuple(int(s) for s in dims)
        self.mode = mode
        self.interp_mode = interp_mode
        self.align_corners = align_corners
        self.pad_mode = pad_mode
        self.pad_value = float(pad_value)
        self.resizer = Resize(spatial_size=self.spatial_dims, mode=interp_mode, align_corners=align_corners)
        self.padder = ResizeWithPadOrCrop(spatial_size=self.spatial_dims, mode=pad_mode)

    def __call__(
        self, img: NdarrayOrTensor, interp_mode: str | None = None, pad_value: float | None = None
    ) -> torch.Tensor:
        """
        Args:
            img: channel-first volume ``[C, D, H, W]``.
            interp_mode: overrides ``self.interp_mode`` for this call (the dictionary version's per-key mode).
            pad_value: overrides ``self.pad_value`` for this call.

        Returns:
            ``[C, *spatial_dims]`` tensor (a ``MetaTensor`` that records the operation when meta is tracked).
        """
        check_volume(img, "volume")
        if self.mode == "resize":
            mode_ = self.interp_mode if interp_mode is None else interp_mode
            align = self.align_corners if mode_ in ("linear", "bilinear", "bicubic", "trilinear") else None
            out = self.resizer(img, mode=mode_, align_corners=align)
        else:
            value = self.pad_value if pad_value is None else float(pad_value)
            kwargs = {"value": value} if self.pad_mode == "constant" else {}
            out = self.padder(img, **kwargs)
        if get_track_meta() and isinstance(out, MetaTensor) and out.applied_operations:
            inner = out.applied_operations.pop()
            self.push_transform(
                out, orig_size=inner.get(TraceKeys.ORIG_SIZE), extra_info={"method": self.mode, "inner": inner}
            )
        return out

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Map ``data`` ``[C, *spatial_dims]`` back to the grid recorded on it by :meth:`__call__`.

        Raises:
            ValueError: ``data`` is not a ``MetaTensor`` carrying the record of this transform.
        """
        if not isinstance(data, MetaTensor) or not data.applied_operations:
            raise ValueError(
                "expected a MetaTensor that carries the record of FitToSpatialDims, "
                f"got {type(data).__name__} without applied operations"
            )
        transform = self.pop_transform(data)
        inner = transform[TraceKeys.EXTRA_INFO]["inner"]
        data.applied_operations.append(inner)
        inner_xform = self.resizer if transform[TraceKeys.EXTRA_INFO]["method"] == "resize" else self.padder
        return inner_xform.inverse(data)


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
    windowing and for labels and masks; -1000 for HU). The geometry stays aligned with the position prior and
    arrays of a batch keep one shape, so it can run anywhere in the pipeline. ``mode="crop"`` returns the smaller
    array (affine updated on ``MetaTensor``), as a genuinely shorter scan; place it before
    :class:`FitToSpatialDims`, which brings the volume back to ``spatial_dims``. Neither is invertible: this is a
    training augmentation.

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
        spatial = _shape(img)[1:]
        if any(e > s for e, s in zip(ends, spatial)):
            raise ValueError(f"expected a volume that holds the drawn box {self.box}, got shape {_shape(img)}")
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
    Presence then sits near its voxel threshold, on either side of it; derive the targets again from the cut label
    map (:class:`LabelMapToStructures`).

    ``mode`` and ``fill_value`` are as :class:`RandFieldOfViewCrop`'s (``"crop"`` by default: a genuinely shorter
    scan, to be brought back to the model's grid by :class:`FitToSpatialDims`). Not invertible: a training
    augmentation.

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
        shape = _shape(label)[1:]
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
            if _shape(label)[1:] != _shape(img)[1:]:
                raise ValueError(
                    f"expected a label map on the image grid {_shape(img)[1:]}, got shape {_shape(label)}"
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
        if _shape(img)[1:] != _shape(label)[1:]:
            raise ValueError(
                f"expected image and label map on the same grid, got image {_shape(img)} and label {_shape(label)}"
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

