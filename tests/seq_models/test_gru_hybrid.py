"""The "AR + GRU residual" target and raw-unit outputs for every target kind (issue 28, item 5)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from seq_models.baselines.autoregressive import LinearARForecaster
from seq_models.data.series import SeriesRegressionData
from seq_models.networks.gru_regression import PaddedGRURegressor
from seq_models.workflows.gru_regression import run_gru_series_inference


def _ar1(n: int = 120, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    y[0] = 10.0
    for t in range(1, n):  # y_t = 2 + 0.8 y_{t-1} + noise, mean 10
        y[t] = 2.0 + 0.8 * y[t - 1] + rng.normal()
    return y


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


def test_ar_residual_target_features_and_values():
    y = _ar1()
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


def test_ar_residual_with_exog_puts_ar_feature_before_exog():
    y = _ar1(100)
    x = np.column_stack([np.arange(100.0), np.cos(np.arange(100.0))])
    data = SeriesRegressionData(y, test_size=10, period=12, exog=x, target="ar_residual")
    assert data.num_features == 2 + 2 + 1 + 2
    np.testing.assert_allclose(data.features[:, 4], data.scale(data.ar_forecast), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("target", ["level", "change", "ar_residual"])
def test_zero_head_predicts_zero(target):
    data = SeriesRegressionData(_ar1(60), test_size=10, target=target)
    net = PaddedGRURegressor(data.num_features, 4, 1, zero_head=True).eval()
    with torch.no_grad():
        out = net(torch.as_tensor(data.features)[None])[0]
    assert torch.count_nonzero(out) == 0


@pytest.mark.parametrize("target", ["change", "ar_residual"])
def test_inference_csv_is_in_raw_units(tmp_path, target):
    y = _ar1(80)
    data = SeriesRegressionData(y, test_size=10, target=target)
    torch.manual_seed(0)
    net = PaddedGRURegressor(data.num_features, 5, 1)
    with torch.no_grad():  # make the untrained network's output visibly non-zero
        net.linear.bias.fill_(0.5)
    ckpt = tmp_path / "model.pt"
    torch.save({"model": net.state_dict()}, ckpt)
    out = tmp_path / "pred.csv"
    pred = run_gru_series_inference(PaddedGRURegressor(data.num_features, 5, 1), ckpt, data, out).numpy()
    with torch.no_grad():
        z = net.eval()(torch.as_tensor(data.features)[None])[0].numpy()
    expected = data.to_values(z)
    np.testing.assert_allclose(pred, expected, rtol=1e-10)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    csv_pred = np.array([float(r["prediction"]) for r in rows])
    np.testing.assert_allclose(csv_pred, expected, rtol=1e-5)
    # the old bug: treating the output as a standardised level puts it far from the series' values
    assert np.abs(data.unscale(z) - expected).mean() > 1.0
    # predictions track the series (within a few noise std), not the standardised scale around the mean
    assert np.abs(csv_pred[:-1] - y[1:]).mean() < 3.0


def test_hybrid_fit_starts_at_the_ar_forecast():
    """With a zero head and a negligible learning rate, the fitted hybrid forecasts what the AR baseline does."""
    from seq_models.workflows.gru_regression import fit_gru_to_series, predict_series

    y = _ar1(90)
    data = SeriesRegressionData(y, test_size=10, target="ar_residual")
    net, info = fit_gru_to_series(
        data, hidden_size=4, window=20, stride=10, val_size=10, max_epochs=1, lr=1e-9, patience=None,
        zero_head=True, weight_decay=0.1,
    )
    assert info["epochs_run"] == 1
    pred = data.test_predictions(predict_series(net, data.features).numpy())
    ar = LinearARForecaster().fit(y[:80])
    np.testing.assert_allclose(pred, ar.predict_tail(y, 10), atol=1e-6 * y.std())


def test_validation_rmse_without_lead_in_scores_the_validation_steps_once():
    from seq_models.metrics.regression import MaskedRMSE

    data = SeriesRegressionData(_ar1(100), test_size=10)
    window, val_size = 8, 10
    items = list(data.val_windows(window, val_size))
    target = torch.stack([torch.as_tensor(i["target"]) for i in items])
    lengths = torch.as_tensor([int(i["lengths"]) for i in items])
    # the steps kept after each window's lead-in are the validation part, each once
    start, stride = data.train_end - val_size - window // 2, window // 2
    scored = [start + b * stride + t for b in range(len(items)) for t in range(window // 2, int(lengths[b]))]
    assert sorted(scored) == list(range(data.train_end - val_size, data.train_end))
    second = slice(start + stride + window // 2, start + stride + window)
    np.testing.assert_allclose(target[1, window // 2 :].numpy(), data.targets[second])
    # errors only in the lead-in: zero RMSE when it is skipped, not otherwise
    pred = target.clone()
    pred[:, : window // 2] += 5.0
    out = {"target": target, "lengths": lengths}
    skipping, counting = MaskedRMSE(skip_first=window // 2), MaskedRMSE()
    for m in (skipping, counting):
        m.update((pred, out))
    assert skipping.compute() == pytest.approx(0.0, abs=1e-6) and counting.compute() > 1.0
    with pytest.raises(ValueError, match="skip_first >= 0"):
        MaskedRMSE(skip_first=-1)


def test_evaluator_rmse_scores_every_validation_window():
    """MONAI decollates the evaluator's output; the metric must score all items of a batch, not the first."""
    from torch.utils.data import DataLoader

    from seq_models.metrics.regression import masked_mse
    from seq_models.workflows.gru_regression import GRU_METRIC, create_gru_evaluator

    data = SeriesRegressionData(_ar1(200), test_size=20)
    torch.manual_seed(0)
    net = PaddedGRURegressor(data.num_features, 4, 1).eval()
    ds = data.val_windows(24, 50)
    assert len(ds) >= 3
    for skip in (0, 12):
        evaluator = create_gru_evaluator(net, DataLoader(ds, batch_size=64), skip_first=skip)
        evaluator.run()
        batch = next(iter(DataLoader(ds, batch_size=64)))
        with torch.no_grad():
            pred = net(batch["image"], batch["lengths"])
        if skip:
            pred, target = pred[:, skip:], batch["target"][:, skip:]
            lengths = (batch["lengths"] - skip).clamp_min(0)
        else:
            target, lengths = batch["target"], batch["lengths"]
        expected = float(masked_mse(pred, target, lengths).sqrt())
        assert evaluator.state.metrics[GRU_METRIC] == pytest.approx(expected, rel=1e-5)
