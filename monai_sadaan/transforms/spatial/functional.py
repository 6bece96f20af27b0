"""The network's grid and back, as functions: what :class:`~monai_sadaan.transforms.CTToNetworkGrid` records and
reads, and the label map and probabilities on the input's grid from probabilities on the network's grid.

SADAAn sees the whole volume at ``spatial_size`` (48³ by default), so a 512 x 512 x 300 CT is orientated, windowed
and resized (trilinear) to the grid, and the network's probabilities are resized back, orientated back and turned
into a label map. Done with whole-volume transforms (``Orientationd``, ``CTWindowd``, ``FitToSpatialSized``, then
``Invertd`` and :class:`~monai_sadaan.transforms.PresenceAwareLabelMapd`) that costs a float32 copy of the
volume on the way in and five float32 probability channels at full resolution on the way out: several GB for one
CT. The bounded-memory path gives **the same values** (tested: equal bit for bit on the CPU):

* :class:`~monai_sadaan.transforms.CTToNetworkGrid` / ``CTToNetworkGridd`` (in ``spatial/array.py``):
  ``Orientation(axcodes)`` -> ``CTWindow`` -> ``FitToSpatialSize(spatial_size, "resize", "trilinear")`` in one
  pass. The input stays in the type it was read in (int16 for most CT); only the voxels that trilinear
  interpolation reads are taken (about two per output voxel and axis: at most 96³ of them for a 48³ grid), through
  views for the orientation, windowed in float32 and interpolated one axis at a time with PyTorch's own linear
  kernel (the 3-D trilinear kernel computes the same nested sums, last axis innermost). Invertible with MONAI's
  ``Invertd``; its record (:class:`NetworkGridRecord`) also serves the label map.
* :func:`input_grid_labels` (used by :class:`~monai_sadaan.transforms.InputGridLabelMapd`): the label map on
  the input's grid, slab by slab, computed only inside the bounding box (on the coarse grid) of each present
  structure's probabilities above ``threshold - 1e-3``: outside it every interpolated probability stays below the
  threshold (the weights are non-negative and sum to one), so the voxel is background either way.
  :func:`input_grid_probabilities` gives the probability maps on the input grid when they are to be written.

Interpolation is ``torch.nn.functional.interpolate(mode="linear", align_corners=False)`` along each axis in turn,
the last (innermost) axis first, which is how the trilinear kernel nests its sums; which input voxels it reads
(and with a non-zero weight) is found by interpolating one-hot probes (:func:`linear_support`), not re-derived.

The checks of what comes in, shared by the SADAAn transforms: :func:`check_volume` (a channel-first 3D volume),
:func:`spatial_size_3d` (a grid size) and :func:`shape_of`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.utils import TraceKeys

from monai_sadaan.networks.presence import is_called_present

__all__ = [
    "NetworkGridRecord",
    "check_volume",
    "find_network_grid_record",
    "input_grid_labels",
    "input_grid_probabilities",
    "interpolate_axis",
    "linear_support",
    "intra_op_threads",
    "one_thread",
    "shape_of",
    "spatial_size_3d",
]

ACTIVE_MARGIN = 1e-3
"""A structure's probability is computed on the input grid only where a coarse probability exceeds
``threshold - ACTIVE_MARGIN``; trilinear interpolation (non-negative weights summing to one, three roundings of
float32) cannot lift values below that over the threshold."""

_RECORDING_CLASS = "CTToNetworkGrid"  # the transform whose applied-operations entry holds a NetworkGridRecord
_SLAB_BYTES = 32 << 20  # float32 working set of one slab of the label map (per structure)


def shape_of(x: Any) -> tuple[int, ...]:
    """``x.shape`` as a tuple of Python ints (for messages and comparisons across numpy and torch)."""
    return tuple(int(s) for s in x.shape)


def spatial_size_3d(spatial_size: Any) -> tuple[int, int, int]:
    """``spatial_size`` as three positive ints ``(D, H, W)``; anything else is refused naming what came."""
    dims = tuple(spatial_size) if isinstance(spatial_size, Sequence) and not isinstance(spatial_size, str) else ()
    if len(dims) != 3 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in dims):
        raise ValueError(f"expected spatial_size as three positive integers (D, H, W), got {spatial_size!r}")
    return (int(dims[0]), int(dims[1]), int(dims[2]))


def check_volume(img: NdarrayOrTensor, what: str = "image") -> None:
    """Raise ``ValueError`` unless ``img`` is a channel-first 3D volume ``(C, D, H, W)``."""
    if not hasattr(img, "shape") or len(img.shape) != 4:
        got = shape_of(img) if hasattr(img, "shape") else type(img).__name__
        raise ValueError(f"expected a channel-first 3D {what} of shape (C, D, H, W), got {got}")


@contextlib.contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """PyTorch on ``threads`` intra-op threads in the calling thread while the block runs, restored after (``None``:
    left as they are). The setting is per thread (OpenMP), so other threads keep theirs."""
    before = torch.get_num_threads()
    if threads is None or int(threads) == before:
        yield
        return
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def one_thread() -> contextlib.AbstractContextManager[None]:
    """PyTorch on one intra-op thread in the calling thread, for the many small and medium operations here.

    Their work is small next to the cost of waking and joining a thread team, and a team stalls whenever one of its
    threads waits for a core (other processes, or the loader's thread beside the model): measured on a busy 2-core
    machine, the label map of a 512 x 512 x 768 CT took 0.95 s on one thread and 5.3 s on two. The bundle runs
    reading and inference side by side instead (:class:`~monai_sadaan.inferers.PrefetchDataLoader`).
    """
    return intra_op_threads(1)


# ---------------------------------------------------------------------------------------------------- 1-D helpers
@functools.lru_cache(maxsize=64)
def linear_support(n_in: int, n_out: int) -> np.ndarray:
    """``[n_in, n_out]`` bool: input index ``i`` enters output index ``o`` with a non-zero weight under
    ``F.interpolate(mode="linear", align_corners=False, size=n_out)``.

    Found by interpolating one-hot probes with PyTorch itself (blocks of 256), so it is the kernel's own choice of
    neighbours and weights, rounding included. The result is read-only and cached.
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"expected positive sizes, got n_in={n_in}, n_out={n_out}")
    out = np.zeros((n_in, n_out), dtype=bool)
    for start in range(0, n_in, 256):
        stop = min(start + 256, n_in)
        probe = torch.zeros(stop - start, 1, n_in)
        probe[torch.arange(stop - start), 0, torch.arange(start, stop)] = 1.0
        w = F.interpolate(probe, size=n_out, mode="linear", align_corners=False)[:, 0]
        out[start:stop] = (w != 0).numpy()
    out.flags.writeable = False
    return out


def interpolate_axis(x: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """Linear interpolation (``align_corners=False``) of ``x`` along ``axis`` to ``size``, with PyTorch's kernel."""
    moved = x.movedim(axis, -1)
    lead = moved.shape[:-1]
    flat = moved.reshape(-1, 1, moved.shape[-1])
    out = F.interpolate(flat, size=size, mode="linear", align_corners=False)
    return out.reshape(*lead, size).movedim(-1, axis)


def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)


# ---------------------------------------------------------------------------------------------------- the record
@dataclass(frozen=True)
class NetworkGridRecord:
    """How a volume was put on the network's grid (stored in the applied-operations record of
    :class:`~monai_sadaan.transforms.CTToNetworkGrid`).

    Attributes:
        input_shape: spatial shape of the input (array order, e.g. nibabel's ``(i, j, k)``).
        flip_axes: input axes flipped for the orientation (flipped first, as MONAI's ``Orientation`` does).
        transpose: ``transpose[k]`` is the input axis that becomes axis ``k`` of the orientated volume.
        spatial_size: the network's grid.
        input_affine: the input's voxel-to-world affine (4x4, float64), as it came.
    """

    input_shape: tuple[int, int, int]
    flip_axes: tuple[int, ...]
    transpose: tuple[int, int, int]
    spatial_size: tuple[int, int, int]
    input_affine: np.ndarray

    @property
    def oriented_shape(self) -> tuple[int, int, int]:
        return tuple(self.input_shape[a] for a in self.transpose)  # type: ignore[return-value]

    def oriented_view(self, array: np.ndarray, channel_first: bool = False) -> np.ndarray:
        """A view of ``array`` (input grid, ``[X, Y, Z]`` or ``[C, X, Y, Z]``) in the orientated order; writing
        into the view writes into ``array``."""
        lead = 1 if channel_first else 0
        view = np.flip(array, axis=[lead + a for a in self.flip_axes]) if self.flip_axes else array
        return view.transpose(*range(lead), *(lead + a for a in self.transpose))

    def as_extra_info(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "flip_axes": list(self.flip_axes),
            "transpose": list(self.transpose),
            "spatial_size": list(self.spatial_size),
            "input_affine": np.asarray(self.input_affine, dtype=np.float64).tolist(),
        }

    @classmethod
    def from_extra_info(cls, info: Mapping[str, Any]) -> NetworkGridRecord:
        def ints(v: Any) -> tuple[int, ...]:
            return tuple(int(x) for x in (v.tolist() if hasattr(v, "tolist") else v))

        return cls(
            input_shape=ints(info["input_shape"]),  # type: ignore[arg-type]
            flip_axes=ints(info["flip_axes"]),
            transpose=ints(info["transpose"]),  # type: ignore[arg-type]
            spatial_size=ints(info["spatial_size"]),  # type: ignore[arg-type]
            input_affine=np.asarray(
                info["input_affine"].tolist() if hasattr(info["input_affine"], "tolist") else info["input_affine"],
                dtype=np.float64,
            ),
        )


def find_network_grid_record(image: Any) -> NetworkGridRecord:
    """The record :class:`~monai_sadaan.transforms.CTToNetworkGrid` left on ``image`` (a MetaTensor from the
    preprocessing).

    Raises:
        ValueError: ``image`` carries no such record (it was not prepared with
            :class:`~monai_sadaan.transforms.CTToNetworkGridd`).
    """
    ops = getattr(image, "applied_operations", None) or []
    for op in reversed(ops):
        if isinstance(op, Mapping) and op.get(TraceKeys.CLASS_NAME) == _RECORDING_CLASS:
            return NetworkGridRecord.from_extra_info(op[TraceKeys.EXTRA_INFO])
    names = [op.get(TraceKeys.CLASS_NAME) for op in ops if isinstance(op, Mapping)]
    raise ValueError(
        "expected the image to carry the record of CTToNetworkGridd (the bundle's preprocessing), got applied "
        f"operations {names}"
    )


# -------------------------------------------------------------------------------------- back to the input grid
def _coarse_probabilities(probs: Any, record: NetworkGridRecord) -> torch.Tensor:
    p = probs.as_tensor() if isinstance(probs, MetaTensor) else torch.as_tensor(probs)
    p = p.detach().to("cpu", torch.float32)
    if p.ndim != 4 or tuple(p.shape[1:]) != record.spatial_size:
        raise ValueError(
            f"expected probabilities of shape (S, {', '.join(map(str, record.spatial_size))}) on the network's grid, "
            f"got {tuple(p.shape)}"
        )
    return p


def _slab_width(shape: Sequence[int], slab_bytes: int) -> int:
    depth, height, _ = shape
    return max(1, int(slab_bytes) // max(1, depth * height * 4))


class _Upsampler:
    """The probabilities of one structure on boxes of the orientated input grid, as the trilinear kernel gives them.

    The last axis is interpolated once, for every coarse row (``[d, W, h]``: a few MB); :meth:`slab` does the other
    two for a range ``[w0, w1)`` of the last axis, inside the box of the outputs there that read a coarse voxel in
    ``active``. Every stage interpolates along the last axis of a contiguous array, and the result comes in
    ``(h, w, d)`` order, so that nothing of the slab's size is transposed.
    """

    def __init__(self, coarse: torch.Tensor, shape: Sequence[int], active: np.ndarray) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.grid = tuple(int(s) for s in coarse.shape)
        self.supports = [linear_support(g, n) for g, n in zip(self.grid, self.shape)]
        self.active = active
        self.first = interpolate_axis(coarse, 2, self.shape[2]).permute(0, 2, 1).contiguous()  # [gd, W, gh]

    def box(self, w0: int, w1: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """``((dlo, dhi), (hlo, hhi))``: the outputs with last-axis index in ``[w0, w1)`` that read an active coarse
        voxel lie in this box (``None``: there are none)."""
        read_w = self.supports[2][:, w0:w1].any(axis=1)
        plane = self.active[:, :, read_w].any(axis=2)  # [gd, gh]
        if not plane.any():
            return None
        out = []
        for axis, coarse_rows in ((0, plane.any(axis=1)), (1, plane.any(axis=0))):
            reached = np.flatnonzero(self.supports[axis][coarse_rows].any(axis=0))
            out.append((int(reached[0]), int(reached[-1]) + 1))
        return out[0], out[1]

    def slab(self, w0: int, w1: int, box: tuple[tuple[int, int], tuple[int, int]]) -> torch.Tensor:
        """``[hhi - hlo, w1 - w0, dhi - dlo]`` probabilities on ``box`` (from :meth:`box`) for ``[w0, w1)``."""
        (dlo, dhi), (hlo, hhi) = box
        rd = torch.from_numpy(_rows(self.supports[0][:, dlo:dhi].any(axis=1)))
        rh = torch.from_numpy(_rows(self.supports[1][:, hlo:hhi].any(axis=1)))
        buf = torch.zeros(len(rd), w1 - w0, self.grid[1])
        buf[:, :, rh] = self.first[rd, w0:w1][:, :, rh]
        step = F.interpolate(buf.reshape(-1, 1, self.grid[1]), size=self.shape[1], mode="linear", align_corners=False)
        step = step.reshape(len(rd), w1 - w0, self.shape[1])[:, :, hlo:hhi]  # [rd, w, h]
        buf = torch.zeros(hhi - hlo, w1 - w0, self.grid[0])
        buf[:, :, rd] = step.permute(2, 1, 0)
        out = F.interpolate(buf.reshape(-1, 1, self.grid[0]), size=self.shape[0], mode="linear", align_corners=False)
        return out.reshape(hhi - hlo, w1 - w0, self.shape[0])[:, :, dlo:dhi]  # [h, w, d]


def input_grid_labels(
    probs: Any,
    record: NetworkGridRecord,
    present: Any,
    label_values: Sequence[int],
    threshold: float = 0.5,
    slab_bytes: int = _SLAB_BYTES,
) -> np.ndarray:
    """The label map on the input grid from probabilities on the network's grid.

    Equal to resizing ``probs`` back (MONAI ``Invertd`` of the preprocessing, trilinear) and taking, per voxel, the
    label of the most probable structure called present when its probability exceeds ``threshold`` (ties: the first
    structure), as :class:`~monai_sadaan.transforms.PresenceAwareLabelMapd` does; computed slab by slab
    (``slab_bytes`` of float32 per structure) inside each present structure's active box only.

    Args:
        probs: ``[S, *spatial_size]`` probabilities on the network's grid.
        record: how the input was put on the grid (:func:`find_network_grid_record`).
        present: ``[S]`` presence calls (> 0.5: present).
        label_values: label value of each structure.
        threshold: probability a voxel's best present structure must exceed.

    Returns:
        ``[X, Y, Z]`` label map on the input grid (uint8, uint16 for values past 255), Fortran-ordered (the NIfTI
        and NRRD order, so the writers need no copy).
    """
    with one_thread():
        coarse = _coarse_probabilities(probs, record)
        return _input_grid_labels(coarse, record, present, label_values, threshold, slab_bytes)


def _input_grid_labels(
    coarse: torch.Tensor,
    record: NetworkGridRecord,
    present: Any,
    label_values: Sequence[int],
    threshold: float,
    slab_bytes: int,
) -> np.ndarray:
    values = [int(v) for v in label_values]
    calls = is_called_present(torch.as_tensor(present).detach().cpu().float()).reshape(-1)
    if len(values) != coarse.shape[0] or calls.numel() != coarse.shape[0]:
        raise ValueError(
            f"expected one label value and one presence call per structure ({coarse.shape[0]}), got "
            f"{len(values)} and {calls.numel()}"
        )
    if any(v < 0 or v > np.iinfo(np.uint16).max for v in values):
        raise ValueError(f"expected label values in 0..65535, got {values}")
    dtype = np.uint8 if max(values, default=0) <= 255 else np.uint16
    labels = np.zeros(record.input_shape, dtype=dtype, order="F")
    view = record.oriented_view(labels)
    shape = record.oriented_shape
    upsamplers: list[tuple[int, _Upsampler]] = []
    for s, value in enumerate(values):
        active = (coarse[s] > threshold - ACTIVE_MARGIN).numpy()
        if bool(calls[s]) and active.any():
            upsamplers.append((value, _Upsampler(coarse[s], shape, active)))
    if not upsamplers:
        return labels
    width = _slab_width(shape, slab_bytes)
    best_buf = torch.empty(shape[1], width, shape[0])  # (h, w, d), reused by every slab
    slab_buf = torch.empty(best_buf.shape, dtype=torch.uint8 if dtype == np.uint8 else torch.int32)
    for w0 in range(0, shape[2], width):
        w1 = min(w0 + width, shape[2])
        boxes = [(value, up, up.box(w0, w1)) for value, up in upsamplers]
        boxes = [(value, up, box) for value, up, box in boxes if box is not None]
        if not boxes:
            continue
        dlo, dhi = min(b[0][0] for _, _, b in boxes), max(b[0][1] for _, _, b in boxes)
        hlo, hhi = min(b[1][0] for _, _, b in boxes), max(b[1][1] for _, _, b in boxes)
        best = best_buf[hlo:hhi, : w1 - w0, dlo:dhi]
        slab = slab_buf[hlo:hhi, : w1 - w0, dlo:dhi]
        best.fill_(threshold)
        slab.zero_()
        for value, up, ((d0, d1), (h0, h1)) in boxes:  # structure order: a tie keeps the first, as argmax does
            p = up.slab(w0, w1, ((d0, d1), (h0, h1)))
            region = best[h0 - hlo : h1 - hlo, :, d0 - dlo : d1 - dlo]
            better = p > region
            torch.maximum(region, p, out=region)
            slab[h0 - hlo : h1 - hlo, :, d0 - dlo : d1 - dlo].masked_fill_(better, value)
        view[dlo:dhi, hlo:hhi, w0:w1] = slab.numpy().transpose(2, 0, 1)
    return labels


def input_grid_probabilities(probs: Any, record: NetworkGridRecord, slab_bytes: int = _SLAB_BYTES) -> np.ndarray:
    """Probabilities on the input grid, ``[S, X, Y, Z]`` float32, equal to MONAI ``Invertd`` of the preprocessing.

    Computed slab by slab into one ``[X, Y, Z, S]`` Fortran-ordered array (the NIfTI order of the probability
    file); the result is a view of it with the structure axis first.
    """
    with one_thread():
        return _input_grid_probabilities(_coarse_probabilities(probs, record), record, slab_bytes)


def _input_grid_probabilities(coarse: torch.Tensor, record: NetworkGridRecord, slab_bytes: int) -> np.ndarray:
    shape = record.oriented_shape
    full = np.empty((*record.input_shape, coarse.shape[0]), dtype=np.float32, order="F")
    width = _slab_width(shape, slab_bytes)
    everywhere = ((0, shape[0]), (0, shape[1]))
    for s in range(coarse.shape[0]):
        view = record.oriented_view(full[..., s])
        up = _Upsampler(coarse[s], shape, np.ones(coarse.shape[1:], dtype=bool))
        for w0 in range(0, shape[2], width):
            w1 = min(w0 + width, shape[2])
            view[:, :, w0:w1] = up.slab(w0, w1, everywhere).numpy().transpose(2, 0, 1)
    return np.moveaxis(full, -1, 0)
