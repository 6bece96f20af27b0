"""Issue 22 items 8 and 9 for IAM4VP: strict switches, channels taken by name, all-NaN channels, stale forecasts."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from monai.bundle import ConfigParser, ConfigWorkflow

from seq_models.data.cloud_generator import SEVIRI_CHANNELS, generate_cloud_dataset
from seq_models.data.satellite import SatelliteWindowDataset, open_satellite_frames, select_channels, write_frames
from seq_models.handlers import ForecastWriterHandler
from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
from seq_models.inferers.streaming import GRUStreamingInferer
from seq_models.networks.gru_regression import PaddedGRURegressor
from seq_models.writers.forecast_writer import FORECAST_MANIFEST, ForecastRun, read_forecast_manifest

BUNDLE = Path(__file__).resolve().parents[2] / "bundles" / "iam4vp_cloudcasting"
TINY = {
    "history_steps": 2,
    "forecast_steps": 2,
    "frame_height": 16,
    "frame_width": 16,
    "latent_channels": 4,
    "num_convolutions_time": 1,
    "batch_size": 1,
    "device": "cpu",
}


def _bundle(tmp_path: Path, frames: xr.DataArray) -> Path:
    """A copy of the bundle's configs with a tiny checkpoint and ``frames`` as ``data/test.zarr``."""
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE / "configs", bundle / "configs")
    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "inference.json"))
    parser.update({"bundle_root": str(bundle), **TINY})
    torch.manual_seed(0)
    (bundle / "models").mkdir()
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, bundle / "models" / "model.pt")
    write_frames(frames, bundle / "data" / "test.zarr")
    return bundle


def _infer(bundle: Path, **overrides) -> None:
    workflow = ConfigWorkflow(
        config_file=str(bundle / "configs" / "inference.json"),
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        workflow_type="infer",
        bundle_root=str(bundle),
        **{**TINY, **overrides},
    )
    workflow.initialize()
    workflow.run()
    workflow.finalize()


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


@pytest.mark.parametrize(
    "make, attribute, name",
    [
        (lambda v: AutoregressiveForecaster(clamp_output=v), "clamp_output", "clamp_output"),
        (lambda v: TiledForecaster(progress=v), "progress", "progress"),
        (lambda v: TimeSlidingWindowInferer(8, 2, progress=v), "progress", "progress"),
        (lambda v: ForecastWriterHandler("unused", write_png=v), "write_png", "write_png"),
        (lambda v: GRUStreamingInferer(PaddedGRURegressor(3, 4, 1), check_inputs=v), "check_inputs", "check_inputs"),
    ],
)
def test_switches_of_seq_models_components_are_parsed_strictly(make, attribute, name):
    assert getattr(make("false"), attribute) is False
    assert getattr(make("True"), attribute) is True
    assert getattr(make(False), attribute) is False
    with pytest.raises(ValueError, match=rf"expected {name} to be true or false .*got 'flase'"):
        make("flase")


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


def _write(run: ForecastRun, name: str, text: str = "x") -> None:
    path = run.path(name)
    if name.endswith(".zarr"):
        path.mkdir()
        (path / "zarr.json").write_text(text)
    else:
        path.write_text(text)


def test_forecast_run_replaces_only_what_it_listed(tmp_path):
    out = tmp_path / "out"
    run = ForecastRun(out)
    run.begin()
    for name in ("forecast_00000.zarr", "forecast_00001.zarr", "forecast_00001_infrared.png"):
        _write(run, name, "old")
    assert not list(out.glob("forecast_0*"))  # staged until the run completes
    assert [p.name for p in run.commit()] == ["forecast_00000.zarr", "forecast_00001.zarr", "forecast_00001_infrared.png"]
    assert not list(out.glob(".forecast-staging-*"))
    (out / "user.nc").write_text("user")
    run.begin()
    _write(run, "forecast_00000.zarr", "new")
    run.commit()
    assert sorted(p.name for p in out.iterdir()) == ["forecast_00000.zarr", FORECAST_MANIFEST, "user.nc"]
    assert (out / "forecast_00000.zarr" / "zarr.json").read_text() == "new"
    manifest = json.loads((out / FORECAST_MANIFEST).read_text())
    assert manifest["files"] == ["forecast_00000.zarr"] and manifest["complete"] is True


def test_forecast_run_refuses_forecast_files_it_did_not_list_and_never_deletes_them(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "forecast_00000.nc").write_text("from an older version, or the user's")
    with pytest.raises(ValueError, match=r"found \['forecast_00000.nc'\] not listed .* they are never deleted"):
        ForecastRun(out).begin()
    assert (out / "forecast_00000.nc").read_text() == "from an older version, or the user's"
    assert not list(out.glob(".forecast-staging-*"))
    (out / FORECAST_MANIFEST).write_text("{not json")
    with pytest.raises(ValueError, match=r"expected a forecast manifest \(JSON\) at .*forecast_manifest.json"):
        ForecastRun(out).begin()
    (out / FORECAST_MANIFEST).write_text(json.dumps({"format": "seq-models-forecast-run/1", "files": ["../x"]}))
    with pytest.raises(ValueError, match=r"expected forecast file names .* got \['../x'\]"):
        ForecastRun(out).begin()


def test_a_failed_run_changes_nothing_and_its_staging_is_cleaned_later(tmp_path):
    out = tmp_path / "out"
    run = ForecastRun(out)
    run.begin()
    _write(run, "forecast_00000.nc", "kept")
    run.commit()
    run.begin()
    _write(run, "forecast_00000.nc", "partial")
    _write(run, "forecast_00001.nc", "partial")
    run.abort()  # the engine's EXCEPTION_RAISED
    assert sorted(p.name for p in out.iterdir()) == ["forecast_00000.nc", FORECAST_MANIFEST]
    assert (out / "forecast_00000.nc").read_text() == "kept"
    # a killed run's staging folder (its process is gone) is removed by the next run; a stranger's folder stays
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = out / ".forecast-staging-killed"
    stale.mkdir()
    (stale / ".owner.json").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    (stale / "forecast_00000.nc").write_text("stale")
    other = out / ".forecast-staging-notours"
    other.mkdir()
    run.begin()
    assert not stale.exists() and other.exists()
    run.abort()


def test_the_handler_stages_files_and_aborts_on_an_exception(tmp_path):
    from ignite.engine import Engine, Events

    history, pred = torch.rand(1, 2, 11, 8, 8), torch.rand(1, 2, 11, 8, 8)

    def step(engine, batch):
        if batch == 1:
            raise RuntimeError("disk full")
        return {"image": history, "pred": pred, "label": None}

    engine = Engine(step)
    handler = ForecastWriterHandler(tmp_path / "out", write_png=False)
    handler.attach(engine)
    engine.run([0, 0], max_epochs=1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["forecast_00000.nc", "forecast_00001.nc", FORECAST_MANIFEST]
    with pytest.raises(RuntimeError, match="disk full"):
        engine.run([0, 0, 1], max_epochs=1)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["forecast_00000.nc", "forecast_00001.nc", FORECAST_MANIFEST]
    assert engine.has_event_handler(handler._failed, Events.EXCEPTION_RAISED)
    assert not [n for n in os.listdir(tmp_path / "out") if n.startswith(".forecast-staging-")]
