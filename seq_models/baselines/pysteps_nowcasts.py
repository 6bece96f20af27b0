"""pysteps' nowcasts, the field's reference for extrapolation nowcasting, wrapped to the project's frame layout.

Everything numerical is pysteps' own API (the optional ``pysteps`` extra): Lucas-Kanade motion
(``pysteps.motion.get_method("LK")``), semi-Lagrangian advection (``pysteps.nowcasts.get_method("extrapolation")``)
and S-PROG (``pysteps.nowcasts.get_method("sprog")``). The wrappers only reshape ``(B, T, C, H, W)`` /
``(T, C, H, W)`` histories in ``[0, 1]`` to pysteps' ``(T, m, n)`` fields and back.

NaN, as pysteps expects it:

- Motion: NaN pixels are masked by pysteps' LK (no features are tracked in or next to them).
- Extrapolation: the last frame is advected with its NaN (pysteps' ``allow_nonfinite_values``); pixels whose
  source lies outside the grid are NaN too (pysteps' default ``outval``). A forecast therefore has NaN where
  pysteps cannot say anything; scores must then be taken over the pixels every compared method covers.
- S-PROG: NaN marks pixels outside the radar domain; pysteps fills them (with the field's minimum) for the
  cascade and puts NaN back on its domain mask (pixels without data in any of the last ``ar_order + 1`` frames),
  which it moves with the motion like the rain; pixels whose source lies outside the grid are NaN too.

S-PROG is for rain: it works on pysteps' dBR field (:meth:`seq_models.data.real_frames.RainRateScaling.to_dbr`),
uses a no-rain threshold (0.1 mm/h) for its conditional statistics and smooths each spatial scale away at the
rate its own autocorrelation decays. Satellite reflectance has no rain/no-rain threshold and no lognormal
intensities, so the project does not use S-PROG for satellite frames (pysteps' extrapolation applies to any field).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from seq_models.data.real_frames import RainRateScaling, import_pysteps

from .utils import as_history_batch, restore_history_batch

__all__ = ["lk_motion", "pysteps_extrapolation_forecast", "sprog_forecast"]


def lk_motion(fields: np.ndarray, **lk_kwargs: Any) -> np.ndarray:
    """pysteps' Lucas-Kanade motion ``(2, H, W)`` (x then y, pixels per time step) from fields ``(T>=2, H, W)``.

    NaN pixels are masked (pysteps' convention); ``lk_kwargs`` go to ``pysteps.motion.get_method("LK")``.
    """
    fields = np.asarray(fields, dtype=np.float64)
    if fields.ndim != 3 or fields.shape[0] < 2:
        raise ValueError(f"expected fields (T>=2, H, W) for the motion estimate, got shape {fields.shape}")
    pysteps = import_pysteps()
    with contextlib.redirect_stdout(io.StringIO()):
        motion = pysteps.motion.get_method("LK")(fields, **lk_kwargs)
    return np.asarray(motion, dtype=np.float64)


def _motion_field(sample: np.ndarray, motion_frames: int, channels: Sequence[int] | None) -> np.ndarray:
    """``(T', H, W)``: the mean over ``channels`` of the last ``motion_frames`` frames of ``sample`` ``(T, C, H, W)``
    (NaN where every channel is NaN)."""
    chans = list(channels) if channels is not None else list(range(sample.shape[1]))
    frames = sample[-motion_frames:, chans]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "mean of empty slice" where every channel is NaN
        return np.nanmean(frames, axis=1)


def pysteps_extrapolation_forecast(
    history: torch.Tensor | np.ndarray,
    steps: int,
    motion_frames: int = 3,
    motion_channels: Sequence[int] | None = None,
    motion: np.ndarray | None = None,
    outval: float | str = np.nan,
    lk_kwargs: dict[str, Any] | None = None,
) -> torch.Tensor | np.ndarray:
    """pysteps' extrapolation nowcast: LK motion from the last frames, the last frame advected semi-Lagrangian.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)``, values in ``[0, 1]``, NaN where missing; ``T >= 2``.
        steps: lead times ``K`` (in history time steps).
        motion_frames: frames for the motion estimate (pysteps pools the vectors of consecutive pairs; 3 as in
            pysteps' examples, fewer if the history is shorter).
        motion_channels: channels averaged for the motion estimate (all by default); the motion moves every
            channel.
        motion: a precomputed motion ``(2, H, W)`` or ``(B, 2, H, W)`` (for example the one S-PROG used), instead of
            estimating it.
        outval: value for pixels advected from outside the grid (pysteps' default NaN; ``"min"`` takes the
            frame's minimum).
        lk_kwargs: keyword arguments for pysteps' LK.

    Returns:
        ``(B, K, C, H, W)`` or ``(K, C, H, W)`` float32 in ``[0, 1]`` with NaN where pysteps gives no value, the
        type (and device) of ``history``.
    """
    arr, single, device = as_history_batch(history, steps, 1 if motion is not None else 2)
    arr = arr.astype(np.float64)
    pysteps = import_pysteps()
    extrapolate = pysteps.nowcasts.get_method("extrapolation")
    b, _, c, h, w = arr.shape
    motions = None if motion is None else np.broadcast_to(np.asarray(motion, dtype=np.float64), (b, 2, h, w))
    out = np.empty((b, steps, c, h, w), np.float32)
    for i in range(b):
        v = motions[i] if motions is not None else lk_motion(
            _motion_field(arr[i], min(motion_frames, arr.shape[1]), motion_channels), **(lk_kwargs or {})
        )
        for ch in range(c):
            with contextlib.redirect_stdout(io.StringIO()):
                out[i, :, ch] = extrapolate(arr[i, -1, ch], v, steps, extrap_kwargs={"outval": outval})
    np.clip(out, 0.0, 1.0, out=out)  # NaN stays NaN
    return restore_history_batch(out, single, device)


def sprog_forecast(
    history: torch.Tensor | np.ndarray,
    steps: int,
    scaling: RainRateScaling = RainRateScaling(),
    motion: np.ndarray | None = None,
    n_cascade_levels: int = 6,
    ar_order: int = 2,
    zerovalue: float = -15.0,
    lk_kwargs: dict[str, Any] | None = None,
    **sprog_kwargs: Any,
) -> torch.Tensor | np.ndarray:
    """pysteps' S-PROG nowcast of radar rain frames scaled by :class:`~seq_models.data.real_frames.RainRateScaling`.

    Each channel (normally the one ``rain_rate``) is turned into pysteps' dBR field (``zerovalue`` where there is
    no rain, NaN outside the radar domain), its motion estimated by pysteps' LK on the last ``ar_order + 1``
    frames (unless ``motion`` is given), S-PROG run with ``precip_thr = 10 log10(scaling.threshold)`` and the
    result mapped back to ``[0, 1]``.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)``, ``T >= ar_order + 1``.
        steps: lead times ``K``.
        scaling: the radar scaling the frames are in.
        motion: precomputed motion ``(2, H, W)`` or ``(B, 2, H, W)`` (pixels per step).
        n_cascade_levels, ar_order: S-PROG's cascade levels and AR order (pysteps' defaults 6 and 2).
        zerovalue: dBR given to no-rain pixels (pysteps' examples: -15).
        sprog_kwargs: more keyword arguments for ``pysteps.nowcasts.get_method("sprog")``.

    Returns:
        ``(B, K, C, H, W)`` or ``(K, C, H, W)`` float32 in ``[0, 1]``, NaN on the advected domain mask (see the
        module notes).
    """
    arr, single, device = as_history_batch(history, steps, ar_order + 1)
    arr = arr.astype(np.float64)
    pysteps = import_pysteps()
    sprog = pysteps.nowcasts.get_method("sprog")
    b, _, c, h, w = arr.shape
    motions = None if motion is None else np.broadcast_to(np.asarray(motion, dtype=np.float64), (b, 2, h, w))
    threshold_db = float(10.0 * np.log10(scaling.threshold))
    out = np.empty((b, steps, c, h, w), np.float32)
    for i in range(b):
        for ch in range(c):
            dbr = scaling.to_dbr(arr[i, -(ar_order + 1) :, ch], zerovalue=zerovalue)
            v = motions[i] if motions is not None else lk_motion(dbr, **(lk_kwargs or {}))
            with contextlib.redirect_stdout(io.StringIO()):
                forecast = sprog(
                    dbr, v, steps, precip_thr=threshold_db, n_cascade_levels=n_cascade_levels, ar_order=ar_order,
                    **sprog_kwargs,
                )
            out[i, :, ch] = scaling.from_dbr(forecast)
    return restore_history_batch(out, single, device)
