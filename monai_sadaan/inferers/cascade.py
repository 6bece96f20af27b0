"""The absence-aware cascade: SADAAn decides what is present on the whole view, a plain network refines it.

Stage 1 (SADAAn) sees the whole field of view at ``spatial_size`` (48³: about 8 mm per voxel for a clinical CT), so
its masks written back on the input grid are coarse. Stage 2 is a plain MONAI network (``BasicUNet``) that
segments **one** structure inside a box at a fine spacing (1.5 mm by default). For every structure stage 1 calls
present (the call of :mod:`monai_sadaan.networks.presence`, never decided again here):

1. the box of its coarse mask on the input grid, plus ``margin_mm`` of world distance on every side
   (:func:`fine_box`), on the input grid orientated as stage 1 orientates it (``RAS``);
2. only that box of the input image is windowed (stage 1's CT window) and resampled to the fine spacing
   (:func:`resample_to_box`), with stage 1's probability map of the structure resampled into the same box as
   context and the structure's one-hot code as constant channels (:func:`cascade_inputs`);
3. MONAI's ``sliding_window_inference`` runs stage 2 over the box (patches of ``roi_size``);
4. the fine probabilities are resampled onto the input voxels inside the box (:func:`box_to_input_grid`),
   thresholded, and written into the label map in place of the structure's coarse voxels; where two refined
   structures claim a voxel, the higher probability wins (a tie: the first structure).

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

from monai_sadaan.io.nifti import to_numpy

__all__ = [
    "DEFAULT_FINE_SPACING",
    "DEFAULT_MARGIN_MM",
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
    "fine_box",
    "load_refine_network",
    "oriented_affine",
    "resample_to_box",
]

DEFAULT_FINE_SPACING = 1.5
"""Stage 2's voxel size (mm), the spacing TotalSegmentator and nnU-Net segment abdominal CT at."""

DEFAULT_MARGIN_MM = 15.0
"""World distance (mm) added on every side of a coarse mask's box: stage 1's masks are about one 8 mm voxel off."""


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
    a = np.asarray(affine, dtype=np.float64)
    if m.ndim != 3 or a.shape != (4, 4):
        raise ValueError(f"expected a 3-D mask and a 4x4 affine, got shapes {m.shape} and {a.shape}")
    spacing = np.linalg.norm(a[:3, :3], axis=0)
    fine = np.broadcast_to(np.asarray(fine_spacing, dtype=np.float64), (3,))
    if not (spacing > 0).all() or not (fine > 0).all() or not float(margin_mm) >= 0:
        raise ValueError(
            f"expected positive grid and fine spacings and a margin >= 0 mm, got grid spacing {spacing.tolist()}, "
            f"fine spacing {fine.tolist()}, margin {margin_mm!r}"
        )
    if not m.any():
        return None
    low, high = np.zeros(3), np.zeros(3)
    for axis in range(3):
        rows = np.flatnonzero(m.any(axis=tuple(i for i in range(3) if i != axis)))
        pad = float(margin_mm) / spacing[axis]
        low[axis] = max(-0.5, rows[0] - 0.5 - pad)
        high[axis] = min(m.shape[axis] - 0.5, rows[-1] + 0.5 + pad)
    step = fine / spacing
    shape = tuple(max(1, int(np.ceil((high[i] - low[i]) / step[i] - 1e-6))) for i in range(3))
    first = np.array([0.5 * (low[i] + high[i]) - 0.5 * (shape[i] - 1) * step[i] for i in range(3)])
    box_affine = a @ np.block([[np.diag(step), first[:, None]], [np.zeros((1, 3)), np.ones((1, 1))]])
    return FineBox(
        tuple(float(v) for v in low), tuple(float(v) for v in high), shape,  # type: ignore[arg-type]
        tuple(float(v) for v in step), box_affine,  # type: ignore[arg-type]
    )  # fmt: skip


def _linear_along(x: torch.Tensor, axis: int, coords: np.ndarray) -> torch.Tensor:
    """``x`` linearly interpolated along ``axis`` at ``coords`` (voxel coordinates, clamped to the edge voxels,
    as ``F.interpolate(align_corners=False)`` clamps)."""
    n = x.shape[axis]
    c = np.clip(np.asarray(coords, dtype=np.float64), 0.0, n - 1)
    i0 = np.floor(c).astype(np.int64)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(c)
    w = torch.from_numpy((c - i0).astype(np.float32)).reshape(shape)
    lo = x.index_select(axis, torch.from_numpy(i0))
    hi = x.index_select(axis, torch.from_numpy(i1))
    return torch.lerp(lo, hi, w)


def _resample(volume: Any, coords: Sequence[np.ndarray], window: Any = None) -> torch.Tensor:
    """``[C, len(c0), len(c1), len(c2)]`` float32: trilinear samples of ``volume`` ``[C, D, H, W]`` (array or tensor)
    at the outer product of the voxel coordinates ``coords``. Only the rows the samples read are copied (then
    passed through ``window``), so memory follows the samples, not the volume."""
    rows = []
    for axis, c in enumerate(coords):
        n = int(volume.shape[axis + 1])
        lo = int(np.clip(np.floor(np.min(c)), 0, n - 1))
        hi = int(np.clip(np.ceil(np.max(c)), 0, n - 1)) + 1
        rows.append((lo, hi))
    (d0, d1), (h0, h1), (w0, w1) = rows
    block = volume[:, d0:d1, h0:h1, w0:w1]
    if isinstance(block, MetaTensor):
        block = block.as_tensor()
    block = torch.as_tensor(np.ascontiguousarray(block) if isinstance(block, np.ndarray) else block.contiguous())
    block = block.detach().to("cpu", torch.float32)
    if window is not None:
        block = torch.as_tensor(window(block), dtype=torch.float32)
    for axis in (3, 2, 1):  # the last axis innermost, as the trilinear kernel nests its sums
        block = _linear_along(block, axis, np.asarray(coords[axis - 1]) - rows[axis - 1][0])
    return block


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


def box_to_input_grid(values: torch.Tensor, box: FineBox, grid_shape: Sequence[int]) -> tuple[tuple[slice, ...], torch.Tensor]:
    """Fine values ``[C, *box.shape]`` sampled (trilinear) at the centres of the grid voxels inside ``box``.

    Returns:
        ``(slices, samples)``: the grid voxels (:meth:`FineBox.grid_slices`) and ``[C, *their shape]`` float32.
    """
    slices = box.grid_slices(grid_shape)
    coords = []
    for axis, sl in enumerate(slices):
        first = box.centres(axis)[0]
        coords.append((np.arange(sl.start, sl.stop, dtype=np.float64) - first) / box.step[axis])
    return slices, _resample(values, coords)


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
    code = torch.zeros(s, *img.shape[1:], dtype=torch.float32)
    code[index] = 1.0
    return torch.cat([img, ctx.to(img.device), code.to(img.device)], dim=0)


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
    """Refine the coarse label map of every structure called present with stage 2, in a box at a fine spacing.

    Args:
        network: stage 2: ``[B, 2 + S, *roi]`` -> ``[B, 1, *roi]`` logits (a MONAI ``BasicUNet``).
        num_structures: ``S``, stage 1's structures (the one-hot code's length).
        fine_spacing: stage 2's voxel size (mm), one value or one per axis of the orientated grid.
        margin_mm: world distance added around each coarse mask's box.
        roi_size: sliding-window patch (fine voxels); a box smaller than it along an axis gets a patch of the box's
            size there, rounded up to ``roi_multiple`` (a kidney's box is not padded to a liver's patch).
        roi_multiple: what every patch side is a multiple of (``16`` for a ``BasicUNet``'s four poolings).
        sw_batch_size: patches per forward pass.
        overlap: sliding-window overlap.
        blend_mode: ``"gaussian"`` or ``"constant"`` (MONAI's ``sliding_window_inference`` ``mode``).
        threshold: fine probability a voxel must exceed to belong to the structure.
        a_min, a_max, b_min, b_max, clip: stage 1's CT window (:class:`~monai_sadaan.transforms.CTWindow`).
        device: where stage 2 runs (``None``: the network's device).

    ``__call__(image, record, probs, present, label_values, label_map)`` returns the refined ``[X, Y, Z]`` label map
    (a new array of ``label_map``'s dtype); :attr:`last_boxes` keeps ``{label value: FineBox}`` of the last call.
    """

    def __init__(
        self,
        network: torch.nn.Module,
        num_structures: int,
        fine_spacing: float | Sequence[float] = DEFAULT_FINE_SPACING,
        margin_mm: float = DEFAULT_MARGIN_MM,
        roi_size: Sequence[int] | int = (64, 64, 64),
        roi_multiple: int = 16,
        sw_batch_size: int = 1,
        overlap: float = 0.25,
        blend_mode: str = "gaussian",
        threshold: float = 0.5,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
        device: Any = None,
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
        self.sw_batch_size = int(sw_batch_size)
        self.overlap = float(overlap)
        self.blend_mode = blend_mode
        self.threshold = float(threshold)
        self.window = CTWindow(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=np.float32)
        self.device = device
        self.last_boxes: dict[int, FineBox] = {}

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
        ct = resample_to_box(oriented, box, window=self.window)
        grid = tuple(int(s) for s in probs.shape[1:])
        if grid == tuple(record.input_shape):  # probabilities already on the input grid
            context = resample_to_box(record.oriented_view(to_numpy(probs), channel_first=True)[index : index + 1], box)
        else:
            scale = [g / n for g, n in zip(grid, record.oriented_shape)]
            context = resample_to_box(probs[index : index + 1], box, scale=scale)
        return cascade_inputs(ct, context, index, self.num_structures)

    def patch_size(self, box_shape: Sequence[int]) -> tuple[int, int, int]:
        """The sliding-window patch for a box: ``roi_size``, or the box's size rounded up to ``roi_multiple`` where
        that is smaller."""
        m = self.roi_multiple
        return tuple(min(r, -(-int(n) // m) * m) for r, n in zip(self.roi_size, box_shape))  # type: ignore[return-value]

    @torch.no_grad()
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
        from monai_sadaan.networks.presence import is_called_present

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
        refined: list[tuple[int, tuple[slice, ...], torch.Tensor]] = []
        self.last_boxes = {}
        for index, value in enumerate(values):
            if not bool(calls[index]):
                labels[labels == value] = 0  # called absent: never refined, never painted (stage 1 paints none)
                continue
            box = fine_box(view == value, affine, self.margin_mm, self.fine_spacing)
            if box is None:
                continue
            self.last_boxes[value] = box
            fine = self.predict_box(self.box_inputs(image, record, p, index, box))
            slices, on_grid = box_to_input_grid(fine, box, shape)
            refined.append((value, slices, on_grid[0]))
        for value, slices, _ in refined:
            region = view[slices]
            region[region == value] = 0
        for i, (value, slices, prob) in enumerate(refined):
            wins = prob > self.threshold
            for j, (_, other_slices, other) in enumerate(refined):
                if j == i:
                    continue
                inter = [slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(slices, other_slices)]
                if any(sl.start >= sl.stop for sl in inter):
                    continue
                mine = tuple(slice(sl.start - a.start, sl.stop - a.start) for sl, a in zip(inter, slices))
                theirs = tuple(slice(sl.start - b.start, sl.stop - b.start) for sl, b in zip(inter, other_slices))
                beat = prob[mine] > other[theirs] if j < i else prob[mine] >= other[theirs]
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
