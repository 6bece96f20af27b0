"""``append_nowcast_prior``: the history unchanged (NaN kept), then its optical-flow forecast, for a batch or one
sample, tensor or array; an S-PROG prior is pysteps' S-PROG filled with the optical flow where it has no value."""

from __future__ import annotations

import numpy as np
import pytest
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


def _rain(frames: int = 4, h: int = 48, w: int = 64) -> np.ndarray:
    """A moving rain cell in the radar scaling (0 = no rain), NaN outside the "radar" (the first 4 columns)."""
    yy, xx = np.mgrid[0:h, 0:w]
    cells = np.stack([0.6 * np.exp(-((yy - 18 - 2 * t) ** 2 + (xx - 20 - 3 * t) ** 2) / 80.0) for t in range(frames)])
    rain = np.where(cells > 0.05, cells, 0.0)[:, None].astype(np.float32)
    rain[:, :, :, :4] = np.nan
    return rain


def test_an_sprog_prior_is_pysteps_sprog_with_the_optical_flow_where_sprog_has_no_value():
    from seq_models.baselines import nowcast_prior, sprog_forecast

    history = _rain()
    sprog, flow = sprog_forecast(history, 3), optical_flow_forecast(history, 3)
    hole = np.isnan(sprog)
    assert hole.any() and (~hole).any()  # the advected radar edge has no S-PROG value
    prior = nowcast_prior(history, 3, "sprog")
    assert prior.shape == (3, 1, 48, 64) and prior.dtype == np.float32 and not np.isnan(prior).any()
    np.testing.assert_array_equal(prior[~hole], sprog[~hole])
    np.testing.assert_array_equal(prior[hole], flow[hole])
    assert float(np.abs(sprog[~hole] - flow[~hole]).max()) > 0.05  # two different nowcasts
    out = append_nowcast_prior(torch.from_numpy(history)[None], 3, "sprog")  # a tensor batch alike
    assert isinstance(out, torch.Tensor) and out.shape == (1, 7, 1, 48, 64)
    np.testing.assert_array_equal(out[0, 4:].numpy(), prior)


def test_an_unknown_prior_method_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"expected a nowcast prior method in \('farneback', 'sprog'\), got 'tvl1'"):
        append_nowcast_prior(_moving_blob(), 2, "tvl1")
