"""IAM4VP data (satellite frames, cloud generator), baselines and forecast metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from seq_models.baselines import optical_flow_forecast, persistence_forecast
from seq_models.data.cloud_generator import SEVIRI_CHANNELS, generate_cloud_dataset, generate_cloud_frames
from seq_models.data.satellite import SatelliteWindowDataset, check_frames, open_satellite_frames, write_frames
from seq_models.metrics import ForecastMetric, forecast_metrics, gaussian_window, per_sample_forecast_metrics


def test_generator_range_channels_correlation_and_determinism():
    frames = generate_cloud_frames(30, 32, 40, seed=5)
    assert frames.shape == (30, 11, 32, 40) and frames.dtype == np.float32
    assert frames.min() >= 0 and frames.max() <= 1
    np.testing.assert_array_equal(frames, generate_cloud_frames(30, 32, 40, seed=5))
    flat = frames.transpose(1, 0, 2, 3).reshape(11, -1)
    corr = np.corrcoef(flat)
    ir108, vis006 = SEVIRI_CHANNELS.index("IR_108"), SEVIRI_CHANNELS.index("VIS006")
    assert corr[ir108, SEVIRI_CHANNELS.index("IR_120")] > 0.9  # window channels agree
    assert corr[ir108, vis006] < -0.8  # cold where bright: clouds
    # clouds move: the last frame is closer to itself shifted by the wind than unshifted
    assert np.abs(frames[1:] - frames[:-1]).mean() > 0.005


def test_generator_missing_rows_and_bad_arguments():
    frames = generate_cloud_frames(10, 16, 16, missing_fraction=0.3, seed=1)
    rows_nan = np.isnan(frames).all(axis=(1, 3))  # (time, y): whole scan lines missing in all channels
    assert rows_nan.any() and np.isnan(frames).sum() == rows_nan.sum() * 11 * 16
    with pytest.raises(ValueError, match="expected 1 to 11 channels, got 12"):
        generate_cloud_frames(5, 16, 16, num_channels=12)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_write_and_open_frames_round_trip(tmp_path, suffix):
    da = generate_cloud_dataset(6, 12, 14, num_channels=3, missing_fraction=0.2, seed=2)
    path = write_frames(da, tmp_path / f"frames{suffix}")
    back = open_satellite_frames(path, num_channels=3)
    assert back.dims == ("time", "channel", "y", "x")
    np.testing.assert_array_equal(back.values, da.values)  # NaN in the same places
    assert list(back.channel.values) == list(SEVIRI_CHANNELS[:3])
    sel = open_satellite_frames(path, channels=["IR_087", "IR_016"])
    np.testing.assert_array_equal(sel.values[:, 0], da.values[:, 2])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_open_frames_transposes_and_rejects_bad_data(tmp_path):
    da = generate_cloud_dataset(4, 8, 10, num_channels=2).transpose("channel", "time", "x", "y")
    assert check_frames(da).dims == ("time", "channel", "y", "x")
    with pytest.raises(ValueError, match=r"expected 3 channels in frames, got 2"):
        check_frames(da, num_channels=3)
    with pytest.raises(ValueError, match=r"expected values scaled to \[0, 1\].*got range \[0.*, 2"):
        check_frames(da * 2 + 0.5)
    with pytest.raises(ValueError, match="expected frames with dims"):
        check_frames(da.isel(time=0))
    with pytest.raises(FileNotFoundError, match="missing path"):
        open_satellite_frames(tmp_path / "nope.zarr")


def test_window_dataset_items():
    frames = np.arange(10 * 2 * 3 * 4, dtype=np.float32).reshape(10, 2, 3, 4) / 1000
    ds = SatelliteWindowDataset(frames, history_steps=3, forecast_steps=2, stride=2, region=(1, 3, 0, 2))
    assert len(ds) == 3  # starts 0, 2, 4 (need 5 frames)
    item = ds[1]
    assert item["history"].shape == (3, 2, 2, 2) and item["target"].shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(item["history"].numpy(), frames[2:5, :, 1:3, 0:2])
    np.testing.assert_array_equal(item["target"].numpy(), frames[5:7, :, 1:3, 0:2])
    with pytest.raises(ValueError, match=r"expected at least 12 frames \(6 history \+ 6 forecast\), got 10"):
        SatelliteWindowDataset(frames, 6, 6)
    with pytest.raises(IndexError):
        ds[3]


def test_persistence_repeats_the_last_frame():
    history = torch.rand(2, 4, 3, 5, 6)
    out = persistence_forecast(history, 3)
    assert out.shape == (2, 3, 3, 5, 6)
    for k in range(3):
        torch.testing.assert_close(out[:, k], history[:, -1])
    assert persistence_forecast(history[0].numpy(), 2).shape == (2, 3, 5, 6)


def test_optical_flow_extrapolates_a_moving_blob():
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)

    def blob(cx: float) -> np.ndarray:
        return np.exp(-((yy - 24) ** 2 + (xx - cx) ** 2) / (2 * 5.0**2)).astype(np.float32)

    history = np.stack([np.stack([blob(10 + 2 * t)] * 2) for t in range(3)])  # 2 px/step to the right
    out = optical_flow_forecast(history, 3)
    assert out.shape == (3, 2, 48, 48)
    for k in range(3):
        truth = blob(14 + 2 * (k + 1))
        flow_err = np.abs(out[k, 0] - truth).mean()
        persist_err = np.abs(history[-1, 0] - truth).mean()
        assert flow_err < 0.5 * persist_err
        assert abs(np.unravel_index(out[k, 0].argmax(), out[k, 0].shape)[1] - (14 + 2 * (k + 1))) <= 1
    with pytest.raises(ValueError, match="expected method"):
        optical_flow_forecast(history, 1, method="lk")


def test_metrics_by_hand_with_nan_and_mask():
    pred = torch.zeros(1, 2, 1, 4, 4)
    target = torch.full((1, 2, 1, 4, 4), 0.5)
    target[0, 0, 0, 0, 0] = float("nan")
    pred[0, 1] = 0.25
    mask = torch.ones(4, 4, dtype=torch.bool)
    mask[3] = False
    m = forecast_metrics(pred, target, mask)
    assert m["mae"].shape == (2, 1)
    assert m["mae"][0, 0].item() == pytest.approx(0.5) and m["mae"][1, 0].item() == pytest.approx(0.25)
    assert m["mse"][1, 0].item() == pytest.approx(0.0625)
    # identical images: SSIM 1; constant images differing in level: (2ab + c1) / (a^2 + b^2 + c1)
    same = forecast_metrics(target.nan_to_num(0.5), target.nan_to_num(0.5))
    torch.testing.assert_close(same["ssim"], torch.ones(2, 1))
    c1 = 0.01**2
    expected = (2 * 0.25 * 0.5 + c1) / (0.25**2 + 0.5**2 + c1)
    assert m["ssim"][1, 0].item() == pytest.approx(expected, rel=1e-5)
    empty = forecast_metrics(pred, torch.full_like(target, float("nan")))
    assert torch.isnan(empty["mae"]).all()


def test_ssim_window_and_metric_class():
    w = gaussian_window(11, 1.5)
    assert w.shape == (11, 11) and w.sum().item() == pytest.approx(1.0) and w.argmax().item() == 60
    pred, target = torch.rand(3, 2, 2, 16, 16), torch.rand(3, 2, 2, 16, 16)
    metric = ForecastMetric("mae", reduction="none")
    metric(pred[:2], {"target": target[:2]})
    metric(pred[2:], target[2:])
    per = per_sample_forecast_metrics(pred, target)["mae"]
    torch.testing.assert_close(metric.aggregate().double(), per.mean(0))
    with pytest.raises(ValueError, match="expected metric"):
        ForecastMetric("psnr")
    with pytest.raises(ValueError, match="expected a region mask of shape"):
        forecast_metrics(pred, target, torch.ones(3, 3))
