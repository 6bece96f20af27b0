"""IAM4VP forecasting: the autoregressive forecaster, the tiled forecaster, the loss and the MONAI engines."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from seq_models.data.cloud_generator import generate_cloud_frames
from seq_models.data.satellite import SatelliteWindowDataset
from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
from seq_models.inferers.tiled_forecast import away_from_seams, plan_tiles
from seq_models.losses import NaNAwareForecastLoss, nan_gradient_difference, nan_mae
from seq_models.networks.iam4vp import IAM4VP
from seq_models.workflows import create_iam4vp_evaluator, create_iam4vp_trainer


def small_model(shape=(3, 2, 16, 24), latent=4) -> IAM4VP:
    model = IAM4VP(shape_in=shape, latent_channels=latent, num_convolutions_space=4, num_convolutions_time=2, time_dim=8)
    with torch.no_grad():
        for block in model.hid.st_block:
            block.gamma.fill_(0.5)
        model.mask_token.normal_(std=0.5)
    return model.eval()


class Recorder(torch.nn.Module):
    """Wraps a model and records what each call received."""

    def __init__(self, model: IAM4VP) -> None:
        super().__init__()
        self.model, self.calls = model, []
        self.shape_in = model.shape_in

    def forward(self, x, previous, t):
        self.calls.append((x.clone(), [p.clone() for p in previous], t.clone()))
        return self.model(x, previous, t)


def test_forecaster_calls_the_model_k_times_with_detached_clamped_previous_predictions():
    rec = Recorder(small_model())
    history = torch.rand(2, 5, 2, 16, 24)
    history[0, -1, 1, 3, 4] = float("nan")
    out = AutoregressiveForecaster(steps=3)(history, rec)
    assert out.shape == (2, 3, 2, 16, 24)
    assert out.min() >= 0 and out.max() <= 1
    assert [len(c[1]) for c in rec.calls] == [0, 1, 2]
    assert [c[2].tolist() for c in rec.calls] == [[0.0, 0.0], [100.0, 100.0], [200.0, 200.0]]
    x0 = rec.calls[0][0]
    assert x0.shape == (2, 3, 2, 16, 24)  # the last T of the 5 history frames
    torch.testing.assert_close(x0[1], history[1, -3:])
    assert x0[0, -1, 1, 3, 4] == 0 and not torch.isnan(x0).any()  # NaN set to 0
    # previous prediction k fed to call k+1 is output k (clamped)
    torch.testing.assert_close(rec.calls[2][1][0], out[:, 0])
    torch.testing.assert_close(rec.calls[2][1][1], out[:, 1])


def test_training_mode_forecaster_keeps_gradients_per_step_only():
    model = small_model().train()
    history = torch.rand(1, 3, 2, 16, 24, requires_grad=True)
    out = AutoregressiveForecaster(steps=2, clamp_output=False)(history, model)
    assert out.requires_grad
    (g_forecaster,) = torch.autograd.grad(out[:, 1].sum(), history)
    # by hand: the first prediction enters the second call detached
    p0 = model(history, [], torch.tensor([0.0])).detach().clamp(0, 1)
    (g_detached,) = torch.autograd.grad(model(history, [p0], torch.tensor([100.0])).sum(), history)
    p0_attached = model(history, [], torch.tensor([0.0])).clamp(0, 1)
    (g_attached,) = torch.autograd.grad(model(history, [p0_attached], torch.tensor([100.0])).sum(), history)
    torch.testing.assert_close(g_forecaster, g_detached)
    assert not torch.allclose(g_forecaster, g_attached)


@pytest.mark.parametrize(
    "shape, steps, message",
    [
        ((1, 3, 5, 16, 24), 2, "expected 2 channels, got 5"),
        ((1, 2, 2, 16, 24), 2, "expected a history of at least 3 steps, got 2"),
        ((1, 3, 2, 16, 24), 4, "expected 1 <= forecast steps <= 3 .* got 4"),
        ((3, 2, 16, 24), 1, "expected a history of shape \\(B, T, C, H, W\\)"),
    ],
)
def test_forecaster_bad_input(shape, steps, message):
    model = small_model()
    for forecaster in (AutoregressiveForecaster(steps=steps), TiledForecaster(steps=steps)):
        with pytest.raises(ValueError, match=message):
            forecaster(torch.rand(*shape), model)


def test_forecaster_rejects_all_nan_frames():
    history = torch.rand(2, 3, 2, 16, 24)
    history[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"all-NaN frame \(sample 1, step 2"):
        AutoregressiveForecaster(steps=1)(history, small_model())


def test_tiled_equals_plain_forecaster_when_the_frame_is_one_tile():
    model = small_model()
    history = torch.rand(2, 3, 2, 16, 24)
    with torch.no_grad():
        a = TiledForecaster(steps=3, mode="gaussian")(history, model)
        b = AutoregressiveForecaster(steps=3)(history, model)
    # float32 through three autoregressive steps, the tiled path dividing by its blending weights each time; the
    # convolutions' summation order follows the thread count, so equal up to rounding (seen: 1.5e-6 on 0.035)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_tiled_without_overlap_equals_independent_tiles():
    model = small_model()
    history = torch.rand(1, 3, 2, 32, 48)
    with torch.no_grad():
        tiled = TiledForecaster(steps=2, overlap=0.0, mode="constant")(history, model)
        for ys in (slice(0, 16), slice(16, 32)):
            for xs in (slice(0, 24), slice(24, 48)):
                own = AutoregressiveForecaster(steps=2)(history[..., ys, xs], model)
                # equal up to float32 rounding, as in the one-tile test above
                torch.testing.assert_close(tiled[..., ys, xs], own, rtol=1e-4, atol=1e-5)


def test_tile_plan_starts_on_the_stride_grid_and_matches_monai():
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    assert plan_tiles(744, 372, 0.25, 4) == (744, pytest.approx(1 - 276.5 / 372), [0, 276, 372])
    for size, tile, overlap in [(1228, 614, 0.25), (70, 32, 0.5), (20, 32, 0.25), (64, 32, 0.0)]:
        padded, monai_overlap, starts = plan_tiles(size, tile, overlap, 4)
        assert padded >= max(size, tile) and (padded - tile) % 4 == 0
        assert all(s % 4 == 0 for s in starts)
        interval = _get_scan_interval((padded,), (tile,), 1, (monai_overlap,))
        assert [int(s[0].start) for s in dense_patch_slices((padded,), (tile,), interval)] == starts


def test_tiled_first_lead_equals_whole_frame_pass_away_from_seams():
    torch.manual_seed(1)
    model = IAM4VP((2, 2, 96, 96), latent_channels=4, num_convolutions_space=4, num_convolutions_time=2, time_dim=8).eval()
    frame = model.for_frame_size(192, 200).eval()
    history = torch.rand(1, 2, 2, 192, 200)
    tiled = TiledForecaster(steps=1, overlap=0.25, mode="gaussian")
    with torch.no_grad():
        a = tiled(history, model)
        b = AutoregressiveForecaster(steps=1)(history, frame)
    plan = tiled.plan(model, 192, 200)
    mask = away_from_seams((192, 200), plan["tile"], plan["starts"], 32)
    assert 0.15 < mask.float().mean() < 0.5
    assert (a - b).abs()[..., mask].max() < 1e-4
    assert (a - b).abs()[..., ~mask].max() > 1e-3  # seams do differ: the check can fail


def test_tiled_equals_whole_frame_away_from_seams_and_padded_edge():
    torch.manual_seed(2)
    model = IAM4VP((2, 2, 96, 96), latent_channels=4, num_convolutions_space=4, num_convolutions_time=2, time_dim=8).eval()
    frame = model.for_frame_size(96, 202).eval()  # 202 - 96 is off the stride grid: padded to 204
    history = torch.rand(1, 2, 2, 96, 202)
    tiled = TiledForecaster(steps=1, overlap=0.25)
    with torch.no_grad():
        a = tiled(history, model)
        b = AutoregressiveForecaster(steps=1)(history, frame)
    plan = tiled.plan(model, 96, 202)
    assert plan["padded"] == (96, 204)
    mask = away_from_seams((96, 202), plan["tile"], plan["starts"], 32, padded=plan["padded"])
    assert not mask[:, 202 - 32 :].any() and mask.any()
    assert (a - b).abs()[..., mask].max() < 1e-4


def test_away_from_seams_mask_by_hand():
    mask = away_from_seams((10, 4), (6, 4), ([0, 4], [0]), 2)
    # rows: window 0 covers 0..5 (seam edge at 5), window 1 covers 4..9 (seam edge at 4)
    assert mask[:, 0].tolist() == [True, True, True, True, False, False, True, True, True, True]


def test_nan_mae_and_gradient_difference_by_hand():
    pred = torch.tensor([[0.0, 1.0, 0.5]])
    target = torch.tensor([[0.5, float("nan"), 0.0]])
    assert nan_mae(pred, target).item() == pytest.approx(0.5)
    # only the horizontal pair (0, 1) would need both valid: none of the two pairs is valid
    assert nan_gradient_difference(pred[None], target[None]).item() == 0.0
    p = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])
    t = torch.tensor([[[0.0, 0.5], [0.0, 0.0]]])
    # horizontal: |0.5-1| and |0-0|; vertical: |0.5-1| and |0-0| -> 1.0 / 4
    assert nan_gradient_difference(p, t).item() == pytest.approx(0.25)
    assert nan_mae(pred, torch.full_like(pred, float("nan"))).item() == 0.0


def test_forecast_loss_components_and_weighting():
    pred = torch.rand(2, 3, 2, 8, 8, requires_grad=True)
    target = torch.rand(2, 3, 2, 8, 8)
    target[0, 0, 0, :4] = float("nan")
    out = NaNAwareForecastLoss(gdl_weight=0.5)(pred, {"target": target})
    assert out["total"].item() == pytest.approx(out["mae"].item() + 0.5 * out["gdl"].item(), rel=1e-6)
    out["total"].backward()
    assert torch.isfinite(pred.grad).all() and pred.grad[0, 0, 0, :4].abs().sum() == 0
    with pytest.raises(ValueError, match="expected a target of the forecast's shape"):
        NaNAwareForecastLoss()(pred, target[:, :2])


def test_forecast_loss_step_weights():
    torch.manual_seed(0)
    pred = torch.rand(2, 3, 2, 8, 8)
    target = torch.rand(2, 3, 2, 8, 8)
    target[0, 1, 0, :4] = float("nan")
    plain = NaNAwareForecastLoss(gdl_weight=0.5)(pred, target)
    weighted = NaNAwareForecastLoss(gdl_weight=0.5, step_weights=[2.0, 1.0, 0.0])(pred, target)
    per_step = [nan_mae(pred[:, k], target[:, k]) + 0.5 * nan_gradient_difference(pred[:, k], target[:, k]) for k in range(3)]
    assert weighted["total"].item() == pytest.approx(((2 * per_step[0] + per_step[1]) / 3).item(), rel=1e-6)
    # the reported components stay the unweighted ones
    assert weighted["mae"].item() == pytest.approx(plain["mae"].item()) and weighted["gdl"].item() == pytest.approx(plain["gdl"].item())
    # equal weights without NaN: the same total as no weights
    clean = torch.rand(2, 3, 2, 8, 8)
    a = NaNAwareForecastLoss(gdl_weight=0.1)(pred, clean)["total"]
    b = NaNAwareForecastLoss(gdl_weight=0.1, step_weights=[1, 1, 1])(pred, clean)["total"]
    assert a.item() == pytest.approx(b.item(), rel=1e-5)
    with pytest.raises(ValueError, match="expected 3 step_weights"):
        NaNAwareForecastLoss(step_weights=[1.0, 1.0])(pred, target)
    with pytest.raises(ValueError, match="non-negative step_weights"):
        NaNAwareForecastLoss(step_weights=[1.0, -1.0])


def test_trainer_and_evaluator_run_through_monai_engines():
    torch.manual_seed(0)
    frames = generate_cloud_frames(24, 16, 24, num_channels=2, missing_fraction=0.05, seed=3)
    loader = DataLoader(SatelliteWindowDataset(frames, 3, 2, stride=4), batch_size=2)
    model = small_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    trainer = create_iam4vp_trainer(model, loader, optimizer, max_epochs=2, steps=2, gdl_weight=0.1, step_weights=[2.0, 1.0])
    trainer.run()
    assert {"loss_total", "loss_mae", "loss_gdl"} <= set(trainer.state.metrics)
    assert trainer.state.output["pred"].shape[1:] == (2, 2, 16, 24)
    changed = [k for k in before if not torch.equal(before[k], model.state_dict()[k])]
    assert "lp.enc.0.conv.weight" in changed and "mask_token" in changed
    evaluator = create_iam4vp_evaluator(model, loader, steps=2)
    evaluator.run()
    assert 0 < evaluator.state.metrics["val_mae"] < 1 and 0 < evaluator.state.metrics["val_mse"] < 1
    assert -1 <= evaluator.state.metrics["val_ssim"] <= 1


def test_tiled_forecaster_fills_nan_like_zeros_and_leaves_the_input_untouched():
    model = small_model()
    history = torch.rand(1, 3, 2, 30, 50)  # 30x50 is off the stride grid: the padded path
    history[0, 1, :, 5:9] = float("nan")
    original = history.clone()
    tiled = TiledForecaster(steps=2, overlap=0.25)
    with torch.no_grad():
        a = tiled(history, model)
        b = tiled(torch.nan_to_num(history, nan=0.0), model)
    torch.testing.assert_close(a, b)
    assert torch.equal(torch.isnan(history), torch.isnan(original))
    assert tiled.plan(model, 30, 50)["padded"] == (32, 52)
