"""pysteps baselines (LK + semi-Lagrangian extrapolation, S-PROG) wrapped to the project's frames, and persistence,
on cases checkable by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq_models.baselines import lk_motion, persistence_forecast, pysteps_extrapolation_forecast, sprog_forecast
from seq_models.data.real_frames import RainRateScaling

pytest.importorskip("pysteps")

H, W = 80, 100
YY, XX = np.mgrid[0:H, 0:W]
BLOBS = [(20, 20, 0.9), (50, 30, 0.7), (30, 60, 0.8), (60, 70, 0.6)]


def blobs(t: float, u: float = 2.0, v: float = 1.0) -> np.ndarray:
    """Four Gaussian blobs moving ``u`` px/step in x (east) and ``v`` px/step in y (down)."""
    f = np.zeros((H, W))
    for y0, x0, a in BLOBS:
        f += a * np.exp(-((YY - y0 - v * t) ** 2 + (XX - x0 - u * t) ** 2) / (2 * 3.0**2))
    return np.clip(f, 0, 1).astype(np.float32)


def centroid(img: np.ndarray, y0: float, x0: float, r: int = 8) -> tuple[float, float]:
    w = np.nan_to_num(img) * ((abs(YY - y0) < r) & (abs(XX - x0) < r))
    return float((w * YY).sum() / w.sum()), float((w * XX).sum() / w.sum())


def test_lk_finds_the_known_motion():
    motion = lk_motion(np.stack([blobs(t) for t in range(3)]))
    assert motion.shape == (2, H, W)
    np.testing.assert_allclose(motion[0], 2.0, atol=0.02)  # x component first, pixels per step
    np.testing.assert_allclose(motion[1], 1.0, atol=0.02)


def test_extrapolation_moves_blobs_to_the_right_place():
    history = np.stack([blobs(t) for t in range(3)])[:, None]  # (T, C, H, W)
    forecast = pysteps_extrapolation_forecast(history, steps=3)
    assert forecast.shape == (3, 1, H, W) and forecast.dtype == np.float32
    for k in range(3):
        lead = 3 + k  # the last history frame is t = 2
        for y0, x0, _ in BLOBS:
            cy, cx = centroid(forecast[k, 0], y0 + lead, x0 + 2 * lead)
            assert abs(cy - (y0 + lead)) < 0.05 and abs(cx - (x0 + 2 * lead)) < 0.05
        truth = blobs(lead)
        assert np.nanmax(np.abs(forecast[k, 0] - truth)) < 1e-3
    # pixels whose source lies west of / above the grid have no value (pysteps' outval NaN), the rest do
    first = forecast[0, 0]
    assert np.isnan(first[:, :1]).all() and np.isnan(first[:1, :]).all() and np.isfinite(first[5:, 5:]).all()
    filled = pysteps_extrapolation_forecast(history, steps=1, outval="min")
    assert np.isfinite(filled).all()


def test_extrapolation_carries_missing_pixels_and_keeps_layout():
    frames = np.stack([blobs(t) for t in range(4)])
    frames[-1, 40:46, 50:56] = np.nan  # a no-data block in the last frame
    history = np.stack([frames, frames * 0.5], axis=1)  # two channels, one motion
    batch = torch.from_numpy(np.stack([history, history]))  # (B, T, C, H, W) tensor
    forecast = pysteps_extrapolation_forecast(batch, steps=2)
    assert isinstance(forecast, torch.Tensor) and forecast.shape == (2, 2, 2, H, W)
    lead1 = forecast[0, 0, 0].numpy()
    assert np.isnan(lead1[41:47, 52:58]).all()  # the block, moved by (1, 2)
    assert np.isfinite(lead1[10:30, 10:40]).all()  # far from it: values
    np.testing.assert_allclose(forecast[0, :, 1].numpy(), forecast[0, :, 0].numpy() * 0.5, atol=1e-5, equal_nan=True)
    with pytest.raises(ValueError, match=r"T>=2"):
        pysteps_extrapolation_forecast(history[:1], steps=1)
    # a motion given is used as it is
    still = pysteps_extrapolation_forecast(history, steps=1, motion=np.zeros((2, H, W)))[0]
    both = np.isfinite(still)
    np.testing.assert_allclose(still[both], history[-1][both], atol=1e-6)
    # the block stays where it is; pysteps' NaN-aware interpolation widens it by at most one pixel
    assert np.isnan(still[:, 40:46, 50:56]).all() and np.isfinite(still[:, :, :48]).all()
    assert np.isnan(still).sum() <= 2 * 8 * 8


def test_persistence_is_the_last_frame_with_its_nan():
    history = np.random.default_rng(0).random((3, 2, 4, 5)).astype(np.float32)
    history[-1, 0, 1, 1] = np.nan
    out = persistence_forecast(history, 4)
    assert out.shape == (4, 2, 4, 5)
    for k in range(4):
        np.testing.assert_array_equal(out[k], history[-1])


def test_sprog_on_moving_rain_keeps_domain_and_range():
    scaling = RainRateScaling()
    rate = [20.0 * blobs(t) for t in range(3)]  # up to 18 mm/h
    history = np.stack([scaling.to_unit(r) for r in rate])[:, None]
    history[:, :, :, -10:] = np.nan  # outside the radar domain
    history[:, :, 40:46, 50:56] = np.nan  # a hole in the domain
    forecast = sprog_forecast(history, steps=3)
    assert forecast.shape == (3, 1, H, W) and forecast.dtype == np.float32
    for k in range(3):  # pysteps moves its domain mask with the motion, (1, 2) px per step
        lead = k + 1
        nan = np.isnan(forecast[k, 0])
        assert nan[40 + lead : 46 + lead, 50 + 2 * lead : 56 + 2 * lead].all() and nan[:, 90 + 2 * lead :].all()
        assert nan[:lead].all() and nan[:, : 2 * lead].all()  # sources outside the grid
    inside = forecast[:, :, 5:35, 10:40]
    assert np.isfinite(inside).all() and inside.min() >= 0 and inside.max() <= 1
    # the rain has moved with the blobs: the forecast at lead 1 is closer to the truth than persistence
    truth = scaling.to_unit(20.0 * blobs(3))[5:35, 10:40]
    assert np.abs(forecast[0, 0, 5:35, 10:40] - truth).mean() < 0.5 * np.abs(history[-1, 0, 5:35, 10:40] - truth).mean()
    # no rain in the history: no rain forecast
    dry = sprog_forecast(np.zeros((3, 1, H, W), np.float32), steps=2)
    assert np.array_equal(dry, np.zeros((2, 1, H, W), np.float32))
    with pytest.raises(ValueError, match=r"T>=3"):
        sprog_forecast(history[:2], steps=1)
