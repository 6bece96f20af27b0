"""Forecast outputs people keep and look at: NetCDF / Zarr files and PNG strips (history, forecast, truth)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from monai_sadaan.utils import atomic_write_with
from seq_models.data.cloud_generator import SEVIRI_CHANNELS
from seq_models.data.satellite import write_frames

__all__ = ["DEFAULT_CHANNEL_GROUPS", "forecast_dataset", "plot_forecast_strips", "write_forecast"]

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
