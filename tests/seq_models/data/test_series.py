"""Series for the GRU (:mod:`seq_models.data.series`): alignment with persistence, the statsmodels series, exogenous
features, the change and AR-residual targets; the VAR-equation baseline on them."""

from __future__ import annotations

import numpy as np
import pytest

from seq_models.baselines.autoregressive import LinearARForecaster, persistence_forecast
from seq_models.data.series import SeriesRegressionData, load_statsmodels_exog, load_statsmodels_series
from tests.seq_models.small_series import ar1_series


def test_series_data_alignment_and_persistence():
    y = np.sin(np.arange(80) / 3.0) * 5 + 20 + np.arange(80) * 0.1
    data = SeriesRegressionData(y, test_size=10, horizon=1, period=12)
    assert data.features.shape == (80, 4) and data.train_end == 69
    np.testing.assert_allclose(data.unscale(data.features[:, 0]), y, rtol=1e-5)
    np.testing.assert_allclose(data.unscale(data.targets[:-1]), y[1:], rtol=1e-5)
    # predicting z_t at every step is persistence, and lands on the same tail values
    np.testing.assert_allclose(data.test_predictions(data.features[:, 0]), persistence_forecast(y, 10), rtol=1e-5)
    np.testing.assert_allclose(data.test_truth(), y[-10:])
    # the scaler uses the values before the tail only
    assert data.mean == pytest.approx(y[:70].mean())
    train = data.train_windows(window=16, stride=8, val_size=10)
    last = train[len(train) - 1]
    assert int(last["lengths"]) <= 16 and train.starts[-1] + int(last["lengths"]) == 59
    with pytest.raises(ValueError, match="expected a finite series"):
        SeriesRegressionData(np.r_[y[:10], np.nan], test_size=2)


def test_statsmodels_series():
    y = load_statsmodels_series("sunspots")
    assert y.shape == (309,) and y[0] == 5.0
    with pytest.raises(ValueError, match="expected one of .*got 'weather'"):
        load_statsmodels_series("weather")


def test_macrodata_target_and_exog_features():
    y, x = load_statsmodels_series("macrodata"), load_statsmodels_exog("macrodata")
    assert y.shape == (203,) and x.shape == (203, 2)
    assert load_statsmodels_exog("sunspots") is None
    data = SeriesRegressionData.from_statsmodels("macrodata", test_size=40)
    assert data.num_features == 4  # z, dz, unemp, tbilrate
    head = x[: 203 - 40]
    np.testing.assert_allclose(data.features[:, 2], (x[:, 0] - head[:, 0].mean()) / head[:, 0].std(), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="exog of shape"):
        SeriesRegressionData(y, test_size=40, exog=x[:-1])


def test_var_equation_recovers_a_known_arx_model():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=n)
    y = np.zeros(n)
    for t in range(1, n):  # y_t = 0.5 y_{t-1} + 0.8 x_{t-1} + noise
        y[t] = 0.5 * y[t - 1] + 0.8 * x[t - 1] + 0.1 * rng.normal()
    model = LinearARForecaster(order=1).fit(y[:500], x[:500])
    np.testing.assert_allclose(model.coef, [0.0, 0.5, 0.8], atol=0.03)  # [c, y_t, x_t] -> y_{t+1}
    pred = model.predict_tail(y, 100, x)
    assert np.sqrt(np.mean((pred - y[-100:]) ** 2)) < 0.12
    chosen = LinearARForecaster().fit(y[:500], x[:500])  # order by joint AIC
    assert 1 <= chosen.order <= 3
    with pytest.raises(ValueError, match="expected exog with 1 series"):
        model.predict_tail(y, 100)
    plain = LinearARForecaster(order=1).fit(y[:500])
    assert plain.coef.shape == (2,)  # univariate unchanged


def test_change_target_round_trips_to_values():
    y = np.cumsum(np.linspace(0.5, 1.5, 50))  # a trend that leaves the head's range
    level = SeriesRegressionData(y, test_size=10)
    change = SeriesRegressionData(y, test_size=10, target="change")
    z = level.scale(y)
    np.testing.assert_allclose(change.targets[:-1], np.diff(z), rtol=1e-5)
    # perfect outputs of either kind give the true next values
    np.testing.assert_allclose(level.test_predictions(level.targets), y[-10:], rtol=1e-5)
    np.testing.assert_allclose(change.test_predictions(change.targets), y[-10:], rtol=1e-5)
    np.testing.assert_allclose(change.to_values(np.zeros(50))[:-1], y[:-1])  # no change: persistence
    with pytest.raises(ValueError, match="target 'level', 'change' or 'ar_residual'"):
        SeriesRegressionData(y, test_size=10, target="delta")


def test_ar_residual_target_features_and_values():
    y = ar1_series()
    test = 20
    data = SeriesRegressionData(y, test_size=test, target="ar_residual")
    level = SeriesRegressionData(y, test_size=test)
    # the AR is the benchmark's baseline: fitted on the head, order by AIC
    ar = LinearARForecaster(max_order=30).fit(y[: len(y) - test])
    assert data.ar_order == ar.order
    p = ar.order
    coef = ar.coef
    hand = np.array([coef[0] + sum(coef[1 + k] * y[t - k] for k in range(p)) for t in range(p - 1, len(y))])
    np.testing.assert_allclose(data.ar_forecast[p - 1 :], hand, rtol=1e-10)
    # target: residual of the AR forecast in units of the head's std
    std = y[: len(y) - test].std()
    np.testing.assert_allclose(data.targets[p - 1 : -1], (y[p:] - hand[:-1]) / std, rtol=1e-4, atol=1e-5)
    assert data.targets[-1] == 0.0
    # one more feature than the level target: the standardised AR forecast, last when there is no exog
    assert data.num_features == level.num_features + 1
    np.testing.assert_allclose(data.features[:, -1], level.scale(data.ar_forecast), rtol=1e-5, atol=1e-5)
    # a network that outputs 0 is the AR baseline on the held-out tail; perfect outputs give the truth
    np.testing.assert_allclose(data.test_predictions(np.zeros(len(y))), ar.predict_tail(y, test), rtol=1e-10)
    np.testing.assert_allclose(data.test_predictions(data.targets.astype(np.float64)), y[-test:], rtol=1e-5)


def test_ar_residual_of_a_seasonal_series_uses_the_seasonal_anomaly_ar():
    """With a period the hybrid's linear part is the seasonal-anomaly AR (phase means of the head removed)."""
    rng = np.random.default_rng(3)
    n, test = 240, 36
    y = 5.0 * np.sin(2 * np.pi * np.arange(n) / 12) + np.cumsum(rng.normal(0, 0.3, n)) * 0.2 + rng.normal(0, 0.2, n)
    data = SeriesRegressionData(y, test_size=test, period=12, target="ar_residual")
    seasonal = LinearARForecaster(max_order=30, period=12).fit(y[: n - test])
    assert data.ar_order == seasonal.order
    np.testing.assert_allclose(data.ar_forecast, seasonal.forecast_each_step(y), rtol=1e-12)
    # an output of 0 is the seasonal-anomaly AR on the tail, which beats the plain AR on a seasonal cycle
    zero = data.test_predictions(np.zeros(n))
    np.testing.assert_allclose(zero, seasonal.predict_tail(y, test), rtol=1e-10)
    plain = LinearARForecaster(max_order=30).fit(y[: n - test]).predict_tail(y, test)
    rmse = lambda p: float(np.sqrt(np.mean((p - y[-test:]) ** 2)))  # noqa: E731
    assert rmse(zero) < rmse(plain)
    # without a period the linear part stays the plain AR
    flat = SeriesRegressionData(y, test_size=test, period=None, target="ar_residual")
    np.testing.assert_allclose(flat.test_predictions(np.zeros(n)), plain, rtol=1e-10)


def test_ar_residual_with_exog_puts_ar_feature_before_exog():
    y = ar1_series(100)
    x = np.column_stack([np.arange(100.0), np.cos(np.arange(100.0))])
    data = SeriesRegressionData(y, test_size=10, period=12, exog=x, target="ar_residual")
    assert data.num_features == 2 + 2 + 1 + 2
    np.testing.assert_allclose(data.features[:, 4], data.scale(data.ar_forecast), rtol=1e-5, atol=1e-5)
