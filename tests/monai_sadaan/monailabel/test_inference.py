"""In-process bundle inference for MONAI Label (:mod:`monai_sadaan.monailabel.inference`), in the project's own
environment: an image that is not CT gets no presence call and no painted voxel."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from monai_sadaan.io.presence import StructurePresence
from monai_sadaan.monailabel.inference import BundleCaseInference, CaseResult


def test_an_8_bit_image_gets_no_call_and_no_voxel(tmp_path):
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (48, 48, 24)).astype(np.float32)  # values 0..255: a photo, not CT
    nib.save(nib.Nifti1Image(photo, np.diag([1.5, 1.5, 3.0, 1.0])), str(tmp_path / "photo.nii.gz"))
    result = BundleCaseInference(device="cpu")(tmp_path / "photo.nii.gz")
    assert {f["code"] for f in result.input_flags} == {"no_air", "byte_range"}
    assert [r.present for r in result.rows] == [None] * 5
    assert [r.volume_ml for r in result.rows] == [0.0] * 5
    assert result.label_map.shape == photo.shape and not result.label_map.any()
    params = result.params()
    assert params["calls_withheld"] == ["no_air", "byte_range"] and params["present_without_voxels"] == []
    assert params["absent"] == [] and all(r["present"] is None for r in params["structures"])
    assert "no presence calls, the input is not CT" in params["summary"]


def test_the_summary_names_a_present_call_without_a_voxel():
    rows = [
        StructurePresence("left_kidney", 1, False, 0.1234, 0.9, 0.0),
        StructurePresence("liver", 3, True, 0.99, 0.95, 1520.04),
        StructurePresence("pancreas", 5, True, 0.511, 0.2, 0.0),
    ]
    result = CaseResult("c1", "c1.nii.gz", np.zeros((2, 2, 2), np.uint8), np.eye(4), rows,
                        {"left_kidney": 1, "liver": 3, "pancreas": 5}, [], {})  # fmt: skip
    assert result.summary() == (
        "SADAAn c1: absent: left_kidney (P(present) 0.1234, confidence 0.90); present: liver 1520.0 mL, "
        "pancreas (P(present) 0.5110, no voxel painted: where it lies is not known)"
    )
    assert result.params()["present_without_voxels"] == ["pancreas"]
