"""IAM4VP bundle: train, inference and evaluate configs run end to end on tiny synthetic frames; the shipped small
weights load strictly and forecast."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import xarray as xr

from seq_models.data.cloud_generator import generate_cloud_dataset
from seq_models.data.satellite import write_frames
from tests.bundles.iam4vp_cloudcasting.tiny_bundle import BUNDLE, copy_bundle_configs, exception_chain, run_config


def test_metadata_has_the_mandatory_keys():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    schema = json.loads((BUNDLE / "configs" / "metadata_schema.json").read_text())
    assert set(schema["required"]) <= set(meta)
    assert meta["network_data_format"]["inputs"]["history"]["num_channels"] == 11
    for name in ("train.json", "inference.json", "evaluate.json"):
        assert "network_def" in json.loads((BUNDLE / "configs" / name).read_text())


def test_bundle_train_inference_evaluate(tmp_path):
    bundle = copy_bundle_configs(tmp_path)
    write_frames(generate_cloud_dataset(16, 16, 16, seed=0), bundle / "data" / "train.zarr")
    write_frames(generate_cloud_dataset(8, 16, 16, seed=1), bundle / "data" / "val.zarr")
    write_frames(generate_cloud_dataset(4, 20, 36, missing_fraction=0.1, seed=2), bundle / "data" / "test.zarr")

    run_config(bundle, "train.json", max_epochs=1)
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    assert "mask_token" in state or "mask_token" in state.get("model", {})

    run_config(bundle, "inference.json", file_format="nc")
    out = xr.open_dataset(bundle / "eval" / "forecast_00000.nc", engine="h5netcdf")
    assert out["forecast"].shape == (2, 11, 20, 36)  # frames larger than the 16x16 tile: tiled inference
    assert float(out["forecast"].min()) >= 0 and float(out["forecast"].max()) <= 1
    assert {"history", "truth"} <= set(out.data_vars)
    assert sorted(p.name for p in (bundle / "eval").glob("forecast_00000_*.png")) == [
        "forecast_00000_infrared.png", "forecast_00000_visible.png", "forecast_00000_water_vapour.png"
    ]
    out.close()

    run_config(bundle, "evaluate.json")
    summary = json.loads((bundle / "eval" / "summary.json").read_text())
    assert set(summary) == {"IAM4VP", "persistence", "optical_flow"}
    assert len(summary["IAM4VP"]["mae"]) == 2
    assert (bundle / "eval" / "scores.csv").read_text().count("\n") == 1 + 3 * 2 * 11


def test_bundle_refuses_a_checkpoint_of_another_configuration(tmp_path):
    bundle = copy_bundle_configs(tmp_path)
    write_frames(generate_cloud_dataset(4, 16, 16, seed=2), bundle / "data" / "test.zarr")
    from seq_models.networks.iam4vp import IAM4VP

    (bundle / "models").mkdir()
    torch.save(IAM4VP((2, 11, 16, 16), latent_channels=8, num_convolutions_time=1).state_dict(), bundle / "models" / "model.pt")
    from monai_glue import CheckpointError

    with pytest.raises(RuntimeError) as info:  # MONAI wraps the handler's error in "Failed to evaluate ..."
        run_config(bundle, "inference.json")
    chain = exception_chain(info.value)
    assert any(isinstance(e, CheckpointError) and "made for another configuration of IAM4VP" in str(e) for e in chain)
    assert not (bundle / "eval").exists() or not list((bundle / "eval").glob("forecast_*"))  # nothing written


def test_shipped_small_weights_load_strictly_and_forecast(tmp_path):
    """models/model.pt is the small configuration (configs/small.json): it loads strictly into inference.json +
    small.json's network and forecasts finite frames; the seed configuration names the mismatch."""
    from monai.bundle import ConfigParser

    from monai_glue import CheckpointError
    from monai_glue.checkpoint import load_checkpoint, load_state_dict_checked

    ckpt = BUNDLE / "models" / "model.pt"
    assert ckpt.is_file() and ckpt.stat().st_size < 1024 * 1024
    state = load_checkpoint(ckpt, key="model")
    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "inference.json"), str(BUNDLE / "configs" / "small.json")])
    parser.update({"bundle_root": str(BUNDLE), "device": "cpu"})
    net = parser.get_parsed_content("network_def").eval()
    net.load_state_dict(state, strict=True)
    store = tmp_path / "test.zarr"
    write_frames(generate_cloud_dataset(8, 64, 64, seed=5), store)
    history = torch.as_tensor(xr.open_zarr(store)["data"].values[:4][None])
    with torch.no_grad():
        forecast = parser.get_parsed_content("inferer")(history, net)
    assert forecast.shape == (1, 4, 11, 64, 64) and bool(torch.isfinite(forecast).all())

    seed = ConfigParser()
    seed.read_config(str(BUNDLE / "configs" / "inference.json"))
    seed.update({"bundle_root": str(BUNDLE), "device": "cpu"})
    with pytest.raises(CheckpointError, match="made for another configuration of IAM4VP"):
        load_state_dict_checked(seed.get_parsed_content("network_def"), state, source=f"checkpoint {ckpt}")


def test_bundle_with_a_nowcast_prior_trains_and_its_untrained_weights_forecast_the_whole_frame_nowcast(tmp_path):
    """``--prior_steps 2``: train.json's windows carry the optical-flow prior and the network corrects it; with a
    learning rate of 0 the saved weights are the zero correction, so inference.json (the prior made on the whole
    20 x 36 frame, then tiled over 16 x 16) writes exactly the optical-flow forecast of each window's history."""
    from seq_models.baselines import optical_flow_forecast

    bundle = copy_bundle_configs(tmp_path)
    write_frames(generate_cloud_dataset(12, 16, 16, seed=0), bundle / "data" / "train.zarr")
    write_frames(generate_cloud_dataset(8, 16, 16, seed=1), bundle / "data" / "val.zarr")
    test = generate_cloud_dataset(4, 20, 36, seed=2)
    write_frames(test, bundle / "data" / "test.zarr")

    trained = run_config(bundle, "train.json", max_epochs=1, prior_steps=2, learning_rate=0.0)
    assert trained.parser.get_parsed_content("network").shape_in == (4, 11, 16, 16)
    assert trained.parser.get_parsed_content("train#dataset")[0]["history"].shape == (4, 11, 16, 16)
    state = torch.load(bundle / "models" / "model.pt", weights_only=True)
    assert int(state["prior_steps"]) == 2

    run_config(bundle, "inference.json", file_format="nc", prior_steps=2)
    out = xr.open_dataset(bundle / "eval" / "forecast_00000.nc", engine="h5netcdf")
    expected = optical_flow_forecast(test.values[:2], 2)  # the first window: frames 0-1, leads 2-3
    np.testing.assert_allclose(out["forecast"].values, expected, rtol=0, atol=1e-6)
    out.close()

    # weights that correct the optical flow refuse a bundle asked to make another nowcast (--prior_method)
    from monai_glue import CheckpointError

    shutil.rmtree(bundle / "eval")  # the first run's outputs (this test's own temporary folder)
    with pytest.raises(RuntimeError) as info:
        run_config(bundle, "inference.json", file_format="nc", prior_steps=2, prior_method="sprog")
    chain = exception_chain(info.value)
    assert any(isinstance(e, CheckpointError) and "prior_method" in str(e) for e in chain)
    assert not (bundle / "eval").exists() or not list((bundle / "eval").iterdir())  # nothing written
