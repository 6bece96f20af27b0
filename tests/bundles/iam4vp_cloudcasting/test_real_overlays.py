"""The bundle's real-frame overlays (``configs/real_radar.json``, ``configs/real_satellite.json``) stacked on
``train.json`` + ``small.json``: they parse, train one or two iterations of a tiny network on tiny synthetic stores
written to tmp, write weights where asked (never over ``models/model.pt``) that the real-data benchmark loads,
resume from them, and refuse held-out frames; the shared KNMI event gives the expected window count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
from monai.bundle import ConfigParser, ConfigWorkflow

from monai_glue import load_checkpoint
from seq_models.data.satellite import open_satellite_frames, write_frames
from tests.benchmark_scripts import load_benchmark
from tests.bundles.iam4vp_cloudcasting.tiny_bundle import BUNDLE, copy_bundle_configs, exception_chain

KNMI = BUNDLE.parents[2] / "shared" / "data" / "radar" / "knmi_20100826"

#: a tiny network (16 x 16 tiles, latent 4, one temporal block) and one or two iterations; the steps stay the overlay's
TINY: dict[str, Any] = {
    "frame_height": 16,
    "frame_width": 16,
    "latent_channels": 4,
    "num_convolutions_time": 1,
    "batch_size": 2,
    "device": "cpu",
    "max_epochs": 1,
    "train#trainer#epoch_length": 2,
    "validate#dataloader#batch_size": 8,
}


def _workflow(bundle: Path, overlay: str, **overrides: Any) -> ConfigWorkflow:
    configs = [str(bundle / "configs" / name) for name in ("train.json", "small.json", overlay)]
    return ConfigWorkflow(
        config_file=configs,
        meta_file=str(bundle / "configs" / "metadata.json"),
        logging_file=str(bundle / "configs" / "logging.conf"),
        workflow_type="train",
        bundle_root=str(bundle),
        **{**TINY, **overrides},
    )


def _train(bundle: Path, overlay: str, **overrides: Any) -> ConfigWorkflow:
    workflow = _workflow(bundle, overlay, **overrides)
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    return workflow


def _radar_store(path: Path, n: int = 30, start: str = "2010-08-26T00:00") -> Path:
    rng = np.random.default_rng(0)
    rain = np.clip(rng.normal(0.3, 0.3, size=(n, 1, 32, 32)), 0.0, 1.0).astype(np.float32)
    rain[:, :, :8, :8] = np.nan  # outside the radar range
    times = np.datetime64(start) + np.arange(n) * np.timedelta64(5, "m")
    da = xr.DataArray(rain, dims=("time", "channel", "y", "x"), coords={"time": times, "channel": ["rain_rate"]})
    return write_frames(da.rename("rain_rate"), path)


def _seviri_store(path: Path) -> Path:
    """``ir016_5min.zarr``'s layout: 12:00 .. 14:00 every 5 min, ``(time, y_geostationary, x_geostationary,
    channels)``, the source's 0..1023 values, 0 for no data."""
    rng = np.random.default_rng(1)
    raw = rng.integers(100, 900, size=(25, 24, 40, 1)).astype(np.float64)
    raw[:, -4:, -8:] = 0.0  # the no-data block (north-east once north is up)
    ds = xr.Dataset(
        {"data": (("time", "y_geostationary", "x_geostationary", "channels"), raw)},
        coords={
            "time": np.datetime64("2020-04-01T12:00") + np.arange(25) * np.timedelta64(5, "m"),
            "y_geostationary": np.arange(24.0) * 3000,
            "x_geostationary": -np.arange(40.0) * 3000,
            "channels": np.array(["IR_016"], dtype=object),
        },
    )
    ds.to_zarr(path, consolidated=False)
    return path


def test_radar_overlay_trains_writes_where_asked_resumes_and_the_benchmark_loads_it(tmp_path):
    bundle = copy_bundle_configs(tmp_path)
    store = _radar_store(tmp_path / "radar.zarr")
    frames = open_satellite_frames(store)  # the synthetic event in place of the KNMI files
    common = {"real_frames": frames, "train_fraction": 0.6, "tile_stride": 8}
    workflow = _workflow(bundle, "real_radar.json", ckpt_dir=str(tmp_path / "weights"), **common)
    workflow.initialize()
    train = workflow.parser.get_parsed_content("train#dataset#data")
    val = workflow.parser.get_parsed_content("validate#dataset#data")
    assert (train.history_steps, train.forecast_steps, train.channel_names) == (6, 6, ["rain_rate"])
    assert train.prior_steps == val.prior_steps == 6  # each window carries its S-PROG nowcast
    assert train.prior_method == val.prior_method == "sprog"
    assert (train.num_windows, val.num_windows) == (18 - 12 + 1, 1)  # 18 + 12 frames, 6 + 6 per window
    assert train.times.max() < val.times.min()  # the time split is disjoint
    network = workflow.parser.get_parsed_content("network")
    assert network.shape_in == (12, 1, 16, 16) and network.num_prior_steps == 6  # 6 history + 6 prior frames
    assert network.prior_method_name == "sprog"
    item = workflow.parser.get_parsed_content("train#dataset")[0]  # augmented: plain tensors, history and target
    assert type(item["history"]) is torch.Tensor and item["history"].shape == (12, 1, 16, 16) and item["target"].shape == (6, 1, 16, 16)
    workflow.run()
    workflow.finalize()
    assert workflow.parser.get_parsed_content("train#trainer").state.iteration == 2
    ckpt = tmp_path / "weights" / "model.pt"
    assert ckpt.is_file() and not (bundle / "models" / "model.pt").exists()
    model = load_benchmark("iam4vp_real").iam4vp_from_checkpoint(ckpt)
    assert (model.shape_in, model.num_prior_steps, model.num_history_steps) == ((12, 1, 16, 16), 6, 6)
    assert model.prior_method_name == "sprog"  # the benchmark rebuilds the S-PROG prior model from its weights

    # resume: the weights are loaded before training starts (a learning rate of 0 keeps them as they were)
    resumed = _train(bundle, "real_radar.json", ckpt_dir=str(tmp_path / "again"), resume_from=str(ckpt), learning_rate=0.0, **common)
    state = load_checkpoint(ckpt, key="model")  # a plain state dict (one object saved)
    for key, value in resumed.parser.get_parsed_content("network").state_dict().items():
        torch.testing.assert_close(value, state[key])
    # default weights path is models/real_radar/, beside (never over) the shipped models/model.pt
    assert ConfigParser.load_config_file(BUNDLE / "configs" / "real_radar.json")["ckpt_dir"].endswith("/models/real_radar'")


def test_radar_overlay_refuses_the_held_out_fmi_event(tmp_path):
    bundle = copy_bundle_configs(tmp_path)
    store = _radar_store(tmp_path / "fmi_like.zarr", start="2016-09-28T14:45")
    workflow = _workflow(bundle, "real_radar.json", real_frames=open_satellite_frames(store))
    workflow.initialize()
    with pytest.raises(Exception) as info:
        workflow.parser.get_parsed_content("train#dataset#data")
    chain = [str(e) for e in exception_chain(info.value)]
    assert any("expected no held-out frames" in m and "2016-09-28T14:45" in m for m in chain)


def test_satellite_overlay_trains_on_frames_up_to_13_and_refuses_later_ones(tmp_path):
    bundle = copy_bundle_configs(tmp_path)
    store = _seviri_store(tmp_path / "ir016_5min.zarr")
    overrides = {"satellite_store": str(store), "train_region": [0, 24, 0, 24], "val_region": [0, 24, 24, 40], "tile_stride": 8}
    workflow = _workflow(bundle, "real_satellite.json", ckpt_dir=str(tmp_path / "weights"), **overrides)
    workflow.initialize()
    train = workflow.parser.get_parsed_content("train#dataset#data")
    val = workflow.parser.get_parsed_content("validate#dataset#data")
    for ds in (train, val):
        # 15-minute steps through the 5-minute frames up to 13:00: history (s, s+3) -> targets s+6, s+9, ... <= 13:00
        assert str(ds.times[-1])[:16] == "2020-04-01T13:00" and (ds.step, ds.num_windows, ds.prior_steps) == (3, 7, 4)
        first, last = ds[0]["target"].numpy(), ds[len(ds) - 1]["target"].numpy()  # windows 12:00 and 12:30
        real = [not np.isnan(frame).all() for frame in first]
        assert real == [True, True, True, False]  # 12:30, 12:45, 13:00 real; 13:15 held out (NaN)
        assert [not np.isnan(frame).all() for frame in last] == [True, False, False, False]  # 13:00 only
        assert ds[0]["history"].shape == (2 + 4, 1, 16, 16)
    assert len(train) == 7 * 2 * 2 and len(val) == 7  # 16 x 16 tiles: stride 8 in 24 x 24; the val strip's lower tile
    workflow.run()
    workflow.finalize()
    ckpt = tmp_path / "weights" / "model.pt"
    assert load_benchmark("iam4vp_real").iam4vp_from_checkpoint(ckpt).shape_in == (2 + 4, 1, 16, 16)

    late = _workflow(bundle, "real_satellite.json", development_times=[None, "2020-04-01T14:00"], **overrides)
    late.initialize()
    with pytest.raises(Exception) as info:
        late.parser.get_parsed_content("train#dataset#data")
    chain = [str(e) for e in exception_chain(info.value)]
    assert any("expected no held-out frames" in m and "12 frame(s)" in m for m in chain)


@pytest.mark.skipif(not KNMI.is_dir(), reason="the shared KNMI radar event is not here")
def test_real_knmi_event_gives_the_expected_windows():
    pytest.importorskip("pysteps")
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / n) for n in ("train.json", "small.json", "real_radar.json")])
    parser.update({"bundle_root": str(BUNDLE), "radar_dir": str(KNMI)})
    train = parser.get_parsed_content("train#dataset#data")
    val = parser.get_parsed_content("validate#dataset#data")
    # 92 frames: 74 train (0.8), 18 validation; 12 frames a window; tiles 64 x 64 of 765 x 700
    assert (train.times.size, val.times.size) == (74, 18)
    assert (train.num_windows, val.num_windows) == (74 - 12 + 1, 3)
    assert train.num_tiles == val.num_tiles == 11 * 10
    assert 0 < len(train) < train.num_windows * train.num_tiles  # the tiles outside the radar range are skipped
    item = train[len(train) // 2]
    assert item["history"].shape == (6 + 6, 1, 64, 64) and np.isnan(item["history"][:6].numpy()).mean() <= 0.5
    assert not np.isnan(item["history"][6:].numpy()).any()  # the optical-flow prior has no NaN


@pytest.mark.parametrize("overlay, folder", [("real_radar.json", "real_radar"), ("real_satellite.json", "real_satellite")])
def test_shipped_real_weights_load_strictly_into_their_overlay_and_forecast(overlay, folder):
    """The weights shipped for each real-frame overlay fit the network that overlay builds, key for key and shape for
    shape, and give a finite forecast in [0, 1]-ish units of the overlay's own length."""
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in ("train.json", "small.json", overlay)])
    parser["bundle_root"] = str(BUNDLE)
    parser["device"] = "cpu"
    network = parser.get_parsed_content("network_def")
    state = load_checkpoint(BUNDLE / "models" / folder / "model.pt", key="model")
    network.load_state_dict(state, strict=True)
    network.eval()
    steps, channels, height, width = network.shape_in
    history = torch.rand(1, steps, channels, height, width, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        forecast = network(history)
    forecast = forecast[0] if isinstance(forecast, (tuple, list)) else forecast
    assert forecast.shape[-3:] == (channels, height, width)
    assert torch.isfinite(forecast).all()
    assert -0.5 < float(forecast.min()) and float(forecast.max()) < 1.5


@pytest.mark.parametrize(
    "folder, sizes, method", [("real_radar", (6, 6, 6), "sprog"), ("real_satellite", (2, 4, 4), "farneback")]
)
def test_shipped_real_weights_run_through_inference_json_with_the_overlays_sizes(folder, sizes, method):
    """The bundle README's inference recipe: inference.json + small.json with the overlay's history / forecast /
    prior sizes and prior method builds the network the weights fit, and its inferer makes the prior on the whole
    frame."""
    from seq_models.baselines import nowcast_prior

    history_steps, forecast_steps, prior_steps = sizes
    overlay = ConfigParser.load_config_file(BUNDLE / "configs" / f"{folder}.json")
    assert overlay["history_steps"] == history_steps and overlay.get("prior_method", "farneback") == method
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / name) for name in ("inference.json", "small.json")])
    parser.update({"bundle_root": str(BUNDLE), "device": "cpu", "history_steps": history_steps,
                   "forecast_steps": forecast_steps, "prior_steps": prior_steps, "prior_method": method,
                   "channel_names": ["rain_rate"]})
    network = parser.get_parsed_content("network_def").eval()
    network.load_state_dict(load_checkpoint(BUNDLE / "models" / folder / "model.pt", key="model"), strict=True)
    yy, xx = np.mgrid[0:72, 0:100]
    frames = np.stack([np.exp(-((yy - 30 - 2 * t) ** 2 + (xx - 30 - 3 * t) ** 2) / 150.0) for t in range(history_steps)])
    history = torch.from_numpy(frames[None, :, None].astype(np.float32))
    with torch.no_grad():
        forecast = parser.get_parsed_content("inferer")(history, network)
    assert forecast.shape == (1, forecast_steps, 1, 72, 100) and bool(torch.isfinite(forecast).all())
    prior = nowcast_prior(history[:, -history_steps:], prior_steps, method)[:, :forecast_steps]
    assert float((forecast - prior).abs().mean()) < 0.05  # a correction of the whole-frame nowcast, not another field
