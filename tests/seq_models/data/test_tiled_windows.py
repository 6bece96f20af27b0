"""Tiled history/target windows over large frames (:class:`seq_models.data.satellite.TiledWindowDataset`), the
time split and the held-out guard: counts, tile contents equal to slices of the frames, NaN and dry tiles skipped,
windows read at a frame step, targets past the last frame kept as NaN, held-out frames refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from seq_models.data.satellite import (
    SatelliteWindowDataset,
    TiledWindowDataset,
    check_not_held_out,
    load_window_frames,
    split_in_time,
    write_frames,
)


def _frames(n: int = 10, h: int = 32, w: int = 40, minutes: int = 15, seed: int = 0) -> xr.DataArray:
    values = np.random.default_rng(seed).uniform(0.01, 1.0, size=(n, 1, h, w)).astype(np.float32)
    times = np.datetime64("2020-04-01T12:00") + np.arange(n) * np.timedelta64(minutes, "m")
    return xr.DataArray(values, dims=("time", "channel", "y", "x"), coords={"time": times, "channel": ["IR_016"]})


def test_every_window_and_tile_on_the_grid_equals_slices_of_the_frames():
    da = _frames()
    ds = TiledWindowDataset(da, history_steps=3, forecast_steps=2, tile_size=16, tile_stride=(16, 8), window_stride=2)
    starts, ys, xs = [0, 2, 4], [0, 16], [0, 8, 16, 24]  # windows need 5 frames of 10; tiles 16 x 16 on the grid
    assert (ds.num_windows, ds.num_tiles, len(ds)) == (3, 8, 24)
    assert ds.pairs == [(s, y, x) for s in starts for y in ys for x in xs]
    v = da.values
    for i in (0, 7, 13, 23):
        s, y, x = ds.pairs[i]
        item = ds[i]
        np.testing.assert_array_equal(item["history"].numpy(), v[s : s + 3, :, y : y + 16, x : x + 16])
        np.testing.assert_array_equal(item["target"].numpy(), v[s + 3 : s + 5, :, y : y + 16, x : x + 16])
    assert ds[-1]["history"].shape == (3, 1, 16, 16) and ds[-1]["target"].dtype.is_floating_point
    with pytest.raises(IndexError, match=r"expected an index in \[0, 24\), got 24"):
        ds[24]


def test_frame_step_region_and_targets_after_the_last_frame_are_nan():
    da = _frames(n=13, minutes=5)  # 12:00 .. 13:00 every 5 min, read every third frame: 15-minute steps
    ds = TiledWindowDataset(da, 4, 4, tile_size=16, step=3, region=(8, 24, 4, 36), tile_stride=16, min_target_steps=1)
    assert ds.num_windows == 1 and ds.pairs == [(0, 0, 0), (0, 0, 16)]  # history 12:00..12:45, one real target 13:00
    item = ds[1]
    np.testing.assert_array_equal(item["history"].numpy(), da.values[[0, 3, 6, 9], :, 8:24, 20:36])
    np.testing.assert_array_equal(item["target"][0].numpy(), da.values[12, :, 8:24, 20:36])
    assert np.isnan(item["target"][1:].numpy()).all()
    with pytest.raises(ValueError, match=r"expected more than 21 frames for one window"):  # complete windows only
        TiledWindowDataset(da, 4, 4, tile_size=16, step=3)


def test_mostly_nan_and_dry_tiles_are_skipped_at_the_threshold():
    da = _frames(n=6)
    v = da.values
    v[:, :, :16, :16] = np.nan  # tile (0, 0): all NaN
    v[:, :, 16:, 24:32] = np.nan  # tile (16, 24): half NaN, kept at 0.5, skipped below
    v[4, :, :16, 16:32] = np.nan  # tile (0, 16): its target frame only is NaN
    v[:, :, 16:, :16] = 0.0  # tile (16, 0): dry
    ds = TiledWindowDataset(da, 4, 2, tile_size=16, tile_stride=(16, 8), max_nan_fraction=0.5)
    tiles = {(y, x) for _, y, x in ds.pairs}
    assert (0, 0) not in tiles and (16, 24) in tiles and (16, 16) in tiles and (16, 0) in tiles
    assert (0, 16) in tiles  # half of its target pixels (frame 5) hold data: kept at 0.5
    strict = TiledWindowDataset(da, 4, 2, tile_size=16, tile_stride=(16, 8), max_nan_fraction=0.25)
    assert {(y, x) for _, y, x in strict.pairs} == tiles - {(16, 24), (0, 16), (0, 8), (16, 16)}
    wet = TiledWindowDataset(da, 4, 2, tile_size=16, tile_stride=(16, 8), min_nonzero_fraction=0.5)
    assert (16, 0) not in {(y, x) for _, y, x in wet.pairs} and (16, 8) in {(y, x) for _, y, x in wet.pairs}
    with pytest.raises(ValueError, match=r"expected at least one \(window, tile\) pair .* got none of 1 windows x 2 tiles"):
        TiledWindowDataset(da, 4, 2, tile_size=16, region=(0, 16, 0, 32), max_nan_fraction=0.0)


def test_time_split_is_disjoint_and_covers_the_frames():
    da = _frames(n=20, minutes=5)
    first, rest = split_in_time(da, 0.8)
    assert first.sizes["time"] == 16 and rest.sizes["time"] == 4
    assert first.time.values.max() < rest.time.values.min()
    np.testing.assert_array_equal(np.concatenate([first.values, rest.values]), da.values)
    a = TiledWindowDataset(first, 3, 3, tile_size=16)
    b = TiledWindowDataset(rest, 1, 3, tile_size=16)
    assert set(a.times).isdisjoint(b.times)
    for bad in (0.0, 1.0, 0.01):
        with pytest.raises(ValueError, match="time-split fraction|both parts"):
            split_in_time(da, bad)


def test_time_range_cuts_and_held_out_frames_are_refused():
    da = _frames(n=9)  # 12:00 .. 14:00 every 15 min
    held_out = [["2020-04-01T13:00:01", "2020-04-01T23:59:59"]]
    ds = TiledWindowDataset(da, 4, 4, tile_size=16, min_target_steps=1, time_range=[None, "2020-04-01T13:00"], held_out=held_out)
    assert str(ds.times[-1])[:16] == "2020-04-01T13:00" and ds.num_windows == 1
    np.testing.assert_array_equal(ds[0]["target"][0].numpy(), da.values[4, :, :16, :16])  # 13:00, then NaN
    assert np.isnan(ds[0]["target"][1:].numpy()).all()
    with pytest.raises(ValueError, match=r"expected no held-out frames in frames, got 4 frame\(s\) .*\(first at 2020-04-01T13:15"):
        TiledWindowDataset(da, 4, 4, tile_size=16, held_out=held_out)
    with pytest.raises(ValueError, match="datetime 'time' coordinate"):
        TiledWindowDataset(da.values, 4, 4, tile_size=16, held_out=held_out)
    with pytest.raises(ValueError, match="start <= end"):
        check_not_held_out(da.time.values, [["2020-04-01T14:00", "2020-04-01T13:00"]])
    with pytest.raises(ValueError, match=r"\[start, end\] pair"):
        check_not_held_out(da.time.values, ["2020-04-01T13:00"])
    check_not_held_out(da.time.values, [["2016-09-28T14:45", "2016-09-28T18:00"]])  # another event: fine


def test_bad_arguments_are_refused_with_what_came():
    da = _frames(n=6)
    with pytest.raises(ValueError, match=r"tile_size as one positive int or \(h, w\), got \(16, 0\)"):
        TiledWindowDataset(da, 2, 2, tile_size=(16, 0))
    with pytest.raises(ValueError, match=r"at least the tile size 64 x 64, got 32 x 40"):
        TiledWindowDataset(da, 2, 2, tile_size=64)
    with pytest.raises(ValueError, match="max_nan_fraction and min_nonzero_fraction in \\[0, 1\\], got 1.5"):
        TiledWindowDataset(da, 2, 2, tile_size=16, max_nan_fraction=1.5)
    with pytest.raises(ValueError, match=r"1 <= min_target_steps <= forecast_steps, got 2, 2, 1, 1, 3"):
        TiledWindowDataset(da, 2, 2, tile_size=16, min_target_steps=3)
    with pytest.raises(ValueError, match=r"expected channels \['VIS006'\]"):
        TiledWindowDataset(da, 2, 2, tile_size=16, channels=["VIS006"])
    with pytest.raises(ValueError, match="inside time_range"):
        TiledWindowDataset(da, 2, 2, tile_size=16, time_range=["2021-01-01", None])


def test_one_loader_serves_both_datasets_from_a_path_or_a_dataarray(tmp_path):
    da = xr.concat([_frames(n=9), _frames(n=9, seed=1).assign_coords(channel=["IR_039"])], dim="channel")  # two named
    path = write_frames(da.rename("data"), tmp_path / "two.zarr")
    kwargs = dict(channels=["IR_039"], region=(4, 28, 8, 40), time_range=["2020-04-01T12:15", None])
    from_path, from_array = load_window_frames(path, **kwargs), load_window_frames(da, **kwargs)
    np.testing.assert_array_equal(from_path.values, da.values[1:, [1], 4:28, 8:40])
    np.testing.assert_array_equal(from_array.values, from_path.values)
    np.testing.assert_array_equal(from_array.times, da.time.values[1:])
    assert from_path.channel_names == from_array.channel_names == ["IR_039"] and from_path.source == str(path)
    assert from_path.values.dtype == np.float32
    # both datasets read what the loader gives: the same frames from the same arguments
    sat = SatelliteWindowDataset(path, 2, 1, region=(4, 28, 8, 40), channels=["IR_039"])
    tiled = TiledWindowDataset(path, 2, 1, tile_size=(24, 32), region=(4, 28, 8, 40), channels=["IR_039"])
    np.testing.assert_array_equal(sat.frames, tiled.frames)
    assert sat.channel_names == tiled.channel_names == ["IR_039"]
    np.testing.assert_array_equal(sat[3]["history"].numpy(), tiled[3]["history"].numpy())


def test_values_outside_time_range_are_never_read(tmp_path):
    da = _frames(n=9)
    da[-1] = 5.0  # out of range, at 14:00 only: outside the kept range, never read, so never refused
    path = write_frames(da.rename("data"), tmp_path / "late.zarr")
    ds = TiledWindowDataset(path, 2, 2, tile_size=16, time_range=[None, "2020-04-01T13:45"])
    assert ds.frames.shape[0] == 8 and float(np.nanmax(ds.frames)) <= 1.0
    with pytest.raises(ValueError, match=r"expected values scaled to \[0, 1\].*late.zarr"):
        TiledWindowDataset(path, 2, 2, tile_size=16)


def test_loader_refuses_bad_region_and_inverted_time_range():
    da = _frames(n=6)
    with pytest.raises(ValueError, match=r"expected region as \(y0, y1, x0, x1\), got \(0, 16\)"):
        load_window_frames(da, region=(0, 16))
    with pytest.raises(ValueError, match=r"expected time_range with start <= end"):
        load_window_frames(da, time_range=["2020-04-01T13:00", "2020-04-01T12:00"])
    with pytest.raises(ValueError, match=r"expected an ISO time .* for time_range start, got 'noon'"):
        load_window_frames(da, time_range=["noon", None])


def test_a_prior_is_the_windows_whole_region_nowcast_cut_to_the_tile():
    from seq_models.baselines import optical_flow_forecast

    da = _frames(n=8, h=32, w=40)
    region = (0, 32, 8, 40)
    ds = TiledWindowDataset(da, history_steps=2, forecast_steps=3, tile_size=16, tile_stride=16, window_stride=2,
                            step=1, region=region, prior_steps=3)
    plain = TiledWindowDataset(da, history_steps=2, forecast_steps=3, tile_size=16, tile_stride=16, window_stride=2,
                               region=region)
    assert ds.pairs == plain.pairs
    frames = da.values[:, :, 0:32, 8:40]
    for i in (0, len(ds) - 1):
        s, y, x = ds.pairs[i]
        item, ref = ds[i], plain[i]
        assert item["history"].shape == (2 + 3, 1, 16, 16)
        np.testing.assert_array_equal(item["history"][:2].numpy(), ref["history"].numpy())
        np.testing.assert_array_equal(item["target"].numpy(), ref["target"].numpy())
        whole = optical_flow_forecast(frames[s : s + 2], 3)  # the motion of the whole region, then the tile
        np.testing.assert_array_equal(item["history"][2:].numpy(), whole[:, :, y : y + 16, x : x + 16])


def test_a_prior_needs_two_history_frames_and_a_window_dataset_appends_one_too():
    from seq_models.baselines import optical_flow_forecast

    with pytest.raises(ValueError, match="history_steps >= 2 for a farneback prior.*prior_steps 2 with history_steps 1"):
        TiledWindowDataset(_frames(), history_steps=1, forecast_steps=2, tile_size=16, prior_steps=2)
    da = _frames(n=6, h=16, w=16)
    item = SatelliteWindowDataset(da, history_steps=3, forecast_steps=2, prior_steps=2)[1]
    assert item["history"].shape == (5, 1, 16, 16) and item["target"].shape == (2, 1, 16, 16)
    np.testing.assert_array_equal(item["history"][:3].numpy(), da.values[1:4])
    np.testing.assert_array_equal(item["history"][3:].numpy(), optical_flow_forecast(da.values[1:4], 2))


def test_an_sprog_prior_is_made_per_window_on_the_region_and_needs_three_history_frames():
    from seq_models.baselines import nowcast_prior

    da = _frames(n=7, h=32, w=32)
    ds = TiledWindowDataset(da, history_steps=3, forecast_steps=2, tile_size=16, window_stride=2, prior_steps=2,
                            prior_method="sprog")
    assert ds.prior_method == "sprog"
    s, y, x = ds.pairs[-1]
    whole = nowcast_prior(da.values[s : s + 3], 2, "sprog")
    np.testing.assert_array_equal(ds[len(ds) - 1]["history"][3:].numpy(), whole[:, :, y : y + 16, x : x + 16])
    with pytest.raises(ValueError, match="history_steps >= 3 for a sprog prior.*prior_steps 2 with history_steps 2"):
        TiledWindowDataset(da, history_steps=2, forecast_steps=2, tile_size=16, prior_steps=2, prior_method="sprog")
    with pytest.raises(ValueError, match=r"prior_method in \('farneback', 'sprog'\), got 'steps'"):
        SatelliteWindowDataset(da, history_steps=3, forecast_steps=2, prior_steps=2, prior_method="steps")


def test_a_window_whose_tile_has_an_all_nan_history_frame_is_skipped():
    da = _frames(n=6, h=16, w=32)
    da.values[2, :, :, :16] = np.nan  # a drop-out of frame 2 in the western tile only: half of a 2-frame history
    ds = TiledWindowDataset(da, history_steps=2, forecast_steps=1, tile_size=16, max_nan_fraction=0.5)
    # windows read frames (s, s+1) -> s+2. Western tile: window 0's target is all NaN (over 0.5); windows 1 and 2
    # have half their history NaN (0.5 passes max_nan_fraction) but one whole frame missing, so they are skipped too
    assert ds.pairs == [(0, 0, 16), (1, 0, 16), (2, 0, 16), (3, 0, 0), (3, 0, 16)]
