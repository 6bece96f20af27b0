"""monai_glue.bundles: finding the bundles (checkout here; the wheel's copy in test_installed_bundles.py) and the
sadaan-bundle command's pieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from monai_glue import bundles

REPO = Path(__file__).resolve().parents[2]


def test_checkout_bundles_are_found():
    assert bundles.bundles_dir() == REPO / "bundles"
    assert bundles.list_bundles() == sorted(bundles.BUNDLE_NAMES)
    assert bundles.bundle_root("gru_timeseries_regression") == REPO / "bundles" / "gru_timeseries_regression"
    with pytest.raises(FileNotFoundError, match="sadaan_abdominal_ct_segmentation"):
        bundles.bundle_root("no_such_bundle")


def test_bundle_command_fills_in_the_bundle_and_keeps_outputs_out_of_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = REPO / "bundles" / "gru_timeseries_regression"
    cmd = bundles.bundle_command("gru_timeseries_regression", ["--mode", "streaming"])
    args = dict(zip(cmd[::2], cmd[1::2]))
    assert args["--config_file"] == str(root / "configs" / "inference.json")
    assert args["--bundle_root"] == str(root) and args["--meta_file"] == str(root / "configs" / "metadata.json")
    assert args["--output_dir"] == str(tmp_path / "eval") and args["--mode"] == "streaming"
    cmd = bundles.bundle_command("gru_timeseries_regression", ["--output_dir", "x"], configs="inference,evaluate")
    assert cmd.count("--output_dir") == 1 and "evaluate.json" in cmd[1] and "inference.json" in cmd[1]
    with pytest.raises(FileNotFoundError, match="among"):
        bundles.bundle_command("gru_timeseries_regression", configs="nope")


def test_require_weights_is_one_line(tmp_path):
    ckpt = tmp_path / "model.pt"
    with pytest.raises(bundles.MissingWeights) as info:
        bundles.require_weights(ckpt, "train them with configs/train.json")
    assert isinstance(info.value, SystemExit)
    assert str(info.value.code) == f"error: no trained weights at {ckpt}; train them with configs/train.json"
    ckpt.write_bytes(b"x")
    assert bundles.require_weights(ckpt) == str(ckpt)


def test_cli_list_path_and_refusals(capsys, tmp_path):
    assert bundles.main(["list"]) == 0
    assert capsys.readouterr().out.split() == sorted(bundles.BUNDLE_NAMES)
    assert bundles.main(["path", "iam4vp_cloudcasting"]) == 0
    assert capsys.readouterr().out.strip() == str(REPO / "bundles" / "iam4vp_cloudcasting")
    assert bundles.main(["path", "nope"]) == 2
    assert capsys.readouterr().err.startswith("error: expected one of the bundles")
    assert bundles.main(["frobnicate"]) == 2
    assert bundles.main(["copy", "gru_timeseries_regression", str(tmp_path / "gru")]) == 0
    assert (tmp_path / "gru" / "models" / "model.pt").is_file()
    assert bundles.main(["copy", "gru_timeseries_regression", str(tmp_path / "gru")]) == 2
