"""Forecast outputs people keep and look at: NetCDF / Zarr files and PNG strips (history, forecast, truth).

A run's files go through :class:`ForecastRun`: written into a hidden staging folder, then moved into the output
folder when the run ends, with a manifest (``forecast_manifest.json``) listing them. The next run into the same
folder replaces exactly the files the manifest lists, so no stale ``forecast_NNNNN`` file from a longer earlier
run is left beside new ones, and a file this tool did not write is never deleted.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from monai_glue import atomic_open, atomic_write_with
from seq_models.data.cloud_generator import SEVIRI_CHANNELS
from seq_models.data.satellite import write_frames

__all__ = [
    "DEFAULT_CHANNEL_GROUPS",
    "FORECAST_MANIFEST",
    "ForecastRun",
    "forecast_dataset",
    "plot_forecast_strips",
    "read_forecast_manifest",
    "write_forecast",
]

#: SEVIRI channel groups drawn in one strip each (the group mean is shown).
DEFAULT_CHANNEL_GROUPS: dict[str, tuple[str, ...]] = {
    "infrared": ("IR_016", "IR_039", "IR_087", "IR_097", "IR_108", "IR_120", "IR_134"),
    "visible": ("VIS006", "VIS008"),
    "water_vapour": ("WV_062", "WV_073"),
}


def _names(num_channels: int, channel_names: Sequence[str] | None) -> list[str]:
    if channel_names is not None:
        if len(channel_names) != num_channels:
            raise ValueError(f"expected {num_channels} channel names, got {len(channel_names)}")
        return list(channel_names)
    if num_channels <= len(SEVIRI_CHANNELS):
        return list(SEVIRI_CHANNELS[:num_channels])
    return [f"channel_{i}" for i in range(num_channels)]


def forecast_dataset(
    forecast: np.ndarray,
    history: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    channel_names: Sequence[str] | None = None,
    step_minutes: int = 15,
    attrs: Mapping[str, object] | None = None,
) -> xr.Dataset:
    """Dataset with ``forecast`` ``(lead_time, channel, y, x)`` and optional ``history`` / ``truth``.

    Args:
        forecast: ``(K, C, H, W)``.
        history: ``(T, C, H, W)`` (``history_time`` runs ``-(T-1)·step .. 0`` minutes).
        truth: ``(K, C, H, W)``.
        channel_names: ``C`` names (SEVIRI order by default).
        step_minutes: minutes between frames; lead times are ``step, 2·step, ...``.
    """
    forecast = np.asarray(forecast, dtype=np.float32)
    if forecast.ndim != 4:
        raise ValueError(f"expected a forecast (K, C, H, W), got shape {forecast.shape}")
    k, c, h, w = forecast.shape
    names = _names(c, channel_names)
    coords = {"lead_time": np.arange(1, k + 1) * step_minutes, "channel": names, "y": np.arange(h), "x": np.arange(w)}
    data = {"forecast": (("lead_time", "channel", "y", "x"), forecast)}
    if truth is not None:
        truth = np.asarray(truth, dtype=np.float32)
        if truth.shape != forecast.shape:
            raise ValueError(f"expected truth of the forecast's shape {forecast.shape}, got {truth.shape}")
        data["truth"] = (("lead_time", "channel", "y", "x"), truth)
    if history is not None:
        history = np.asarray(history, dtype=np.float32)
        if history.shape[1:] != forecast.shape[1:]:
            raise ValueError(f"expected history frames of shape {forecast.shape[1:]}, got {history.shape[1:]}")
        coords["history_time"] = (np.arange(history.shape[0]) - history.shape[0] + 1) * step_minutes
        data["history"] = (("history_time", "channel", "y", "x"), history)
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    ds["lead_time"].attrs["units"] = "minutes"
    return ds


def write_forecast(dataset: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a forecast dataset atomically as NetCDF (``.nc``) or Zarr (``.zarr``)."""
    return write_frames(dataset, path)


def plot_forecast_strips(
    dataset: xr.Dataset,
    prefix: str | os.PathLike,
    groups: Mapping[str, Sequence[str]] | None = None,
    max_history: int = 4,
) -> list[Path]:
    """One PNG per channel group: rows history (last ``max_history``), forecast and truth, one column per time.

    Each panel shows the mean of the group's channels, on a fixed ``[0, 1]`` scale. Groups with no channel in
    the dataset are skipped. Files are ``<prefix>_<group>.png``, written atomically.

    Returns:
        the written paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = dict(groups or DEFAULT_CHANNEL_GROUPS)
    available = set(map(str, dataset["channel"].values))
    prefix = Path(prefix)
    written: list[Path] = []
    lead = dataset["lead_time"].values
    for name, channels in groups.items():
        chans = [ch for ch in channels if ch in available]
        if not chans:
            continue
        rows: list[tuple[str, np.ndarray, np.ndarray]] = []
        if "history" in dataset:
            hist = dataset["history"].sel(channel=chans).mean("channel").values[-max_history:]
            rows.append(("history", hist, dataset["history_time"].values[-max_history:]))
        rows.append(("forecast", dataset["forecast"].sel(channel=chans).mean("channel").values, lead))
        if "truth" in dataset:
            rows.append(("truth", dataset["truth"].sel(channel=chans).mean("channel").values, lead))
        cols = max(len(r[1]) for r in rows)
        fig, axes = plt.subplots(len(rows), cols, figsize=(1.8 * cols, 1.9 * len(rows)), squeeze=False)
        for r, (label, frames, times) in enumerate(rows):
            for j in range(cols):
                ax = axes[r, j]
                ax.set_xticks([])
                ax.set_yticks([])
                if j < len(frames):
                    ax.imshow(np.nan_to_num(frames[j], nan=0.0), vmin=0, vmax=1, cmap="gray")
                    ax.set_title(f"{int(times[j]):+d} min", fontsize=8)
                else:
                    ax.axis("off")
            axes[r, 0].set_ylabel(label)
        fig.suptitle(f"{name} ({', '.join(chans)})", fontsize=9)
        fig.tight_layout()
        out = prefix.with_name(f"{prefix.name}_{name}.png")
        with atomic_write_with(out) as tmp:
            fig.savefig(tmp, dpi=80, format="png")
        plt.close(fig)
        written.append(out)
    return written


#: the manifest a forecast run leaves in its output folder, listing the files it wrote
FORECAST_MANIFEST = "forecast_manifest.json"
_MANIFEST_FORMAT = "seq-models-forecast-run/1"
_STAGING_PREFIX = ".forecast-staging-"
_OWNER_FILE = ".owner.json"
#: names a forecast run writes: forecast_<n>.nc / .zarr and forecast_<n>_<group>.png
_FORECAST_NAME = re.compile(r"^forecast_[0-9]{5,}(?:\.nc|\.zarr|_[A-Za-z0-9_]+\.png)$")
_ACTIVE_STAGING: set[str] = set()  # staging folders of runs in progress in this process


def _is_forecast_name(name: str) -> bool:
    return bool(_FORECAST_NAME.match(name))


def _looks_written_by_us(path: Path) -> bool:
    """A Zarr output is a real folder, every other output a real file (a link or other type was put there later)."""
    if path.is_symlink():
        return False
    return path.is_dir() if path.name.endswith(".zarr") else path.is_file()


def read_forecast_manifest(output_dir: str | os.PathLike) -> list[str]:
    """The file names the last forecast run into ``output_dir`` listed (``[]`` when it has no manifest).

    Raises:
        ValueError: a manifest that is not one this module wrote (bad JSON, another format, a name that is not a
            forecast file name): which files are the tool's cannot be told then, so nothing may be replaced.
    """
    path = Path(output_dir) / FORECAST_MANIFEST
    if not path.exists():
        return []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"expected a forecast manifest (JSON) at {path}, it cannot be read ({e})") from e
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or doc.get("format") != _MANIFEST_FORMAT or not isinstance(files, list):
        raise ValueError(f"expected a forecast manifest of format {_MANIFEST_FORMAT!r} at {path}, got another file")
    bad = [f for f in files if not isinstance(f, str) or not _is_forecast_name(f)]
    if bad:
        raise ValueError(f"expected forecast file names (forecast_<n>.nc ...) in {path}, got {bad[:5]}")
    return list(files)


def _write_manifest(output_dir: Path, files: Sequence[str], complete: bool) -> None:
    doc = {
        "format": _MANIFEST_FORMAT,
        "written_by": "seq_models.writers.ForecastRun",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "complete": complete,  # false while a run swaps its files in: every file listed is the tool's
        "files": sorted(set(files)),
    }
    with atomic_open(output_dir / FORECAST_MANIFEST) as f:
        json.dump(doc, f, indent=2)


def _remove_output(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def _owner_gone(owner: Mapping[str, object]) -> bool:
    """Whether the process that made a staging folder has ended (only decidable on this host)."""
    pid, host = owner.get("pid"), owner.get("host")
    if not isinstance(pid, int) or host != socket.gethostname():
        return False
    if pid == os.getpid():
        return True  # this process: the folder is not in _ACTIVE_STAGING (checked by the caller)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists but belongs to someone else, or cannot be asked
        return False
    return False


class ForecastRun:
    """The files of one forecast run: staged in a hidden folder, swapped into ``output_dir`` by :meth:`commit`.

    :meth:`begin` refuses an output folder that holds ``forecast_<n>*`` files the last run's manifest does not
    list (a user's files, or files of an earlier version of this tool: they would sit beside the new ones
    unmarked) and removes staging folders left by runs that were killed. :meth:`commit` removes exactly the
    files the previous manifest lists, moves the new ones in and writes the new manifest; :meth:`abort` drops the
    staged files. Nothing else in the folder is touched.

    Args:
        output_dir: the folder the forecasts end up in (created when missing).

    Example::

        run = ForecastRun(out)
        run.begin()
        write_forecast(ds, run.path("forecast_00000.nc"))
        run.commit()  # out/forecast_00000.nc, out/forecast_manifest.json
    """

    def __init__(self, output_dir: str | os.PathLike) -> None:
        self.output_dir = Path(output_dir)
        self.staging: Path | None = None

    def begin(self) -> None:
        """Check the output folder and open a new staging folder (dropping this object's unfinished one).

        Raises:
            ValueError: ``output_dir`` is a file, its manifest is unreadable, or it holds forecast files the
                manifest does not list (named).
        """
        self.abort()
        out = self.output_dir
        if out.exists() and not out.is_dir():
            raise ValueError(f"expected an output folder for the forecasts, got a file: {out}")
        out.mkdir(parents=True, exist_ok=True)
        listed = set(read_forecast_manifest(out))
        foreign = sorted(
            p.name for p in out.iterdir()
            if _is_forecast_name(p.name) and (p.name not in listed or not _looks_written_by_us(p))
        )  # fmt: skip
        if foreign:
            more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
            raise ValueError(
                f"expected {out} to hold no forecast files but those its last run listed in {FORECAST_MANIFEST}, "
                f"found {foreign[:5]}{more} not listed (not written by a recorded run of this tool, or changed "
                f"since): move them away or choose another output_dir; they are never deleted"
            )
        self._remove_stale_staging()
        staging = out / f"{_STAGING_PREFIX}{uuid.uuid4().hex}"
        staging.mkdir()
        with atomic_open(staging / _OWNER_FILE) as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
        _ACTIVE_STAGING.add(str(staging))
        self.staging = staging

    def _remove_stale_staging(self) -> None:
        for d in self.output_dir.glob(f"{_STAGING_PREFIX}*"):
            if d.is_symlink() or not d.is_dir() or str(d) in _ACTIVE_STAGING:
                continue
            try:
                owner = json.loads((d / _OWNER_FILE).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError):
                continue  # not one of ours (or not readable): leave it
            if isinstance(owner, dict) and _owner_gone(owner):
                shutil.rmtree(d, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Where to write the output file ``name`` (``forecast_<n>.nc``, ``.zarr`` or ``forecast_<n>_<group>.png``).

        Raises:
            RuntimeError: :meth:`begin` was not called.
            ValueError: ``name`` is not a forecast file name.
        """
        if self.staging is None:
            raise RuntimeError("expected ForecastRun.begin() before writing, got no run in progress")
        if not _is_forecast_name(name):
            raise ValueError(f"expected a forecast file name (forecast_<n>.nc, .zarr, _<group>.png), got {name!r}")
        return self.staging / name

    def commit(self) -> list[Path]:
        """Replace the previous run's listed files with this run's; return the new files' paths (sorted).

        Raises:
            RuntimeError: :meth:`begin` was not called.
            ValueError: a name this run wrote is now taken by a file no recorded run wrote (named; the staged
                files are dropped, the folder keeps what it had).
        """
        if self.staging is None:
            raise RuntimeError("expected ForecastRun.begin() before commit(), got no run in progress")
        out, staging = self.output_dir, self.staging
        new = sorted(p.name for p in staging.iterdir() if _is_forecast_name(p.name))
        try:
            listed = set(read_forecast_manifest(out))
            taken = [n for n in new if (out / n).exists() or (out / n).is_symlink()]
            foreign = [n for n in taken if n not in listed or not _looks_written_by_us(out / n)]
            if foreign:
                raise ValueError(
                    f"expected to write {foreign[:5]} into {out}, but files of these names appeared there during the "
                    f"run that no recorded run of this tool wrote: nothing was replaced"
                )
        except BaseException:
            self.abort()
            raise
        _write_manifest(out, sorted(listed | set(new)), complete=False)  # a crash from here leaves all listed
        for name in sorted(listed - set(new)):
            if _looks_written_by_us(out / name):  # something put there since begin() stays
                _remove_output(out / name)
        for name in new:
            target = out / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)  # a Zarr folder cannot be replaced by a rename
            os.replace(staging / name, target)
        _write_manifest(out, new, complete=True)
        self.abort()
        return [out / n for n in new]

    def abort(self) -> None:
        """Drop this run's staged files (nothing in the output folder changes)."""
        if self.staging is not None:
            _ACTIVE_STAGING.discard(str(self.staging))
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
