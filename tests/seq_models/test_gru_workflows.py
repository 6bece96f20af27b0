from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seq_models.baselines.autoregressive import LinearARForecaster, persistence_forecast
from seq_models.data.series import SeriesRegressionData, load_statsmodels_series
from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
from seq_models.networks.gru_regression import PaddedGRURegressor, SingleStepGRURegressor
from seq_models.workflows.gru_regression import (
    GRU_METRIC,
    create_gru_evaluator,
    create_gru_trainer,
    fit_gru_to_series,
    gru_prepare_batch,
    load_gru_weights,
    predict_series,
)


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


def test_prepare_batch_routes_lengths():
    batch = {"image": torch.zeros(2, 4, 3), "target": torch.ones(2, 4), "lengths": torch.tensor([4, 2])}
    image, targets, args, kwargs = gru_prepare_batch()(batch)
    assert image.shape == (2, 4, 3) and args == ()
    assert set(targets) == {"target", "lengths"} and kwargs["lengths"].tolist() == [4, 2]


def test_fit_on_a_series_improves_and_checkpoints(tmp_path):
    t = np.arange(260)
    y = np.sin(2 * np.pi * t / 25) * 3 + 0.4 * np.sin(2 * np.pi * t / 7)
    data = SeriesRegressionData(y, test_size=30)
    untrained = PaddedGRURegressor(data.num_features, 16, 1)
    val = data.val_windows(32, 40)
    with torch.no_grad():
        batch = next(iter(DataLoader(val, batch_size=64)))
        untrained.eval()
        before = float(torch.sqrt(((untrained(batch["image"], batch["lengths"]) - batch["target"]) ** 2).mean()))
    net, info = fit_gru_to_series(
        data, hidden_size=16, window=32, stride=4, val_size=40, max_epochs=12, patience=None, lr=1e-2,
        checkpoint_dir=tmp_path,
    )
    assert info["epochs_run"] == 12 and 1 <= info["best_epoch"] <= 12
    assert info["best_val_rmse"] < 0.5 * before
    assert (tmp_path / "model.pt").is_file()
    # the batch checkpoint loads unchanged into the single-step model, and all prediction modes agree
    step = load_gru_weights(SingleStepGRURegressor(data.num_features, 16, 1), tmp_path / "model.pt")
    torch.testing.assert_close(step.state_dict()["gru.weight_hh_l0"], net.state_dict()["gru.weight_hh_l0"])
    full = predict_series(net, data.features, mode="full")
    for mode in ("sliding_window", "streaming"):
        other = predict_series(net, data.features, mode=mode, window=100, burn_in=50)
        assert (other - full).abs().max() <= 1e-4, mode
    with pytest.raises(ValueError, match="expected mode"):
        predict_series(net, data.features, mode="other")


def test_fit_without_validation_keeps_final_weights(tmp_path):
    data = SeriesRegressionData(np.sin(np.arange(120) / 4.0), test_size=10)
    net, info = fit_gru_to_series(data, hidden_size=6, window=24, stride=6, val_size=0, max_epochs=2, checkpoint_dir=tmp_path)
    assert info["best_val_rmse"] is None and info["epochs_run"] == 2
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    torch.testing.assert_close(saved["gru.weight_ih_l0"], net.gru.weight_ih_l0)


def test_early_stopping_stops_a_flat_run():
    data = SeriesRegressionData(np.sin(np.arange(150) / 4.0), test_size=10)
    net = PaddedGRURegressor(data.num_features, 8, 1)
    evaluator = create_gru_evaluator(net, DataLoader(data.val_windows(20, 30), batch_size=8))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)  # nothing changes, so nothing improves
    trainer = create_gru_trainer(
        net, DataLoader(data.train_windows(20, 10, 30), batch_size=8), optimizer, max_epochs=10,
        evaluator=evaluator, patience=2,
    )
    trainer.run()
    assert trainer.state.epoch == 3
    assert GRU_METRIC in evaluator.state.metrics
    with pytest.raises(ValueError, match="expected an evaluator for early stopping"):
        create_gru_trainer(net, [], optimizer, 1, patience=2)


def test_checkpoint_for_another_configuration_is_refused(tmp_path):
    from monai_glue import CheckpointError

    torch.save(PaddedGRURegressor(3, 8, 1).state_dict(), tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_gru_weights(PaddedGRURegressor(4, 8, 1), tmp_path / "m.pt")
