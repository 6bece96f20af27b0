"""The cascade through MONAI's own command line: one training iteration of ``configs/train_refine.json`` on a tiny
generated crop set, ``configs/inference.json --cascade true`` with the weights it wrote, and the clear refusal when
the stage-2 weights are missing. Tiny networks, coarse crops."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from tests.bundles.sadaan_abdominal_ct_segmentation.test_bundle import TINY, _run, _write_inputs

REFINE_TINY = ["--refine_features", "[2,2,2,2,2,2]"]


def _train_refine(root: Path) -> object:
    return _run(
        ["run", "--config_file", "configs/train_refine.json", "--bundle_root", str(root), "--num_cases", "3",
         "--data_splits", "[0.67,0.33,0.0]", "--data_scenarios", "['normal']", "--fine_spacing", "4.0", "--patch_size", "[32,32,32]", "--epochs", "1",
         "--epoch_length", "1", "--val_interval", "1", "--batch_size", "1", "--num_samples", "1", "--data_workers",
         "0", *REFINE_TINY]
    )  # fmt: skip


def _tiny_stage1(path: Path) -> None:
    from monai_sadaan import SpatialAttentionMedicalSegmenter

    torch.manual_seed(0)
    net = SpatialAttentionMedicalSegmenter(num_structures=5, spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4),
                                           feature_channels=4, presence_fusion=True)  # fmt: skip
    torch.save(net.state_dict(), path)


@pytest.mark.slow
def test_one_training_iteration_then_cascade_inference_with_its_weights(tmp_path):
    root = tmp_path / "bundle"
    r = _train_refine(root)
    assert r.returncode == 0, r.stderr[-3000:]
    datalist = json.loads((root / "data" / "refine_crops" / "dataset.json").read_text())
    assert datalist["training"] and datalist["validation"]
    ckpt = root / "models" / "refine.pt"
    assert ckpt.is_file()
    from monai.networks.nets import BasicUNet

    from monai_sadaan.inferers.cascade import load_refine_network

    net = load_refine_network(BasicUNet(3, 7, 1, features=(2, 2, 2, 2, 2, 2)), ckpt)  # strict: the recipe's network
    assert sum(p.numel() for p in net.parameters()) > 0

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    _write_inputs(inputs)
    _tiny_stage1(tmp_path / "stage1.pt")
    r = _run(
        ["run", "--config_file", "configs/inference.json", "--dataset_dir", str(inputs), "--output_dir", str(outputs),
         "--ckpt_path", str(tmp_path / "stage1.pt"), "--cascade", "true", "--refine_ckpt_path", str(ckpt),
         "--cascade_roi_size", "[32,32,32]", *TINY, *REFINE_TINY]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    labels = np.asarray(nib.load(str(outputs / "good" / "good_labels.nii.gz")).dataobj)
    source = nib.load(str(inputs / "good.nii.gz"))
    assert labels.shape == source.shape
    report = json.loads((outputs / "good" / "good_presence.json").read_text())
    for row in report["structures"]:
        count = int((labels == row["label"]).sum())
        assert row["volume_ml"] == pytest.approx(count * abs(np.linalg.det(source.affine[:3, :3])) / 1000, rel=1e-4)
        if not row["present"]:
            assert count == 0, row["structure"]


@pytest.mark.slow
def test_cascade_without_stage_2_weights_fails_naming_the_file(tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    _write_inputs(inputs)
    _tiny_stage1(tmp_path / "stage1.pt")
    missing = tmp_path / "models" / "refine.pt"
    r = _run(
        ["run", "--config_file", "configs/inference.json", "--dataset_dir", str(inputs), "--output_dir", str(outputs),
         "--ckpt_path", str(tmp_path / "stage1.pt"), "--cascade", "true", "--refine_ckpt_path", str(missing), *TINY]
    )  # fmt: skip
    assert r.returncode != 0
    assert f"expected the cascade's stage-2 weights at {missing}" in r.stderr and "train_refine.json" in r.stderr
    assert not outputs.exists() or not any(outputs.iterdir())
