"""The forecast writer (:mod:`seq_models.writers.forecast_writer`): NetCDF / Zarr datasets and strips read back;
ForecastRun replaces only the files it listed, refuses unlisted ones and leaves nothing of a failed run."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from seq_models.writers import forecast_dataset, plot_forecast_strips, write_forecast
from seq_models.writers.forecast_writer import FORECAST_MANIFEST, ForecastRun


def test_forecast_dataset_writer_and_strips(tmp_path):
    forecast = np.random.rand(3, 11, 8, 10).astype(np.float32)
    history = np.random.rand(4, 11, 8, 10).astype(np.float32)
    ds = forecast_dataset(forecast, history=history, truth=forecast * 0.5)
    assert ds["lead_time"].values.tolist() == [15, 30, 45]
    assert ds["history_time"].values.tolist() == [-45, -30, -15, 0]
    for suffix in (".nc", ".zarr"):
        path = write_forecast(ds, tmp_path / f"f{suffix}")
        back = xr.open_zarr(path) if suffix == ".zarr" else xr.open_dataset(path, engine="h5netcdf")
        np.testing.assert_array_equal(back["forecast"].values, forecast)
        back.close()
    paths = plot_forecast_strips(ds, tmp_path / "strip", groups={"ir": ["IR_108", "IR_120"], "none": ["XX"]})
    assert [p.name for p in paths] == ["strip_ir.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match=r"expected truth of the forecast's shape \(3, 11, 8, 10\), got \(2, 11, 8, 10\)"):
        forecast_dataset(forecast, truth=forecast[:2])


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
