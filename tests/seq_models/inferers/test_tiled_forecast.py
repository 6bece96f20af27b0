"""The tiled forecaster (:mod:`seq_models.inferers.tiled_forecast`): equal to the plain forecaster on one tile, to
independent tiles without overlap and to the whole frame away from the seams; the tile plan matches MONAI's."""

from __future__ import annotations

import pytest
import torch

from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
from seq_models.inferers.tiled_forecast import away_from_seams, plan_tiles
from seq_models.networks.iam4vp import IAM4VP
from tests.seq_models.small_models import small_iam4vp


def test_tiled_equals_plain_forecaster_when_the_frame_is_one_tile():
    model = small_iam4vp()
    history = torch.rand(2, 3, 2, 16, 24)
    with torch.no_grad():
        a = TiledForecaster(steps=3, mode="gaussian")(history, model)
        b = AutoregressiveForecaster(steps=3)(history, model)
    # float32 through three autoregressive steps, the tiled path dividing by its blending weights each time; the
    # convolutions' summation order follows the thread count, so equal up to rounding (seen: 1.5e-6 on 0.035)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_tiled_without_overlap_equals_independent_tiles():
    model = small_iam4vp()
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


def test_tiled_forecaster_fills_nan_like_zeros_and_leaves_the_input_untouched():
    model = small_iam4vp()
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
