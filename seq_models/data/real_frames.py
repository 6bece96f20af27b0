"""Readers for real satellite and radar frames: the project's ``(time, channel, y, x)`` float32 frames in
``[0, 1]``, NaN where there is no data, with timestamps, coordinates and a documented, invertible scaling.

Satellite (SEVIRI, Zarr, the layouts of openclimatefix's ``nowcasting_dataset``):

- ``data`` is ``(time, y, x, variable)`` int16 or ``(time, y_geostationary, x_geostationary, channels)`` float64;
  the channel dim and the geostationary x/y dims are renamed to ``channel``, ``y``, ``x``.
- Values are the source's rescaling of each channel to about ``0..1023`` (not radiance, not reflectance in
  percent); :class:`SeviriScaling` divides by 1023. Exactly 0 is the source's no-data value (a fixed block in the
  north-east corner, and drop-outs in a few 5-minute frames): it becomes NaN.
- The stores keep ``x`` decreasing and ``y`` increasing along their axes (the picture rotated 180 degrees); the
  reader sorts them so that row 0 is the north edge and column 0 the west edge (``north_up=True``).
- Channels are taken by name from the channel coordinate (``"IR_016"`` or ``["IR_016"]``; several names in the
  order asked), through :func:`seq_models.data.satellite.select_channels`; the store's ``name`` attribute (which
  says VIS006 in the shared example) is not used.

Radar (through pysteps' own importers, the optional ``pysteps`` extra):

- KNMI 5-minute HDF5 composites (``pysteps.io.import_knmi_hdf5``: 5-minute accumulation in mm, 0.01 mm steps,
  no data outside the radar range) and FMI 5-minute PGM composites, gzipped or not (``pysteps.io.import_fmi_pgm``:
  dBZ = 0.5 * value - 32, 255 = no data; pysteps needs ``pyproj`` for its georeferencing).
- Both are converted to rain rate in mm/h by ``pysteps.utils.conversion.to_rainrate`` (the accumulation times 12
  for KNMI, the file's Z-R relation, Z = 223 R^1.53, for FMI), then to ``[0, 1]`` by :class:`RainRateScaling`.
- Timestamps come from the 12-digit ``YYYYmmddHHMM`` in each file name (KNMI: the end of the accumulation
  window; FMI: the composite's nominal time). A missing time step inside the sequence becomes an all-NaN frame,
  so that frames stay one step apart.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr

from .satellite import check_frames, data_variable, open_dataset, select_channels

__all__ = [
    "RADAR_CHANNEL",
    "RainRateScaling",
    "SeviriScaling",
    "import_pysteps",
    "open_radar_frames",
    "open_seviri_frames",
    "radar_files",
]

RADAR_CHANNEL = "rain_rate"
_CHANNEL_DIMS = ("channel", "channels", "variable", "band")
_Y_DIMS = ("y", "y_geostationary")
_X_DIMS = ("x", "x_geostationary")
_STAMP = re.compile(r"(?<!\d)(\d{12})(?!\d)")


def import_pysteps():
    """``pysteps``, imported without its start-up banner; a clear error when the optional extra is missing."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pysteps  # noqa: F401
            import pysteps.io
            import pysteps.motion
            import pysteps.nowcasts
            import pysteps.utils
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "expected pysteps for the radar readers and the pysteps baselines (pip install 'monai-sadaan[pysteps]'), "
            f"got: {err}"
        ) from err
    return pysteps


@dataclass(frozen=True)
class SeviriScaling:
    """SEVIRI values of the ``nowcasting_dataset`` stores to ``[0, 1]`` and back.

    ``unit = raw / scale`` with ``scale = 1023`` (the source's per-channel rescaling to about ``0..1023``);
    ``raw == no_data`` (0) is NaN. Inverse: ``raw = unit * scale`` (NaN stays NaN).
    """

    scale: float = 1023.0
    no_data: float = 0.0

    def to_unit(self, raw: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
        if isinstance(raw, xr.DataArray):
            return (raw.where(raw != self.no_data) / self.scale).astype(np.float32)
        raw = np.asarray(raw, dtype=np.float64)
        return np.where(raw == self.no_data, np.nan, raw / self.scale).astype(np.float32)

    def from_unit(self, unit: np.ndarray | xr.DataArray) -> np.ndarray | xr.DataArray:
        return unit * self.scale

    def describe(self) -> str:
        return f"unit = raw / {self.scale:g} (source rescaling, about 0..1023); raw == {self.no_data:g} is no data (NaN)"


@dataclass(frozen=True)
class RainRateScaling:
    """Rain rate ``R`` (mm/h) to ``[0, 1]`` and back, linear in decibels of rain rate (dBR = 10 log10 R).

    ``unit = clip((10 log10 R - 10 log10 threshold) / (10 log10 max_rate - 10 log10 threshold), 0, 1)`` for
    ``R >= threshold`` and 0 below (no rain). With the defaults (0.1 mm/h, 100 mm/h) that is
    ``unit = (dBR + 10) / 30``: 0 is no rain or under 0.1 mm/h, 1/3 is 1 mm/h, 2/3 is 10 mm/h, 1 is 100 mm/h and
    more. Inverse (:meth:`to_rainrate`): ``R = threshold * (max_rate / threshold) ** unit`` for ``unit > 0``, 0 for
    ``unit == 0``; exact for rates in ``[threshold, max_rate]``. NaN (no data) stays NaN both ways.

    The scale is pysteps' usual dB transform (threshold 0.1 mm/h) stretched to ``[0, 1]``, so the field is the one
    pysteps' motion and nowcast methods are meant for; :meth:`to_dbr` gives pysteps' own dBR field back (values
    under the threshold at ``zerovalue``, -15 dBR by default, as in pysteps' examples).
    """

    threshold: float = 0.1
    max_rate: float = 100.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < self.max_rate:
            raise ValueError(f"expected 0 < threshold < max_rate (mm/h), got {self.threshold} and {self.max_rate}")

    @property
    def _span_db(self) -> float:
        return 10.0 * np.log10(self.max_rate / self.threshold)

    def to_unit(self, rate: np.ndarray) -> np.ndarray:
        rate = np.asarray(rate, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            db = 10.0 * np.log10(np.where(rate >= self.threshold, rate, self.threshold) / self.threshold)
        out = np.where(rate >= self.threshold, np.clip(db / self._span_db, 0.0, 1.0), 0.0)
        return np.where(np.isnan(rate), np.nan, out).astype(np.float32)

    def to_rainrate(self, unit: np.ndarray) -> np.ndarray:
        unit = np.asarray(unit, dtype=np.float64)
        rate = self.threshold * (self.max_rate / self.threshold) ** np.clip(unit, 0.0, 1.0)
        return np.where(np.isnan(unit), np.nan, np.where(unit > 0.0, rate, 0.0))

    def to_dbr(self, unit: np.ndarray, zerovalue: float = -15.0) -> np.ndarray:
        """pysteps' dBR field (``10 log10 R``; ``zerovalue`` where there is no rain; NaN kept)."""
        unit = np.asarray(unit, dtype=np.float64)
        db = 10.0 * np.log10(self.threshold) + np.clip(unit, 0.0, 1.0) * self._span_db
        return np.where(np.isnan(unit), np.nan, np.where(unit > 0.0, db, zerovalue))

    def from_dbr(self, dbr: np.ndarray) -> np.ndarray:
        """``[0, 1]`` from pysteps' dBR (values under ``10 log10 threshold`` are no rain, 0; NaN kept)."""
        dbr = np.asarray(dbr, dtype=np.float64)
        unit = (dbr - 10.0 * np.log10(self.threshold)) / self._span_db
        return np.where(np.isnan(dbr), np.nan, np.clip(unit, 0.0, 1.0)).astype(np.float32)

    def describe(self) -> str:
        offset = -10.0 * np.log10(self.threshold)
        return (
            f"unit = (10 log10 R {'+' if offset >= 0 else '-'} {abs(offset):g}) / {self._span_db:g} for R >= "
            f"{self.threshold:g} mm/h, 0 below (no rain), 1 at {self.max_rate:g} mm/h and more; inverse "
            f"R = {self.threshold:g} * {self.max_rate / self.threshold:g} ** unit for unit > 0"
        )


def _one_of(dims: Sequence[str], names: Sequence[str], what: str, source: str) -> str:
    found = [d for d in names if d in dims]
    if len(found) != 1:
        raise ValueError(f"expected one {what} dim (one of {list(names)}) in {source}, got dims {list(dims)}")
    return found[0]


def open_seviri_frames(
    path: str | os.PathLike,
    channels: str | Sequence[str] | None = None,
    variable: str | None = None,
    scaling: SeviriScaling = SeviriScaling(),
    north_up: bool = True,
) -> xr.DataArray:
    """SEVIRI frames from a ``nowcasting_dataset`` Zarr store as ``(time, channel, y, x)`` float32 in ``[0, 1]``.

    Args:
        path: the Zarr store (folder; a NetCDF file of the same layout is read too, :func:`seq_models.data.satellite.open_dataset`).
        channels: channel names to keep, in this order (one name, as a string or a list of one, is fine);
            ``None`` keeps the store's channels.
        variable: the data variable; ``None`` takes ``data`` (or the only variable).
        scaling: raw values to ``[0, 1]`` (:class:`SeviriScaling`; raw 0 is NaN).
        north_up: sort ``y`` descending and ``x`` ascending (row 0 north, column 0 west), the usual picture.

    Returns:
        A lazy ``xarray.DataArray`` with coordinates ``time``, ``channel`` (names), ``y`` and ``x`` (geostationary
        metres) and the stores' 2D ``y_osgb`` / ``x_osgb``; ``attrs`` say the scaling.

    Raises:
        FileNotFoundError: no such store.
        ValueError: dims not recognised, a channel asked for not in the store (named, with those found), or
            values outside ``0..scale`` (:func:`seq_models.data.satellite.check_frames`).
    """
    p = Path(path)
    raw = data_variable(open_dataset(p, "a SEVIRI Zarr store"), variable, p)
    dims = list(raw.dims)
    if "time" not in dims:
        raise ValueError(f"expected a time dim in {p}, got dims {dims}")
    rename = {
        _one_of(dims, _Y_DIMS, "y", str(p)): "y",
        _one_of(dims, _X_DIMS, "x", str(p)): "x",
    }
    channel_dims = [d for d in _CHANNEL_DIMS if d in dims]
    if len(channel_dims) > 1:
        raise ValueError(f"expected one channel dim (one of {list(_CHANNEL_DIMS)}) in {p}, got dims {dims}")
    if channel_dims:
        rename[channel_dims[0]] = "channel"
    elif raw.ndim != 3:
        raise ValueError(f"expected (time, y, x[, channel]) in {p}, got dims {dims}")
    raw = raw.rename({k: v for k, v in rename.items() if k != v})
    if "channel" not in raw.dims:
        raw = raw.expand_dims("channel", axis=1)
    raw = raw.transpose("time", "channel", "y", "x")
    if channels is not None:
        raw = select_channels(raw, channels, source=str(p))
    if north_up:
        raw = raw.sortby("y", ascending=False).sortby("x", ascending=True)
    frames = scaling.to_unit(raw)
    keep = ("platform_name", "sensor", "area")
    frames.attrs = {k: v for k, v in raw.attrs.items() if k in keep}
    frames.attrs.update(
        {
            "source": str(p),
            "units": "1",
            "scaling": scaling.describe(),
            "coordinates_crs": "geostationary (metres); north_up" if north_up else "geostationary (metres), store order",
        }
    )
    frames.name = variable
    return check_frames(frames, source=str(p))


def _stamp(path: Path) -> datetime:
    found = _STAMP.findall(path.name)
    if len(found) != 1:
        raise ValueError(f"expected one YYYYmmddHHMM timestamp in the file name {path.name}, got {found or 'none'}")
    return datetime.strptime(found[0], "%Y%m%d%H%M")


def radar_files(source: str | os.PathLike | Sequence[str | os.PathLike], kind: str | None = None) -> tuple[str, list[Path]]:
    """``(kind, files)``: the radar files of a folder (or the list given), sorted by the time in their names.

    ``kind`` is ``"knmi"`` (``*.h5``) or ``"fmi"`` (``*.pgm``, ``*.pgm.gz``); ``None`` tells it from the names.
    """
    if isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"expected a folder of radar files, got a missing folder: {folder}")
        files = sorted(f for f in folder.iterdir() if f.name.endswith((".h5", ".hdf5", ".pgm", ".pgm.gz")))
    else:
        files = [Path(f) for f in source]
    if not files:
        raise ValueError(f"expected KNMI .h5 or FMI .pgm(.gz) radar files in {source}, got none")
    kinds = {"knmi" if f.name.endswith((".h5", ".hdf5")) else "fmi" for f in files}
    if kind is None:
        if len(kinds) != 1:
            raise ValueError(f"expected files of one radar format, got KNMI HDF5 and FMI PGM mixed in {source}")
        kind = kinds.pop()
    elif kind not in ("knmi", "fmi"):
        raise ValueError(f"expected kind 'knmi' or 'fmi', got {kind!r}")
    return kind, sorted(files, key=_stamp)


def _read_one(path: Path, kind: str, pysteps) -> tuple[np.ndarray, dict]:
    if kind == "knmi":
        values, _, meta = pysteps.io.import_knmi_hdf5(str(path), qty="ACRR", accutime=5.0)
    else:
        values, _, meta = pysteps.io.import_fmi_pgm(str(path), gzipped=path.name.endswith(".gz"))
    rate, meta = pysteps.utils.conversion.to_rainrate(values, meta)
    return np.asarray(rate, dtype=np.float64), meta


def open_radar_frames(
    source: str | os.PathLike | Sequence[str | os.PathLike],
    kind: str | None = None,
    scaling: RainRateScaling = RainRateScaling(),
    step_minutes: float | None = 5.0,
) -> xr.DataArray:
    """Radar composites (KNMI HDF5 or FMI PGM) as ``(time, rain_rate, y, x)`` float32 frames in ``[0, 1]``.

    Args:
        source: a folder of one event's files, or a list of files.
        kind: ``"knmi"``, ``"fmi"`` or ``None`` (from the file names).
        scaling: rain rate (mm/h) to ``[0, 1]`` (:class:`RainRateScaling`; its ``to_rainrate`` is the inverse).
        step_minutes: the time step; missing steps between the first and last file become all-NaN frames.
            ``None`` keeps the files' times as they are.

    Returns:
        ``xarray.DataArray`` with coordinates ``time``, ``channel`` (``["rain_rate"]``), ``y`` (north first) and
        ``x`` (projection coordinates of pixel centres, in ``attrs["cartesian_unit"]``); ``attrs`` hold the
        projection, the institution, the Z-R relation and the scaling.

    Raises:
        FileNotFoundError / ValueError: no files, mixed formats, a name without one timestamp, repeated times,
            or frames of different shapes.
        ImportError: pysteps (or pyproj, for FMI) missing.
    """
    kind, files = radar_files(source, kind)
    pysteps = import_pysteps()
    times = [_stamp(f) for f in files]
    if len(set(times)) != len(times):
        repeated = sorted({t for t in times if times.count(t) > 1})
        raise ValueError(f"expected one file per time in {source}, got several for {repeated[:3]}")
    frames, meta = [], None
    for f in files:
        rate, m = _read_one(f, kind, pysteps)
        if frames and rate.shape != frames[0].shape:
            raise ValueError(f"expected frames of one shape {frames[0].shape} in {source}, got {rate.shape} in {f.name}")
        frames.append(scaling.to_unit(rate))
        meta = meta or m
    stamps = np.array(times, dtype="datetime64[ns]")
    data = np.stack(frames)[:, None]
    if step_minutes is not None and len(stamps) > 1:
        step = np.timedelta64(int(round(step_minutes * 60)), "s")
        full = np.arange(stamps[0], stamps[-1] + step, step).astype("datetime64[ns]")
        off_grid = np.setdiff1d(stamps, full)
        if off_grid.size:
            raise ValueError(f"expected times every {step_minutes:g} min in {source}, got {off_grid[:3]} off that grid")
        if full.size != stamps.size:
            filled = np.full((full.size, *data.shape[1:]), np.nan, np.float32)
            filled[np.searchsorted(full, stamps)] = data
            data, stamps = filled, full
    h, w = data.shape[-2:]
    x = meta["x1"] + (np.arange(w) + 0.5) * meta["xpixelsize"]
    if meta.get("yorigin", "upper") == "upper":
        y = meta["y2"] - (np.arange(h) + 0.5) * meta["ypixelsize"]
    else:  # pragma: no cover - neither shared format
        data = data[..., ::-1, :]
        y = meta["y2"] - (np.arange(h) + 0.5) * meta["ypixelsize"]
    attrs = {
        "source": str(source) if isinstance(source, (str, os.PathLike)) else str(files[0].parent),
        "radar_format": kind,
        "institution": str(meta.get("institution", "")),
        "projection": str(meta.get("projection", "")),
        "cartesian_unit": str(meta.get("cartesian_unit", "")),
        "zr_a": float(meta.get("zr_a", np.nan)),
        "zr_b": float(meta.get("zr_b", np.nan)),
        "units": "1",
        "quantity": "rain rate (mm/h) scaled to [0, 1]",
        "scaling": scaling.describe(),
        "time_convention": "end of the 5-min accumulation" if kind == "knmi" else "composite nominal time",
    }
    da = xr.DataArray(
        data.astype(np.float32, copy=False),
        dims=("time", "channel", "y", "x"),
        coords={"time": stamps, "channel": [RADAR_CHANNEL], "y": y, "x": x},
        attrs=attrs,
        name="rain_rate",
    )
    return check_frames(da, source=attrs["source"])
