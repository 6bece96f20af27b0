"""Satellite frames from Zarr or NetCDF through xarray, and history/target windows for IAM4VP.

Frames are a ``(time, channel, y, x)`` array with values in ``[0, 1]`` and NaN where there is no data.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import xarray as xr
from torch.utils.data import Dataset

from monai_glue import atomic_directory, atomic_write_with

__all__ = [
    "FRAME_DIMS",
    "SatelliteWindowDataset",
    "TiledWindowDataset",
    "WindowFrames",
    "channel_names_of",
    "check_frames",
    "check_not_held_out",
    "data_variable",
    "load_window_frames",
    "open_dataset",
    "open_satellite_frames",
    "select_channels",
    "split_in_time",
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


def open_dataset(path: str | os.PathLike, what: str = "a Zarr store or NetCDF file") -> xr.Dataset:
    """Open a Zarr store (a folder or ``*.zarr``) or a NetCDF file (``*.nc``) lazily as an ``xarray.Dataset``.

    Args:
        path: Zarr store or NetCDF file.
        what: what the store is, for the message when it is missing.

    Raises:
        FileNotFoundError: no such path.
        ValueError: neither a Zarr nor a NetCDF path.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"expected {what}, got a missing path: {p}")
    if p.is_dir() or p.suffix == ".zarr":
        return xr.open_zarr(p, consolidated=False)
    if p.suffix in (".nc", ".nc4", ".h5", ".netcdf"):
        return xr.open_dataset(p, engine="h5netcdf")
    raise ValueError(f"expected a Zarr store (folder, .zarr) or NetCDF file (.nc), got {p.name}")


def _lazy_frames(path: str | os.PathLike, variable: str | None, channels: Sequence[str] | None) -> xr.DataArray:
    """The store's frames as ``(time, channel, y, x)``, channels selected by name; no values are read."""
    p = Path(path)
    frames = data_variable(open_dataset(p), variable, p)
    return select_channels(frames, channels, source=str(p)) if channels is not None else _frame_layout(frames, str(p))


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
    return check_frames(_lazy_frames(path, variable, channels), num_channels, source=str(Path(path)))


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


def _frame_times(frames: Any) -> np.ndarray | None:
    """The ``time`` coordinate of ``frames`` as ``datetime64[ns]``, or ``None`` when it has none."""
    if isinstance(frames, xr.DataArray) and "time" in frames.coords and np.issubdtype(frames["time"].dtype, np.datetime64):
        return frames["time"].values.astype("datetime64[ns]")
    return None


def _as_time(value: Any, what: str) -> np.datetime64 | None:
    if value is None:
        return None
    try:
        return np.datetime64(value, "ns")
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected an ISO time (for example '2020-04-01T13:00') for {what}, got {value!r}") from err


def _inside(times: np.ndarray, interval: Sequence[Any], what: str) -> np.ndarray:
    """Mask ``(N,)`` of ``times`` inside ``interval`` ``[start, end]`` (ISO times, both ends included, ``None`` open).

    Raises:
        ValueError: ``interval`` not a ``[start, end]`` pair, a value that is not an ISO time, or ``end < start``.
    """
    if isinstance(interval, (str, bytes)) or len(interval) != 2:
        raise ValueError(f"expected {what} as a [start, end] pair of ISO times (None for an open end), got {interval!r}")
    start, end = _as_time(interval[0], f"{what} start"), _as_time(interval[1], f"{what} end")
    if start is not None and end is not None and end < start:
        raise ValueError(f"expected {what} with start <= end, got {list(interval)}")
    inside = np.ones(times.shape, dtype=bool)
    if start is not None:
        inside &= times >= start
    if end is not None:
        inside &= times <= end
    return inside


def check_not_held_out(times: np.ndarray, held_out: Sequence[Sequence[Any]] | None, source: str = "frames") -> None:
    """Refuse frames whose times fall in a held-out interval.

    Args:
        times: the frames' times, ``(N,)`` ``datetime64``.
        held_out: ``[[start, end], ...]`` ISO times, both ends included (an end ``None`` is open); ``None`` or
            empty checks nothing.
        source: what the frames are, for the message.

    Raises:
        ValueError: an interval that is not ``[start, end]`` with ``start <= end``, or a frame inside one (the
            message names the interval, the count and the first such time).
    """
    for interval in held_out or ():
        inside = _inside(times, interval, "a held-out interval")
        if inside.any():
            raise ValueError(
                f"expected no held-out frames in {source}, got {int(inside.sum())} frame(s) in the held-out interval "
                f"{[str(v) for v in interval]} (first at {str(times[inside][0])[:19]}): never train on held-out frames"
            )


class WindowFrames(NamedTuple):
    """Frames loaded for a window dataset by :func:`load_window_frames`.

    Attributes:
        values: ``(N, C, H, W)`` float32, NaN where there is no data.
        channel_names: the channels' names in order, or ``None`` for frames without channel names.
        times: ``(N,)`` ``datetime64[ns]`` of the frames, or ``None`` without a datetime ``time`` coordinate.
        source: what the frames are (the path, or ``"frames"``), for error messages.
    """

    values: np.ndarray
    channel_names: list[str] | None
    times: np.ndarray | None
    source: str


def load_window_frames(
    frames: xr.DataArray | np.ndarray | str | os.PathLike,
    channels: Sequence[str] | None = None,
    region: Sequence[int] | None = None,
    time_range: Sequence[Any] | None = None,
    held_out: Sequence[Sequence[Any]] | None = None,
) -> WindowFrames:
    """Frames for the window datasets, from a path, a DataArray or an array, guarded against held-out times.

    In order: open a Zarr / NetCDF path lazily (:func:`open_satellite_frames`'s store), select ``channels`` by
    name (:func:`select_channels`), keep the frames inside ``time_range``, refuse kept frames in a ``held_out``
    interval (:func:`check_not_held_out`), then read the values of the frames kept and check dims and range
    (:func:`check_frames`) and cut ``region``. Values outside ``time_range`` are never read.

    Args:
        frames: ``(time, channel, y, x)`` DataArray (a datetime ``time`` coordinate is needed for ``time_range`` /
            ``held_out``), array, or a Zarr / NetCDF path.
        channels: channel names to select, in this order; ``None`` keeps the frames' channels. Needs named
            channels (a path or a DataArray, not a bare array).
        region: optional ``(y0, y1, x0, x1)`` crop of every frame.
        time_range: ``(start, end)`` ISO times, both included (``None`` for an open end): the frames kept.
        held_out: ``[[start, end], ...]`` ISO times no kept frame may fall in.

    Returns:
        :class:`WindowFrames` with ``values`` ``(N, C, H, W)`` float32.

    Raises:
        FileNotFoundError: a missing path.
        ValueError: bad dims or values; ``channels`` on an unnamed array, or a channel missing (named, with those
            found); ``time_range`` / ``held_out`` on frames without times; no frame inside ``time_range``; a kept
            frame in a held-out interval; a ``region`` that is not four ints.
    """
    source = str(frames) if isinstance(frames, (str, os.PathLike)) else "frames"
    if isinstance(frames, (str, os.PathLike)):
        frames = _lazy_frames(frames, None, channels)
    elif isinstance(frames, xr.DataArray):
        frames = select_channels(frames, channels, source) if channels is not None else _frame_layout(frames, source)
    elif channels is not None:
        raise ValueError(
            f"expected frames with named channels (a Zarr / NetCDF path or an xarray.DataArray) to select "
            f"{list(channels)} by name, got an unnamed {type(frames).__name__}"
        )
    times = _frame_times(frames)
    if (time_range is not None or held_out) and times is None:
        raise ValueError(f"expected {source} with a datetime 'time' coordinate for time_range / held_out, got none")
    if time_range is not None:
        keep = _inside(times, time_range, "time_range")
        frames, times = frames[keep], times[keep]
        if times.size == 0:
            raise ValueError(f"expected frames inside time_range {list(time_range)} in {source}, got none")
    if times is not None:
        check_not_held_out(times, held_out, source)
    names = None
    if isinstance(frames, xr.DataArray):  # values are read (range check) only for the frames kept
        frames = check_frames(frames, source=source)
        names = channel_names_of(frames)
        frames = frames.values
    values = np.asarray(frames, dtype=np.float32)
    if values.ndim != 4:
        raise ValueError(f"expected frames (time, channel, y, x), got shape {values.shape}")
    if region is not None:
        if isinstance(region, (str, bytes)) or len(region) != 4:
            raise ValueError(f"expected region as (y0, y1, x0, x1), got {region!r}")
        y0, y1, x0, x1 = (int(v) for v in region)
        values = values[:, :, y0:y1, x0:x1]
    return WindowFrames(values, names, times, source)


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
        prior_steps: ``P`` > 0 appends the history's nowcast of ``P`` leads to it (``"history"`` then holds
            ``T + P`` frames), for an IAM4VP with a nowcast prior (:func:`seq_models.baselines.append_nowcast_prior`).
        prior_method: that nowcast, ``"farneback"`` (optical flow) or ``"sprog"`` (pysteps' S-PROG, radar rain).

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
        prior_steps: int = 0,
        prior_method: str = "farneback",
    ) -> None:
        loaded = load_window_frames(frames, channels=channels, region=region)
        frames, names, source = loaded.values, loaded.channel_names, loaded.source
        if history_steps < 1 or forecast_steps < 0 or stride < 1:
            raise ValueError(
                f"expected history_steps >= 1, forecast_steps >= 0 and stride >= 1, got {history_steps}, {forecast_steps}, {stride}"
            )
        _check_prior(prior_steps, prior_method, history_steps)
        self.prior_steps, self.prior_method = int(prior_steps), prior_method
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
        history = self.frames[start:mid]
        if self.prior_steps:
            from seq_models.baselines.nowcast_prior import append_nowcast_prior  # baselines import data

            history = append_nowcast_prior(history, self.prior_steps, self.prior_method)  # a new array
        else:
            history = history.copy()
        item = {"history": torch.from_numpy(history)}
        if self.forecast_steps:
            item["target"] = torch.from_numpy(self.frames[mid : mid + self.forecast_steps].copy())
        return item


def split_in_time(frames: xr.DataArray | np.ndarray, fraction: float) -> tuple[xr.DataArray | np.ndarray, xr.DataArray | np.ndarray]:
    """``(first, rest)``: the first ``round(fraction * N)`` frames and the others, disjoint in time.

    Args:
        frames: ``(time, ...)`` frames (a DataArray keeps its coordinates).
        fraction: share of the frames in the first part, in ``(0, 1)``.

    Raises:
        ValueError: ``fraction`` outside ``(0, 1)`` or a part that would be empty.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"expected a time-split fraction in (0, 1), got {fraction}")
    n = int(frames.shape[0])
    cut = int(round(float(fraction) * n))
    if not 0 < cut < n:
        raise ValueError(f"expected both parts of a {fraction:g} time split of {n} frames to hold frames, got {cut} and {n - cut}")
    return frames[:cut], frames[cut:]


class TiledWindowDataset(Dataset):
    """History/target windows cut into fixed-size tiles: every kept ``(window, tile)`` pair of large frames.

    Window ``w`` starts at frame ``s = w * window_stride`` of the frames kept (after ``time_range``) and reads every
    ``step``-th frame: history ``s, s + step, ..., s + (T - 1) step``, targets the ``K`` frames after it. A target
    frame after the last frame kept is NaN (never read); windows need at least ``min_target_steps`` real target
    frames. Tiles lie on a grid with ``tile_stride`` inside ``region`` (``(y0, y1, x0, x1)``, or the whole frame).
    A pair is kept when none of its history frames is entirely NaN in the tile (a drop-out frame: the forecasters
    refuse those), at most ``max_nan_fraction`` of its history pixels, and at most ``max_nan_fraction`` of the
    pixels of its real target frames, are NaN, and at least ``min_nonzero_fraction`` of its valid pixels are above 0
    (radar: skip dry tiles).

    Item ``i`` is ``{"history": (T, C, h, w), "target": (K, C, h, w)}`` (history ``(T + P, C, h, w)`` with a
    nowcast prior) float32 with NaN kept (the forecaster zeroes
    NaN inputs; :class:`seq_models.losses.NaNAwareForecastLoss` and the metrics skip NaN targets). ``pairs`` lists
    each item's ``(first frame, y0, x0)``: frame index in the frames kept, tile corner in ``region``; ``times`` are
    the kept frames' times (``None`` without a time coordinate).

    Held-out frames are guarded: ``time_range`` drops frames outside ``[start, end]`` before anything is read, and
    ``held_out`` refuses frames (kept ones) in any of its intervals, so a recipe cannot train on them by mistake.

    Args:
        frames: ``(time, channel, y, x)`` DataArray (times needed for ``time_range`` / ``held_out``), array, or a
            Zarr / NetCDF path (:func:`open_satellite_frames`).
        history_steps: ``T``.
        forecast_steps: ``K`` (at least 1).
        tile_size: ``(h, w)`` of a tile, or one int for both.
        tile_stride: ``(dy, dx)`` between tiles (one int for both); ``None`` is ``tile_size`` (no overlap).
        window_stride: frames between window starts.
        step: frames between the frames a window reads (3: 15-minute steps from a 5-minute store).
        region: optional ``(y0, y1, x0, x1)`` the tiles are cut from.
        channels: channel names to select by name (as :class:`SatelliteWindowDataset`).
        max_nan_fraction: largest NaN share of a pair's history and of its real targets, in ``[0, 1]``.
        min_nonzero_fraction: smallest share of valid pixels above 0 over the pair's history and real targets.
        min_target_steps: smallest number of real target frames; ``None`` is ``K`` (complete windows only).
        time_range: ``(start, end)`` ISO times, both included (``None`` for an open end): the frames kept.
        held_out: ``[[start, end], ...]`` ISO times no kept frame may fall in (:func:`check_not_held_out`).
        prior_steps: ``P`` > 0 appends each window's nowcast of ``P`` leads to its history (``"history"`` then
            holds ``T + P`` frames), for an IAM4VP with a nowcast prior. The nowcast is made on the frames in
            ``region`` (not on the tile), once per window, as :class:`seq_models.inferers.NowcastPriorForecaster`
            makes it on the whole frame at inference.
        prior_method: that nowcast (:func:`seq_models.baselines.nowcast_prior`): ``"farneback"`` (optical flow)
            or ``"sprog"`` (pysteps' S-PROG, for radar rain; a few seconds per window on a radar grid).

    Raises:
        ValueError: bad sizes, strides or thresholds; times asked for on frames without a time coordinate; a frame
            in a held-out interval; too few frames for one window; or no pair kept (the message gives the counts).
    """

    def __init__(
        self,
        frames: xr.DataArray | np.ndarray | str | os.PathLike,
        history_steps: int = 4,
        forecast_steps: int = 4,
        tile_size: int | Sequence[int] = 64,
        tile_stride: int | Sequence[int] | None = None,
        window_stride: int = 1,
        step: int = 1,
        region: Sequence[int] | None = None,
        channels: Sequence[str] | None = None,
        max_nan_fraction: float = 0.5,
        min_nonzero_fraction: float = 0.0,
        min_target_steps: int | None = None,
        time_range: Sequence[Any] | None = None,
        held_out: Sequence[Sequence[Any]] | None = None,
        prior_steps: int = 0,
        prior_method: str = "farneback",
    ) -> None:
        loaded = load_window_frames(frames, channels=channels, region=region, time_range=time_range, held_out=held_out)
        data, times, source = loaded.values, loaded.times, loaded.source
        self.channel_names = loaded.channel_names
        th, tw = _pair(tile_size, "tile_size")
        sy, sx = _pair(tile_stride if tile_stride is not None else (th, tw), "tile_stride")
        min_targets = forecast_steps if min_target_steps is None else int(min_target_steps)
        if history_steps < 1 or forecast_steps < 1 or window_stride < 1 or step < 1 or not 1 <= min_targets <= forecast_steps:
            raise ValueError(
                f"expected history_steps >= 1, forecast_steps >= 1, window_stride >= 1, step >= 1 and 1 <= "
                f"min_target_steps <= forecast_steps, got {history_steps}, {forecast_steps}, {window_stride}, {step}, {min_targets}"
            )
        _check_prior(prior_steps, prior_method, history_steps)
        if not (0.0 <= max_nan_fraction <= 1.0 and 0.0 <= min_nonzero_fraction <= 1.0):
            raise ValueError(f"expected max_nan_fraction and min_nonzero_fraction in [0, 1], got {max_nan_fraction} and {min_nonzero_fraction}")
        n, _, height, width = data.shape
        if height < th or width < tw:
            raise ValueError(f"expected frames (or region) of at least the tile size {th} x {tw}, got {height} x {width}")
        last_read = (history_steps + min_targets - 1) * step  # offset of the last real target a window needs
        if n <= last_read:
            raise ValueError(
                f"expected more than {last_read} frames for one window ({history_steps} history + {min_targets} target "
                f"frames every {step}), got {n}"
            )
        self.frames, self.times = data, times
        self.history_steps, self.forecast_steps, self.step = history_steps, forecast_steps, step
        self.tile_size = (th, tw)
        ys, xs = range(0, height - th + 1, sy), range(0, width - tw + 1, sx)
        starts = range(0, n - last_read, window_stride)
        # (tile row, tile column, frame): NaN pixels and valid pixels above 0 (equal tiles, so shares add up)
        nans, wets = np.isnan(data), np.nan_to_num(data) > 0
        nan_count = np.array([[nans[:, :, y : y + th, x : x + tw].sum(axis=(1, 2, 3)) for x in xs] for y in ys])
        wet_count = np.array([[wets[:, :, y : y + th, x : x + tw].sum(axis=(1, 2, 3)) for x in xs] for y in ys])
        per_frame = data.shape[1] * th * tw
        pairs: list[tuple[int, int, int]] = []
        for s in starts:
            hist = list(range(s, s + history_steps * step, step))
            targ = [f for f in range(s + history_steps * step, s + (history_steps + forecast_steps) * step, step) if f < n]
            h_nan = nan_count[..., hist].sum(-1) / (per_frame * len(hist))
            t_nan = nan_count[..., targ].sum(-1) / (per_frame * len(targ))
            n_valid = len(hist + targ) * per_frame - nan_count[..., hist + targ].sum(-1)
            wet = wet_count[..., hist + targ].sum(-1) / np.maximum(n_valid, 1)
            empty_frame = (nan_count[..., hist] == per_frame).any(-1)  # the forecasters refuse an all-NaN frame
            keep = (h_nan <= max_nan_fraction) & (t_nan <= max_nan_fraction) & (n_valid > 0) & (wet >= min_nonzero_fraction)
            keep &= ~empty_frame
            pairs += [(s, ys[i], xs[j]) for i, j in zip(*np.nonzero(keep))]
        if not pairs:
            raise ValueError(
                f"expected at least one (window, tile) pair with at most {max_nan_fraction:g} NaN and at least "
                f"{min_nonzero_fraction:g} of its valid pixels above 0 in {source}, got none of "
                f"{len(starts)} windows x {len(ys) * len(xs)} tiles"
            )
        self.pairs = pairs
        self.num_windows, self.num_tiles = len(starts), len(ys) * len(xs)
        self.prior_steps, self.prior_method = int(prior_steps), prior_method
        self._priors = {s: self._window_prior(s) for s in sorted({p[0] for p in pairs})} if prior_steps else {}

    def _window_prior(self, start: int) -> np.ndarray:
        """``(P, C, H, W)``: the nowcast prior of window ``start``'s history over the whole region."""
        from seq_models.baselines.nowcast_prior import nowcast_prior  # baselines import data

        t, step = self.history_steps, self.step
        return nowcast_prior(self.frames[start : start + t * step : step], self.prior_steps, self.prior_method)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not -len(self.pairs) <= index < len(self.pairs):
            raise IndexError(f"expected an index in [0, {len(self.pairs)}), got {index}")
        s, y, x = self.pairs[index]
        (th, tw), t, k, step = self.tile_size, self.history_steps, self.forecast_steps, self.step
        tile = self.frames[:, :, y : y + th, x : x + tw]
        history = tile[s : s + t * step : step]
        target = np.full((k, *tile.shape[1:]), np.nan, dtype=np.float32)
        real = tile[s + t * step : s + (t + k) * step : step]
        target[: real.shape[0]] = real
        if self.prior_steps:  # concatenate makes the one copy
            history = np.concatenate([history, self._priors[s][:, :, y : y + th, x : x + tw]], axis=0)
        else:
            history = history.copy()
        return {"history": torch.from_numpy(history), "target": torch.from_numpy(target)}


def _check_prior(prior_steps: int, prior_method: str, history_steps: int) -> None:
    from seq_models.baselines.nowcast_prior import NOWCAST_PRIOR_METHODS  # baselines import data

    if prior_method not in NOWCAST_PRIOR_METHODS:
        raise ValueError(f"expected prior_method in {NOWCAST_PRIOR_METHODS}, got {prior_method!r}")
    need = 3 if prior_method == "sprog" else 2  # S-PROG's AR(2) needs three frames, a motion two
    if int(prior_steps) < 0 or (prior_steps and history_steps < need):
        raise ValueError(
            f"expected prior_steps >= 0, and history_steps >= {need} for a {prior_method} prior, got "
            f"prior_steps {prior_steps} with history_steps {history_steps}"
        )


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (int(value), int(value)) if isinstance(value, (int, np.integer)) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"expected {name} as one positive int or (h, w), got {value!r}")
    return pair  # type: ignore[return-value]
