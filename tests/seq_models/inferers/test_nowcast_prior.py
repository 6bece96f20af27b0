"""``NowcastPriorForecaster``: the prior is made on the whole frame before tiling; an untrained prior model then
forecasts exactly the optical-flow nowcast; a plain model passes through unchanged; a short history is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seq_models.baselines import optical_flow_forecast
from seq_models.inferers import AutoregressiveForecaster, NowcastPriorForecaster, TiledForecaster
from seq_models.networks.iam4vp import IAM4VP
from tests.seq_models.small_models import small_iam4vp


def _history(frames: int = 4, h: int = 44, w: int = 60) -> torch.Tensor:
    yy, xx = np.mgrid[0:h, 0:w]
    blobs = [np.exp(-((yy - 12 - 2 * t) ** 2 + (xx - 14 - 3 * t) ** 2) / 40.0) for t in range(frames)]
    return torch.from_numpy(np.stack(blobs)[None, :, None].astype(np.float32))


def test_an_untrained_prior_model_tiled_over_a_large_frame_is_the_whole_frame_nowcast():
    torch.manual_seed(0)
    model = IAM4VP((2 + 3, 1, 16, 16), latent_channels=4, num_convolutions_time=1, time_dim=8, prior_steps=3).eval()
    history = _history()
    with torch.no_grad():
        out = NowcastPriorForecaster(TiledForecaster(overlap=0.25))(history, model)  # steps: the prior's 3
    expected = optical_flow_forecast(history[:, -2:], 3)  # the model's 2 history frames, whole frame
    assert out.shape == (1, 3, 1, 44, 60)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    # a nowcast made tile by tile would differ: the motion of the blob is not seen inside every tile
    tile_prior = optical_flow_forecast(history[:, -2:, :, :16, :16], 3)
    assert float((tile_prior - expected[..., :16, :16]).abs().max()) > 1e-3


def test_a_model_without_a_prior_goes_to_the_forecaster_unchanged():
    model = small_iam4vp(shape=(3, 2, 16, 24))
    history = torch.rand(2, 4, 2, 16, 24, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        wrapped = NowcastPriorForecaster(AutoregressiveForecaster(steps=2))(history, model)
        plain = AutoregressiveForecaster(steps=2)(history, model)
    torch.testing.assert_close(wrapped, plain, rtol=0, atol=0)


def test_a_history_shorter_than_the_models_is_refused():
    model = IAM4VP((3 + 2, 1, 16, 16), latent_channels=4, num_convolutions_time=1, time_dim=8, prior_steps=2)
    with pytest.raises(ValueError, match=r"expected a history \(B, T>=3, C, H, W\).*3 history and 2 nowcast-prior.*\(1, 2, 1, 16, 16\)"):
        NowcastPriorForecaster(AutoregressiveForecaster())(torch.rand(1, 2, 1, 16, 16), model)


def test_the_prior_is_the_nowcast_the_model_was_built_for():
    from seq_models.baselines import nowcast_prior

    torch.manual_seed(0)
    model = IAM4VP((3 + 2, 1, 16, 16), latent_channels=4, num_convolutions_time=1, time_dim=8, prior_steps=2,
                   prior_method="sprog").eval()
    history = _history(frames=4) * 0.6
    history = torch.where(history > 0.05, history, torch.zeros(()))  # a rain cell in the radar scaling
    with torch.no_grad():
        out = NowcastPriorForecaster(TiledForecaster(overlap=0.25))(history, model)
    expected = nowcast_prior(history[:, -3:], 2, "sprog")  # the model's 3 history frames, whole frame
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-6)
    assert float((expected - optical_flow_forecast(history[:, -3:], 2)).abs().max()) > 0.01
