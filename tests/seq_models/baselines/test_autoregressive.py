"""The linear AR baseline (:mod:`seq_models.baselines.autoregressive`): an exact process recovered, one forecast
per step by hand."""

from __future__ import annotations

import numpy as np
import pytest

from seq_models.baselines.autoregressive import LinearARForecaster


def test_linear_ar_recovers_exact_process():
    y = np.zeros(120)
    y[:2] = [1.0, 0.5]
    for t in range(2, 120):
        y[t] = 0.3 + 1.2 * y[t - 1] - 0.5 * y[t - 2]
    ar = LinearARForecaster(order=2).fit(y[:100])
    np.testing.assert_allclose(ar.coef, [0.3, 1.2, -0.5], atol=1e-8)
    np.testing.assert_allclose(ar.predict_tail(y, 20), y[-20:], atol=1e-8)
    two = LinearARForecaster(order=2, horizon=2).fit(y[:100])
    np.testing.assert_allclose(two.predict_tail(y, 20), y[-20:], atol=1e-6)


def test_forecast_each_step_by_hand():
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0, 5.0, 7.0, 6.0, 8.0])
    ar = LinearARForecaster(order=2).fit(y)
    c, a1, a2 = ar.coef
    each = ar.forecast_each_step(y)
    assert each.shape == (10,)
    # origin 0: the lag before the start is the training mean
    assert each[0] == pytest.approx(c + a1 * y[0] + a2 * y.mean())
    for t in range(1, 10):
        assert each[t] == pytest.approx(c + a1 * y[t] + a2 * y[t - 1])
    # the same forecasts as the baseline makes for a tail
    np.testing.assert_allclose(each[-4:-1], ar.predict_tail(y, 3))
    with pytest.raises(RuntimeError, match="fit"):
        LinearARForecaster(order=1).forecast_each_step(y)
