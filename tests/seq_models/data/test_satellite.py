"""Satellite frames (:mod:`seq_models.data.satellite`): written and opened again, window items, channels taken by
name in any order, missing, unnamed or data-less channels refused."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from seq_models.data.cloud_generator import SEVIRI_CHANNELS, generate_cloud_dataset
from seq_models.data.satellite import (
    SatelliteWindowDataset,
    check_frames,
    open_satellite_frames,
    select_channels,
    write_frames,
)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_write_and_open_frames_round_trip(tmp_path, suffix):
    da = generate_cloud_dataset(6, 12, 14, num_channels=3, missing_fraction=0.2, seed=2)
    path = write_frames(da, tmp_path / f"frames{suffix}")
    back = open_satellite_frames(path, num_channels=3)
    assert back.dims == ("time", "channel", "y", "x")
    np.testing.assert_array_equal(back.values, da.values)  # NaN in the same places
    assert list(back.channel.values) == list(SEVIRI_CHANNELS[:3])
    sel = open_satellite_frames(path, channels=["IR_087", "IR_016"])
    np.testing.assert_array_equal(sel.values[:, 0], da.values[:, 2])
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_open_frames_transposes_and_rejects_bad_data(tmp_path):
    da = generate_cloud_dataset(4, 8, 10, num_channels=2).transpose("channel", "time", "x", "y")
    assert check_frames(da).dims == ("time", "channel", "y", "x")
    with pytest.raises(ValueError, match=r"expected 3 channels in frames, got 2"):
        check_frames(da, num_channels=3)
    with pytest.raises(ValueError, match=r"expected values scaled to \[0, 1\].*got range \[0.*, 2"):
        check_frames(da * 2 + 0.5)
    with pytest.raises(ValueError, match="expected frames with dims"):
        check_frames(da.isel(time=0))
    with pytest.raises(FileNotFoundError, match="missing path"):
        open_satellite_frames(tmp_path / "nope.zarr")


def test_window_dataset_items():
    frames = np.arange(10 * 2 * 3 * 4, dtype=np.float32).reshape(10, 2, 3, 4) / 1000
    ds = SatelliteWindowDataset(frames, history_steps=3, forecast_steps=2, stride=2, region=(1, 3, 0, 2))
    assert len(ds) == 3  # starts 0, 2, 4 (need 5 frames)
    item = ds[1]
    assert item["history"].shape == (3, 2, 2, 2) and item["target"].shape == (2, 2, 2, 2)
    np.testing.assert_array_equal(item["history"].numpy(), frames[2:5, :, 1:3, 0:2])
    np.testing.assert_array_equal(item["target"].numpy(), frames[5:7, :, 1:3, 0:2])
    with pytest.raises(ValueError, match=r"expected at least 12 frames \(6 history \+ 6 forecast\), got 10"):
        SatelliteWindowDataset(frames, 6, 6)
    with pytest.raises(IndexError):
        ds[3]


# ---------------------------------------------------------------- item 9: channels by name


def test_channels_are_selected_by_name_in_any_order(tmp_path):
    da = generate_cloud_dataset(4, 6, 8, num_channels=4, seed=1)  # IR_016, IR_039, IR_087, IR_097
    shuffled = da.isel(channel=[3, 1, 0, 2])
    extra = xr.concat([shuffled, shuffled.isel(channel=[0]).assign_coords(channel=["HRV"])], dim="channel")
    path = write_frames(extra, tmp_path / "shuffled.zarr")
    for frames in (path, extra):
        ds = SatelliteWindowDataset(frames, 2, 1, channels=["IR_016", "IR_087"])
        assert ds.channel_names == ["IR_016", "IR_087"]
        np.testing.assert_array_equal(ds[0]["history"].numpy(), da.values[:2, [0, 2]])
    one = SatelliteWindowDataset(path, 2, 1, channels=["IR_097"])  # a single channel
    np.testing.assert_array_equal(one[1]["target"].numpy(), da.values[3:4, [3]])
    scalar = da.isel(channel=2)  # a store of one channel kept as a scalar coordinate
    assert scalar.dims == ("time", "y", "x")
    np.testing.assert_array_equal(SatelliteWindowDataset(scalar, 2, 1, channels=["IR_087"])[0]["history"].numpy(), da.values[:2, [2]])


def test_missing_or_unnamed_channels_are_refused(tmp_path):
    da = generate_cloud_dataset(4, 6, 8, num_channels=3, seed=1)
    path = write_frames(da, tmp_path / "three.nc")
    with pytest.raises(ValueError, match=r"expected channels \['WV_073'\] in .*three.nc \(asked for \['IR_016', 'WV_073'\]\), it holds \['IR_016', 'IR_039', 'IR_087'\]"):
        SatelliteWindowDataset(path, 2, 1, channels=["IR_016", "WV_073"])
    with pytest.raises(ValueError, match="expected channels"):
        open_satellite_frames(path, channels=["WV_073"])
    with pytest.raises(ValueError, match=r"expected frames with named channels .* got an unnamed ndarray"):
        SatelliteWindowDataset(da.values, 2, 1, channels=["IR_016"])
    with pytest.raises(ValueError, match=r"to name its channels .* got 3 unnamed channels"):
        select_channels(da.drop_vars("channel"), ["IR_016"])
    with pytest.raises(ValueError, match=r"expected each channel once in frames, got \['IR_016'\] more than once"):
        select_channels(da.assign_coords(channel=["IR_016", "IR_016", "IR_087"]), ["IR_087"])
    with pytest.raises(ValueError, match="expected channel names, each once"):
        select_channels(da, ["IR_016", "IR_016"])


def test_a_channel_without_data_in_the_history_read_is_refused(tmp_path):
    da = generate_cloud_dataset(6, 6, 8, num_channels=3, seed=1)
    da[:, 1] = np.nan  # IR_039 never observed
    path = write_frames(da, tmp_path / "dead.zarr")
    with pytest.raises(ValueError, match=r"hold data in the 2 history frames read from .*dead.zarr, got \['IR_039'\] entirely NaN"):
        SatelliteWindowDataset(path, 2, 2, stride=4)
    with pytest.raises(ValueError, match=r"got \['channel 1'\] entirely NaN"):
        SatelliteWindowDataset(da.values, 2, 2)
    SatelliteWindowDataset(path, 2, 2, channels=["IR_087", "IR_016"])  # not asked for: fine
    partly = da.copy()
    partly[:, 1] = da[:, 0]
    partly[:4, 1] = np.nan  # IR_039 missing in frames 0-3
    SatelliteWindowDataset(partly, 2, 0, stride=2)  # windows start at 0, 2 and 4: frames 4-5 hold IR_039
    with pytest.raises(ValueError, match=r"in the 4 history frames read .* \['IR_039'\]"):
        SatelliteWindowDataset(partly, 2, 2, stride=2)  # windows start at 0 and 2: history frames 0-3 only
