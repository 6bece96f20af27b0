"""Input pre-flight of issue 22: unique case names, DICOM slice geometry, NIfTI orientation (one rule, nibabel's),
input checks (scaling overflow, MetaImage data files, huge headers, layouts, messages), geometry limits and the
plausibility flags. Tiny volumes, no model run (the bundle runs are in ``tests/test_bad_input_matrix.py``)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data.image_folder import (
    INPUT_FLAG_CODES,
    NOT_CT_FLAG_CODES,
    InputImageError,
    check_volume_content,
    check_volume_header,
    list_image_inputs,
    read_volume_header,
    safe_case_name,
    unique_case_names,
)

REPO = Path(__file__).resolve().parents[3]
BUNDLE = REPO / "bundles" / "sadaan_abdominal_ct_segmentation"
LOGGER = "monai_sadaan.data.image_folder"


def _ct(shape=(8, 8, 8), seed=0) -> np.ndarray:
    """CT-like values: air, soft tissue and some bone."""
    return np.random.default_rng(seed).integers(-1000, 1200, shape).astype(np.int16)


def _nifti(path: Path, data=None, affine=None, qform=None, sform=None, qcode=1, scode=1) -> Path:
    """A NIfTI with the given qform / sform and codes (default: both the same affine, 1.5 mm voxels)."""
    data = _ct() if data is None else data
    affine = np.diag([1.5, 1.5, 1.5, 1.0]) if affine is None else affine
    img = nib.Nifti1Image(data, None)
    img.set_qform(affine if qform is None else qform, code=qcode)
    img.set_sform(affine if sform is None else sform, code=scode)
    img.header["qform_code"], img.header["sform_code"] = qcode, scode
    nib.save(img, str(path))
    return path


def _dicom(folder: Path, shape: int = 8) -> list[Path]:
    from monai_sadaan.data import generate_phantom
    from monai_sadaan.data.writers import save_phantom_dicom_series

    return save_phantom_dicom_series(generate_phantom("normal", seed=1, shape=shape), folder)


def _edit_dicom_tag(path: Path, group: int, element: int, value: str | None) -> None:
    """Set (or with ``None`` remove) one element of a slice written by the phantom writer (implicit VR little
    endian: tag, 4-byte length, value)."""
    data = path.read_bytes()
    tag = struct.pack("<HH", group, element)
    i = data.index(tag, 132)
    n = struct.unpack("<I", data[i + 4 : i + 8])[0]
    new = b""
    if value is not None:
        v = value.encode() + (b" " if len(value) % 2 else b"")
        new = tag + struct.pack("<I", len(v)) + v
    path.write_bytes(data[:i] + new + data[i + 8 + n :])


def _position(path: Path) -> list[float]:
    import SimpleITK as sitk

    r = sitk.ImageFileReader()
    r.SetFileName(str(path))
    r.ReadImageInformation()
    return [float(v) for v in r.GetMetaData("0020|0032").split("\\")]


def _set_position(path: Path, position) -> None:
    _edit_dicom_tag(path, 0x0020, 0x0032, "\\".join(f"{v:.6f}" for v in position))


# ---------------------------------------------------------------------------------------------------- item 2
def test_colliding_case_names_are_disambiguated_by_a_tag_of_the_file_name(tmp_path, caplog):
    """``a.nii`` + ``a.nii.gz``, ``b.nii.gz`` + DICOM folder ``b/``, two names of non-ASCII letters only: one case
    name each (before: ``a``, ``a``; ``b``, ``b``; ``case``, ``case``, one result lost)."""
    for name in ("a.nii", "a.nii.gz", "b.nii.gz", "äöü.nii.gz", "日本.nii.gz", "c.nii.gz"):
        _nifti(tmp_path / name)
    _dicom(tmp_path / "b")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        items = list_image_inputs(tmp_path)
    cases = {Path(it["image"]).name: it["case"] for it in items}
    assert len(set(cases.values())) == len(cases) == 7
    for name, stem in (("a.nii", "a"), ("a.nii.gz", "a"), ("b.nii.gz", "b"), ("b", "b"), ("äöü.nii.gz", "case")):
        assert re.fullmatch(rf"{stem}-[0-9a-f]{{8}}", cases[name]), cases
    assert cases["c.nii.gz"] == "c"  # no collision, no tag
    assert all(safe_case_name(c) == c for c in cases.values())  # file-safe: the writer keeps them as they are
    assert "share the case name 'a'" in caplog.text and "'a.nii', 'a.nii.gz'" in caplog.text
    assert "share the case name 'case'" in caplog.text
    # each item names its source (absolute) and carries its flags as a JSON string
    for it in items:
        assert it["source"] == os.path.abspath(it["image"]) and os.path.isabs(it["source"])
        codes = [f["code"] for f in json.loads(it["input_flags"])]
        assert codes == (["implausible_spacing"] if os.path.isdir(it["image"]) else [])  # the DICOM phantom: 24 mm
    # stable: another colliding file (also differing only in case) renames nobody else
    _nifti(tmp_path / "A.nii")
    again = {Path(it["image"]).name: it["case"] for it in list_image_inputs(tmp_path, check=False)}
    assert {k: again[k] for k in cases} == cases
    assert re.fullmatch(r"A-[0-9a-f]{8}", again["A.nii"])


def test_unique_case_names_cut_long_names_and_refuse_equal_file_names(tmp_path):
    long = "x" * 150
    names = unique_case_names([f"/d/{long}.nii.gz", "/d/+plus.nii", "/d/ok.mha"])
    assert len(names[0]) == 100 and re.fullmatch(r"x{91}-[0-9a-f]{8}", names[0])
    assert names[1:] == ["plus", "ok"]  # a leading "+" is dropped: the writer refuses it as a folder name
    with pytest.raises(InputImageError, match="expected a unique case name per input, got 'a-"):
        unique_case_names(["/one/a.nii", "/two/a.nii", "/one/a.nii.gz"])


def test_io_case_naming_is_the_image_folder_one():
    from monai_sadaan.data import image_folder
    from monai_sadaan.io import case_name_from_path, safe_case_name as io_safe

    assert case_name_from_path is image_folder.case_name_from_path and io_safe is image_folder.safe_case_name


# ---------------------------------------------------------------------------------------------------- item 3
def _series_with(tmp_path: Path, change) -> Path:
    folder = tmp_path / "series"
    _dicom(folder)
    change(folder)
    return folder


def _move_slice(folder: Path, k: int, dz: float) -> None:
    f = folder / f"slice_{k:04d}.dcm"
    p = _position(f)
    _set_position(f, [p[0], p[1], p[2] + dz])


def _tilt(folder: Path) -> None:
    for k in range(1, 9):
        f = folder / f"slice_{k:04d}.dcm"
        p = _position(f)
        _set_position(f, [p[0], p[1] + 3.0 * k, p[2]])


DICOM_CASES = {
    "missing_slice": (
        lambda d: (d / "slice_0004.dcm").unlink(),
        "got a gap where a slice is missing: between 3 (slice_0003.dcm) and 5 (slice_0005.dcm)",
    ),
    "duplicate_slice": (
        lambda d: shutil.copy(d / "slice_0004.dcm", d / "slice_0004b.dcm"),
        "got slices at the same position: 4 (slice_0004.dcm) and 4 (slice_0004b.dcm)",
    ),
    "uneven_spacing": (
        lambda d: _move_slice(d, 4, 7.0),
        "between 3 (slice_0003.dcm) and 4 (slice_0004.dcm); 17.22 mm between 4 (slice_0004.dcm) and 5",
    ),
    "orientation_differs": (
        lambda d: _edit_dicom_tag(d / "slice_0006.dcm", 0x0020, 0x0037, "-1\\0\\0\\0\\-0.995\\0.0998"),
        "expected one ImageOrientationPatient for every slice",
    ),
    "position_missing": (
        lambda d: _edit_dicom_tag(d / "slice_0002.dcm", 0x0020, 0x0032, None),
        "got slices without them: 2 (slice_0002.dcm)",
    ),
    "orientation_missing": (
        lambda d: _edit_dicom_tag(d / "slice_0007.dcm", 0x0020, 0x0037, None),
        "got slices without them: 7 (slice_0007.dcm)",
    ),
    "position_unreadable": (
        lambda d: _edit_dicom_tag(d / "slice_0003.dcm", 0x0020, 0x0032, "a\\b\\c"),
        "got ImagePositionPatient 'a\\\\b\\\\c' in slice 3 (slice_0003.dcm)",
    ),
    "tilted_stack": (_tilt, "offset within the slice plane (gantry tilt or a sheared stack"),
}


@pytest.mark.parametrize("case", sorted(DICOM_CASES))
def test_dicom_series_that_is_no_regular_stack_is_refused_naming_the_slices(tmp_path, case):
    """Before: all of these passed the pre-flight and ITK stacked the slices evenly (masks shifted after a gap)."""
    change, message = DICOM_CASES[case]
    folder = _series_with(tmp_path, change)
    with pytest.raises(InputImageError, match=re.escape(message)) as info:
        check_volume_header(folder)
    assert str(folder) in str(info.value)


def test_dicom_header_reports_the_real_slice_step(tmp_path):
    """Before: the header check reported a z spacing of 1.0 for every DICOM folder."""
    folder = tmp_path / "s"
    _dicom(folder)
    header = read_volume_header(folder)
    step = abs(_position(folder / "slice_0002.dcm")[2] - _position(folder / "slice_0001.dcm")[2])
    assert header.size == (8, 8, 8) and step > 2.0
    assert header.spacing[2] == pytest.approx(step, abs=1e-5)
    assert check_volume_content(folder) == (8, 8, 8)


def test_dicom_tolerance_takes_position_rounding(tmp_path):
    """Positions written with 2 decimals (steps differ by up to 0.01 mm) are still one regular stack."""

    def round_positions(d: Path) -> None:
        for k in range(1, 9):
            f = d / f"slice_{k:04d}.dcm"
            _edit_dicom_tag(f, 0x0020, 0x0032, "\\".join(f"{v:.2f}" for v in _position(f)))

    assert check_volume_header(_series_with(tmp_path, round_positions)) == (8, 8, 8)


# ---------------------------------------------------------------------------------------------------- item 4
A_PERMUTED = np.array([[0, 0, -2.0, 10], [1.5, 0, 0, -20], [0, 1.2, 0, 5], [0, 0, 0, 1]])
B_FLIPPED = np.array([[-1.0, 0, 0, 1], [0, 1, 0, 2], [0, 0, 3, 3], [0, 0, 0, 1]])
A_SHEARED = A_PERMUTED + np.array([[0, 0.4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])

NIFTI_HEADERS = {
    "qform_only": {"qform": A_PERMUTED, "sform": B_FLIPPED, "qcode": 1, "scode": 0},
    "sform_only": {"qform": B_FLIPPED, "sform": A_PERMUTED, "qcode": 0, "scode": 2},
    "both_disagreeing": {"qform": B_FLIPPED, "sform": A_PERMUTED, "qcode": 1, "scode": 1},
    "both_zero": {"qform": A_PERMUTED, "sform": B_FLIPPED, "qcode": 0, "scode": 0},
    "sheared_sform": {"qform": A_PERMUTED, "sform": A_SHEARED, "qcode": 1, "scode": 1},
}


def _bundle_transforms():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser["spatial_size"] = [16, 16, 16]
    return parser.get_parsed_content("preprocessing"), parser.get_parsed_content("postprocessing")


@pytest.mark.parametrize("case", sorted(NIFTI_HEADERS))
def test_bundle_loader_and_writer_keep_nibabels_affine(tmp_path, case):
    """The bundle's preprocessing, its label map on the input grid and the label-map writer: the output's affine is
    nibabel's affine of the input, exactly (also through MONAI's Invertd, to rounding). Before (ITKReader) it was
    not for sform_only / both_disagreeing (qform used, 1 mm off and flipped), both_zero (LPS identity assumed) and
    sheared_sform (shear dropped)."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Invertd

    from monai_sadaan.io import write_label_map_nifti
    from monai_sadaan.transforms import InputGridLabelMapd

    path = _nifti(tmp_path / f"{case}.nii.gz", data=_ct((10, 12, 14)), **NIFTI_HEADERS[case])
    expected = nib.load(str(path)).affine
    preprocessing, post = _bundle_transforms()
    to_labels = next(t for t in post.transforms if isinstance(t, InputGridLabelMapd))
    d = preprocessing({"image": str(path)})
    d["pred"] = MetaTensor((d["image"] > 0.5).float().repeat(5, 1, 1, 1).as_tensor(), meta=dict(d["image"].meta))
    d["presence_calls"] = torch.ones(5)
    out = to_labels(dict(d))
    assert tuple(out["label_map"].shape) == (1, 10, 12, 14)
    np.testing.assert_array_equal(out["label_map"].affine.numpy(), expected)
    written = write_label_map_nifti(out["label_map"], None, tmp_path / "labels.nii.gz")
    # the file keeps it as NIfTI stores it: the sform in float32
    np.testing.assert_array_equal(nib.load(written).affine, expected.astype(np.float32))
    inverted = Invertd("pred", transform=preprocessing, orig_keys="image", nearest_interp=False, to_tensor=True)(d)
    assert tuple(inverted["pred"].shape[1:]) == (10, 12, 14)
    np.testing.assert_allclose(inverted["pred"].affine.numpy(), expected, atol=1e-5)


def test_ambiguous_nifti_orientation_is_reported_naming_the_file(tmp_path, caplog):
    zero = _nifti(tmp_path / "zero.nii.gz", **NIFTI_HEADERS["both_zero"])
    both = _nifti(tmp_path / "both.nii.gz", **NIFTI_HEADERS["both_disagreeing"])
    fine = _nifti(tmp_path / "fine.nii.gz", affine=A_PERMUTED)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        check_volume_header(fine)
        assert caplog.text == ""
        check_volume_header(zero)
        check_volume_header(both)
    assert f"{zero} stores no orientation (qform_code = sform_code = 0)" in caplog.text
    assert f"{both} has a qform and a sform that disagree" in caplog.text and "the sform is used" in caplog.text


def test_nifti_header_geometry_is_nibabels(tmp_path):
    path = _nifti(tmp_path / "s.nii.gz", **NIFTI_HEADERS["sheared_sform"])
    header = read_volume_header(path)
    np.testing.assert_allclose(header.affine, nib.load(str(path)).affine)
    assert header.spacing == pytest.approx(tuple(np.linalg.norm(A_SHEARED[:3, :3], axis=0)), rel=1e-6)


# ---------------------------------------------------------------------------------------------------- item 10
def test_scaled_integer_nifti_past_float32_is_refused(tmp_path):
    img = nib.Nifti1Image(_ct(), np.eye(4))
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(1e38, 0)
    nib.save(img, str(tmp_path / "s.nii.gz"))
    assert check_volume_header(tmp_path / "s.nii.gz") == (8, 8, 8)
    with pytest.raises(InputImageError, match=r"within the float32 range .* scaled by scl_slope 1e\+38, scl_inter 0"):
        check_volume_content(tmp_path / "s.nii.gz")


def _mhd(folder: Path, data_file: str, dims: str = "4 4 4") -> Path:
    header = (
        "ObjectType = Image\nNDims = 3\nBinaryData = True\nBinaryDataByteOrderMSB = False\n"
        f"ElementSpacing = 1 1 1\nDimSize = {dims}\nElementType = MET_SHORT\nElementDataFile = {data_file}\n"
    )
    path = folder / "img.mhd"
    path.write_text(header)
    return path


def _in_thread(fn, timeout: float = 20.0):
    """Run ``fn`` in a daemon thread; fail instead of hanging the suite when it blocks."""
    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "the check blocked (read from a FIFO?)"
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_metaimage_whose_data_file_is_a_fifo_is_refused_without_reading(tmp_path):
    os.mkfifo(tmp_path / "img.raw")
    path = _mhd(tmp_path, "img.raw")
    with pytest.raises(InputImageError, match=r"to be a regular file, got a FIFO \(named pipe\)"):
        _in_thread(lambda: check_volume_header(path))
    with pytest.raises(InputImageError, match="a FIFO"):
        _in_thread(lambda: check_volume_content(path))
    with pytest.raises(InputImageError, match="a FIFO"):
        _in_thread(lambda: list_image_inputs(tmp_path))
    # an image file that is itself a FIFO
    (tmp_path / "img.mhd").unlink()
    os.mkfifo(tmp_path / "pipe.nii.gz")
    with pytest.raises(InputImageError, match=r"expected a regular image file, got a FIFO"):
        _in_thread(lambda: list_image_inputs(tmp_path))
    with pytest.raises(InputImageError, match=r"got a FIFO \(named pipe\)"):
        _in_thread(lambda: check_volume_header(tmp_path / "pipe.nii.gz"))


def test_metaimage_or_nrrd_data_file_outside_the_input_folder_is_refused(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    np.zeros(64, np.int16).tofile(tmp_path / "outside.raw")
    _mhd(inputs, "../outside.raw")
    message = f"inside the input folder {inputs}, got {tmp_path / 'outside.raw'}"
    with pytest.raises(InputImageError, match=re.escape(message)):
        list_image_inputs(inputs)
    (inputs / "img.mhd").unlink()
    (inputs / "img.nhdr").write_text(
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 4 4 4\nencoding: raw\nendian: little\n"
        f"data file: {tmp_path / 'outside.raw'}\n\n"
    )
    with pytest.raises(InputImageError, match="inside the input folder"):
        list_image_inputs(inputs)
    # the same header with its data file inside the folder is read
    shutil.copy(tmp_path / "outside.raw", inputs / "inside.raw")
    header = (inputs / "img.nhdr").read_text()
    (inputs / "img.nhdr").write_text(header.replace(str(tmp_path / "outside.raw"), "inside.raw"))
    assert [it["case"] for it in list_image_inputs(inputs)] == ["img"]


@pytest.mark.parametrize("kind", ["mha", "nii.gz"])
def test_huge_volume_header_is_refused_naming_size_and_memory(tmp_path, kind):
    """Before: a bare MemoryError from the voxel read (or an attempt to allocate 54 TB)."""
    if kind == "mha":
        path = tmp_path / "huge.mha"
        path.write_text(_mhd(tmp_path, "LOCAL", dims="30000 30000 30000").read_text())
    else:
        header = nib.Nifti1Header()
        header.set_data_shape((30000, 30000, 30000))
        header.set_data_dtype(np.int16)
        header.set_sform(np.eye(4), code=1)
        path = tmp_path / "huge.nii.gz"
        import gzip

        path.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 64))
    message = "got size (30000, 30000, 30000) = 2.7e+13 voxels, which need 1.01e+05 GiB"
    with pytest.raises(InputImageError, match=re.escape(message)):
        check_volume_header(path)


def test_layouts_that_would_skip_inputs_are_refused_or_reported(tmp_path, caplog):
    good = tmp_path / "good"
    good.mkdir()
    _nifti(good / "a.nii.gz")
    (good / "notes.txt").write_text("x")
    (good / "empty_folder").mkdir()
    os.symlink(tmp_path / "nowhere", good / "dangling_link")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert [it["case"] for it in list_image_inputs(good)] == ["a"]
    assert "skipped 3 entries of the input folder" in caplog.text
    for what in ("dangling_link (dangling symbolic link)", "empty_folder/ (a folder without", "notes.txt (not an"):
        assert what in caplog.text

    # a dangling link with an image suffix
    os.symlink(tmp_path / "gone.nii.gz", good / "b.nii.gz")
    with pytest.raises(InputImageError, match="expected an image file, got a dangling symbolic link to"):
        list_image_inputs(good)
    (good / "b.nii.gz").unlink()

    # a DICOM series two levels down
    nested = tmp_path / "nested"
    _dicom(nested / "patient" / "ct")
    with pytest.raises(InputImageError, match=r"got series nested two levels deep in .*patient: ct/"):
        list_image_inputs(nested)

    # a NIfTI beside a DICOM series: in the input folder that is the series, and in a series folder
    beside = tmp_path / "beside"
    _dicom(beside)
    _nifti(beside / "x.nii.gz")
    message = r"expected either one DICOM series or image files .* got both: a DICOM series and x\.nii\.gz"
    with pytest.raises(InputImageError, match=message):
        list_image_inputs(beside)
    parent = tmp_path / "parent"
    parent.mkdir()
    shutil.move(str(beside), parent / "s1")
    with pytest.raises(InputImageError, match=r"expected only the DICOM series in the series folder .*s1, got also x"):
        list_image_inputs(parent)

    # image files one level down
    down = tmp_path / "down"
    (down / "p1").mkdir(parents=True)
    _nifti(down / "p1" / "ct.nii.gz")
    with pytest.raises(InputImageError, match=r"got image files in its sub-folder .*p1: ct\.nii\.gz"):
        list_image_inputs(down)


def test_messages_name_what_the_path_is(tmp_path, monkeypatch):
    f = _nifti(tmp_path / "ct.nii.gz")
    with pytest.raises(InputImageError, match=r"expected a folder of images \(--dataset_dir\), got a file: .*ct\.nii"):
        list_image_inputs(f)
    with pytest.raises(InputImageError, match="got a missing path"):
        list_image_inputs(tmp_path / "nope")
    # an existing file this user may not read (simulated: the tests may run as root, who reads everything)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if str(p) == str(f) else real_access(p, mode, **kw))
    with pytest.raises(InputImageError, match=r"got a file this user may not read \(permission denied\)"):
        check_volume_header(f)
    monkeypatch.undo()
    # float16 is no NIfTI-1 type: a header with a 16-bit float code nibabel does not know (before: "corrupt")
    raw = bytearray(_nifti(tmp_path / "half.nii", data=np.zeros((4, 4, 4), np.int16)).read_bytes())
    raw[70:72] = struct.pack("<h", 17)
    (tmp_path / "half.nii").write_bytes(bytes(raw))
    with pytest.raises(InputImageError, match=r"got unsupported voxel type: datatype code 17 with 16 bits per voxel"):
        check_volume_header(tmp_path / "half.nii")
    # a NIfTI voxel type the model cannot take
    c = _nifti(tmp_path / "complex.nii.gz", data=np.zeros((4, 4, 4), np.complex64))
    with pytest.raises(InputImageError, match="got unsupported voxel type complex64"):
        check_volume_header(c)
    # a (x, y, z, 1) NIfTI: checked and loaded as 3D
    four = _nifti(tmp_path / "four.nii.gz", data=_ct((6, 7, 8, 1)))
    assert check_volume_header(four) == (6, 7, 8)
    preprocessing, _ = _bundle_transforms()
    image = preprocessing({"image": str(four)})["image"]
    assert tuple(image.shape) == (1, 16, 16, 16)


# ---------------------------------------------------------------------------------------------------- item 5
@pytest.mark.parametrize(
    "spacing, message",
    [
        ("1e-30 1 1", "got (1e-30, 1.0, 1.0)"),
        ("1 1e30 1", "got (1.0, 1e+30, 1.0)"),
        ("1 1 2000", "got (1.0, 1.0, 2000.0)"),
    ],
)
def test_spacing_that_cannot_be_computed_with_is_refused_in_the_header_check(tmp_path, spacing, message):
    """Before: 1e-30 passed the pre-flight and failed in the writer after other cases were written."""
    import SimpleITK as sitk

    path = tmp_path / "a.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 4, 4), np.int16)), str(path))
    path.write_bytes(path.read_bytes().replace(b"ElementSpacing = 1 1 1", f"ElementSpacing = {spacing}".encode()))
    with pytest.raises(InputImageError, match=re.escape(f"expected voxel spacing within 0.001..1000 mm, {message}")):
        check_volume_header(path)


def test_degenerate_or_non_finite_nifti_affine_is_refused(tmp_path):
    flat = np.array([[1.0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    with pytest.raises(InputImageError, match="expected three independent voxel axes"):
        check_volume_header(_nifti(tmp_path / "flat.nii.gz", qform=np.eye(4), sform=flat, qcode=0, scode=1))
    bad = np.eye(4)
    bad[0, 3] = np.inf
    img = nib.Nifti1Image(_ct(), None)
    img.header.set_sform(np.eye(4), code=1)
    img.header["srow_x"] = bad[0]
    nib.save(img, str(tmp_path / "inf.nii.gz"))
    with pytest.raises(InputImageError, match="expected a finite voxel-to-world affine"):
        check_volume_header(tmp_path / "inf.nii.gz")


# ---------------------------------------------------------------------------------------------------- item 11
def _flags(item) -> list[str]:
    return [f["code"] for f in json.loads(item["input_flags"])]


def test_non_ct_like_input_is_flagged_not_refused(tmp_path, caplog):
    """Before: an all-zero volume or a 0..255 image got confident calls and nothing said so."""
    _nifti(tmp_path / "ct.nii.gz")
    _nifti(tmp_path / "zeros.nii.gz", data=np.zeros((8, 8, 8), np.int16))
    _nifti(tmp_path / "photo.nii.gz", data=np.random.default_rng(0).integers(0, 256, (8, 8, 8)).astype(np.uint8))
    _nifti(tmp_path / "scaled.nii.gz", data=_ct().astype(np.float32) * 100)
    _nifti(tmp_path / "coarse.nii.gz", affine=np.diag([50.0, 50.0, 50.0, 1.0]))
    _nifti(tmp_path / "tiny.nii.gz", affine=np.diag([0.01, 0.01, 0.01, 1.0]))
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        items = {it["case"]: it for it in list_image_inputs(tmp_path)}
    assert _flags(items["ct"]) == []
    assert _flags(items["zeros"]) == ["constant_intensity", "no_air", "byte_range"]
    assert _flags(items["photo"]) == ["no_air", "byte_range"]
    assert _flags(items["scaled"]) == ["intensity_beyond_ct_range"]
    assert _flags(items["coarse"]) == ["implausible_spacing"]
    assert _flags(items["tiny"]) == ["implausible_spacing", "implausible_field_of_view"]
    for item in items.values():
        for flag in json.loads(item["input_flags"]):
            assert set(flag) == {"code", "message"} and flag["code"] in INPUT_FLAG_CODES
            assert flag["message"].startswith(INPUT_FLAG_CODES[flag["code"]])
    assert "zeros.nii.gz (case zeros) does not look like CT" in caplog.text and "every voxel is 0" in caplog.text
    assert "(case ct)" not in caplog.text
    # the value flags withhold the calls, the geometry flags do not
    assert "(case zeros) does not look like CT; no presence call is made and nothing is painted" in caplog.text
    assert "(case coarse) does not look like CT; its results may mean nothing" in caplog.text
    assert NOT_CT_FLAG_CODES == {"constant_intensity", "no_air", "byte_range", "intensity_beyond_ct_range"}
    assert all(_flags(it) == [] for it in list_image_inputs(tmp_path, check=False))
