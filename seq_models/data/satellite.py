"""Satellite frames from Zarr or NetCDF through xarray, and history/target windows for IAM4VP.

Frames are a ``(time, channel, y, x)`` array with values in ``[0, 1]`` and NaN where there is no data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from monai_sadaan.utils import atomic_directory, atomic_write_with

__all__ = ["FRAME_DIMS", "SatelliteWindowDataset", "check_frames", "open_satellite_frames", "write_frames"]

FRAME_DIMS = ("time", "channel", "y", "x")


def check_frames(frames: xr.DataArray, num_channels: int | None = None, source: str = "frames") -> xr.DataArray:
    """Return ``frames`` transposed to ``(time, channel, y, x)`` after checking dims, channels and value range.

    Raises:
        ValueError: missing dims, another channel count, or values outside ``[0, 1]`` (NaN is allowed).
    """
    missing = [d for d in FRAME_DIMS if d not in frames.dims]
    if missing or frames.ndim != 4:
        raise ValueError(f"expected {source} with dims {FRAME_DIMS}, got dims {tuple(frames.dims)}")
    frames = frames.transpose(*FRAME_DIMS)
    if num_channels is not None and frames.sizes["channel"] != num_channels:
        raise ValueError(f"expected {num_channels} channels in {source}, got {frames.sizes['channel']}")
    lo, hi = float(frames.min(skipna=True)), float(frames.max(skipna=True))
    if not (np.isnan(lo) or (lo >= 0.0 and hi <= 1.0)):
        raise ValueError(f"expected values scaled to [0, 1] (NaN where missing) in {source}, got range [{lo:.4g}, {hi:.4g}]")
    return frames


def open_satellite_frames(
    path: str | os.PathLike, variable: str | None = None, channels: Sequence[str] | None = None, num_channels: int | None = None
) -> xr.DataArray:
    """Open frames from a Zarr store (a folder or ``*.zarr``) or a NetCDF file (``*.nc``), lazily.

    Args:
        path: Zarr store or NetCDF file.
        variable: data variable; ``None`` takes the only one (or ``"data"``).
        channels: channel names to select, in this order.
        num_channels: expected channel count after selection (checked).

    Returns:
        ``xarray.DataArray`` ``(time, channel, y, x)``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"expected a Zarr store or NetCDF file, got a missing path: {p}")
    if p.is_dir() or p.suffix == ".zarr":
        ds = xr.open_zarr(p, consolidated=False)
    elif p.suffix in (".nc", ".nc4", ".h5", ".netcdf"):
        ds = xr.open_dataset(p, engine="h5netcdf")
    else:
        raise ValueError(f"expected a Zarr store (folder, .zarr) or NetCDF file (.nc), got {p.name}")
    if variable is None:
        names = list(ds.data_vars)
        variable = "data" if "data" in names else (names[0] if len(names) == 1 else None)
        if variable is None:
            raise ValueError(f"expected one data variable in {p} (or pass variable=), got {names}")
    if variable not in ds:
        raise KeyError(f"expected variable {variable!r} in {p}, got {list(ds.data_vars)}")
    frames = ds[variable]
    if channels is not None:
        frames = frames.sel(channel=list(channels))
    return check_frames(frames, num_channels, source=str(p))


def write_frames(frames: xr.DataArray | xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a DataArray / Dataset atomically as Zarr (``*.zarr``) or NetCDF (``*.nc``). Returns the path."""
    p = Path(path)
    ds = frames.to_dataset() if isinstance(frames, xr.DataArray) else frames
    if "channel" in ds.coords and ds["channel"].dtype.kind == "U":  # variable-length strings: portable in Zarr v3
        ds = ds.assign_coords(channel=ds["channel"].values.astype(object))
    if p.suffix == ".zarr":
        with atomic_directory(p) as tmp:
            ds.to_zarr(tmp, mode="w", consolidated=False)
    elif p.suffix == ".nc":
        with atomic_write_with(p) as tmp:
            ds.to_netcdf(tmp, engine="h5netcdf")
    else:
        raise ValueError(f"expected an output path ending in .zarr or .nc, got {p.name}")
    return p


class SatelliteWindowDataset(Dataset):
    """History/target windows over a frame sequence, as dicts for MONAI engines.

    Item ``i`` starts at frame ``i * stride``: ``{"history": (T, C, H, W), "target": (K, C, H, W)}``, float32,
    NaN kept (the forecaster zeroes NaN inputs; the loss and metrics skip NaN targets). A ``region``
    ``(y0, y1, x0, x1)`` cuts a fixed window of every frame.

    Args:
        frames: ``(time, channel, y, x)`` DataArray or array, or a Zarr / NetCDF path.
        history_steps: ``T``.
        forecast_steps: ``K``; 0 gives history-only items (inference without truth).
        stride: frames between window starts.
        region: optional ``(y0, y1, x0, x1)`` crop.
    """

    def __init__(
        self,
        frames: xr.DataArray | np.ndarray | str | os.PathLike,
        history_steps: int = 12,
        forecast_steps: int = 6,
        stride: int = 1,
        region: Sequence[int] | None = None,
    ) -> None:
        if isinstance(frames, (str, os.PathLike)):
            frames = open_satellite_frames(frames)
        if isinstance(frames, xr.DataArray):
            frames = check_frames(frames).values
        frames = np.asarray(frames, dtype=np.float32)
        if frames.ndim != 4:
            raise ValueError(f"expected frames (time, channel, y, x), got shape {frames.shape}")
        if region is not None:
            y0, y1, x0, x1 = region
            frames = frames[:, :, y0:y1, x0:x1]
        if history_steps < 1 or forecast_steps < 0 or stride < 1:
            raise ValueError(
                f"expected history_steps >= 1, forecast_steps >= 0 and stride >= 1, got {history_steps}, {forecast_steps}, {stride}"
            )
        need = history_steps + forecast_steps
        if frames.shape[0] < need:
            raise ValueError(f"expected at least {need} frames ({history_steps} history + {forecast_steps} forecast), got {frames.shape[0]}")
        self.frames = frames
        self.history_steps, self.forecast_steps, self.stride = history_steps, forecast_steps, stride
        self._count = (frames.shape[0] - need) // stride + 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -self._count <= index < self._count:
            raise IndexError(f"expected an index in [0, {self._count}), got {index}")
        start = (index % self._count) * self.stride
        mid = start + self.history_steps
        item = {"history": torch.from_numpy(self.frames[start:mid].copy())}
        if self.forecast_steps:
            item["target"] = torch.from_numpy(self.frames[mid : mid + self.forecast_steps].copy())
        return item
