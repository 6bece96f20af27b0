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


def test_seasonal_anomaly_ar_recovers_cycle_and_process():
    """A fixed 4-step cycle plus an exact AR(1) around it: the phase means, the coefficient and every forecast."""
    cycle = np.array([10.0, 12.0, 9.0, 5.0])
    n, a = 80, 0.6
    anomaly = np.zeros(n)
    anomaly[0] = 2.0
    for t in range(1, n):
        anomaly[t] = a * anomaly[t - 1]
    y = cycle[np.arange(n) % 4] + anomaly
    head = y[:60]
    ar = LinearARForecaster(order=1, period=4).fit(head)
    # phase means of the head: the cycle plus the mean anomaly at that phase
    expected_means = [head[k::4].mean() for k in range(4)]
    np.testing.assert_allclose(ar.seasonal_means, expected_means)
    # by hand: d_t = y_t - m(t mod 4); forecast m((t+1) mod 4) + c + b d_t, c and b from least squares on the head
    d = head - ar.seasonal_means[np.arange(60) % 4]
    b, c = np.polyfit(d[:-1], d[1:], 1)
    np.testing.assert_allclose(ar.coef, [c, b], rtol=1e-6, atol=1e-9)
    means = ar.seasonal_means
    hand = np.array([means[t % 4] + c + b * (y[t - 1] - means[(t - 1) % 4]) for t in range(60, 80)])
    np.testing.assert_allclose(ar.predict_tail(y, 20), hand, rtol=1e-9)
    # forecast_each_step makes the same forecasts (origin t forecasts t + 1)
    np.testing.assert_allclose(ar.forecast_each_step(y)[59:79], hand, rtol=1e-9)
    # the cycle is a step function of the phase, which a plain AR(1) cannot follow
    plain = LinearARForecaster(order=1).fit(head)
    assert np.abs(plain.predict_tail(y, 20) - y[-20:]).max() > 1.0
    assert np.abs(ar.predict_tail(y, 20) - y[-20:]).max() < 0.2  # the head's phase means carry its decaying anomaly


def test_seasonal_anomaly_ar_bad_input():
    with pytest.raises(ValueError, match="period >= 2"):
        LinearARForecaster(period=1)
    with pytest.raises(ValueError, match="at least two periods"):
        LinearARForecaster(order=1, period=12).fit(np.arange(20.0))
