"""Satellite frames from Zarr or NetCDF through xarray, and history/target windows for IAM4VP.

Frames are a ``(time, channel, y, x)`` array with values in ``[0, 1]`` and NaN where there is no data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from monai_glue import atomic_directory, atomic_write_with

__all__ = [
    "FRAME_DIMS",
    "SatelliteWindowDataset",
    "channel_names_of",
    "check_frames",
    "data_variable",
    "open_satellite_frames",
    "select_channels",
    "write_frames",
]

FRAME_DIMS = ("time", "channel", "y", "x")


def check_frames(frames: xr.DataArray, num_channels: int | None = None, source: str = "frames") -> xr.DataArray:
    """Return ``frames`` transposed to ``(time, channel, y, x)`` after checking dims, channels and value range.

    A single channel kept as a scalar ``channel`` coordinate (dims ``(time, y, x)``) becomes a channel dim of one.

    Raises:
        ValueError: missing dims, another channel count, repeated channel names, or values outside ``[0, 1]``
            (NaN is allowed).
    """
    frames = _frame_layout(frames, source)
    if num_channels is not None and frames.sizes["channel"] != num_channels:
        raise ValueError(f"expected {num_channels} channels in {source}, got {frames.sizes['channel']}")
    lo, hi = float(frames.min(skipna=True)), float(frames.max(skipna=True))
    if not (np.isnan(lo) or (lo >= 0.0 and hi <= 1.0)):
        raise ValueError(f"expected values scaled to [0, 1] (NaN where missing) in {source}, got range [{lo:.4g}, {hi:.4g}]")
    return frames


def _frame_layout(frames: xr.DataArray, source: str) -> xr.DataArray:
    """``frames`` as ``(time, channel, y, x)`` with unique channel names (no values are read)."""
    if "channel" not in frames.dims and "channel" in frames.coords and frames["channel"].ndim == 0:
        frames = frames.expand_dims("channel")
    missing = [d for d in FRAME_DIMS if d not in frames.dims]
    if missing or frames.ndim != 4:
        raise ValueError(f"expected {source} with dims {FRAME_DIMS}, got dims {tuple(frames.dims)}")
    frames = frames.transpose(*FRAME_DIMS)
    names = channel_names_of(frames)
    if names is not None and len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"expected each channel once in {source}, got {repeated} more than once in {names}")
    return frames


def channel_names_of(frames: xr.DataArray) -> list[str] | None:
    """The names on ``frames``' ``channel`` coordinate as strings, or ``None`` when it has no coordinate values."""
    if "channel" not in frames.coords:
        return None
    return [str(v.decode() if isinstance(v, bytes) else v) for v in np.atleast_1d(frames["channel"].values)]


def select_channels(frames: xr.DataArray, channels: Sequence[str], source: str = "frames") -> xr.DataArray:
    """The channels named in ``channels``, in that order, from ``frames``' ``channel`` coordinate.

    The store's order does not matter and channels not asked for are left out; positions are never trusted, so
    frames without channel names are refused.

    Args:
        frames: ``(time, channel, y, x)`` (any dim order; values are not read here, see :func:`check_frames`).
        channels: channel names, each once (one name is fine).
        source: what ``frames`` is (a path), for error messages.

    Returns:
        ``frames`` with the channels of ``channels`` in that order.

    Raises:
        ValueError: ``channels`` empty, repeated or not strings; ``frames`` without channel names; or a channel
            missing from ``frames`` (the message names the missing channels and the ones found).
    """
    wanted = [channels] if isinstance(channels, str) else list(channels)
    if not wanted or not all(isinstance(c, str) for c in wanted) or len(set(wanted)) != len(wanted):
        raise ValueError(f"expected channel names, each once, to select from {source}, got {wanted}")
    frames = _frame_layout(frames, source)
    found = channel_names_of(frames)
    if found is None:
        raise ValueError(
            f"expected {source} to name its channels (a 'channel' coordinate) to select {wanted} by name, got "
            f"{frames.sizes['channel']} unnamed channels"
        )
    missing = [c for c in wanted if c not in found]
    if missing:
        raise ValueError(f"expected channels {missing} in {source} (asked for {wanted}), it holds {found}")
    index = [found.index(c) for c in wanted]
    return frames.isel(channel=index)



def data_variable(ds: Any, variable: str | None, source: str | os.PathLike) -> Any:
    """The frames' variable of a dataset: ``variable`` when given, else ``"data"`` or the only data variable.

    Args:
        ds: an ``xarray.Dataset``.
        variable: the variable's name, or ``None`` to pick it as above.
        source: the store's path, for error messages.

    Raises:
        ValueError: no name given and no single data variable (nor one named ``"data"``).
        KeyError: ``variable`` is not in the dataset.
    """
    names = list(ds.data_vars)
    if variable is None:
        variable = "data" if "data" in names else (names[0] if len(names) == 1 else None)
        if variable is None:
            raise ValueError(f"expected one data variable in {source} (or pass variable=), got {names}")
    if variable not in ds:
        raise KeyError(f"expected variable {variable!r} in {source}, got {names}")
    return ds[variable]

def open_satellite_frames(
    path: str | os.PathLike, variable: str | None = None, channels: Sequence[str] | None = None, num_channels: int | None = None
) -> xr.DataArray:
    """Open frames from a Zarr store (a folder or ``*.zarr``) or a NetCDF file (``*.nc``), lazily.

    Args:
        path: Zarr store or NetCDF file.
        variable: data variable; ``None`` takes the only one (or ``"data"``).
        channels: channel names to select by name from the store's ``channel`` coordinate, in this order (the
            store's order does not matter, other channels are left out); ``None`` keeps every channel in the
            store's order.
        num_channels: expected channel count after selection (checked).

    Returns:
        ``xarray.DataArray`` ``(time, channel, y, x)``.

    Raises:
        FileNotFoundError: no such path.
        ValueError: not a Zarr / NetCDF path, bad dims or values (:func:`check_frames`), or a channel of
            ``channels`` missing from the store (:func:`select_channels`).
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
    frames = data_variable(ds, variable, p)
    if channels is not None:
        frames = select_channels(frames, channels, source=str(p))
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

    Channels are taken by name when ``channels`` is given (the order the model was trained on, whatever the
    store's order). A channel with no data at all in the history frames the windows read (entirely NaN there) is
    refused: the model would see zeros for it and still return a finite, meaningless forecast.

    Args:
        frames: ``(time, channel, y, x)`` DataArray or array, or a Zarr / NetCDF path.
        history_steps: ``T``.
        forecast_steps: ``K``; 0 gives history-only items (inference without truth).
        stride: frames between window starts.
        region: optional ``(y0, y1, x0, x1)`` crop.
        channels: channel names to select from the frames' ``channel`` coordinate, in this order; ``None`` keeps
            the frames' channels as they are. Needs named channels (a path or a DataArray, not a bare array).

    Raises:
        ValueError: bad shapes or counts; a channel of ``channels`` missing (the message names the missing and the
            found channels); a channel entirely NaN in the history frames read (named).
    """

    def __init__(
        self,
        frames: xr.DataArray | np.ndarray | str | os.PathLike,
        history_steps: int = 12,
        forecast_steps: int = 6,
        stride: int = 1,
        region: Sequence[int] | None = None,
        channels: Sequence[str] | None = None,
    ) -> None:
        source = str(frames) if isinstance(frames, (str, os.PathLike)) else "frames"
        names: list[str] | None = None
        if isinstance(frames, (str, os.PathLike)):
            frames = open_satellite_frames(frames, channels=channels)
        elif isinstance(frames, xr.DataArray):
            frames = check_frames(select_channels(frames, channels) if channels is not None else frames)
        elif channels is not None:
            raise ValueError(
                f"expected frames with named channels (a Zarr / NetCDF path or an xarray.DataArray) to select "
                f"{list(channels)} by name, got an unnamed {type(frames).__name__}"
            )
        if isinstance(frames, xr.DataArray):
            names = channel_names_of(frames)
            frames = frames.values
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
        self.channel_names = names
        self.history_steps, self.forecast_steps, self.stride = history_steps, forecast_steps, stride
        self._count = (frames.shape[0] - need) // stride + 1
        self._check_channels_hold_data(source)

    def _check_channels_hold_data(self, source: str) -> None:
        read = np.zeros(self.frames.shape[0], dtype=bool)  # the history frames the windows read
        for start in range(0, self._count * self.stride, self.stride):
            read[start : start + self.history_steps] = True
        history = self.frames[read]
        empty = [c for c in range(history.shape[1]) if np.isnan(history[:, c]).all()]
        if empty:
            labels = [self.channel_names[c] if self.channel_names else f"channel {c}" for c in empty]
            raise ValueError(
                f"expected every channel to hold data in the {int(read.sum())} history frames read from {source}, "
                f"got {labels} entirely NaN there (a forecast from no data would look valid)"
            )

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
