"""The time sliding-window inferer (:mod:`seq_models.inferers.sliding_window`): equal to the full pass with a
burn-in, short series, weights and refusals."""

from __future__ import annotations

import pytest
import torch

from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
from seq_models.networks.gru_regression import PaddedGRURegressor


def _eval_model(features: int = 5) -> PaddedGRURegressor:
    model = PaddedGRURegressor(features, 12, 2)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 20, features) * 2 + 1)
    return model.eval()


def test_sliding_window_equals_full_pass():
    model = _eval_model()
    x = torch.randn(2, 300, 5) * 2 + 1
    inferer = TimeSlidingWindowInferer(window=100, burn_in=40, sw_batch_size=4)
    with torch.no_grad():
        full = model(x)
        windowed = inferer(x, model)
        short_burn_in = TimeSlidingWindowInferer(window=60, burn_in=20, sw_batch_size=4)(x, model)
    assert windowed.shape == (2, 300)
    assert (windowed - full).abs().max() <= 1e-5
    # what a window forgets shrinks with the burn-in: a shorter one is less exact
    assert (short_burn_in - full).abs().max() > (windowed - full).abs().max()
    # the first burn-in steps are seen only by the first window, which starts from the true zero state
    assert (windowed[:, :40] - full[:, :40]).abs().max() <= 1e-6
    # without burn-in the windows start cold and the result differs
    cold = TimeSlidingWindowInferer(window=60, burn_in=0, sw_batch_size=4)
    with torch.no_grad():
        assert (cold(x, model) - full).abs().max() > 1e-3


def test_sliding_window_short_series_and_weights():
    model = _eval_model()
    inferer = TimeSlidingWindowInferer(window=60, burn_in=20)
    x = torch.randn(1, 40, 5)
    with torch.no_grad():
        torch.testing.assert_close(inferer(x, model), model(x))
    w = inferer.weight_map()
    assert w.shape == (1, 1, 60) and torch.all(w[..., :20] == 1e-6) and torch.all(w[..., 20:] == 1)
    with pytest.raises(ValueError, match="burn_in <= window / 2, got window 60, burn_in 31"):
        TimeSlidingWindowInferer(window=60, burn_in=31)
    with pytest.raises(ValueError, match=r"expected a series batch of shape \[B, T, F\], got \[40, 5\]"):
        inferer(torch.randn(40, 5), model)
