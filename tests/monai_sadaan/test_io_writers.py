"""Writers of monai_sadaan.io read back with independent readers: slicerio, nibabel, SimpleITK, csv, json."""

from __future__ import annotations

import csv
import json

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
import torch
from monai.data import MetaTensor
from slicerio.segmentation import terminology_entry_from_string

from monai_sadaan.io import (
    COLOUR_TABLE_COLUMNS,
    DEFAULT_STRUCTURE_NAMES,
    StructurePresence,
    build_slicer_segmentation,
    labelmap_and_affine,
    presence_rows,
    read_colour_table,
    read_presence_report,
    structure_colours,
    structure_info,
    structure_table,
    terminology_dict,
    terminology_string,
    write_colour_table,
    write_label_map_nifti,
    write_presence_report,
    write_probability_maps,
    write_slicer_segmentation,
)

# an oblique-free but flipped, anisotropic geometry: i runs towards -R (i.e. L), j towards A, k towards S
AFFINE = np.array(
    [[-0.8, 0.0, 0.0, 10.0], [0.0, 0.9, 0.0, -20.0], [0.0, 0.0, 2.5, 30.0], [0.0, 0.0, 0.0, 1.0]], dtype=np.float64
)
VOXEL_ML = 0.8 * 0.9 * 2.5 / 1000.0


def _labelmap() -> np.ndarray:
    lm = np.zeros((6, 7, 8), dtype=np.uint8)
    lm[1:3, 1:3, 1:3] = 1  # left kidney, 8 voxels
    lm[3:6, 0:2, 0:1] = 3  # liver, 6 voxels
    lm[5, 6, 7] = 5  # pancreas, 1 voxel in the far corner
    return lm


PRESENCE = [
    {"structure": "left_kidney", "present": True, "presence_probability": 0.97, "confidence": 0.9},
    {"structure": "right_kidney", "present": False, "presence_probability": 0.04, "confidence": 0.8},
    {"structure": "liver", "present": True, "presence_probability": 0.99, "confidence": 0.95},
    {"structure": "spleen", "present": False, "presence_probability": 0.12, "confidence": 0.7},
    {"structure": "pancreas", "present": True, "presence_probability": 0.61, "confidence": 0.4},
]


# ---------------------------------------------------------------- structure table / terminology


def test_default_structure_table_codes_and_labels():
    table = structure_table()
    assert [s.name for s in table] == list(DEFAULT_STRUCTURE_NAMES)
    assert [s.label for s in table] == [1, 2, 3, 4, 5]
    by_name = {s.name: s for s in table}
    assert by_name["left_kidney"].type == ("SCT", "64033007", "Kidney")
    assert by_name["left_kidney"].type_modifier == ("SCT", "7771000", "Left")
    assert by_name["right_kidney"].type_modifier == ("SCT", "24028007", "Right")
    assert by_name["liver"].type[1] == "10200004"
    assert by_name["spleen"].type[1] == "78961009"
    assert by_name["pancreas"].type[1] == "15776009"
    assert all(s.category == ("SCT", "123037004", "Anatomical Structure") for s in table)
    colours = structure_colours()
    assert len(set(colours.values())) == 5  # both kidneys are told apart


def test_terminology_string_parses_back_with_slicerio():
    for info in structure_table():
        parsed = terminology_entry_from_string(terminology_string(info))
        assert parsed == terminology_dict(info)
    s = terminology_string(structure_info("left_kidney", 1))
    assert s.split("~")[1:4] == ["SCT^123037004^Anatomical Structure", "SCT^64033007^Kidney", "SCT^7771000^Left"]


def test_unknown_structure_falls_back_to_tissue_and_palette():
    table = structure_table({"liver": 1, "gallbladder": 7})
    assert table[1].label == 7 and table[1].type == ("SCT", "85756007", "Tissue")
    assert table[1].type_modifier is None
    assert table[1].colour != table[0].colour


@pytest.mark.parametrize(
    "structures, message",
    [
        (["liver", "liver"], "unique structure names"),
        ({"liver": 1, "spleen": 1}, "unique label values"),
        (["liver|x"], "reserved"),
        ({"liver": 0}, "positive integer"),
        ([], "at least one"),
        ("liver", "single string"),
    ],
)
def test_structure_table_rejects_bad_input(structures, message):
    with pytest.raises(ValueError, match=message):
        structure_table(structures)


# ---------------------------------------------------------------- geometry / label map input forms


def test_labelmap_and_affine_accepts_metatensor_channel_first_float():
    lm = _labelmap()
    mt = MetaTensor(torch.from_numpy(lm[None].astype(np.float32)), affine=torch.from_numpy(AFFINE))
    out, aff = labelmap_and_affine(mt)
    assert out.dtype == np.uint8 and out.shape == lm.shape
    np.testing.assert_array_equal(out, lm)
    np.testing.assert_allclose(aff, AFFINE)


@pytest.mark.parametrize(
    "labelmap, affine, message",
    [
        (np.zeros((5, 5)), AFFINE, r"got shape \(5, 5\)"),
        (np.zeros((2, 4, 4, 4)), AFFINE, r"got shape \(2, 4, 4, 4\)"),
        (np.full((3, 3, 3), 1.5), AFFINE, "whole-number"),
        (np.full((3, 3, 3), -1), AFFINE, "non-negative"),
        (np.zeros((3, 3, 3)), None, "expected an affine"),
        (np.zeros((3, 3, 3)), np.eye(3), r"4x4 .* got shape \(3, 3\)"),
        (np.zeros((3, 3, 3)), np.diag([1.0, 0.0, 1.0, 1.0]), "invertible"),
    ],
)
def test_labelmap_and_affine_rejects_bad_input(labelmap, affine, message):
    with pytest.raises(ValueError, match=message):
        labelmap_and_affine(labelmap, affine)


# ---------------------------------------------------------------- NIfTI


def test_label_map_nifti_round_trip(tmp_path):
    lm = _labelmap()
    path = write_label_map_nifti(torch.from_numpy(lm.astype(np.int64)), AFFINE, tmp_path / "case_labels.nii.gz")
    img = nib.load(path)
    assert img.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(img.dataobj), lm)
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)
    assert int(img.header["sform_code"]) == 1 and int(img.header["qform_code"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["case_labels.nii.gz"]  # no temporary left


def test_label_map_nifti_uses_uint16_above_255(tmp_path):
    lm = np.zeros((3, 3, 3), dtype=np.int32)
    lm[0, 0, 0] = 300
    img = nib.load(write_label_map_nifti(lm, AFFINE, tmp_path / "big.nii.gz"))
    assert img.get_data_dtype() == np.uint16 and int(np.asarray(img.dataobj)[0, 0, 0]) == 300


def test_label_map_nifti_failure_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(img, filename):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(nib, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        write_label_map_nifti(_labelmap(), AFFINE, tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_probability_maps_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    probs = rng.random((5, 6, 7, 8)).astype(np.float32)
    img = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "p.nii.gz"))
    assert img.shape == (6, 7, 8, 5)
    data = img.get_fdata()
    np.testing.assert_allclose(data[..., 2], probs[2], atol=1e-7)
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)
    img8 = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "p8.nii.gz", dtype=np.uint8))
    assert img8.get_data_dtype() == np.uint8
    np.testing.assert_allclose(img8.get_fdata()[..., 4], probs[4], atol=1.0 / 510 + 1e-6)
    # a resampling overshoot within 1e-3 is clipped to [0, 1]
    probs[0, 0, 0, 0], probs[1, 0, 0, 0] = 1.0004, -0.0004
    clipped = nib.load(write_probability_maps(probs, AFFINE, tmp_path / "pc.nii.gz")).get_fdata()
    assert clipped[0, 0, 0, 0] == 1.0 and clipped[0, 0, 0, 1] == 0.0


@pytest.mark.parametrize(
    "probs, message",
    [
        (np.zeros((6, 7, 8)), r"\[S, X, Y, Z\]"),
        (np.full((2, 3, 3, 3), 1.5), r"in \[0, 1\]"),
        (np.full((2, 3, 3, 3), -0.01), r"in \[0, 1\]"),
        (np.full((2, 3, 3, 3), np.nan), r"in \[0, 1\]"),
    ],
)
def test_probability_maps_reject_bad_input(tmp_path, probs, message):
    with pytest.raises(ValueError, match=message):
        write_probability_maps(probs, AFFINE, tmp_path / "p.nii.gz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- presence rows / report


def test_presence_rows_volumes_are_computed_from_the_mask():
    rows = presence_rows(_labelmap(), AFFINE, PRESENCE)
    vols = {r.structure: r.volume_ml for r in rows}
    assert vols["left_kidney"] == pytest.approx(8 * VOXEL_ML)
    assert vols["liver"] == pytest.approx(6 * VOXEL_ML)
    assert vols["pancreas"] == pytest.approx(1 * VOXEL_ML)
    assert vols["right_kidney"] == 0.0 and vols["spleen"] == 0.0
    assert [r.present for r in rows] == [True, False, True, False, True]


def test_presence_rows_from_vectors_match_rows_by_name():
    by_name = presence_rows(_labelmap(), AFFINE, list(reversed(PRESENCE)))  # order does not matter with names
    vectors = {
        "presence_probability": torch.tensor([[0.97, 0.04, 0.99, 0.12, 0.61]]),  # [1, S] batch of one
        "confidence": np.array([0.9, 0.8, 0.95, 0.7, 0.4]),
    }
    from_vectors = presence_rows(_labelmap(), AFFINE, vectors, threshold=0.5)
    assert [r.structure for r in by_name] == list(DEFAULT_STRUCTURE_NAMES)
    for a, b in zip(by_name, from_vectors):
        assert a.structure == b.structure and a.present == b.present and a.volume_ml == b.volume_ml
        assert a.presence_probability == pytest.approx(b.presence_probability)
    # the threshold decides the call when no "present" is given
    high = presence_rows(_labelmap(), AFFINE, vectors, threshold=0.98)
    assert [r.present for r in high] == [False, False, True, False, False]


@pytest.mark.parametrize(
    "presence, message",
    [
        (PRESENCE[:4], r"missing \['pancreas'\]"),
        ([dict(PRESENCE[0], presence_probability=1.2)] + PRESENCE[1:], r"presence_probability of 'left_kidney' in \[0, 1\]"),
        ({"presence_probability": [0.5] * 4, "confidence": [0.5] * 5}, r"shape \[5\] .* got shape \(4,\)"),
        (PRESENCE + [dict(PRESENCE[0], structure="heart")], r"unknown \['heart'\]"),
    ],
)
def test_presence_rows_reject_bad_input(presence, message):
    with pytest.raises(ValueError, match=message):
        presence_rows(_labelmap(), AFFINE, presence)


def test_presence_report_json_and_csv_round_trip(tmp_path):
    rows = presence_rows(_labelmap(), AFFINE, PRESENCE)
    write_presence_report(rows, tmp_path / "c_presence.json", tmp_path / "c_presence.csv", "c", {"label_map": "x"})
    doc = read_presence_report(tmp_path / "c_presence.json")
    assert doc["case"] == "c" and doc["files"] == {"label_map": "x"}
    assert doc["structures"] == rows
    raw = json.loads((tmp_path / "c_presence.json").read_text())
    assert raw["structures"][1] == {
        "structure": "right_kidney", "label": 2, "present": False,
        "presence_probability": 0.04, "confidence": 0.8, "volume_ml": 0.0,
    }  # fmt: skip
    with open(tmp_path / "c_presence.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["structure", "label", "present", "presence_probability", "confidence", "volume_ml"]
    assert [r["present"] for r in table] == ["true", "false", "true", "false", "true"]
    assert float(table[0]["volume_ml"]) == pytest.approx(8 * VOXEL_ML, abs=1e-4)
    assert float(table[4]["presence_probability"]) == pytest.approx(0.61)


def test_presence_report_rejects_incomplete_rows(tmp_path):
    with pytest.raises(ValueError, match="volume_ml"):
        write_presence_report([{"structure": "liver", "label": 3, "present": True}], tmp_path / "p.json")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- colour table


def test_colour_table_round_trip(tmp_path):
    path = write_colour_table(None, tmp_path / "colours.csv")
    rows = read_colour_table(path)
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header) == COLOUR_TABLE_COLUMNS
    assert [r["LabelValue"] for r in rows] == [1, 2, 3, 4, 5]  # background left out
    assert rows[0]["Name"] == "left_kidney"
    assert (rows[0]["Color_R"], rows[0]["Color_G"], rows[0]["Color_B"], rows[0]["Color_A"]) == (212, 126, 151, 255)
    assert (rows[0]["Type_CodeValue"], rows[0]["TypeModifier_CodeValue"]) == ("64033007", "7771000")
    assert (rows[2]["Type_CodingScheme"], rows[2]["Type_CodeValue"], rows[2]["Type_CodeMeaning"]) == (
        "SCT", "10200004", "Liver",
    )  # fmt: skip
    assert rows[2]["TypeModifier_CodeValue"] == "" and rows[2]["Category_CodeValue"] == "123037004"


# ---------------------------------------------------------------- Slicer .seg.nrrd


def test_slicer_segmentation_round_trip_with_slicerio(tmp_path):
    lm = _labelmap()
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
    lm = _labelmap()
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
        write_slicer_segmentation(_labelmap(), AFFINE, PRESENCE, tmp_path / "o.seg.nrrd", absent="omit")
    )
    assert slicerio.segment_names(seg) == ["left_kidney", "liver", "pancreas"]
    assert seg["SADAAn_AbsentStructures"] == "right_kidney,spleen"


def test_slicer_segmentation_from_metatensor_and_rows(tmp_path):
    lm = _labelmap()
    mt = MetaTensor(torch.from_numpy(lm[None].astype(np.float32)), affine=torch.from_numpy(AFFINE))
    rows = presence_rows(lm, AFFINE, PRESENCE)
    assert isinstance(rows[0], StructurePresence)
    a = build_slicer_segmentation(mt, None, rows)
    b = build_slicer_segmentation(lm, AFFINE, PRESENCE)
    np.testing.assert_array_equal(a["voxels"], b["voxels"])
    np.testing.assert_allclose(a["ijkToLPS"], b["ijkToLPS"])
    assert a["segments"] == b["segments"]


def test_slicer_segmentation_rejects_bad_input(tmp_path):
    lm = _labelmap()
    lm[0, 0, 0] = 9
    with pytest.raises(ValueError, match=r"label values \[9\] that name no structure"):
        write_slicer_segmentation(lm, AFFINE, PRESENCE, tmp_path / "x.seg.nrrd")
    with pytest.raises(ValueError, match="'.seg.nrrd'"):
        write_slicer_segmentation(_labelmap(), AFFINE, PRESENCE, tmp_path / "x.nrrd")
    with pytest.raises(ValueError, match="absent to be one of"):
        write_slicer_segmentation(_labelmap(), AFFINE, PRESENCE, tmp_path / "x.seg.nrrd", absent="hide")
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
        seg = build_slicer_segmentation(_labelmap(), AFFINE, presence)
    assert "left_kidney is called absent but has" in caplog.text
    first = seg["segments"][0]
    assert first["status"] == "flagged" and first["tags"]["SADAAn.Present"] == "false"
    assert float(first["tags"]["SADAAn.VolumeMl"]) == pytest.approx(8 * VOXEL_ML, rel=1e-5)
