"""Issue 22 items 8 and 9 through the IAM4VP bundle's inference config: ``--with_truth false`` from the command
line, channels labelled by name whatever the store's order, a rerun that replaces only its own forecasts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from monai.bundle import ConfigParser

from seq_models.data.cloud_generator import SEVIRI_CHANNELS, generate_cloud_dataset
from seq_models.data.satellite import write_frames
from seq_models.writers.forecast_writer import FORECAST_MANIFEST, read_forecast_manifest
from tests.bundles.iam4vp_cloudcasting import tiny_bundle
from tests.bundles.iam4vp_cloudcasting.tiny_bundle import copy_bundle_configs, run_config

TINY = {**tiny_bundle.TINY, "batch_size": 1}


def _bundle(tmp_path: Path, frames: xr.DataArray) -> Path:
    """A copy of the bundle's configs with a tiny checkpoint and ``frames`` as ``data/test.zarr``."""
    bundle = copy_bundle_configs(tmp_path)
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), **TINY})
    torch.manual_seed(0)
    (bundle / "models").mkdir()
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, bundle / "models" / "model.pt")
    write_frames(frames, bundle / "data" / "test.zarr")
    return bundle


def _infer(bundle: Path, **overrides) -> None:
    run_config(bundle, "inference.json", **{**TINY, **overrides})


# ---------------------------------------------------------------- item 8: switches from the command line


def _cli(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", str(bundle / "configs" / "inference.json"),
           "--meta_file", str(bundle / "configs" / "metadata.json"), "--bundle_root", str(bundle), *args]  # fmt: skip
    for key, value in TINY.items():
        cmd += [f"--{key}", str(value)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=bundle)


def test_bundle_cli_with_truth_false_writes_no_truth_and_a_typo_is_refused(tmp_path):
    """The README's ``--with_truth false``: fire hands the config the string "false", which used to be true."""
    bundle = _bundle(tmp_path, generate_cloud_dataset(4, 16, 16, seed=2))
    done = _cli(bundle, "--with_truth", "false", "--output_dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-3000:]
    with xr.open_dataset(tmp_path / "out" / "forecast_00000.nc", engine="h5netcdf") as out:
        assert "truth" not in out.data_vars and {"forecast", "history"} <= set(out.data_vars)
    failed = _cli(bundle, "--with_truth", "flase", "--output_dir", str(tmp_path / "typo"))
    assert failed.returncode != 0
    assert "expected with_truth to be true or false" in failed.stderr and "'flase'" in failed.stderr
    assert not (tmp_path / "typo").exists() or not list((tmp_path / "typo").glob("forecast_*"))


def test_bundle_labels_channels_by_name_when_the_store_has_another_order(tmp_path):
    da = generate_cloud_dataset(4, 16, 16, seed=2)
    reversed_store = xr.concat([da.isel(channel=slice(None, None, -1)), da.isel(channel=[4]).assign_coords(channel=["HRV"])], "channel")
    bundle = _bundle(tmp_path, reversed_store)
    _infer(bundle)
    with xr.open_dataset(bundle / "eval" / "forecast_00000.nc", engine="h5netcdf") as out:
        assert list(map(str, out["channel"].values)) == list(SEVIRI_CHANNELS)
        for name in ("IR_016", "WV_073", "VIS006"):
            np.testing.assert_array_equal(out["history"].sel(channel=name).values, da.sel(channel=name).values[:2])
            np.testing.assert_array_equal(out["truth"].sel(channel=name).values, da.sel(channel=name).values[2:4])
    write_frames(da.drop_sel(channel="WV_062"), bundle / "data" / "test.zarr")
    with pytest.raises(Exception) as info:
        _infer(bundle, output_dir=str(tmp_path / "missing"))
    chain = []
    err: BaseException | None = info.value
    while err is not None:
        chain.append(str(err))
        err = err.__cause__ or err.__context__
    assert any("expected channels ['WV_062']" in m for m in chain), chain[-1]
    assert not (tmp_path / "missing").exists() or not list((tmp_path / "missing").glob("forecast_*"))


# ---------------------------------------------------------------- item 9: stale forecasts


def test_bundle_rerun_replaces_its_own_forecasts_and_keeps_the_users_files(tmp_path):
    bundle = _bundle(tmp_path, generate_cloud_dataset(8, 16, 16, seed=2))  # two windows: forecast_00000, 00001
    out = bundle / "eval"
    _infer(bundle, file_format="nc")
    first = sorted(p.name for p in out.iterdir())
    assert "forecast_00001.nc" in first and FORECAST_MANIFEST in first
    assert sorted(read_forecast_manifest(out)) == sorted(n for n in first if n.startswith("forecast_0"))
    (out / "notes.txt").write_text("mine")
    (out / "forecast_best.nc").write_text("mine too")
    write_frames(generate_cloud_dataset(4, 16, 16, seed=3), bundle / "data" / "test.zarr")  # one window now
    _infer(bundle, file_format="nc")
    second = sorted(p.name for p in out.iterdir())
    strips = ["forecast_00000_infrared.png", "forecast_00000_visible.png", "forecast_00000_water_vapour.png"]
    assert second == sorted([FORECAST_MANIFEST, "forecast_00000.nc", *strips, "forecast_best.nc", "notes.txt"])
    assert "forecast_00001.nc" in first and "forecast_00001_infrared.png" in first  # the stale ones are gone
    assert (out / "notes.txt").read_text() == "mine" and (out / "forecast_best.nc").read_text() == "mine too"
    with xr.open_dataset(out / "forecast_00000.nc", engine="h5netcdf") as ds:  # the new run's, not the old one
        np.testing.assert_array_equal(ds["history"].values, generate_cloud_dataset(4, 16, 16, seed=3).values[:2])
