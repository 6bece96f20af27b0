"""The 3D Slicer segmentation (.seg.nrrd) of :mod:`monai_sadaan.io.slicer_segmentation` read back with slicerio and
nibabel: geometry, segments, presence tags, absent structures; written from the label map's own buffer."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import torch
from monai.data import MetaTensor

from monai_sadaan.io import (
    DEFAULT_STRUCTURE_NAMES,
    StructurePresence,
    build_slicer_segmentation,
    presence_rows,
    structure_table,
    terminology_dict,
    write_label_map_nifti,
    write_slicer_segmentation,
)
from tests.monai_sadaan.io.small_case import AFFINE, PRESENCE, VOXEL_ML, small_labelmap


# ---------------------------------------------------------------- Slicer .seg.nrrd


def test_slicer_segmentation_round_trip_with_slicerio(tmp_path):
    lm = small_labelmap()
    path = write_slicer_segmentation(lm, AFFINE, PRESENCE, tmp_path / "case.seg.nrrd")
    seg = slicerio.read_segmentation(path)
    assert slicerio.segment_names(seg) == list(DEFAULT_STRUCTURE_NAMES)
    np.testing.assert_array_equal(seg["voxels"], lm)
    for info, row in zip(structure_table(), PRESENCE):
        s = slicerio.segment_from_name(seg, info.name)
        assert s["id"] == info.name and s["labelValue"] == info.label and s["layer"] == 0
        assert s["terminology"] == terminology_dict(info)
        assert s["color"] == pytest.approx([c / 255 for c in info.colour], abs=1e-6)
        assert s["status"] == ("inprogress" if row["present"] else "flagged")
        assert s["tags"]["SADAAn.Present"] == ("true" if row["present"] else "false")
        assert float(s["tags"]["SADAAn.PresenceProbability"]) == pytest.approx(row["presence_probability"])
        assert float(s["tags"]["SADAAn.Confidence"]) == pytest.approx(row["confidence"])
        expected_volume = float((lm == info.label).sum()) * VOXEL_ML
        assert float(s["tags"]["SADAAn.VolumeMl"]) == pytest.approx(expected_volume, rel=1e-5)
        assert slicerio.segment_mask(seg, info.name).sum() == (lm == info.label).sum()
    assert seg["SADAAn_AbsentStructures"] == "right_kidney,spleen"


def test_slicer_segmentation_geometry_matches_the_nifti(tmp_path):
    """Three readers agree: slicerio on the .seg.nrrd, slicerio on the NIfTI (its own RAS->LPS), SimpleITK."""
    lm = small_labelmap()
    seg_path = write_slicer_segmentation(lm, AFFINE, PRESENCE, tmp_path / "case.seg.nrrd")
    nii_path = write_label_map_nifti(lm, AFFINE, tmp_path / "case.nii.gz")
    seg = slicerio.read_segmentation(seg_path)
    from_nifti = slicerio.read_segmentation(nii_path)
    np.testing.assert_allclose(seg["ijkToLPS"], from_nifti["ijkToLPS"], atol=1e-6)
    np.testing.assert_allclose(seg["ijkToLPS"], np.diag([-1, -1, 1, 1]) @ AFFINE, atol=1e-9)

    img = sitk.ReadImage(seg_path)  # ITK works in LPS
    arr = sitk.GetArrayFromImage(img)  # [k, j, i]
    for ijk in [(0, 0, 0), (5, 6, 7), (1, 2, 1)]:
        ras = AFFINE @ np.array([*ijk, 1.0])
        lps = np.array([-ras[0], -ras[1], ras[2]])
        np.testing.assert_allclose(img.TransformIndexToPhysicalPoint(ijk), lps, atol=1e-6)
        assert arr[ijk[2], ijk[1], ijk[0]] == lm[ijk]
    nii = sitk.ReadImage(nii_path)
    np.testing.assert_allclose(nii.GetOrigin(), img.GetOrigin(), atol=1e-5)
    np.testing.assert_allclose(nii.GetDirection(), img.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(nii.GetSpacing(), img.GetSpacing(), atol=1e-6)


def test_slicer_segmentation_omit_absent(tmp_path):
    seg = slicerio.read_segmentation(
        write_slicer_segmentation(small_labelmap(), AFFINE, PRESENCE, tmp_path / "o.seg.nrrd", absent="omit")
    )
    assert slicerio.segment_names(seg) == ["left_kidney", "liver", "pancreas"]
    assert seg["SADAAn_AbsentStructures"] == "right_kidney,spleen"


def test_slicer_segmentation_from_metatensor_and_rows(tmp_path):
    lm = small_labelmap()
    mt = MetaTensor(torch.from_numpy(lm[None].astype(np.float32)), affine=torch.from_numpy(AFFINE))
    rows = presence_rows(lm, AFFINE, PRESENCE)
    assert isinstance(rows[0], StructurePresence)
    a = build_slicer_segmentation(mt, None, rows)
    b = build_slicer_segmentation(lm, AFFINE, PRESENCE)
    np.testing.assert_array_equal(a["voxels"], b["voxels"])
    np.testing.assert_allclose(a["ijkToLPS"], b["ijkToLPS"])
    assert a["segments"] == b["segments"]


def test_slicer_segmentation_rejects_bad_input(tmp_path):
    lm = small_labelmap()
    lm[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r"label values \[9\] that name no structure"):
        write_slicer_segmentation(lm, AFFINE, PRESENCE, tmp_path / "x.seg.nrrd")
    with pytest.raises(ValueError, match="'.seg.nrrd'"):
        write_slicer_segmentation(small_labelmap(), AFFINE, PRESENCE, tmp_path / "x.nrrd")
    with pytest.raises(ValueError, match="absent to be one of"):
        write_slicer_segmentation(small_labelmap(), AFFINE, PRESENCE, tmp_path / "x.seg.nrrd", absent="hide")
    assert list(tmp_path.iterdir()) == []


def test_slicer_segmentation_all_present_and_custom_structures(tmp_path):
    lm = np.zeros((4, 5, 6), np.uint8)
    lm[0, 0, 0], lm[1, 1, 1] = 7, 9
    structures = {"gallbladder": 7, "liver": 9}
    presence = {"presence_probability": [0.8, 0.9], "confidence": [0.5, 0.6]}
    seg = slicerio.read_segmentation(
        write_slicer_segmentation(lm, AFFINE, presence, tmp_path / "c.seg.nrrd", structures=structures)
    )
    assert seg["SADAAn_AbsentStructures"] == ""
    assert [(s["name"], s["labelValue"], s["status"]) for s in seg["segments"]] == [
        ("gallbladder", 7, "inprogress"), ("liver", 9, "inprogress"),
    ]  # fmt: skip
    assert seg["segments"][0]["terminology"]["type"] == ["SCT", "85756007", "Tissue"]  # unknown name: generic
    assert seg["segments"][1]["terminology"]["type"] == ["SCT", "10200004", "Liver"]


def test_slicer_segmentation_warns_about_voxels_of_an_absent_structure(caplog):
    presence = [dict(r) for r in PRESENCE]
    presence[0]["present"] = False  # left kidney has 8 voxels in the label map
    with caplog.at_level("WARNING"):
        seg = build_slicer_segmentation(small_labelmap(), AFFINE, presence)
    assert "left_kidney is called absent but has" in caplog.text
    first = seg["segments"][0]
    assert first["status"] == "flagged" and first["tags"]["SADAAn.Present"] == "false"
    assert float(first["tags"]["SADAAn.VolumeMl"]) == pytest.approx(8 * VOXEL_ML, rel=1e-5)


VECTORS = {"presence_probability": [0.9] * 5, "confidence": [0.8] * 5, "present": [1, 1, 1, 1, 1]}


def test_seg_nrrd_is_written_from_the_label_maps_own_buffer(tmp_path):
    """A Fortran-ordered label map (the pipeline's) goes to the .seg.nrrd without a copy of its size; the file is
    byte for byte the one a C-ordered (copied) map gives."""
    import tracemalloc

    import slicerio

    from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation

    lm = np.zeros((400, 300, 100), np.uint8, order="F")  # 12 MB; counting works in 4 M-voxel chunks
    lm[50:150, 20:120, 10:60] = 3
    lm[200:250, :, 70:] = 1
    tracemalloc.start()
    try:
        write_slicer_segmentation(lm, np.eye(4), VECTORS, tmp_path / "f.seg.nrrd")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < lm.nbytes / 2
    write_slicer_segmentation(np.ascontiguousarray(lm), np.eye(4), VECTORS, tmp_path / "c.seg.nrrd")
    f_bytes, c_bytes = (tmp_path / "f.seg.nrrd").read_bytes(), (tmp_path / "c.seg.nrrd").read_bytes()
    # the header may carry the time of writing (to the second); everything else, voxels included, is identical
    f_lines, c_lines = f_bytes.split(b"\n\n", 1), c_bytes.split(b"\n\n", 1)
    assert f_lines[1] == c_lines[1]
    keep = [line for line in f_lines[0].split(b"\n") if not line.startswith(b"#")]
    assert keep == [line for line in c_lines[0].split(b"\n") if not line.startswith(b"#")]
    np.testing.assert_array_equal(slicerio.read_segmentation(str(tmp_path / "f.seg.nrrd"))["voxels"], lm)
