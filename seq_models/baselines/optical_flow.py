"""Optical-flow extrapolation baseline: dense motion from the last two frames (OpenCV Farneback or TV-L1),
then the last frame advected ``k`` times the motion for lead time ``k`` by semi-Lagrangian remapping."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from .utils import as_history_batch, restore_history_batch

__all__ = ["estimate_flow", "optical_flow_forecast"]


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(frame, nan=0.0) * 255.0, 0, 255).astype(np.uint8)


def estimate_flow(previous: np.ndarray, current: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow ``(H, W, 2)`` (dx, dy in pixels per step) from ``previous`` to ``current`` (``(H, W)`` in [0, 1]).

    Args:
        method: ``"farneback"`` or ``"tvl1"`` (TV-L1 needs ``cv2.optflow`` from opencv-contrib).
    """
    a, b = _to_uint8(previous), _to_uint8(current)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    if method == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError("expected opencv-contrib (cv2.optflow) for TV-L1, got a build without it; use 'farneback'")
        return cv2.optflow.DualTVL1OpticalFlow_create().calc(a, b, None)
    raise ValueError(f"expected method 'farneback' or 'tvl1', got {method!r}")


def _advect(frame: np.ndarray, flow: np.ndarray, k: int) -> np.ndarray:
    """Backward semi-Lagrangian warp of ``frame`` ``(C, H, W)`` by ``k`` steps of ``flow``."""
    h, w = frame.shape[-2:]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = gx - k * flow[..., 0]
    map_y = gy - k * flow[..., 1]
    out = np.empty_like(frame)
    for c in range(frame.shape[0]):
        out[c] = cv2.remap(frame[c], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out


def optical_flow_forecast(
    history: torch.Tensor | np.ndarray, steps: int, method: str = "farneback", motion_channels: list[int] | None = None
) -> torch.Tensor | np.ndarray:
    """Extrapolate the last frame along the motion between the last two frames.

    The motion is estimated once per sample on the mean of ``motion_channels`` (all by default; the channels are
    strongly correlated) and applied to every channel. NaN pixels are filled with the frame's channel mean before
    the motion estimate and stay NaN-free in the forecast.

    Args:
        history: ``(B, T, C, H, W)`` or ``(T, C, H, W)``, ``T >= 2``, values in [0, 1].
        steps: lead times ``K``.
        method: ``"farneback"`` or ``"tvl1"``.
        motion_channels: channel indices averaged for the motion estimate.

    Returns:
        ``(B, K, C, H, W)`` or ``(K, C, H, W)``, same type as ``history``.
    """
    arr, single, device = as_history_batch(history, steps, min_steps=2)
    chans = motion_channels if motion_channels is not None else list(range(arr.shape[2]))
    out = np.empty((arr.shape[0], steps, *arr.shape[2:]), np.float32)
    for b in range(arr.shape[0]):
        prev, last = arr[b, -2].astype(np.float32), arr[b, -1].astype(np.float32)
        fill = np.nan_to_num(np.nanmean(last, axis=(1, 2), keepdims=True), nan=0.0)
        prev = np.where(np.isnan(prev), fill, prev)
        last = np.where(np.isnan(last), fill, last)
        flow = estimate_flow(prev[chans].mean(0), last[chans].mean(0), method)
        for k in range(steps):
            out[b, k] = _advect(last, flow, k + 1)
    return restore_history_batch(np.clip(out, 0.0, 1.0), single, device)
