"""Spatial transforms that put a whole volume on the network's grid, invertibly.

SADAAn's position prior covers the whole field of view, so the whole volume goes through the network at
``spatial_size`` (48³ by default):

* :class:`FitToSpatialSize`: any channel-first volume ``[C, D, H, W]`` (image or label map) resized or padded to the
  grid, as MONAI's ``Resize`` / ``ResizeWithPadOrCrop`` do; training and evaluation use it.
* :class:`CTToNetworkGrid`: a CT of any size orientated, windowed and resized to the grid in one pass that reads
  only the voxels trilinear interpolation uses (the bundle's inference; equal, value for value, to
  ``Orientation`` -> :class:`~monai_sadaan.transforms.CTWindow` -> :class:`FitToSpatialSize`). Its way back, the
  label map and probabilities on the input's grid, is in :mod:`monai_sadaan.transforms.spatial.functional`.

Both record what they did on ``MetaTensor`` inputs, so MONAI's ``Invertd`` maps a prediction back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F
from monai.config import NdarrayOrTensor
from monai.data import MetaTensor
from monai.data.meta_obj import get_track_meta
from monai.transforms import InvertibleTransform, Resize, ResizeWithPadOrCrop
from monai.transforms.utils import scale_affine
from monai.utils import SpaceKeys, TraceKeys, TransformBackends

from ..intensity.array import CTWindow
from .functional import NetworkGridRecord, check_volume, interpolate_axis, linear_support, one_thread, spatial_size_3d

__all__ = ["FitToSpatialSize", "CTToNetworkGrid"]


class FitToSpatialSize(InvertibleTransform):
    """Fit a channel-first volume ``[C, D, H, W]`` to the network's grid ``spatial_size``, invertibly.

    SADAAn's position prior covers the whole field of view, so the whole volume goes through the network at
    ``spatial_size``. ``mode="resize"`` rescales with MONAI's :class:`~monai.transforms.Resize` (the aspect ratio
    changes, nothing is lost); ``mode="pad"`` pads or centrally crops with
    :class:`~monai.transforms.ResizeWithPadOrCrop` (voxels keep their size; what is cropped is lost). The
    applied operation is recorded on ``MetaTensor`` inputs, so :meth:`inverse` (and MONAI's ``Invertd``)
    maps a prediction back to the original grid: exactly for padding, by interpolation for resizing.

    Args:
        spatial_size: output spatial size ``(D, H, W)``.
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
        spatial_size: Sequence[int],
        mode: str = "resize",
        interp_mode: str = "trilinear",
        align_corners: bool | None = None,
        pad_mode: str = "constant",
        pad_value: float = 0.0,
    ) -> None:
        dims = spatial_size_3d(spatial_size)
        if mode not in ("resize", "pad"):
            raise ValueError(f"expected mode 'resize' or 'pad', got {mode!r}")
        self.spatial_size = dims
        self.mode = mode
        self.interp_mode = interp_mode
        self.align_corners = align_corners
        self.pad_mode = pad_mode
        self.pad_value = float(pad_value)
        self.resizer = Resize(spatial_size=self.spatial_size, mode=interp_mode, align_corners=align_corners)
        self.padder = ResizeWithPadOrCrop(spatial_size=self.spatial_size, mode=pad_mode)

    def __call__(
        self, img: NdarrayOrTensor, interp_mode: str | None = None, pad_value: float | None = None
    ) -> torch.Tensor:
        """
        Args:
            img: channel-first volume ``[C, D, H, W]``.
            interp_mode: overrides ``self.interp_mode`` for this call (the dictionary version's per-key mode).
            pad_value: overrides ``self.pad_value`` for this call.

        Returns:
            ``[C, *spatial_size]`` tensor (a ``MetaTensor`` that records the operation when meta is tracked).
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
        """Map ``data`` ``[C, *spatial_size]`` back to the grid recorded on it by :meth:`__call__`.

        Raises:
            ValueError: ``data`` is not a ``MetaTensor`` carrying the record of this transform.
        """
        if not isinstance(data, MetaTensor) or not data.applied_operations:
            raise ValueError(
                "expected a MetaTensor that carries the record of FitToSpatialSize, "
                f"got {type(data).__name__} without applied operations"
            )
        transform = self.pop_transform(data)
        inner = transform[TraceKeys.EXTRA_INFO]["inner"]
        data.applied_operations.append(inner)
        inner_xform = self.resizer if transform[TraceKeys.EXTRA_INFO]["method"] == "resize" else self.padder
        return inner_xform.inverse(data)


def _orientation(
    affine: np.ndarray, shape: Sequence[int], axcodes: str, labels: Any
) -> tuple[list[int], list[int], np.ndarray]:
    """``(flip_axes, transpose, xform)`` of MONAI's ``Orientation(axcodes, labels)`` for a 3-D volume: flip the
    input axes ``flip_axes``, then ``transpose``; the new affine is ``affine @ xform``."""
    src = nib.io_orientation(affine)
    dst = nib.orientations.axcodes2ornt(axcodes[:3], labels=labels)
    if len(dst) < 3:
        raise ValueError(f"expected axcodes for 3 spatial axes, got {axcodes!r}")
    ornt = nib.orientations.ornt_transform(src, dst)
    xform = nib.orientations.inv_ornt_aff(ornt, tuple(int(s) for s in shape))
    flip_axes = [int(ax) for ax, flip in enumerate(ornt[:, 1]) if flip == -1]
    transpose = [int(a) for a in np.argsort(ornt[:, 0])]
    return flip_axes, transpose, xform


def _as_numpy_view(img: NdarrayOrTensor) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        t = img.as_tensor() if isinstance(img, MetaTensor) else img
        return t.detach().cpu().numpy()
    return np.asarray(img)


class CTToNetworkGrid(InvertibleTransform):
    """Orientate, window and resize a CT ``[C, X, Y, Z]`` to the network's grid, reading only what is needed.

    Equal, value for value, to ``Orientation(axcodes)`` -> ``CTWindow(a_min, a_max, b_min, b_max, clip)`` on the
    float32 volume -> ``FitToSpatialSize(spatial_size, mode="resize", interp_mode="trilinear")``, without a float32
    copy of the volume (see :mod:`monai_sadaan.transforms.spatial.functional`). The input may be any real type
    (int16 as read is best); a MetaTensor gives the orientation through its affine (a plain array: taken as already
    orientated) and gets a record that :meth:`inverse` (MONAI's ``Invertd``) and
    :func:`~monai_sadaan.transforms.input_grid_labels` use.

    Args:
        spatial_size: the network's grid ``(D, H, W)``.
        axcodes: orientation of the network's grid (``"RAS"``).
        labels: MONAI ``Orientation``'s ``labels`` (``None``: nibabel's, or LPS ones for a MetaTensor in LPS space).
        a_min, a_max, b_min, b_max, clip: the CT window (see :class:`~monai_sadaan.transforms.CTWindow`).
    """

    def __init__(
        self,
        spatial_size: Sequence[int],
        axcodes: str = "RAS",
        labels: Any = None,
        a_min: float = -175.0,
        a_max: float = 250.0,
        b_min: float = 0.0,
        b_max: float = 1.0,
        clip: bool = True,
    ) -> None:
        dims = spatial_size_3d(spatial_size)
        if not isinstance(axcodes, str) or len(axcodes) != 3:
            raise ValueError(f"expected axcodes of three letters (e.g. 'RAS'), got {axcodes!r}")
        self.spatial_size = dims
        self.axcodes = axcodes
        self.labels = labels
        self.window = CTWindow(a_min=a_min, a_max=a_max, b_min=b_min, b_max=b_max, clip=clip, dtype=np.float32)

    def record_for(self, img: NdarrayOrTensor) -> tuple[NetworkGridRecord, np.ndarray]:
        """``(record, xform)`` for ``img``: how it is orientated, and the orientation's affine update."""
        shape = tuple(int(s) for s in img.shape[1:])
        if isinstance(img, MetaTensor):
            affine = img.peek_pending_affine().detach().cpu().numpy().astype(np.float64)
            labels = self.labels
            if labels is None and "space" in img.meta and SpaceKeys(img.meta["space"]) == SpaceKeys.LPS:
                labels = (("R", "L"), ("A", "P"), ("I", "S"))  # as MONAI's Orientation for LPS tensors
            flip_axes, transpose, xform = _orientation(affine, shape, self.axcodes, labels)
        else:
            affine = np.eye(4)
            flip_axes, transpose, xform = [], [0, 1, 2], np.eye(4)
        record = NetworkGridRecord(
            shape, tuple(flip_axes), tuple(transpose), self.spatial_size, affine  # type: ignore[arg-type]
        )
        return record, xform

    def __call__(self, img: NdarrayOrTensor) -> torch.Tensor:
        """
        Args:
            img: channel-first volume ``[C, X, Y, Z]`` (MetaTensor for the orientation and the record).

        Returns:
            ``[C, *spatial_size]`` float32 (a MetaTensor with the grid's affine and the record when meta is tracked).
        """
        check_volume(img, "volume")
        if any(int(s) < 1 for s in img.shape):
            raise ValueError(f"expected a non-empty volume, got shape {tuple(img.shape)}")
        record, xform = self.record_for(img)
        oriented = record.oriented_view(_as_numpy_view(img), channel_first=True)  # views only
        with one_thread():
            grid = self._fit(oriented)
        if not (get_track_meta() and isinstance(img, MetaTensor)):
            return grid
        out = MetaTensor(grid, meta=dict(img.meta), applied_operations=list(img.applied_operations))
        out.affine = img.peek_pending_affine()
        grid_affine = xform @ scale_affine(record.oriented_shape, self.spatial_size, align_corners=False)
        self.push_transform(
            out, sp_size=self.spatial_size, affine=grid_affine, orig_size=record.input_shape,
            extra_info=record.as_extra_info(),
        )  # fmt: skip
        return out

    def _fit(self, oriented: np.ndarray) -> torch.Tensor:
        """Window and resize the orientated view ``[C, D, H, W]``, reading only the voxels the kernel uses."""
        channels, *shape = oriented.shape
        supports = [linear_support(n, m) for n, m in zip(shape, self.spatial_size)]
        needed = [np.flatnonzero(s.any(axis=1)) for s in supports]
        picked = oriented[np.ix_(range(channels), *needed)]  # [C, nd, nh, nw], a copy of at most (2 * grid)^3
        values = self.window(torch.from_numpy(np.asarray(picked, dtype=np.float32)))  # as LoadImaged(float32)
        values = torch.as_tensor(values, dtype=torch.float32)
        (depth, height, width), (gd, gh, gw) = shape, self.spatial_size
        nd, nh, nw = needed
        # the trilinear kernel's nesting: last axis innermost; unread positions stay 0 (never weighted)
        buf = torch.zeros(channels, len(nd), len(nh), width)
        buf[..., torch.from_numpy(nw)] = values
        step = interpolate_axis(buf, 3, gw)  # [C, nd, nh, gw]
        buf = torch.zeros(channels, len(nd), height, gw)
        buf[:, :, torch.from_numpy(nh)] = step
        step = interpolate_axis(buf, 2, gh)  # [C, nd, gh, gw]
        buf = torch.zeros(channels, depth, gh, gw)
        buf[:, torch.from_numpy(nd)] = step
        return interpolate_axis(buf, 1, gd).contiguous()  # [C, gd, gh, gw]

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        """Map ``data`` ``[C, *spatial_size]`` back to the input grid: trilinear resize to the orientated shape,
        orientation undone, the input's affine restored (what MONAI's ``Invertd`` calls)."""
        if not isinstance(data, MetaTensor) or not data.applied_operations:
            raise ValueError(
                "expected a MetaTensor that carries the record of CTToNetworkGrid, "
                f"got {type(data).__name__} without applied operations"
            )
        transform = self.pop_transform(data)
        record = NetworkGridRecord.from_extra_info(transform[TraceKeys.EXTRA_INFO])
        x = data.as_tensor().float()
        size = record.oriented_shape
        if tuple(x.shape[1:]) != size:
            x = F.interpolate(x[None], size=size, mode="trilinear", align_corners=False)[0]
        x = x.permute(0, *(1 + int(a) for a in np.argsort(record.transpose)))
        if record.flip_axes:
            x = torch.flip(x, dims=[1 + a for a in record.flip_axes])
        out = MetaTensor(x, meta=dict(data.meta), applied_operations=list(data.applied_operations))
        out.affine = torch.as_tensor(record.input_affine, dtype=torch.float64)
        return out
