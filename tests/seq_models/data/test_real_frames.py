"""Readers of real satellite (SEVIRI Zarr) and radar (KNMI HDF5, FMI PGM through pysteps) frames.

Synthetic stores in both SEVIRI layouts check the conversion by hand; the shared real data (``../shared/data``,
beside the checkout in CI) checks the readers on the real files when it is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from seq_models.data.real_frames import RainRateScaling, SeviriScaling, open_radar_frames, open_seviri_frames, radar_files
from seq_models.data.satellite import SatelliteWindowDataset

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
SEVIRI = SHARED / "satellite" / "seviri_ir016_uk_20200401"
KNMI = SHARED / "radar" / "knmi_20100826"
FMI = SHARED / "radar" / "fmi_20160928"


def _store_5min_layout(path: Path, raw: np.ndarray) -> Path:
    """``(time, y, x, variable)`` int16, x decreasing, y increasing, as in ``ir016_5min.zarr``."""
    t, h, w = raw.shape
    ds = xr.Dataset(
        {"data": (("time", "y", "x", "variable"), raw[..., None].astype(np.int16))},
        coords={
            "time": np.arange(t) * np.timedelta64(5, "m") + np.datetime64("2020-04-01T12:00"),
            "y": np.arange(h, dtype=np.float32) * 3000 + 4.2e6,  # increasing: row 0 is south
            "x": -np.arange(w, dtype=np.float32) * 3000,  # decreasing: column 0 is east
            "variable": np.array(["IR_016"], dtype=object),
        },
        attrs={},
    )
    ds["data"].attrs["name"] = "VIS006"  # the shared store's wrong attribute: must not matter
    ds.to_zarr(path, consolidated=False)
    return path


def test_seviri_5min_layout_scaled_sorted_no_data_nan(tmp_path):
    raw = np.arange(2 * 3 * 4).reshape(2, 3, 4) * 10 + 5
    raw[1, 0, 3] = 0  # a no-data pixel: south-west corner in store order
    frames = open_seviri_frames(_store_5min_layout(tmp_path / "s.zarr", raw))
    assert frames.dims == ("time", "channel", "y", "x") and frames.dtype == np.float32
    assert list(frames.channel.values) == ["IR_016"]
    # north up, west left: the store's array rotated by 180 degrees
    expected = (raw[:, ::-1, ::-1] / 1023.0).astype(np.float32)
    expected[1, -1, 0] = np.nan  # store row 0 (south) col 3 (west) -> bottom-left
    np.testing.assert_array_equal(frames.values[:, 0], expected)
    assert (np.diff(frames.y.values) < 0).all() and (np.diff(frames.x.values) > 0).all()
    np.testing.assert_allclose(SeviriScaling().from_unit(frames.values[0, 0]), raw[0, ::-1, ::-1], rtol=1e-6)
    # one channel by name, as a string or a list; a missing one is named with what the store holds
    np.testing.assert_array_equal(open_seviri_frames(tmp_path / "s.zarr", channels="IR_016").values, frames.values)
    np.testing.assert_array_equal(open_seviri_frames(tmp_path / "s.zarr", channels=["IR_016"]).values, frames.values)
    with pytest.raises(ValueError, match=r"expected channels \['VIS006'\].*holds \['IR_016'\]"):
        open_seviri_frames(tmp_path / "s.zarr", channels="VIS006")
    # store order kept on request
    np.testing.assert_array_equal(
        open_seviri_frames(tmp_path / "s.zarr", north_up=False).values[0, 0], (raw[0] / 1023.0).astype(np.float32)
    )


def test_seviri_15min_layout_two_channels_by_name(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.integers(1, 1000, size=(3, 4, 5, 2)).astype(np.float64)
    raw[0, 0, 0, 1] = 0.0
    ds = xr.Dataset(
        {"data": (("time", "y_geostationary", "x_geostationary", "channels"), raw)},
        coords={
            "time": np.arange(3) * np.timedelta64(15, "m") + np.datetime64("2020-04-01T12:00"),
            "y_geostationary": np.arange(4.0) * 3000,
            "x_geostationary": np.arange(5.0) * 3000,  # already increasing here
            "channels": np.array(["IR_016", "VIS006"], dtype=object),
        },
    )
    ds.to_zarr(tmp_path / "s15.zarr", consolidated=False)
    frames = open_seviri_frames(tmp_path / "s15.zarr", channels=["VIS006", "IR_016"])
    assert list(frames.channel.values) == ["VIS006", "IR_016"] and frames.shape == (3, 2, 4, 5)
    expected = (raw[:, ::-1, :, 1] / 1023.0).astype(np.float32)
    expected[0, -1, 0] = np.nan  # raw 0 at store row 0 (south): bottom row once north is up
    np.testing.assert_allclose(frames.values[:, 0], expected)
    assert np.isnan(frames.values).sum() == 1
    with pytest.raises(ValueError, match="values scaled to"):  # raw beyond the source's 0..1023
        raw2 = raw.copy()
        raw2[0, 0, 0, 0] = 5000
        ds.assign(data=(ds["data"].dims, raw2)).to_zarr(tmp_path / "bad.zarr", consolidated=False)
        open_seviri_frames(tmp_path / "bad.zarr")


def test_rain_rate_scaling_known_values_and_inverse():
    s = RainRateScaling()
    rates = np.array([np.nan, 0.0, 0.05, 0.1, 1.0, 10.0, 100.0, 250.0])
    unit = s.to_unit(rates)
    np.testing.assert_allclose(unit, [np.nan, 0, 0, 0, 1 / 3, 2 / 3, 1, 1], atol=1e-6)
    back = s.to_rainrate(unit)
    np.testing.assert_allclose(back[4:7], [1.0, 10.0, 100.0], rtol=1e-5)
    assert np.isnan(back[0]) and (back[1:4] == 0).all()
    dbr = s.to_dbr(unit)
    np.testing.assert_allclose(dbr, [np.nan, -15, -15, -15, 0, 10, 20, 20], atol=1e-4)
    np.testing.assert_allclose(s.from_dbr(dbr), unit, atol=1e-6)
    with pytest.raises(ValueError, match="0 < threshold < max_rate"):
        RainRateScaling(threshold=1.0, max_rate=0.5)


def test_radar_files_kinds_and_errors(tmp_path):
    for name in ["RAD_NL25_RAP_5min_201008260005.h5", "RAD_NL25_RAP_5min_201008260000.h5"]:
        (tmp_path / name).write_bytes(b"")
    kind, files = radar_files(tmp_path)
    assert kind == "knmi" and [f.name[-15:-3] for f in files] == ["201008260000", "201008260005"]
    (tmp_path / "201609281445_fmi.pgm.gz").write_bytes(b"")
    with pytest.raises(ValueError, match="one radar format"):
        radar_files(tmp_path)
    with pytest.raises(ValueError, match="timestamp in the file name"):
        radar_files([tmp_path / "no_time.h5"])
    with pytest.raises(FileNotFoundError):
        radar_files(tmp_path / "missing")


@pytest.mark.skipif(not SEVIRI.is_dir(), reason="the shared SEVIRI stores are not here")
def test_real_seviri_stores_agree_and_hold_the_no_data_block():
    five = open_seviri_frames(SEVIRI / "ir016_5min.zarr")
    fifteen = open_seviri_frames(SEVIRI / "ir016_15min.zarr", channels="IR_016")
    assert five.shape == (25, 1, 298, 615) and fifteen.shape == (9, 1, 298, 615)
    assert list(fifteen.channel.values) == ["IR_016"]  # not the store attribute's VIS006
    np.testing.assert_array_equal(five.values[::3], fifteen.values)  # the 15-min store is every third frame
    # the fixed no-data block is the north-east corner once north is up
    block = np.isnan(fifteen.values).all(axis=(0, 1))
    assert block[:42, 359:].all() and not block[42:, :].any() and not block[:, :359].any()
    assert 0.0 < float(fifteen.min()) and float(fifteen.max()) < 1.0
    assert np.isnan(five.values[10]).mean() > 0.3  # 12:50 has a drop-out, kept as NaN
    # windows for the forecaster come straight from the reader
    ds = SatelliteWindowDataset(fifteen, history_steps=4, forecast_steps=4, channels=["IR_016"])
    assert len(ds) == 2 and ds[0]["history"].shape == (4, 1, 298, 615)


@pytest.mark.skipif(not KNMI.is_dir(), reason="the shared KNMI radar files are not here")
def test_real_knmi_through_pysteps_with_a_gap():
    pytest.importorskip("pysteps")
    files = sorted(KNMI.glob("*.h5"))[:4]
    frames = open_radar_frames([files[0], files[1], files[3]])  # 00:10 missing
    assert frames.shape == (4, 1, 765, 700) and list(frames.channel.values) == ["rain_rate"]
    assert np.isnan(frames.values[2]).all() and not np.isnan(frames.values[3]).all()
    assert str(frames.time.values[2])[:16] == "2010-08-26T00:10"
    valid = frames.values[0][np.isfinite(frames.values[0])]
    assert 0.2 < valid.size / frames.values[0].size < 0.3 and valid.min() == 0.0 and 0 < valid.max() <= 1
    # the scaling's inverse gives pysteps' rain rate: the file's 5-min accumulation (0.01 mm) times 12
    import h5py

    with h5py.File(files[0]) as f:
        counts = f["image1/image_data"][:].astype(float)
    rate = np.where(counts == 65535, np.nan, counts / 100.0 * 12.0)
    back = RainRateScaling().to_rainrate(frames.values[0, 0])
    rainy = rate >= 0.1
    np.testing.assert_allclose(back[rainy], rate[rainy], rtol=1e-4)
    assert (back[(rate < 0.1)] == 0).all() and np.array_equal(np.isnan(back), np.isnan(rate))
    assert frames.y.values[0] > frames.y.values[-1]  # north first


@pytest.mark.skipif(not FMI.is_dir(), reason="the shared FMI radar files are not here")
def test_real_fmi_pgm_through_pysteps():
    pytest.importorskip("pysteps")
    pytest.importorskip("pyproj")
    frames = open_radar_frames(sorted(FMI.glob("*.pgm.gz"))[:2])
    assert frames.shape == (2, 1, 1226, 760) and frames.attrs["radar_format"] == "fmi"
    assert str(frames.time.values[1])[:16] == "2016-09-28T14:50"
    nan = np.isnan(frames.values)
    assert 0.2 < nan.mean() < 0.3 and np.nanmax(frames.values) <= 1.0
    # dBZ = 0.5 * value - 32 and Z = 223 R^1.53 (pysteps' FMI Z-R) give the rain rate
    import gzip

    from PIL import Image

    with gzip.open(sorted(FMI.glob("*.pgm.gz"))[0]) as f:
        counts = np.asarray(Image.open(f), dtype=float)
    rate = (10 ** ((0.5 * counts - 32.0) / 10.0) / 223.0) ** (1 / 1.53)
    rate[counts == 255] = np.nan
    back = RainRateScaling().to_rainrate(frames.values[0, 0])
    rainy = (rate >= 0.1) & (rate <= 100)
    np.testing.assert_allclose(back[rainy], rate[rainy], rtol=1e-3)
    assert np.array_equal(np.isnan(back), np.isnan(rate))
