"""Multivariate series (macrodata) for the GRU benchmark: exogenous features and the VAR-equation baseline."""

from __future__ import annotations

import numpy as np
import pytest

from seq_models.baselines.autoregressive import LinearARForecaster
from seq_models.data.series import SeriesRegressionData, load_statsmodels_exog, load_statsmodels_series


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
