"""SADAAnCaseWriter / SaveSADAAnOutputsd: every output of a case, all or nothing."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import slicerio
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

import monai_sadaan.io.case_writer as case_writer_module
from monai_sadaan.io import SADAAnCaseWriter, SaveSADAAnOutputsd, case_name_from_path, read_presence_report, safe_case_name

AFFINE = np.diag([0.7, 0.7, 3.0, 1.0])
AFFINE[:3, 3] = [-100.0, -120.0, 50.0]
VOXEL_ML = 0.7 * 0.7 * 3.0 / 1000.0
VECTORS = {
    "presence_probability": [0.9, 0.2, 0.95, 0.8, 0.7],
    "confidence": [0.8, 0.6, 0.9, 0.7, 0.5],
    "present": [True, False, True, True, True],
}


def _labelmap() -> np.ndarray:
    lm = np.zeros((10, 9, 8), dtype=np.uint8)
    lm[1:4, 1:4, 1:3] = 1
    lm[5:9, 2:8, 2:7] = 3
    lm[0:2, 6:9, 5:8] = 4
    lm[8, 0, 0] = 5
    return lm


def test_case_writer_writes_every_output(tmp_path):
    lm = _labelmap()
    probs = np.stack([(lm == v).astype(np.float32) for v in range(1, 6)])
    files = SADAAnCaseWriter(tmp_path)("case_007", lm, AFFINE, VECTORS, probabilities=probs)
    case_dir = tmp_path / "case_007"
    assert sorted(p.name for p in case_dir.iterdir()) == sorted(
        [
            "case_007_labels.nii.gz", "case_007.seg.nrrd", "case_007_colour_table.csv",
            "case_007_presence.json", "case_007_presence.csv", "case_007_probabilities.nii.gz",
        ]
    )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["case_007"]  # no staging folder left
    assert files["segmentation"] == str(case_dir / "case_007.seg.nrrd")

    np.testing.assert_array_equal(np.asarray(nib.load(files["label_map"]).dataobj), lm)
    seg = slicerio.read_segmentation(files["segmentation"])
    np.testing.assert_array_equal(seg["voxels"], lm)
    assert slicerio.segment_from_name(seg, "right_kidney")["status"] == "flagged"
    assert nib.load(files["probabilities"]).shape == (10, 9, 8, 5)

    doc = read_presence_report(files["presence_json"])
    assert doc["files"]["segmentation"] == "case_007.seg.nrrd"
    assert set(doc["files"]) == {
        "label_map", "segmentation", "colour_table", "probabilities", "presence_csv", "presence_json",
    }  # fmt: skip
    volumes = {r.structure: r.volume_ml for r in doc["structures"]}
    assert volumes["liver"] == pytest.approx(4 * 6 * 5 * VOXEL_ML)
    assert volumes["spleen"] == pytest.approx(2 * 3 * 3 * VOXEL_ML)
    assert [r.present for r in doc["structures"]] == [True, False, True, True, True]


def test_case_outputs_get_default_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        SADAAnCaseWriter(tmp_path)("c", _labelmap(), AFFINE, VECTORS)
    finally:
        os.umask(umask)
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "c").iterdir()} == {0o644}


def test_case_writer_failure_leaves_no_partial_case(tmp_path, monkeypatch):
    writer = SADAAnCaseWriter(tmp_path)
    writer("c1", _labelmap(), AFFINE, VECTORS)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(case_writer_module, "write_colour_table", broken)
    changed = dict(VECTORS, present=[False] * 5)
    with pytest.raises(OSError, match="disk full"):
        writer("c1", _labelmap(), AFFINE, changed)  # a re-run that fails keeps the earlier result intact
    with pytest.raises(OSError, match="disk full"):
        writer("c2", _labelmap(), AFFINE, VECTORS)  # a new case that fails leaves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()} == before


def test_case_writer_rerun_replaces_the_case(tmp_path):
    writer = SADAAnCaseWriter(tmp_path, write_segmentation=False)
    writer("c1", _labelmap(), AFFINE, VECTORS)
    files = writer("c1", _labelmap(), AFFINE, dict(VECTORS, present=[False] * 5))
    assert "segmentation" not in files
    doc = json.loads(open(files["presence_json"]).read())
    assert [r["present"] for r in doc["structures"]] == [False] * 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "a b", "-x"])
def test_case_writer_rejects_unsafe_case_names(tmp_path, name):
    with pytest.raises(ValueError, match="case name"):
        SADAAnCaseWriter(tmp_path)(name, _labelmap(), AFFINE, VECTORS)


def test_case_writer_rejects_probabilities_on_another_grid(tmp_path):
    with pytest.raises(ValueError, match=r"\[S, X, Y, Z\] on the label map's grid"):
        SADAAnCaseWriter(tmp_path)("c", _labelmap(), AFFINE, VECTORS, probabilities=np.zeros((5, 4, 4, 4)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path, name",
    [
        ("/data/case_007.nii.gz", "case_007"),
        ("/data/ct.scan.nrrd", "ct.scan"),
        ("/data/CT_0001/", "CT_0001"),
        ("img.mha", "img"),
        ("/x/seg.seg.nrrd", "seg"),
    ],
)
def test_case_name_from_path(path, name):
    assert case_name_from_path(path) == name


def test_save_sadaan_outputsd_reads_the_case_name_from_metadata(tmp_path):
    lm = _labelmap()
    pred = MetaTensor(
        torch.from_numpy(lm[None].astype(np.float32)),
        affine=torch.from_numpy(AFFINE),
        meta={"filename_or_obj": "/data/in/patient_12.nii.gz"},
    )
    presence = {k: torch.tensor(v, dtype=torch.float32) for k, v in VECTORS.items()}
    out = Compose([SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path)])({"pred": pred, "presence": presence})
    assert out["pred"] is pred
    assert out["sadaan_files"]["label_map"] == str(tmp_path / "patient_12" / "patient_12_labels.nii.gz")
    img = nib.load(out["sadaan_files"]["label_map"])
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)


def test_save_sadaan_outputsd_without_a_case_name_raises(tmp_path):
    t = SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, affine_key="affine")
    with pytest.raises(KeyError, match="filename_or_obj"):
        t({"pred": _labelmap(), "affine": AFFINE, "presence": VECTORS})
    t = SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, affine_key="affine", case_name_key="name")
    out = t({"pred": _labelmap(), "affine": AFFINE, "presence": VECTORS, "name": ["CT 1 (arterial)"]})
    assert out["sadaan_files"]["presence_csv"] == str(tmp_path / "CT_1_arterial" / "CT_1_arterial_presence.csv")
    assert (tmp_path / "CT_1_arterial" / "CT_1_arterial_presence.csv").is_file()


def test_save_sadaan_outputsd_falls_back_to_metadata_without_the_case_key(tmp_path):
    """MONAI Label runs the postprocessing on dicts without the datalist's 'case' key."""
    pred = MetaTensor(
        torch.from_numpy(_labelmap()[None].astype(np.int16)),
        affine=torch.from_numpy(AFFINE),
        meta={"filename_or_obj": "/studies/abd ct.nrrd"},
    )
    out = SaveSADAAnOutputsd(keys="label_map", output_dir=tmp_path, case_name_key="case")(
        {"label_map": pred, "presence": VECTORS}
    )
    assert out["sadaan_files"]["label_map"] == str(tmp_path / "abd_ct" / "abd_ct_labels.nii.gz")


@pytest.mark.parametrize("name, safe", [("CT 1 (arterial)", "CT_1_arterial"), ("..", "case"), ("a/b", "a_b"), ("x+y.z", "x+y.z")])
def test_safe_case_name(name, safe):
    assert safe_case_name(name) == safe
