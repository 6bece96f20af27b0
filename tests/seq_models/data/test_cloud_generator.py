"""The synthetic cloud generator (:mod:`seq_models.data.cloud_generator`): range, channels, correlation,
determinism, missing rows and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from seq_models.data.cloud_generator import SEVIRI_CHANNELS, generate_cloud_frames


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
