"""``append_nowcast_prior``: the history unchanged (NaN kept), then its optical-flow forecast, for a batch or one
sample, tensor or array."""

from __future__ import annotations

import numpy as np
import torch

from seq_models.baselines import append_nowcast_prior, optical_flow_forecast


def _moving_blob(frames: int = 3, h: int = 40, w: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack(
        [np.exp(-((yy - 15 - 2 * t) ** 2 + (xx - 15 - 3 * t) ** 2) / 60.0) for t in range(frames)]
    )[:, None].astype(np.float32)


def test_the_history_then_its_optical_flow_forecast_along_time():
    history = _moving_blob()
    history[0, 0, :2, :2] = np.nan
    out = append_nowcast_prior(history, 2)
    assert isinstance(out, np.ndarray) and out.shape == (5, 1, 40, 48) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:3], history)  # NaN kept where the history has them
    np.testing.assert_array_equal(out[3:], optical_flow_forecast(history, 2))
    assert not np.isnan(out[3:]).any()
    # the blob moves by (2, 3) px per step from (19, 21) in the last frame: the prior's peaks move on alike
    assert np.unravel_index(np.argmax(out[2, 0]), (40, 48)) == (19, 21)
    assert np.unravel_index(np.argmax(out[3, 0]), (40, 48)) == (21, 24)
    assert np.unravel_index(np.argmax(out[4, 0]), (40, 48)) == (23, 27)


def test_a_tensor_batch_gives_a_tensor_batch():
    history = torch.from_numpy(np.stack([_moving_blob(), _moving_blob()[:, :, ::-1].copy()]))
    out = append_nowcast_prior(history, 3)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 6, 1, 40, 48) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, :3], history, rtol=0, atol=0)
    torch.testing.assert_close(out[:, 3:], optical_flow_forecast(history, 3), rtol=0, atol=0)
