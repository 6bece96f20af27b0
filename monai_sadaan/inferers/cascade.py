"""The absence-aware cascade: SADAAn decides what is present on the whole view, a plain network refines it.

Stage 1 (SADAAn) sees the whole field of view at ``spatial_size`` (48³: about 8 mm per voxel for a clinical CT), so
its masks written back on the input grid are coarse. Stage 2 is a plain MONAI network (``BasicUNet``) that
segments **one** structure inside a box at a fine spacing (1.5 mm by default). For every structure stage 1 calls
present (the call of :mod:`monai_sadaan.networks.presence`, never decided again here):

1. one box per connected component of its coarse mask on the input grid (:func:`component_boxes`: a mask painted in
   two places gets two boxes, not one spanning both; specks under ``min_component_ml`` are dropped; overlapping boxes
   merge where that costs no more), each the component's voxels plus ``margin_mm`` of world distance on every side
   (:func:`fine_box`), on the input grid orientated as stage 1 orientates it (``RAS``), grown by whole fine voxels to
   whole sliding-window patches (:meth:`CascadeRefine.fit_to_patches`);
2. only that box of the input image is windowed (stage 1's CT window) and resampled to the fine spacing
   (:func:`resample_to_box`), with stage 1's probability map of the structure resampled into the same box as
   context and the structure's one-hot code as constant channels (:func:`cascade_inputs`);
3. MONAI's ``sliding_window_inference`` runs stage 2 over the box (balanced patches of at most ``roi_size``, no
   overlap by default: each fine voxel is predicted once);
4. the fine probabilities are resampled onto the input voxels inside the box (:func:`box_to_input_grid`),
   thresholded, and written into the label map in place of the structure's coarse voxels; where two refined
   structures claim a voxel, the higher probability wins (a tie: the first structure); where two boxes of one
   structure meet, a voxel either claims is the structure's.

A structure called absent is never refined and keeps zero voxels, whatever stage 2 would say. Memory follows the
box and the patch: nothing of the whole input is resampled or copied beyond the box's own input voxels.

:class:`CascadeRefine` does this for one case (arrays); :class:`CascadeRefined` is its dictionary version, the
bundle's post-processing step after :class:`~monai_sadaan.transforms.InputGridLabelMapd` (switch ``cascade`` of
``configs/inference.json``). :class:`CascadeInputsd` builds stage 2's input the same way for training
(``configs/train_refine.json``, crops from :mod:`monai_sadaan.data.refine_crops`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection, NdarrayOrTensor
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.transforms import MapTransform
from monai.transforms.utils import generate_spatial_bounding_box

from monai_sadaan.inferers.prefetch import usable_cores
from monai_sadaan.io.nifti import to_numpy
from monai_sadaan.networks.presence import is_called_present
from monai_sadaan.transforms.spatial.functional import intra_op_threads

__all__ = [
    "DEFAULT_FINE_SPACING",
    "DEFAULT_MARGIN_MM",
    "DEFAULT_MIN_COMPONENT_ML",
    "DEFAULT_COMPONENT_BLOCK_MM",
    "FineBox",
    "CascadeRefine",
    "CascadeRefined",
    "CascadeRefineD",
    "CascadeRefineDict",
    "CascadeInputsd",
    "CascadeInputsD",
    "CascadeInputsDict",
    "KeepSourced",
    "KeepSourceD",
    "KeepSourceDict",
    "box_to_input_grid",
    "cascade_inputs",
    "component_boxes",
    "fine_box",
    "load_refine_network",
    "oriented_affine",
    "resample_to_box",
]

DEFAULT_FINE_SPACING = 1.5
"""Stage 2's voxel size (mm), the spacing TotalSegmentator and nnU-Net segment abdominal CT at."""

DEFAULT_MARGIN_MM = 15.0
"""World distance (mm) added on every side of a coarse mask's box: stage 1's masks are about one 8 mm voxel off."""

DEFAULT_MIN_COMPONENT_ML = 1.0
"""Volume (mL) a connected component of a coarse mask, other than its largest, needs for a box of its own (about two
of stage 1's 8 mm voxels); smaller specks are not refined and not painted."""

DEFAULT_COMPONENT_BLOCK_MM = 4.0
"""Side (mm) of the blocks connected components are found on: half a stage-1 voxel, cheap on a clinical grid."""


# ------------------------------------------------------------------------------------------------ geometry
def oriented_affine(record: Any) -> np.ndarray:
    """Voxel-to-world affine (4x4, float64) of the orientated input grid of a
    :class:`~monai_sadaan.transforms.spatial.functional.NetworkGridRecord` (what ``record.oriented_view`` shows)."""
    affine = np.asarray(record.input_affine, dtype=np.float64)
    out = np.eye(4)
    start = np.zeros(4)
    start[3] = 1.0
    for k, axis in enumerate(record.transpose):
        sign = -1.0 if axis in record.flip_axes else 1.0
        out[:3, k] = sign * affine[:3, axis]
        if sign < 0:
            start[axis] = record.input_shape[axis] - 1
    out[:3, 3] = (affine @ start)[:3]
    return out


@dataclass(frozen=True)
class FineBox:
    """A box of a grid (the orientated input grid) sampled at a fine spacing.

    Attributes:
        low: ``(3,)`` the box's low edge, in (continuous) voxel coordinates of the grid (voxel ``i`` spans
            ``[i - 0.5, i + 0.5]``).
        high: ``(3,)`` its high edge, likewise.
        shape: fine voxels per axis ``(D, H, W)``; the fine grid is centred on the box and covers it.
        step: ``(3,)`` one fine voxel in voxels of the grid (``fine_spacing / grid spacing``).
        affine: ``(4, 4)`` voxel-to-world affine of the fine grid (the grid's directions, the fine spacing).
    """

    low: tuple[float, float, float]
    high: tuple[float, float, float]
    shape: tuple[int, int, int]
    step: tuple[float, float, float]
    affine: np.ndarray

    def centres(self, axis: int) -> np.ndarray:
        """``[shape[axis]]`` the fine voxel centres along ``axis``, in voxel coordinates of the grid."""
        middle = 0.5 * (self.low[axis] + self.high[axis])
        n = self.shape[axis]
        return middle + (np.arange(n, dtype=np.float64) - 0.5 * (n - 1)) * self.step[axis]

    def grid_slices(self, grid_shape: Sequence[int]) -> tuple[slice, slice, slice]:
        """The voxels of the grid (of shape ``grid_shape``) whose centres lie inside the box."""
        out = []
        for axis in range(3):
            start = max(0, int(np.ceil(self.low[axis])))
            stop = min(int(grid_shape[axis]), int(np.floor(self.high[axis])) + 1)
            out.append(slice(start, max(start, stop)))
        return out[0], out[1], out[2]


def _grid_spacing_and_fine(
    affine: Any, fine_spacing: float | Sequence[float], margin_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(affine, grid spacing, fine spacing)`` as float64 arrays, checked (see :func:`fine_box`)."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise ValueError(f"expected a 4x4 affine, got shape {a.shape}")
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    fine = np.broadcast_to(np.asarray(fine_spacing, dtype=np.float64), (3,))
    if not (spacing > 0).all() or not (fine > 0).all() or not float(margin_mm) >= 0:
        raise ValueError(
            f"expected positive grid and fine spacings and a margin >= 0 mm, got grid spacing {spacing.tolist()}, "
            f"fine spacing {fine.tolist()}, margin {margin_mm!r}"
        )
    return a, spacing, fine


def _mask_extent(m: np.ndarray) -> list[tuple[int, int]]:
    """``[(first, last)]`` per axis: the rows of a non-empty 3-D bool mask that hold a voxel (MONAI's bounding box,
    its exclusive end made inclusive)."""
    start, end = generate_spatial_bounding_box(m[None])
    return [(int(s), int(e) - 1) for s, e in zip(start, end)]


def _padded_bounds(
    extent: Sequence[tuple[int, int]], pad: np.ndarray, grid_shape: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Continuous ``(low, high)`` edges of the voxel rows ``extent`` grown by ``pad`` voxels, clipped to the grid."""
    low = np.array([max(-0.5, e[0] - 0.5 - p) for e, p in zip(extent, pad)])
    high = np.array([min(n - 0.5, e[1] + 0.5 + p) for e, p, n in zip(extent, pad, grid_shape)])
    return low, high


def _box_from_bounds(
    low: np.ndarray, high: np.ndarray, affine: np.ndarray, spacing: np.ndarray, fine: np.ndarray
) -> FineBox:
    """The :class:`FineBox` of the continuous grid edges ``[low, high]``: a fine grid centred on them, covering them."""
    step = fine / spacing
    shape = tuple(max(1, int(np.ceil((high[i] - low[i]) / step[i] - 1e-6))) for i in range(3))
    first = np.array([0.5 * (low[i] + high[i]) - 0.5 * (shape[i] - 1) * step[i] for i in range(3)])
    box_affine = affine @ np.block([[np.diag(step), first[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
    return FineBox(
        tuple(float(v) for v in low), tuple(float(v) for v in high), shape,  # type: ignore[arg-type]
        tuple(float(v) for v in step), box_affine,  # type: ignore[arg-type]
    )  # fmt: skip


def fine_box(
    mask: np.ndarray,
    affine: np.ndarray,
    margin_mm: float = DEFAULT_MARGIN_MM,
    fine_spacing: float | Sequence[float] = DEFAULT_FINE_SPACING,
) -> FineBox | None:
    """The box of ``mask``'s voxels plus ``margin_mm`` of world distance on every side, clipped to the grid, at
    ``fine_spacing``.

    Args:
        mask: ``[D, H, W]`` bool, the structure's voxels on a grid (the orientated input grid).
        affine: ``(4, 4)`` voxel-to-world affine of that grid (orthogonal axes, any spacing and direction).
        margin_mm: distance (mm) added on every side (converted per axis with the grid's spacing).
        fine_spacing: the fine voxel size (mm), one value or one per axis.

    Returns:
        The :class:`FineBox`, or ``None`` when ``mask`` has no voxel.

    Raises:
        ValueError: ``mask`` is not 3-D, ``affine`` not 4x4 with non-zero axes, or a spacing / margin not positive.
    """
    m = np.asarray(mask)
    if m.ndim != 3 or np.shape(affine) != (4, 4):
        raise ValueError(f"expected a 3-D mask and a 4x4 affine, got shapes {m.shape} and {np.shape(affine)}")
    a, spacing, fine = _grid_spacing_and_fine(affine, fine_spacing, margin_mm)
    if not m.any():
        return None
    low, high = _padded_bounds(_mask_extent(m), float(margin_mm) / spacing, m.shape)
    return _box_from_bounds(low, high, a, spacing, fine)


def _fine_volume(low: np.ndarray, high: np.ndarray, step: np.ndarray) -> float:
    """Fine voxels of a box with continuous edges ``[low, high]`` (what stage 2 spends on it)."""
    return float(np.prod(np.maximum(1.0, np.ceil((high - low) / step - 1e-6))))


def component_boxes(
    mask: np.ndarray,
    affine: np.ndarray,
    margin_mm: float = DEFAULT_MARGIN_MM,
    fine_spacing: float | Sequence[float] = DEFAULT_FINE_SPACING,
    min_component_ml: float = DEFAULT_MIN_COMPONENT_ML,
    block_mm: float = DEFAULT_COMPONENT_BLOCK_MM,
) -> list[FineBox]:
    """One :func:`fine_box` per connected component of ``mask`` (components closer than ``block_mm`` count as one),
    the largest component always, the others when they hold at least ``min_component_ml``; boxes that overlap are
    merged where the merged box costs no more fine voxels than the two apart.

    Stage 1's mask of a structure can come in pieces (an organ painted twice, or on a neighbour as well): one box
    around all of them refines, at the fine spacing, everything between them. Components are found on blocks of
    about ``block_mm`` per side (a voxel of the block grid is set when any of its voxels is), each component's box is
    the extent of its own voxels plus ``margin_mm``; specks below ``min_component_ml`` get no box (the cascade does
    not paint them).

    Args:
        mask: ``[D, H, W]`` bool, the structure's voxels on a grid (the orientated input grid).
        affine: ``(4, 4)`` voxel-to-world affine of that grid.
        margin_mm: distance (mm) added on every side of each component's voxels.
        fine_spacing: the fine voxel size (mm), one value or one per axis.
        min_component_ml: the volume (mL) a component other than the largest needs for a box of its own.
        block_mm: the side (mm) of the blocks components are found on (``0``: single voxels).

    Returns:
        The boxes, ordered by their low corner; ``[]`` when ``mask`` has no voxel.

    Raises:
        ValueError: as :func:`fine_box`, or a negative ``min_component_ml`` / ``block_mm``.
    """
    from scipy import ndimage

    m = np.asarray(mask)
    if m.ndim != 3 or np.shape(affine) != (4, 4):
        raise ValueError(f"expected a 3-D mask and a 4x4 affine, got shapes {m.shape} and {np.shape(affine)}")
    a, spacing, fine = _grid_spacing_and_fine(affine, fine_spacing, margin_mm)
    if not float(min_component_ml) >= 0 or not float(block_mm) >= 0:
        raise ValueError(f"expected min_component_ml >= 0 and block_mm >= 0, got {min_component_ml!r} and {block_mm!r}")
    if not m.any():
        return []
    extent = _mask_extent(m)
    origin = np.array([e[0] for e in extent])
    crop = m[tuple(slice(e[0], e[1] + 1) for e in extent)]  # a view
    k = [max(1, int(round(float(block_mm) / s))) for s in spacing]
    blocks = crop
    for axis in sorted(range(3), key=lambda i: -k[i]):  # block-wise "any" (reduceat keeps a short last block)
        blocks = np.logical_or.reduceat(blocks, np.arange(0, blocks.shape[axis], k[axis]), axis=axis)
    components, _ = ndimage.label(blocks, structure=np.ones((3, 3, 3), dtype=bool))
    pieces = []  # (voxels, extent on the grid) per component
    for j, region in enumerate(ndimage.find_objects(components), start=1):
        if region is None:
            continue
        vox = tuple(slice(r.start * kk, min(r.stop * kk, n)) for r, kk, n in zip(region, k, crop.shape))
        voxels = crop[vox]
        own = components[region] == j
        if not own.all():  # another component's blocks inside this one's box: keep this one's voxels only
            for axis in range(3):
                own = np.repeat(own, k[axis], axis=axis)
            voxels = voxels & own[tuple(slice(0, v.stop - v.start) for v in vox)]
        rows = _mask_extent(voxels)
        rows_on_grid = [(o + v.start + r0, o + v.start + r1) for o, v, (r0, r1) in zip(origin, vox, rows)]
        pieces.append((int(np.count_nonzero(voxels)), rows_on_grid))
    pieces.sort(key=lambda p: -p[0])
    ml_per_voxel = float(np.prod(spacing)) / 1000.0
    kept = [p for i, p in enumerate(pieces) if i == 0 or p[0] * ml_per_voxel >= float(min_component_ml)]
    pad = float(margin_mm) / spacing
    step = fine / spacing
    bounds = [_padded_bounds(e, pad, m.shape) for _, e in kept]
    merged = True
    while merged and len(bounds) > 1:  # greedy: merge the pair that saves the most, until no merge saves
        merged = False
        best = None
        for i in range(len(bounds)):
            for j in range(i + 1, len(bounds)):
                (l1, h1), (l2, h2) = bounds[i], bounds[j]
                if (np.minimum(h1, h2) <= np.maximum(l1, l2)).any():
                    continue  # disjoint
                lo, hi = np.minimum(l1, l2), np.maximum(h1, h2)
                saving = _fine_volume(l1, h1, step) + _fine_volume(l2, h2, step) - _fine_volume(lo, hi, step)
                if saving >= 0 and (best is None or saving > best[0]):
                    best = (saving, i, j, lo, hi)
        if best is not None:
            _, i, j, lo, hi = best
            bounds = [b for n, b in enumerate(bounds) if n not in (i, j)] + [(lo, hi)]
            merged = True
    bounds.sort(key=lambda b: tuple(b[0]))
    return [_box_from_bounds(lo, hi, a, spacing, fine) for lo, hi in bounds]


def _linear_along(x: np.ndarray, axis: int, coords: np.ndarray) -> np.ndarray:
    """``x`` (float32) linearly interpolated along ``axis`` at ``coords`` (voxel coordinates, clamped to the edge
    voxels, as ``F.interpolate(align_corners=False)`` clamps). Gathers with ``np.take`` (a strided gather; torch's
    ``index_select`` along an inner axis is an order of magnitude slower on CPU)."""
    n = x.shape[axis]
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1)
    i0 = np.floor(c).astype(np.intp)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(c)
    w = (c - i0).astype(np.float32).reshape(shape)
    out = np.take(x, i0, axis=axis)
    if not w.any():  # on the grid's own centres
        return out
    hi = np.take(x, i1, axis=axis)
    hi -= out
    hi *= w
    out += hi
    return out


def _resample(
    volume: Any, coords: Sequence[np.ndarray], window: Any = None, order: Sequence[int] | None = None
) -> torch.Tensor:
    """``[C, len(c0), len(c1), len(c2)]`` float32: trilinear samples of ``volume`` ``[C, D, H, W]`` (array or tensor)
    at the outer product of the voxel coordinates ``coords``. Only the rows the samples read are copied (then
    passed through ``window``, which may work in place on that copy), so memory follows the samples, not the volume.
    The three linear passes run in
    ``order`` (spatial axes), by default the most shrinking axis first (the least growing last), so each pass works
    on as few values as it can; a sample's value depends on the order only through rounding."""
    rows = []
    for axis, c in enumerate(coords):
        n = int(volume.shape[axis + 1])
        lo = int(np.clip(np.floor(np.min(c)), 0, n - 1))
        hi = int(np.clip(np.ceil(np.max(c)), 0, n - 1)) + 1
        rows.append((lo, hi))
    (d0, d1), (h0, h1), (w0, w1) = rows
    block = to_numpy(volume[:, d0:d1, h0:h1, w0:w1])
    if window is not None:  # on a float32 copy of its own, which it may change in place
        block = np.ascontiguousarray(to_numpy(window(np.array(block, dtype=np.float32, order="C"))), dtype=np.float32)
    else:
        block = np.ascontiguousarray(block, dtype=np.float32)
    if order is None:
        order = sorted(range(3), key=lambda i: len(coords[i]) / (rows[i][1] - rows[i][0]))
    for i in order:
        block = _linear_along(block, i + 1, np.asarray(coords[i], dtype=np.float64) - rows[i][0])
    return torch.from_numpy(np.ascontiguousarray(block))


def resample_to_box(volume: Any, box: FineBox, window: Any = None, scale: Sequence[float] | None = None) -> torch.Tensor:
    """``volume`` ``[C, D, H, W]`` sampled (trilinear) at the fine voxel centres of ``box``.

    Args:
        volume: a channel-first array or tensor on the grid of ``box`` (``scale=None``) or on a grid covering the same
            field of view with other voxel counts (``scale``: its voxels per voxel of ``box``'s grid, per axis; stage
            1's network grid: ``spatial_size / oriented input shape``, centres mapped as ``align_corners=False``).
        box: the fine box (:func:`fine_box`).
        window: optional intensity transform applied to the input voxels read (stage 1's CT window).

    Returns:
        ``[C, *box.shape]`` float32; it reads only the input voxels inside the box (and one beyond).
    """
    coords = [box.centres(a) for a in range(3)]
    if scale is not None:
        coords = [(c + 0.5) * float(s) - 0.5 for c, s in zip(coords, scale)]
    return _resample(volume, coords, window)


def box_to_input_grid(
    values: torch.Tensor, box: FineBox, grid_shape: Sequence[int], region: Sequence[slice] | None = None
) -> tuple[tuple[slice, ...], torch.Tensor]:
    """Fine values ``[C, *box.shape]`` sampled (trilinear) at the centres of the grid voxels inside ``box``.

    Args:
        values: ``[C, *box.shape]`` on the fine grid of ``box``.
        box: the fine box.
        grid_shape: the grid's shape.
        region: only the grid voxels inside these slices as well (the samples there are the same, bit for bit, as
            those of the whole box: the passes run in an order fixed by the box).

    Returns:
        ``(slices, samples)``: the grid voxels (:meth:`FineBox.grid_slices`, cut to ``region``) and
        ``[C, *their shape]`` float32.
    """
    slices = box.grid_slices(grid_shape)
    if region is not None:
        starts = [max(a.start, r.start) for a, r in zip(slices, region)]
        slices = tuple(slice(b, max(b, min(a.stop, r.stop))) for b, a, r in zip(starts, slices, region))  # type: ignore
    if any(sl.start >= sl.stop for sl in slices):
        return slices, torch.zeros(values.shape[0], *(sl.stop - sl.start for sl in slices))
    coords = []
    for axis, sl in enumerate(slices):
        first = box.centres(axis)[0]
        coords.append((np.arange(sl.start, sl.stop, dtype=np.float64) - first) / box.step[axis])
    return slices, _resample(values, coords, order=sorted(range(3), key=lambda i: box.step[i]))


# ------------------------------------------------------------------------------------------------ stage 2's input
def cascade_inputs(image: NdarrayOrTensor, context: NdarrayOrTensor, structure: int, num_structures: int) -> torch.Tensor:
    """Stage 2's input: ``[2 + S, D, H, W]`` float32 = the windowed CT, stage 1's probability map of the structure,
    and the structure's one-hot code broadcast as ``S`` constant channels.

    Args:
        image: ``[1, D, H, W]`` CT in stage 1's window (0..1).
        context: ``[1, D, H, W]`` stage 1's probability of the structure on the same voxels.
        structure: the structure's index (0-based, the order of the bundle's ``structures``).
        num_structures: ``S``.

    Raises:
        ValueError: shapes differ or are not one channel, or ``structure`` is not in ``0..S-1``.
    """
    img = torch.as_tensor(image.as_tensor() if isinstance(image, MetaTensor) else image, dtype=torch.float32)
    ctx = torch.as_tensor(context.as_tensor() if isinstance(context, MetaTensor) else context, dtype=torch.float32)
    if img.ndim != 4 or img.shape[0] != 1 or tuple(ctx.shape) != tuple(img.shape):
        raise ValueError(
            f"expected a one-channel image [1, D, H, W] and a context of the same shape, got {tuple(img.shape)} and "
            f"{tuple(ctx.shape)}"
        )
    s = int(num_structures)
    index = int(structure)
    if not 0 <= index < s:
        raise ValueError(f"expected a structure index in 0..{s - 1}, got {structure!r}")
    out = torch.zeros(2 + s, *img.shape[1:], dtype=torch.float32, device=img.device)
    out[0] = img[0]
    out[1] = ctx[0].to(img.device)
    out[2 + index] = 1.0
    return out


class CascadeInputsd(MapTransform):
    """Dictionary transform that puts stage 2's input (:func:`cascade_inputs`) under the image key: training crops
    ``{"image": [1, ...], "context": [1, ...], "structure_index": i}`` -> ``image`` ``[2 + S, ...]``.

    Args:
        keys: the image key(s) (one-channel, windowed).
        context_key: stage 1's probability map of the structure, same shape.
        structure_key: the structure's 0-based index.
        num_structures: ``S``.
        allow_missing_keys: skip missing keys.
    """

    def __init__(
        self,
        keys: KeysCollection = "image",
        context_key: str = "context",
        structure_key: str = "structure_index",
        num_structures: int = 5,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.context_key = context_key
        self.structure_key = structure_key
        self.num_structures = int(num_structures)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            out = cascade_inputs(image, d[self.context_key], int(d[self.structure_key]), self.num_structures)
            d[key] = MetaTensor(out, meta=dict(image.meta)) if isinstance(image, MetaTensor) else out
        return d


def load_refine_network(network: torch.nn.Module, ckpt_path: str | os.PathLike, device: Any = "cpu") -> torch.nn.Module:
    """Stage 2 with its trained weights (``weights_only``), on ``device``, in eval mode.

    Raises:
        FileNotFoundError: ``ckpt_path`` does not exist (names it, and how to make it).
        monai_glue.CheckpointError: the file is unreadable or made for another configuration.
    """
    from monai_glue.checkpoint import load_checkpoint, load_state_dict_checked

    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"expected the cascade's stage-2 weights at {path} (cascade is on), got no such file: train them with "
            "configs/train_refine.json (the bundle README, 'Cascade'), or run with --cascade false"
        )
    load_state_dict_checked(network, load_checkpoint(path, map_location=device, key="model"), f"checkpoint {path}")
    return network.to(device).eval()


# ------------------------------------------------------------------------------------------------ the cascade
class CascadeRefine:
    """Refine the coarse label map of every structure called present with stage 2, in boxes at a fine spacing.

    Args:
        network: stage 2: ``[B, 2 + S, *roi]`` -> ``[B, 1, *roi]`` logits (a MONAI ``BasicUNet``).
        num_structures: ``S``, stage 1's structures (the one-hot code's length).
        fine_spacing: stage 2's voxel size (mm), one value or one per axis of the orientated grid.
        margin_mm: world distance added around each coarse mask's box.
        roi_size: the largest sliding-window patch (fine voxels); a box side above it is split into the fewest
            windows of equal size, a side below it gets one window of its own size, both rounded up to
            ``roi_multiple`` (:meth:`patch_size`); the box is grown to whole patches (:meth:`fit_to_patches`).
        roi_multiple: what every patch side is a multiple of (``16``: a ``BasicUNet``'s four poolings stay exact).
        sw_batch_size: patches per forward pass.
        overlap: sliding-window overlap (``0``: the patches tile the box, each fine voxel is predicted once).
        blend_mode: ``"constant"`` or ``"gaussian"`` (MONAI's ``sliding_window_inference`` ``mode``; the same with
            ``overlap=0``).
        threshold: fine probability a voxel must exceed to belong to the structure.
        a_min, a_max, b_min, b_max, clip: stage 1's CT window (:class:`~monai_sadaan.transforms.CTWindow`).
        device: where stage 2 runs (``None``: the network's device).
        per_component: one box per connected component of a coarse mask (:func:`component_boxes`: a mask painted
            in two places gets two boxes, not one spanning both); ``False``: one box around the whole mask.
        min_component_ml: with ``per_component``, the volume a component other than the largest needs for a box;
            smaller specks are neither refined nor painted.
        num_threads: torch's intra-op threads while the cascade runs (restored after): ``None`` leaves them,
            ``0`` takes every core the process may use.

    ``__call__(image, record, probs, present, label_values, label_map)`` returns the refined ``[X, Y, Z]`` label map
    (a new array of ``label_map``'s dtype); :attr:`last_boxes` keeps ``{label value: [FineBox, ...]}`` of the last
    call (the boxes stage 2 ran on).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        num_structures: int,
        fine_spacing: float | Sequence[float] = DEFAULT_FINE_SPACING,
        margin_mm: float = DEFAULT_MARGIN_MM,
        roi_size: Sequence[int] | int = (96, 96, 96),
        roi_multiple: int = 16,
        sw_batch_size: int = 1,
        overlap: float = 0.0,
        blend_mode: str = "constant",
        threshold: float = 0.5,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        device: Any = None,
        per_component: bool = True,
        min_component_ml: float = DEFAULT_MIN_COMPONENT_ML,
        num_threads: int | None = None,
    ) -> None:
        from monai_sadaan.transforms.intensity.array import CTWindow

        self.network = network
        self.num_structures = int(num_structures)
        self.fine_spacing = fine_spacing
        self.margin_mm = float(margin_mm)
        roi = (int(roi_size),) * 3 if isinstance(roi_size, (int, np.integer)) else tuple(int(r) for r in roi_size)
        if len(roi) != 3 or min(roi) < 1:
            raise ValueError(f"expected roi_size as one or three positive integers, got {roi_size!r}")
        self.roi_size = roi
        if int(roi_multiple) < 1:
            raise ValueError(f"expected roi_multiple >= 1, got {roi_multiple!r}")
        self.roi_multiple = int(roi_multiple)
        if int(sw_batch_size) < 1 or not 0.0 <= float(overlap) < 1.0 or blend_mode not in ("constant", "gaussian"):
            raise ValueError(
                f"expected sw_batch_size >= 1, 0 <= overlap < 1 and blend_mode 'constant' or 'gaussian', got "
                f"{sw_batch_size!r}, {overlap!r} and {blend_mode!r}"
            )
        self.sw_batch_size = int(sw_batch_size)
        self.overlap = float(overlap)
        self.blend_mode = blend_mode
        self.threshold = float(threshold)
        self.window = CTWindow(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=np.float32)
        # CTWindow = clip(scale * HU + offset, b_min, b_max) = scale * clip(HU, a_min, a_max) + offset where
        # b_min < b_max: a linear map commutes with linear interpolation, so only the clip runs on the voxels read
        scale = (float(b_max) - float(b_min)) / (float(a_max) - float(a_min))
        self._window_affine = (
            (float(a_min), float(a_max), scale, float(b_min) - float(a_min) * scale)
            if clip and float(b_min) < float(b_max) else None
        )  # fmt: skip
        self.device = device
        self.per_component = bool(per_component)
        if not float(min_component_ml) >= 0:
            raise ValueError(f"expected min_component_ml >= 0, got {min_component_ml!r}")
        self.min_component_ml = float(min_component_ml)
        if num_threads is not None and int(num_threads) < 0:
            raise ValueError(
                f"expected num_threads None, 0 (every core the process may use) or > 0, got {num_threads!r}"
            )
        self.num_threads = None if num_threads is None else int(num_threads)
        self.last_boxes: dict[int, list[FineBox]] = {}

    def _device(self) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        param = next(iter(self.network.parameters()), None)
        return param.device if param is not None else torch.device("cpu")

    def box_inputs(self, image: Any, record: Any, probs: torch.Tensor, index: int, box: FineBox) -> torch.Tensor:
        """``[2 + S, *box.shape]``: stage 2's input for structure ``index`` in ``box`` of the orientated input grid.

        Args:
            image: ``[1, X, Y, Z]`` the input CT (HU) as read.
            record: its :class:`~monai_sadaan.transforms.spatial.functional.NetworkGridRecord`.
            probs: ``[S, *grid]`` stage 1's probabilities on the network's grid (or on the input grid).
        """
        oriented = record.oriented_view(to_numpy(image), channel_first=True)
        if self._window_affine is None:
            ct = resample_to_box(oriented, box, window=self.window)
        else:  # the window is a clip then an affine map: clip the HU read, scale the (fewer) fine samples
            a_min, a_max, scale, offset = self._window_affine
            ct = resample_to_box(oriented, box, window=lambda x: np.clip(x, a_min, a_max, out=x))
            ct.mul_(scale).add_(offset)
        grid = tuple(int(s) for s in probs.shape[1:])
        if grid == tuple(record.input_shape):  # probabilities already on the input grid
            context = resample_to_box(record.oriented_view(to_numpy(probs), channel_first=True)[index : index + 1], box)
        else:
            scale = [g / n for g, n in zip(grid, record.oriented_shape)]
            context = resample_to_box(probs[index : index + 1], box, scale=scale)
        return cascade_inputs(ct, context, index, self.num_structures)

    def patch_size(self, box_shape: Sequence[int]) -> tuple[int, int, int]:
        """The sliding-window patch for a box: per axis, the box's side split into the fewest windows of at most
        ``roi_size``, each rounded up to ``roi_multiple`` (balanced: a side of 130 with ``roi_size`` 96 gets two
        windows of 80, not two of 96; a side smaller than ``roi_size`` one window of its own size), and at least two
        multiples (a ``BasicUNet``'s instance norm needs more than one voxel after its four poolings)."""
        m = self.roi_multiple
        out = []
        for r, n in zip(self.roi_size, box_shape):
            windows = -(-int(n) // r)
            out.append(min(r, max(2 * m, -(-(-(-int(n) // windows)) // m) * m)))
        return out[0], out[1], out[2]

    def fit_to_patches(self, box: FineBox, grid_shape: Sequence[int]) -> FineBox:
        """``box`` grown by whole fine voxels to a whole number of its patches (:meth:`patch_size`) per axis, so that
        stage 2 sees the CT around the structure where it would otherwise see padding, at no extra cost. The box's
        own fine voxels keep their places; the growth is split evenly between both sides, and goes inward at the
        grid's edge (where the grid is large enough)."""
        patch = self.patch_size(box.shape)
        size = [-(-n // t) * t for n, t in zip(box.shape, patch)]
        if tuple(size) == tuple(box.shape):
            return box
        before = []
        for axis, n in enumerate(grid_shape):
            grow, step = size[axis] - box.shape[axis], box.step[axis]
            room_low = int(np.floor((box.low[axis] + 0.5) / step + 1e-6))  # whole fine voxels inside the grid
            room_high = int(np.floor((n - 0.5 - box.high[axis]) / step + 1e-6))
            lowest, highest = max(0, grow - room_high), min(grow, room_low)
            before.append(min(max(grow // 2, lowest), highest) if lowest <= highest else grow // 2)
        step = np.asarray(box.step)
        low = np.asarray(box.low) - np.asarray(before) * step
        high = np.asarray(box.high) + (np.asarray(size) - np.asarray(box.shape) - np.asarray(before)) * step
        shift = np.eye(4)
        shift[:3, 3] = -np.asarray(before, dtype=np.float64)
        return FineBox(
            tuple(float(v) for v in low), tuple(float(v) for v in high), tuple(size),  # type: ignore[arg-type]
            box.step, box.affine @ shift,
        )  # fmt: skip

    def boxes(self, mask: np.ndarray, affine: np.ndarray) -> list[FineBox]:
        """The boxes stage 2 refines for one structure's coarse ``mask`` ``[D, H, W]`` on the orientated grid of
        ``affine``: one per connected component (:func:`component_boxes`), or one around all (:func:`fine_box`) with
        ``per_component=False``; each grown to whole patches (:meth:`fit_to_patches`)."""
        if self.per_component:
            found = component_boxes(mask, affine, self.margin_mm, self.fine_spacing, self.min_component_ml)
        else:
            box = fine_box(mask, affine, self.margin_mm, self.fine_spacing)
            found = [] if box is None else [box]
        return [self.fit_to_patches(box, mask.shape) for box in found]

    @torch.inference_mode()
    def predict_box(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[1, *box]`` stage 2's probabilities over a box (MONAI ``sliding_window_inference``, patches of
        :meth:`patch_size`)."""
        device = self._device()
        logits = sliding_window_inference(
            inputs[None], self.patch_size(inputs.shape[1:]), self.sw_batch_size, self.network, overlap=self.overlap, mode=self.blend_mode,
            sw_device=device, device=torch.device("cpu"),
        )  # fmt: skip
        return torch.sigmoid(torch.as_tensor(logits)[0].float())

    def __call__(
        self,
        image: Any,
        record: Any,
        probs: Any,
        present: Any,
        label_values: Sequence[int],
        label_map: np.ndarray,
    ) -> np.ndarray:
        """
        Args:
            image: ``[1, X, Y, Z]`` the input CT (HU) on the input grid, as read.
            record: how it was put on stage 1's grid (``find_network_grid_record`` of the preprocessed image).
            probs: ``[S, *spatial_size]`` stage 1's probabilities (or ``[S, X, Y, Z]`` on the input grid).
            present: ``[S]`` stage 1's presence calls (> 0.5: present); only these structures are refined.
            label_values: label value of each structure.
            label_map: ``[X, Y, Z]`` stage 1's label map on the input grid.

        Returns:
            ``[X, Y, Z]`` the label map with each refined structure's coarse voxels replaced by its fine mask.

        Raises:
            ValueError: shapes that do not match the record or the structure count.
        """
        with intra_op_threads(usable_cores() if self.num_threads == 0 else self.num_threads):
            return self._refine(image, record, probs, present, label_values, label_map)

    def _refine(
        self, image: Any, record: Any, probs: Any, present: Any, label_values: Sequence[int], label_map: np.ndarray
    ) -> np.ndarray:
        """:meth:`__call__` on the threads it set."""
        p = torch.as_tensor(probs.as_tensor() if isinstance(probs, MetaTensor) else probs).detach().cpu().float()
        values = [int(v) for v in label_values]
        calls = is_called_present(torch.as_tensor(present).detach().cpu().float()).reshape(-1)
        s = self.num_structures
        if p.ndim != 4 or p.shape[0] != s or len(values) != s or calls.numel() != s:
            raise ValueError(
                f"expected {s} structures in the probabilities [S, D, H, W], label values and presence calls, got "
                f"probabilities {tuple(p.shape)}, {len(values)} label values and {calls.numel()} calls"
            )
        labels_in = np.asarray(label_map)
        if tuple(labels_in.shape) != tuple(record.input_shape) or tuple(image.shape[1:]) != tuple(record.input_shape):
            raise ValueError(
                f"expected the image [1, *{tuple(record.input_shape)}] and label map {tuple(record.input_shape)} of "
                f"the input grid, got {tuple(image.shape)} and {tuple(labels_in.shape)}"
            )
        labels = labels_in.copy(order="K")
        view = record.oriented_view(labels)
        affine = oriented_affine(record)
        shape = record.oriented_shape
        refined: list[tuple[int, int, FineBox, torch.Tensor]] = []  # (structure, value, box, fine probabilities)
        self.last_boxes = {}
        for index, value in enumerate(values):
            mask = view == value
            if not bool(calls[index]):
                view[mask] = 0  # called absent: never refined, never painted (stage 1 paints none)
                continue
            boxes = self.boxes(mask, affine)
            view[mask] = 0  # refined: painted by stage 2 only (specks without a box are dropped)
            del mask
            self.last_boxes[value] = boxes
            for box in boxes:
                refined.append((index, value, box, self.predict_box(self.box_inputs(image, record, p, index, box))))
        # write-back, one box at a time on the input grid (only the overlaps of another structure's box are sampled
        # again): a voxel goes to the structure whose probability is highest there, if above the threshold (a tie:
        # the first structure); two boxes of one structure: a voxel either box wins is the structure's
        for index, value, box, fine in refined:
            slices, on_grid = box_to_input_grid(fine, box, shape)
            prob = on_grid[0]
            wins = prob > self.threshold
            for other_index, other_value, other_box, other_fine in refined:
                if other_value == value:
                    continue
                inter, other = box_to_input_grid(other_fine, other_box, shape, region=slices)
                if any(sl.start >= sl.stop for sl in inter):
                    continue
                mine = tuple(slice(sl.start - a.start, sl.stop - a.start) for sl, a in zip(inter, slices))
                beat = prob[mine] > other[0] if other_index < index else prob[mine] >= other[0]
                wins[mine] &= beat
            region = view[slices]
            region[wins.numpy()] = value
        return labels


class CascadeRefined(MapTransform):
    """Dictionary version of :class:`CascadeRefine`: the bundle's post-processing step after
    :class:`~monai_sadaan.transforms.InputGridLabelMapd`.

    Args:
        keys: key of the label map on the input grid (``[1, X, Y, Z]``), replaced by the refined one (same metadata).
        network: stage 2 (loaded, :func:`load_refine_network`); ``None``: the step is off and passes the data on
            unchanged (the bundle's ``cascade`` switch off).
        source_key: the input CT as read (``[1, X, Y, Z]``, kept beside the preprocessed image).
        image_key: the preprocessed image, which carries the record of
            :class:`~monai_sadaan.transforms.CTToNetworkGridd`.
        probability_key: stage 1's probabilities ``[S, ...]`` (network grid, or the input grid).
        presence_key: stage 1's ``[S]`` presence calls.
        label_values: label value of each structure (default ``1..S``).
        num_structures: ``S`` (default: ``len(label_values)``).
        kwargs: the rest of :class:`CascadeRefine` (``fine_spacing``, ``margin_mm``, ``roi_size``, the CT window...).
    """

    def __init__(
        self,
        keys: KeysCollection = "label_map",
        network: torch.nn.Module | None = None,
        source_key: str = "source_image",
        image_key: str = "image",
        probability_key: str = "pred",
        presence_key: str = "presence_calls",
        label_values: Sequence[int] | None = None,
        num_structures: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(keys)
        if label_values is None and num_structures is None:
            raise ValueError("expected label_values or num_structures for the cascade, got neither")
        self.label_values = None if label_values is None else [int(v) for v in label_values]
        s = int(num_structures) if num_structures is not None else len(self.label_values or ())
        self.refiner = None if network is None else CascadeRefine(network, s, **kwargs)
        self.num_structures = s
        self.source_key = source_key
        self.image_key = image_key
        self.probability_key = probability_key
        self.presence_key = presence_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.refiner is None:
            return d
        from monai_sadaan.transforms.spatial.functional import find_network_grid_record

        if self.source_key not in d:
            raise KeyError(
                f"expected the input CT as read under {self.source_key!r} for the cascade (the preprocessing keeps "
                f"it when cascade is on), got keys {sorted(map(str, d))}"
            )
        record = find_network_grid_record(d[self.image_key])
        values = self.label_values or list(range(1, self.num_structures + 1))
        for key in self.key_iterator(d):
            label_map = d[key]
            labels = to_numpy(label_map)
            if labels.ndim != 4 or labels.shape[0] != 1:
                raise ValueError(f"expected a label map [1, X, Y, Z] under {key!r}, got {tuple(labels.shape)}")
            out = self.refiner(
                d[self.source_key], record, d[self.probability_key], d[self.presence_key], values, labels[0]
            )
            refined = torch.from_numpy(out)[None]
            if isinstance(label_map, MetaTensor):
                refined = MetaTensor(refined, meta=dict(label_map.meta))
                refined.affine = label_map.affine
            d[key] = refined
        return d


class KeepSourced(MapTransform):
    """Keep the input CT as read beside the preprocessed one: ``data[source_key] = data[key]``, a reference (no copy),
    placed after ``LoadImaged`` so that :class:`CascadeRefined` finds the voxels the grid transform replaces.

    Args:
        keys: the image key (one).
        source_key: where the reference goes; ``None``: nothing is kept (the bundle's ``cascade`` switch off, so that
            stage 1 alone carries no second volume through the loader).
    """

    def __init__(self, keys: KeysCollection = "image", source_key: str | None = "source_image") -> None:
        super().__init__(keys)
        if len(self.keys) != 1:
            raise ValueError(f"expected one image key to keep, got {list(self.keys)}")
        self.source_key = source_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        if self.source_key is not None:
            d[self.source_key] = d[self.keys[0]]
        return d


CascadeRefineD = CascadeRefineDict = CascadeRefined
KeepSourceD = KeepSourceDict = KeepSourced
CascadeInputsD = CascadeInputsDict = CascadeInputsd
