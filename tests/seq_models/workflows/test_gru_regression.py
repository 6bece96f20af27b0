"""The GRU workflow (:mod:`seq_models.workflows.gru_regression`): batches, fitting a series with checkpoints and
early stopping, checkpoints of another configuration refused; the AR + GRU residual hybrid and raw-unit inference
outputs for every target kind (issue 28, item 5)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from seq_models.baselines.autoregressive import LinearARForecaster
from seq_models.data.series import SeriesRegressionData
from seq_models.networks.gru_regression import PaddedGRURegressor, SingleStepGRURegressor
from seq_models.workflows.gru_regression import (
    GRU_METRIC,
    create_gru_evaluator,
    create_gru_trainer,
    fit_gru_to_series,
    gru_prepare_batch,
    load_gru_weights,
    predict_series,
    run_gru_series_inference,
)
from tests.seq_models.small_series import ar1_series


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


@pytest.mark.parametrize("target", ["change", "ar_residual"])
def test_inference_csv_is_in_raw_units(tmp_path, target):
    y = ar1_series(80)
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

    y = ar1_series(90)
    data = SeriesRegressionData(y, test_size=10, target="ar_residual")
    net, info = fit_gru_to_series(
        data, hidden_size=4, window=20, stride=10, val_size=10, max_epochs=1, lr=1e-9, patience=None,
        zero_head=True, weight_decay=0.1,
    )
    assert info["epochs_run"] == 1
    pred = data.test_predictions(predict_series(net, data.features).numpy())
    ar = LinearARForecaster().fit(y[:80])
    np.testing.assert_allclose(pred, ar.predict_tail(y, 10), atol=1e-6 * y.std())


def test_evaluator_rmse_scores_every_validation_window():
    """MONAI decollates the evaluator's output; the metric must score all items of a batch, not the first."""
    from torch.utils.data import DataLoader

    from seq_models.metrics.regression import masked_mse
    from seq_models.workflows.gru_regression import GRU_METRIC, create_gru_evaluator

    data = SeriesRegressionData(ar1_series(200), test_size=20)
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
