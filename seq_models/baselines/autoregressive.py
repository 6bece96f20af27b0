"""Baselines for one-series regression: persistence and a linear autoregressive model (least squares)."""

from __future__ import annotations

import numpy as np

__all__ = ["persistence_forecast", "LinearARForecaster"]


def persistence_forecast(series: np.ndarray, test_size: int, horizon: int = 1) -> np.ndarray:
    """Predict the last ``test_size`` values as the value ``horizon`` steps earlier.

    Args:
        series: [N] raw values.
        test_size: length of the scored tail.
        horizon: steps ahead.

    Returns:
        [test_size] predictions of ``series[-test_size:]``.
    """
    y = np.asarray(series, dtype=np.float64)
    n = len(y)
    if not 1 <= test_size <= n - horizon:
        raise ValueError(f"expected test_size in [1, {n - horizon}], got {test_size}")
    return y[n - test_size - horizon : n - horizon]


class LinearARForecaster:
    """Direct linear AR: ``y_{t+h} = c + sum_k a_k y_{t-k}``, fitted by least squares on the training head.

    The order is chosen by AIC on the training head with statsmodels' ``ar_select_order`` (up to ``max_order``)
    unless ``order`` is given. With exogenous series (``exog`` in :meth:`fit` and :meth:`predict_tail`) the model
    is the target's equation of a VAR: ``y_{t+h} = c + sum_k a_k y_{t-k} + sum_k b_k . x_{t-k}``, its order chosen
    by AIC over the joint series with statsmodels' ``VAR.select_order`` (at most ``12 (N / 100)^(1/4)`` lags,
    statsmodels' default for VARs).

    With ``period`` the model is a seasonal-anomaly AR, the usual linear model for a series with a fixed seasonal
    cycle: the training head's mean at each phase (step index modulo ``period``, counted from the series' first
    value, so ``fit``'s head and the series given to the predictions must start at the same step) is removed
    first, the AR (order by AIC) is fitted on the anomalies, and the target step's phase mean is added back to
    every forecast. Only the target is deseasonalised; exogenous series enter as they are.

    Args:
        order: fixed number of lags, or ``None`` to select it.
        max_order: largest order tried by the selection.
        horizon: steps ahead (>= 1).
        period: seasonal period (>= 2) whose phase means are removed first, or ``None``.
    """

    def __init__(
        self, order: int | None = None, max_order: int = 30, horizon: int = 1, period: int | None = None
    ) -> None:
        if horizon < 1:
            raise ValueError(f"expected horizon >= 1, got {horizon}")
        if period is not None and period < 2:
            raise ValueError(f"expected period >= 2 or None, got {period}")
        self.order, self.max_order, self.horizon, self.period = order, max_order, horizon, period
        self.coef: np.ndarray | None = None
        self.num_exog = 0
        self.train_mean: np.ndarray | None = None
        #: [period] the training head's mean at each phase (``period`` only)
        self.seasonal_means: np.ndarray | None = None

    def _phase_means(self, n: int) -> np.ndarray:
        """The fitted phase mean of each of the first ``n`` steps [n] (zeros without ``period``)."""
        if self.seasonal_means is None:
            return np.zeros(n)
        return self.seasonal_means[np.arange(n) % len(self.seasonal_means)]

    def _deseasonalised(self, z: np.ndarray) -> np.ndarray:
        """``z`` [N, 1 + E] with the target column's phase means removed (a copy)."""
        z = z.copy()
        z[:, 0] -= self._phase_means(len(z))
        return z

    @staticmethod
    def _joint(y: np.ndarray, exog: np.ndarray | None) -> np.ndarray:
        y = np.asarray(y, dtype=np.float64)
        if exog is None:
            return y[:, None]
        x = np.asarray(exog, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        if x.shape[0] != len(y):
            raise ValueError(f"expected exog with one row per value ({len(y)}), got shape {x.shape}")
        return np.column_stack([y, x])

    def _fitted_joint(self, series: np.ndarray, exog: np.ndarray | None, method: str) -> np.ndarray:
        """:meth:`_joint` of ``series`` and ``exog`` ``[N, 1 + E]`` for ``method``, once fitted with as many exog series.

        Raises:
            RuntimeError: not fitted yet.
            ValueError: exogenous series given where ``fit`` had none, or missing where it had some.
        """
        if self.coef is None or self.train_mean is None:
            raise RuntimeError(f"call fit() before {method}()")
        if (exog is None) != (self.num_exog == 0):
            got = "none" if exog is None else "some"
            raise ValueError(f"expected exog with {self.num_exog} series as in fit(), got {got}")
        return self._joint(series, exog)

    def _design(self, y: np.ndarray, p: int) -> np.ndarray:
        z = y[:, None] if y.ndim == 1 else y
        n = len(z)
        cols = [z[p - 1 - k : n - k] for k in range(p)]  # row i: z_{t}, ..., z_{t-p+1} with t = p - 1 + i
        return np.column_stack([np.ones(n - p + 1), *cols])

    def fit(self, train: np.ndarray, exog: np.ndarray | None = None) -> LinearARForecaster:
        """Fit on the training head [N_train] (raw values), with exogenous series [N_train, E] if given."""
        z = self._joint(train, exog)
        self.seasonal_means = None
        if self.period is not None:
            if len(z) < 2 * self.period:
                raise ValueError(f"expected at least two periods ({2 * self.period} values) to fit, got {len(z)}")
            phase = np.arange(len(z)) % self.period
            self.seasonal_means = np.array([z[phase == k, 0].mean() for k in range(self.period)])
            z = self._deseasonalised(z)
        y = z[:, 0]
        self.num_exog = z.shape[1] - 1
        self.train_mean = z.mean(axis=0)
        if self.order is None:
            maxlag = min(self.max_order, len(y) // 4)
            if self.num_exog:
                from statsmodels.tsa.api import VAR

                # joint AIC degenerates near lags ~ N / (4 d): cap at Schwert's rule, statsmodels' VAR default
                maxlag = min(maxlag, int(12 * (len(y) / 100.0) ** 0.25))
                self.order = max(1, int(VAR(z).select_order(maxlags=maxlag, trend="c").selected_orders["aic"]))
            else:
                from statsmodels.tsa.ar_model import ar_select_order

                sel = ar_select_order(y, maxlag=maxlag, ic="aic", trend="c")
                self.order = int(max(sel.ar_lags)) if sel.ar_lags else 1
        p, h = int(self.order), self.horizon
        if len(y) < p + h + 2:
            raise ValueError(f"expected at least {p + h + 2} training values for order {p}, got {len(y)}")
        x = self._design(z, p)[: len(y) - p + 1 - h]
        target = y[p - 1 + h :]
        self.coef, *_ = np.linalg.lstsq(x, target, rcond=None)
        return self

    def predict_tail(self, series: np.ndarray, test_size: int, exog: np.ndarray | None = None) -> np.ndarray:
        """Predictions of ``series[-test_size:]`` from the true values ``horizon`` steps earlier and before
        (and the exogenous series up to then, when the model was fitted with them)."""
        z = self._fitted_joint(series, exog, "predict_tail")
        p, h, n = int(self.order), self.horizon, len(z)
        if n - test_size - h < p - 1:
            raise ValueError(f"expected at least {p} values before the scored tail, got {n - test_size - h + 1}")
        x = self._design(self._deseasonalised(z), p)  # row for origin t is t - (p - 1)
        origins = np.arange(n - test_size - h, n - h)
        return x[origins - (p - 1)] @ self.coef + self._phase_means(n + h)[origins + h]

    def forecast_each_step(self, series: np.ndarray, exog: np.ndarray | None = None) -> np.ndarray:
        """The fitted model's forecast of ``series[t + horizon]`` made at every origin ``t`` (one per value, [N]).

        Uses the true values up to ``t`` (the same forecasts :meth:`predict_tail` makes for the tail); for the
        first ``order - 1`` origins the lags before the series' start are filled with the training head's mean.
        The last ``horizon`` entries forecast values past the series' end. This is the linear part of an
        "AR + network residual" hybrid (:class:`~seq_models.data.series.SeriesRegressionData`,
        ``target="ar_residual"``).
        """
        z = self._fitted_joint(series, exog, "forecast_each_step")
        p, n = int(self.order), len(z)
        padded = np.vstack([np.tile(self.train_mean, (p - 1, 1)), self._deseasonalised(z)])
        return self._design(padded, p) @ self.coef + self._phase_means(n + self.horizon)[self.horizon :]
