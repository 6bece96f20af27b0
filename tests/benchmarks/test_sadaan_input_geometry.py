"""The scoring of ``benchmarks/sadaan_input_geometry.py``: Dice and the signed centroid offset along R, A, S."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark


def _benchmark():
    return load_benchmark("sadaan_input_geometry")


def _write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(np.int16), affine), str(path))


def test_score_gives_dice_and_the_offset_in_patient_axes(tmp_path):
    bench = _benchmark()
    # LPS voxel axes: +i points left, +j posterior, +k superior
    affine = np.diag([-2.0, -2.0, 3.0, 1.0])
    truth = np.zeros((20, 20, 20), np.int16)
    truth[5:15, 5:15, 5:15] = 1  # 1000 voxels
    pred = np.zeros_like(truth)
    pred[6:16, 5:15, 5:15] = 1  # one voxel towards +i, i.e. towards the left: R offset -1
    _write(tmp_path / "labelsTr" / "case_0.nii.gz", truth, affine)
    _write(tmp_path / "out" / "case_0" / "case_0_labels.nii.gz", pred, affine)
    items = [{"image": "imagesTr/case_0.nii.gz", "label": "labelsTr/case_0.nii.gz", "scenario": "normal",
              "present": {"liver": True, "spleen": False}}]  # fmt: skip
    table = bench.score(tmp_path, items, tmp_path / "out", {"liver": 1, "spleen": 2})
    row = table["all"]
    assert row["structures"] == 1  # the absent spleen is not scored
    assert row["dice"] == pytest.approx(2 * 900 / 2000)
    assert (row["shift_r"], row["shift_a"], row["shift_s"]) == pytest.approx((-1.0, 0.0, 0.0))
    assert table["normal"]["dice"] == row["dice"]


def test_score_refuses_a_mask_on_another_grid(tmp_path):
    bench = _benchmark()
    affine = np.eye(4)
    _write(tmp_path / "labelsTr" / "c.nii.gz", np.ones((8, 8, 8)), affine)
    _write(tmp_path / "out" / "c" / "c_labels.nii.gz", np.ones((8, 8, 4)), affine)
    items = [{"image": "imagesTr/c.nii.gz", "label": "labelsTr/c.nii.gz", "scenario": "normal", "present": {"liver": True}}]
    with pytest.raises(SystemExit, match=r"mask shape \(8, 8, 4\) is not the input's \(8, 8, 8\)"):
        bench.score(tmp_path, items, tmp_path / "out", {"liver": 1})


def test_baseline_bundle_args_reach_the_inference_command(tmp_path, monkeypatch):
    bench = _benchmark()
    seen = []

    class Done:
        returncode = 0
        stderr = ""

    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, **kw: seen.append(cmd) or Done())
    bench._run_inference(tmp_path / "a.pt", tmp_path / "img", tmp_path / "out", ["--features", "[8,16,32,64,128]"])
    bench._run_inference(tmp_path / "b.pt", tmp_path / "img", tmp_path / "out")
    assert seen[0][-4:] == ["--ckpt_path", str(tmp_path / "a.pt"), "--features", "[8,16,32,64,128]"]
    assert seen[1][-2:] == ["--ckpt_path", str(tmp_path / "b.pt")]
    assert seen[0][seen[0].index("--config_file") + 1] == "configs/inference.json"
