"""Bad-input matrix across the Python APIs (cheap, in-process) and a few command-line runs of the SADAAn bundle.

Every case asserts the error type and a message naming what was expected and what came; the command-line cases
also assert a non-zero exit and an output folder left empty. ``docs/reliability.md`` lists the cases with the
tests elsewhere in the suite that cover related ones.
"""

from __future__ import annotations

import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SADAAN_BUNDLE = REPO / "bundles" / "sadaan_abdominal_ct_segmentation"
TINY = ["--spatial_size", "[16,16,16]", "--features", "[2,4,4,4,4]", "--feature_channels", "4"]


# ---------------------------------------------------------------- image files (header checks before any inference)
def _write_sitk(path: Path, array: np.ndarray, vector: bool = False, spacing=None) -> Path:
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(array, isVector=vector)
    if spacing is not None:
        img.SetSpacing(spacing)
    sitk.WriteImage(img, str(path))
    return path


def _mha_with_spacing(path: Path, spacing: str) -> Path:
    good = _write_sitk(path.with_name("tmp_ok.mha"), np.zeros((4, 4, 4), np.float32))
    data = good.read_bytes().replace(b"ElementSpacing = 1 1 1", f"ElementSpacing = {spacing}".encode())
    good.unlink()
    path.write_bytes(data)
    return path


def _dicom_mixed_series(folder: Path) -> Path:
    from monai_sadaan.data import generate_phantom
    from monai_sadaan.data.writers import save_phantom_dicom_series

    for i in (1, 2):
        files = save_phantom_dicom_series(generate_phantom("normal", seed=i, shape=8), folder.parent / f"s{i}")
        folder.mkdir(exist_ok=True)
        for f in files:
            shutil.move(str(f), folder / f"s{i}_{f.name}")
    return folder


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _good_nifti(path: Path) -> Path:
    return _write_sitk(path, np.random.default_rng(0).random((8, 8, 8), dtype=np.float32))


IMAGE_CASES = {
    "missing_file": (lambda d: d / "absent.nii.gz", "got a missing path"),
    "empty_file": (lambda d: _bytes(d / "e.nii.gz", b""), "got an empty file"),
    "truncated_gzip_header": (
        lambda d: _bytes(d / "t.nii.gz", _good_nifti(d / "g.nii.gz").read_bytes()[:40]),
        "got a corrupt or unknown file",
    ),
    "truncated_voxel_data": (
        lambda d: _bytes(d / "t.nii", _good_nifti(d / "g.nii").read_bytes()[:700]),
        "expected 2048 bytes of voxel data",
    ),
    "corrupt_file": (lambda d: _bytes(d / "c.nii.gz", b"not an image"), "corrupt or unknown"),
    "2d_image": (lambda d: _write_sitk(d / "a.nii.gz", np.zeros((8, 8), np.float32)), "got a 2D image"),
    "4d_image": (lambda d: _write_sitk(d / "a.nii.gz", np.zeros((3, 4, 4, 4), np.float32)), "got a 4D image"),
    "multi_channel_image": (
        lambda d: _write_sitk(d / "a.nrrd", np.zeros((4, 4, 4, 3), np.float32), vector=True),
        "got 3 components per voxel",
    ),
    "zero_size_dimension": (
        lambda d: _write_sitk(d / "a.mha", np.zeros((1, 4, 4), np.float32)),
        "at least 2 voxels per axis, got size (4, 4, 1)",
    ),
    "zero_spacing": (lambda d: _mha_with_spacing(d / "a.mha", "0 1 1"), "positive voxel spacing, got (0.0, 1.0, 1.0)"),
    "negative_spacing": (
        lambda d: _mha_with_spacing(d / "a.mha", "1 -2 1"),
        "positive voxel spacing, got (1.0, -2.0, 1.0)",
    ),
    "dicom_mixed_series": (lambda d: _dicom_mixed_series(d / "mixed"), "expected one DICOM series"),
    "folder_without_dicom": (lambda d: (d / "f").mkdir() or d / "f", "expected a DICOM series in folder"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_image_header_check(tmp_path, case):
    from monai_sadaan.data.image_folder import InputImageError, check_volume_header

    make, message = IMAGE_CASES[case]
    path = make(tmp_path)
    with pytest.raises(InputImageError, match=re.escape(message)):
        check_volume_header(path)


def test_good_image_passes_the_header_check(tmp_path):
    from monai_sadaan.data.image_folder import check_volume_header

    assert check_volume_header(_good_nifti(tmp_path / "g.nii.gz")) == (8, 8, 8)
    assert check_volume_header(_good_nifti(tmp_path / "g.nii")) == (8, 8, 8)


def test_image_folder_missing_or_empty(tmp_path):
    from monai_sadaan.data.image_folder import InputImageError, list_image_inputs

    with pytest.raises(InputImageError, match="got a missing path"):
        list_image_inputs(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputImageError, match="found none"):
        list_image_inputs(tmp_path)


# ---------------------------------------------------------------- voxel content (read once before any inference)
def _with_values(path: Path, values: dict, dtype=np.float32) -> Path:
    """An 8^3 volume of random values with ``values`` ({flat index: value}) set, written by SimpleITK."""
    arr = np.random.default_rng(1).random((8, 8, 8)).astype(dtype)
    for index, value in values.items():
        arr.reshape(-1)[index] = value
    return _write_sitk(path, arr)


def _nifti_gz_cut_in_voxel_data(path: Path, dtype=np.float32) -> Path:
    """A .nii.gz whose gzip stream ends inside the voxel data: the 352-byte header decompresses intact."""
    import gzip
    import io

    rng = np.random.default_rng(2)
    arr = rng.integers(-1000, 1000, (8, 8, 8)) if np.issubdtype(dtype, np.integer) else rng.random((8, 8, 8))
    raw = _write_sitk(path.with_name("full.nii"), arr.astype(dtype)).read_bytes()
    data = gzip.compress(raw)
    cut = data[: len(data) - 200]
    assert gzip.GzipFile(fileobj=io.BytesIO(cut)).read(352) == raw[:352]  # the header decompresses intact
    return _bytes(path, cut)


def _nifti_gz_with_short_voxel_data(path: Path) -> Path:
    """A complete gzip stream holding a NIfTI whose voxel data is cut short (700 of 2400 bytes)."""
    import gzip

    raw = _good_nifti(path.with_name("full.nii")).read_bytes()
    return _bytes(path, gzip.compress(raw[:700]))


def _mha_cut_in_voxel_data(path: Path) -> Path:
    data = _good_nifti(path.with_name("full.mha")).read_bytes()
    return _bytes(path, data[: len(data) - 300])


CONTENT_CASES = {
    "nan_in_nifti_gz": (lambda d: _with_values(d / "a.nii.gz", {300: np.nan}), "got 1 NaN and 0 Inf voxels of 512"),
    "inf_in_nifti": (lambda d: _with_values(d / "a.nii", {7: np.inf}), "got 0 NaN and 1 Inf voxels of 512"),
    "nan_and_inf_in_nifti_gz": (
        lambda d: _with_values(d / "a.nii.gz", {0: np.nan, 5: np.nan, 511: np.nan, 9: np.inf, 10: -np.inf}),
        "got 3 NaN and 2 Inf voxels of 512",
    ),
    "nan_in_float64_nrrd": (
        lambda d: _with_values(d / "a.nrrd", {100: np.nan}, dtype=np.float64),
        "got 1 NaN and 0 Inf voxels of 512",
    ),
    "nan_in_metaimage": (lambda d: _with_values(d / "a.mha", {1: np.nan}), "got 1 NaN and 0 Inf voxels of 512"),
    "truncated_gzip_voxel_data": (
        lambda d: _nifti_gz_cut_in_voxel_data(d / "t.nii.gz"),
        "expected complete voxel data, got a truncated or corrupt file (EOFError",
    ),
    "truncated_gzip_int16_voxel_data": (
        lambda d: _nifti_gz_cut_in_voxel_data(d / "t.nii.gz", dtype=np.int16),
        "got a truncated or corrupt file (EOFError",
    ),
    "short_voxel_data_in_complete_gzip": (
        lambda d: _nifti_gz_with_short_voxel_data(d / "t.nii.gz"),
        "got a truncated or corrupt file (OSError: Expected 2048 bytes, got 348 bytes",
    ),
    "truncated_metaimage_voxel_data": (
        lambda d: _mha_cut_in_voxel_data(d / "t.mha"),
        "got a truncated or corrupt file (RuntimeError",
    ),
}


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_image_content_check(tmp_path, case):
    """Each of these passes the header check and is refused by the content check, naming the file."""
    from monai_sadaan.data.image_folder import InputImageError, check_volume_content, check_volume_header

    make, message = CONTENT_CASES[case]
    path = make(tmp_path)
    assert check_volume_header(path) == (8, 8, 8)
    with pytest.raises(InputImageError, match=re.escape(message)) as info:
        check_volume_content(path)
    assert str(path) in str(info.value)


def test_good_images_pass_the_content_check(tmp_path):
    from monai_sadaan.data import generate_phantom
    from monai_sadaan.data.image_folder import check_volume_content
    from monai_sadaan.data.writers import save_phantom_dicom_series

    assert check_volume_content(_good_nifti(tmp_path / "g.nii.gz")) == (8, 8, 8)
    assert check_volume_content(_good_nifti(tmp_path / "g.nii")) == (8, 8, 8)
    assert check_volume_content(_write_sitk(tmp_path / "g.mha", np.zeros((5, 6, 7), np.float32))) == (5, 6, 7)
    # integer voxels: no finiteness scan, the data is still read whole; NIfTI (x, y, z) vs SimpleITK (z, y, x)
    assert check_volume_content(_write_sitk(tmp_path / "i.nii.gz", np.zeros((5, 6, 7), np.int16))) == (7, 6, 5)
    series = tmp_path / "dicom"
    save_phantom_dicom_series(generate_phantom("normal", seed=3, shape=8), series)
    assert check_volume_content(series) == (8, 8, 8)


def test_nifti_nan_is_seen_by_the_content_check_although_itk_reads_it_as_zero(tmp_path):
    """The loader (ITK) turns NaN in NIfTI into 0; the content check reads with nibabel and refuses the file."""
    import SimpleITK as sitk

    from monai_sadaan.data.image_folder import InputImageError, check_volume_content

    path = _with_values(tmp_path / "a.nii.gz", {300: np.nan})
    assert np.isfinite(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).all()  # why nibabel reads the voxels
    with pytest.raises(InputImageError, match="got 1 NaN"):
        check_volume_content(path)


def test_non_finite_count_is_exact_across_chunks_and_memory_orders():
    from monai_sadaan.data.image_folder import _count_non_finite

    arr = np.zeros((5, 6, 7), np.float32)
    arr[0, 0, 0] = arr[4, 5, 6] = arr[2, 3, 1] = np.nan
    arr[1, 0, 6] = np.inf
    arr[3, 5, 0] = -np.inf
    for a in (arr, np.asfortranarray(arr), arr[:, ::2]):  # C order, Fortran order (nibabel), a strided view
        expected = (int(np.isnan(a).sum()), int(np.isinf(a).sum()))
        assert min(expected) >= 1
        for chunk in (1, 7, 64, 1 << 22):
            assert _count_non_finite(a, chunk=chunk) == expected


def test_image_folder_checks_every_content_before_returning(tmp_path):
    from monai_sadaan.data.image_folder import InputImageError, list_image_inputs

    _good_nifti(tmp_path / "a_good.nii.gz")
    _with_values(tmp_path / "b_nan.nii.gz", {3: np.nan})
    _good_nifti(tmp_path / "c_good.nii.gz")
    with pytest.raises(InputImageError, match=r"got 1 NaN and 0 Inf voxels of 512 in .*b_nan\.nii\.gz"):
        list_image_inputs(tmp_path)
    assert [it["case"] for it in list_image_inputs(tmp_path, check=False)] == ["a_good", "b_nan", "c_good"]
    # a bad header anywhere is reported before any voxel data is read
    _bytes(tmp_path / "d_empty.nii.gz", b"")
    with pytest.raises(InputImageError, match="got an empty file"):
        list_image_inputs(tmp_path)
    (tmp_path / "b_nan.nii.gz").unlink()
    (tmp_path / "d_empty.nii.gz").unlink()
    assert [it["case"] for it in list_image_inputs(tmp_path)] == ["a_good", "c_good"]


# ---------------------------------------------------------------- SADAAn network input
def _tiny_net(**kw):
    from monai_sadaan import SpatialAttentionMedicalSegmenter

    kw = {"spatial_size": (16, 16, 16), "features": (2, 4, 4, 4, 4), "feature_channels": 4, **kw}
    return SpatialAttentionMedicalSegmenter(**kw).eval()


def _with(value, index=(0, 0, 3, 4, 5)):
    x = torch.zeros(1, 1, 16, 16, 16)
    x[index] = value
    return x


@pytest.mark.parametrize(
    "x, message",
    [
        (_with(float("nan")), "got 1 NaN/Inf values"),
        (_with(float("inf")), "got 1 NaN/Inf values"),
        (torch.zeros(1, 2, 16, 16, 16), "expected input of shape (B, 1, 16, 16, 16), got (1, 2, 16, 16, 16)"),
        (torch.zeros(1, 16, 16, 16), "got (1, 16, 16, 16)"),
        (torch.zeros(0, 1, 16, 16, 16), "got (0, 1, 16, 16, 16)"),
        (torch.zeros(1, 1, 16, 16, 32), "got (1, 1, 16, 16, 32)"),
    ],
    ids=["nan_voxel", "inf_voxel", "two_channels", "4d_tensor", "empty_batch", "wrong_size"],
)
def test_sadaan_network_input(x, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _tiny_net()(x)


# ---------------------------------------------------------------- datalists
def _datalist(tmp_path, entries, split="training") -> Path:
    (tmp_path / "img.nii.gz").write_bytes(b"x")
    p = tmp_path / "datalist.json"
    p.write_text(json.dumps({split: entries}))
    return p


@pytest.mark.parametrize(
    "entries, split, message",
    [
        ([{"image": "img.nii.gz"}], "training", "entry 0 of 'training' has no 'label' key"),
        ([{"image": "img.nii.gz", "label": "lab.nii.gz"}], "training", "label file does not exist"),
        ([{"image": "img.nii.gz", "label": 3}], "training", "expected a path string for 'label', got 3"),
        (
            [{"image": "img.nii.gz", "label": "img.nii.gz"}],
            "validation",
            "has no 'training' list; lists found: validation",
        ),
    ],
    ids=["missing_key", "missing_path", "path_not_a_string", "missing_split"],
)
def test_datalist(tmp_path, entries, split, message):
    from monai_sadaan.data.datalist import DatalistError, load_datalist

    with pytest.raises(DatalistError, match=re.escape(message)):
        load_datalist(_datalist(tmp_path, entries, split))


# ---------------------------------------------------------------- checkpoints
def test_sadaan_checkpoint_for_another_structure_set(tmp_path):
    from monai_glue import CheckpointError, load_checkpoint, load_state_dict_checked

    torch.save(_tiny_net(num_structures=3).state_dict(), tmp_path / "other.pt")
    net = _tiny_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"expected \(1, 5, 16, 16, 16\), got \(1, 3, 16, 16, 16\)"):
        load_state_dict_checked(net, load_checkpoint(tmp_path / "other.pt"))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # nothing half-loaded


def test_truncated_sadaan_checkpoint(tmp_path):
    from monai_glue import CheckpointError, load_checkpoint

    torch.save(_tiny_net().state_dict(), tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "t.pt")


# ---------------------------------------------------------------- sequences (GRU) and frames (IAM4VP)
@pytest.mark.parametrize(
    "x, lengths, error, message",
    [
        (torch.zeros(2, 5, 3), torch.tensor([5, 6]), ValueError, "expected every length in [1, 5]"),
        (torch.zeros(2, 5, 3), torch.tensor([0, 5]), ValueError, "got min 0 and max 5"),
        (torch.zeros(2, 5, 3), torch.tensor([5]), ValueError, "expected lengths of shape (2,) for a batch of 2"),
        (torch.zeros(2, 5, 3), torch.tensor([5.0, 4.0]), TypeError, "expected integer lengths"),
        (torch.zeros(2, 5, 4), None, ValueError, "expected 3 features per step"),
        (torch.zeros(2, 0, 3), None, ValueError, "expected a non-empty batch"),
    ],
    ids=["length_above_T", "length_zero", "lengths_wrong_count", "float_lengths", "wrong_features", "empty_sequence"],
)
def test_gru_sequences(x, lengths, error, message):
    from seq_models.networks.gru_regression import PaddedGRURegressor

    model = PaddedGRURegressor(input_size=3, hidden_size=4, num_layers=1)
    with pytest.raises(error, match=re.escape(message)):
        model(x, lengths)


@pytest.mark.parametrize(
    "shape, message",
    [((1, 2, 3, 8, 8), "expected 2 channels, got 3"), ((1, 3, 2, 8, 8), "expected exactly 2 history steps")],
    ids=["frames_wrong_channels", "wrong_history_length"],
)
def test_iam4vp_frames(shape, message):
    from seq_models.networks.iam4vp import IAM4VP

    model = IAM4VP(
        shape_in=(2, 2, 8, 8), latent_channels=4, num_convolutions_space=2, num_convolutions_time=2, time_dim=8
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        model(torch.zeros(shape), [], torch.zeros(1))


# ---------------------------------------------------------------- loss and transforms
def test_loss_targets_for_another_structure_set():
    from monai_sadaan import SpatialAttentionLoss

    loss = SpatialAttentionLoss(["a", "b", "c"])
    targets = {"segmentation_targets": torch.zeros(1, 2, 4, 4, 4), "presence_targets": torch.zeros(1, 2)}
    with pytest.raises(ValueError, match=r"expected 3 structures .* got shape \(1, 2, 4, 4, 4\)"):
        loss({}, targets)


def test_label_map_transform_wrong_rank():
    from monai_sadaan.transforms import LabelMapToStructures

    with pytest.raises(ValueError, match=r"expected a label map of shape \(1, D, H, W\), got"):
        LabelMapToStructures({"liver": 1})(torch.zeros(8, 8))


# ---------------------------------------------------------------- the bundle's command line (few, tiny runs)
def _run_inference(inputs: Path, outputs: Path) -> subprocess.CompletedProcess:
    ckpt = inputs.parent / "model.pt"
    torch.save(_tiny_net().state_dict(), ckpt)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, "-m", "monai.bundle", "run", "--config_file", "configs/inference.json",
           "--dataset_dir", str(inputs), "--output_dir", str(outputs), "--ckpt_path", str(ckpt), *TINY]  # fmt: skip
    return subprocess.run(
        cmd, cwd=SADAAN_BUNDLE, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=300, env=env
    )


def _cli_inputs(tmp_path: Path, bad: str) -> Path:
    from monai_sadaan.data import generate_phantom, save_phantom

    inputs = tmp_path / "in"
    inputs.mkdir()
    save_phantom(generate_phantom("normal", seed=1, shape=24), inputs / "a_good.nii.gz")
    if bad == "2d":
        _write_sitk(inputs / "z_flat.nii.gz", np.zeros((8, 8), np.float32))
    elif bad == "mixed_dicom":
        _dicom_mixed_series(inputs / "z_mixed")
    elif bad == "nan_nifti":
        arr = np.zeros((24, 24, 24), np.float32)
        arr[3, 4, 5] = np.nan
        # the loader (ITK) would read this NaN as 0; the pre-flight reads NIfTI voxels with nibabel, which keeps it
        _write_sitk(inputs / "z_nan.nii.gz", arr)
    elif bad == "truncated":
        data = save_phantom(generate_phantom("normal", seed=2, shape=24), tmp_path / "x.nii")[0].read_bytes()
        (inputs / "z_trunc.nii").write_bytes(data[: len(data) // 2])
    elif bad == "truncated_gz":
        data = save_phantom(generate_phantom("normal", seed=2, shape=24), tmp_path / "x.nii.gz")[0].read_bytes()
        (inputs / "z_trunc.nii.gz").write_bytes(data[: len(data) // 2])  # header intact, voxel data cut
    elif bad == "dicom_missing_slice":
        from monai_sadaan.data.writers import save_phantom_dicom_series

        save_phantom_dicom_series(generate_phantom("normal", seed=2, shape=24), inputs / "z_series")
        (inputs / "z_series" / "slice_0010.dcm").unlink()  # ITK would stack the rest evenly: masks shifted
    elif bad == "tiny_spacing":
        # passed the pre-flight before and failed in the writer, after a_good had been written
        _write_sitk(inputs / "z_tiny.mha", np.zeros((24, 24, 24), np.float32), spacing=(1e-30, 1.0, 1.0))
    return inputs


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad, message",
    [
        ("2d", "expected a 3D single-channel image, got a 2D image"),
        ("mixed_dicom", "expected one DICOM series in folder"),
        ("truncated", "bytes of voxel data"),
        ("truncated_gz", "expected complete voxel data, got a truncated or corrupt file"),
        ("nan_nifti", "expected finite voxel values, got 1 NaN and 0 Inf voxels"),
        ("dicom_missing_slice", "got a gap where a slice is missing: between 9 (slice_0009.dcm) and 11 (slice_0011.dcm)"),
        ("tiny_spacing", "expected voxel spacing within 0.001..1000 mm, got (1e-30, 1.0, 1.0)"),
    ],
)
def test_bundle_inference_bad_input_exits_nonzero_without_output(tmp_path, bad, message):
    """A folder of one good case (``a_good``, processed first) and one bad case: the whole run is refused before
    any model runs, so not even the good case has an output, whether the fault is in a header or in the voxels."""
    inputs, outputs = _cli_inputs(tmp_path, bad), tmp_path / "out"
    r = _run_inference(inputs, outputs)
    assert r.returncode != 0, r.stdout[-2000:]
    assert message in r.stderr, r.stderr[-3000:]
    written = sorted(q.relative_to(outputs).as_posix() for q in outputs.rglob("*")) if outputs.exists() else []
    assert written == [], written


@pytest.mark.slow
def test_bundle_inference_names_colliding_inputs_apart_and_keeps_nibabels_nifti_geometry(tmp_path):
    """``a.nii`` + ``a.nii.gz`` (both were case ``a``: one result lost) give two case folders; a NIfTI whose sform
    and qform disagree gets its label map on nibabel's affine (the sform; ITK used the qform)."""
    import nibabel as nib

    from monai_sadaan.data import generate_phantom

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    phantom = generate_phantom("normal", seed=1, shape=24)
    for name in ("a.nii", "a.nii.gz"):
        nib.save(nib.Nifti1Image(phantom.image.astype(np.float32), phantom.affine), str(inputs / name))
    img = nib.Nifti1Image(phantom.image.astype(np.float32), None)
    img.set_qform(np.diag([-1.0, 1.0, 1.0, 1.0]) @ phantom.affine, code=1)  # a mirrored qform
    img.set_sform(phantom.affine, code=1)
    nib.save(img, str(inputs / "b.nii.gz"))
    r = _run_inference(inputs, outputs)
    assert r.returncode == 0, r.stderr[-3000:]
    from monai_sadaan.data.image_folder import unique_case_names

    cases = unique_case_names([inputs / "a.nii", inputs / "a.nii.gz", inputs / "b.nii.gz"])
    assert cases[0] != cases[1] and cases[2] == "b"
    assert sorted(p.name for p in outputs.iterdir() if p.is_dir() and not p.name.startswith(".")) == sorted(cases)
    assert "share the case name 'a'" in r.stderr + r.stdout
    assert "has a qform and a sform that disagree" in r.stderr + r.stdout
    labels = nib.load(str(outputs / "b" / "b_labels.nii.gz"))
    np.testing.assert_allclose(labels.affine, nib.load(str(inputs / "b.nii.gz")).affine, atol=1e-5)


# ---------------------------------------------------------------- configs run only from the named bundle
def test_slicer_command_refuses_a_config_outside_the_bundle(tmp_path):
    from monai_sadaan.slicer.core import build_inference_command

    outside = tmp_path / "evil.json"
    outside.write_text('{"run": ["$__import__(\'os\').system(\'true\')"]}')
    with pytest.raises(ValueError, match="expected a config file inside the bundle folder"):
        build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out", config_file=str(outside))
    with pytest.raises(ValueError, match="inside the bundle folder"):
        build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out", config_file="../../evil.json")
    with pytest.raises(ValueError, match="expected meta_file inside the bundle folder"):
        build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out", meta_file=str(outside))
    cmd = build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out")
    assert cmd[cmd.index("--config_file") + 1] == str(SADAAN_BUNDLE / "configs" / "inference.json")


# ---------------------------------------------------------------- values that reach a config (issue 22 items 7-9)
def test_slicer_command_refuses_code_in_the_device_or_an_override(tmp_path):
    from monai_sadaan.slicer.core import build_inference_command

    marker = tmp_path / "INJ"
    injected = f"cuda') if __import__('os').system('touch {marker}') else torch.device('cpu"
    with pytest.raises(ValueError, match="expected device 'cpu', 'mps', 'cuda' or 'cuda:N'"):
        build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out", device=injected)
    with pytest.raises(ValueError, match=r"starting with '\$', '@' or '%' would be evaluated"):
        build_inference_command(SADAAN_BUNDLE, tmp_path / "in", tmp_path / "out", overrides={"ckpt_path": "$print(1)"})
    assert not marker.exists()


@pytest.mark.parametrize("value", ["flase", "2", "", None])
def test_a_switch_that_is_neither_true_nor_false(value):
    with pytest.raises(ValueError, match=rf"expected use_checkpoint to be true or false .*got {re.escape(repr(value))}"):
        _tiny_net(use_checkpoint=value)


def test_iam4vp_frames_missing_a_channel_or_without_data_in_one(tmp_path):
    from seq_models.data.cloud_generator import generate_cloud_dataset
    from seq_models.data.satellite import SatelliteWindowDataset, write_frames

    da = generate_cloud_dataset(4, 8, 8, num_channels=2, seed=0)
    path = write_frames(da, tmp_path / "two.zarr")
    with pytest.raises(ValueError, match=r"expected channels \['WV_073'\] in .*two.zarr .*it holds \['IR_016', 'IR_039'\]"):
        SatelliteWindowDataset(path, 2, 1, channels=["IR_016", "WV_073"])
    da[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"got \['IR_039'\] entirely NaN"):
        SatelliteWindowDataset(write_frames(da, tmp_path / "dead.zarr"), 2, 1)


# ---------------------------------------------------------------- outputs: ownership, all or nothing, one-line causes
# (issue 22 items 1, 5, 6, 8)
def _run_inference_patched(
    inputs: Path, outputs: Path, patch: str, *extra: str, ckpt: Path | None = None
) -> subprocess.CompletedProcess:
    """The bundle's command line (``python -m monai.bundle run ...``) in a process that first runs ``patch``."""
    ckpt = ckpt or inputs.parent / "model.pt"
    if not ckpt.exists():
        torch.save(_tiny_net().state_dict(), ckpt)
    argv = ["monai.bundle", "run", "--config_file", "configs/inference.json", "--dataset_dir", str(inputs),
            "--output_dir", str(outputs), "--ckpt_path", str(ckpt), *TINY, *extra]  # fmt: skip
    code = f"{patch}\nimport runpy, sys\nsys.argv = {argv!r}\nrunpy.run_module('monai.bundle', run_name='__main__')\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=SADAAN_BUNDLE, capture_output=True, text=True, encoding="utf-8",
        errors="replace", timeout=300, env=env,
    )  # fmt: skip


_DISK_FULL_AT_CASE_2 = """
import errno
import monai_sadaan.io.case_writer as cw
_real, _calls = cw.write_label_map_nifti, []
def _full(*args, **kwargs):
    _calls.append(1)
    if len(_calls) == 2:
        raise OSError(errno.ENOSPC, "No space left on device")
    return _real(*args, **kwargs)
cw.write_label_map_nifti = _full
"""


@pytest.mark.slow
def test_bundle_disk_full_on_case_2_of_3_keeps_earlier_results_and_says_so_in_one_line(tmp_path):
    """Before: cases 1..k of the failed run sat beside older results unmarked, with a 153-line traceback.
    Now: nothing of the failed run is put in place, earlier results stay byte for byte, the manifest says
    'failed', and stderr ends in one line naming the cause (no traceback). The first run also checks that
    ``--write_segmentation false`` writes no .seg.nrrd (it did: the string "false" was true)."""
    from monai_sadaan.data import generate_phantom, save_phantom

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for i in range(3):
        save_phantom(generate_phantom("normal", seed=i, shape=24), inputs / f"c{i}.nii.gz")
    r = _run_inference_patched(inputs, outputs, "", "--write_segmentation", "false")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in outputs.iterdir()) == ["c0", "c1", "c2", "sadaan_run.json"]
    assert not list(outputs.rglob("*.seg.nrrd"))
    first = json.loads((outputs / "sadaan_run.json").read_text())
    assert first["status"] == "complete" and [i["case"] for i in first["inputs"]] == ["c0", "c1", "c2"]
    before = {p.relative_to(outputs).as_posix(): p.read_bytes() for p in outputs.rglob("*") if p.is_file()}

    r = _run_inference_patched(inputs, outputs, _DISK_FULL_AT_CASE_2)
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr + r.stdout, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: no space left on device (ENOSPC) while writing case 'c1' into {outputs}; nothing of this run was "
        f"put in place in {outputs}, earlier results there are unchanged"
    )
    after = {p.relative_to(outputs).as_posix(): p.read_bytes() for p in outputs.rglob("*") if p.is_file()}
    manifest = json.loads(after.pop("sadaan_run.json"))
    before.pop("sadaan_run.json")
    assert after == before  # no staging left, no case of the failed run, earlier results unchanged
    assert manifest["status"] == "failed" and manifest["error"]["errno"] == "ENOSPC"
    assert {r["case"]: r["run_id"] for r in manifest["results"]} == {c: first["run_id"] for c in ("c0", "c1", "c2")}


@pytest.mark.slow
def test_bundle_run_into_the_parent_of_its_dicom_series_is_refused(tmp_path):
    """Before: ``run patient/ct patient`` deleted the DICOM files of patient/ct and exited 0."""
    from monai_sadaan.data import generate_phantom
    from monai_sadaan.data.writers import save_phantom_dicom_series

    patient = tmp_path / "patient"
    series = patient / "ct"
    save_phantom_dicom_series(generate_phantom("normal", seed=1, shape=24), series)
    before = {p.relative_to(patient).as_posix(): p.read_bytes() for p in patient.rglob("*") if p.is_file()}
    r = _run_inference_patched(series, patient, "", ckpt=tmp_path / "model.pt")
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: refused to write into {patient} (2 problems): 1) case folder {series} is its own input")
    assert "holds 24 entries this tool did not write: slice_0001.dcm" in last and last.endswith("nothing was written")
    after = {p.relative_to(patient).as_posix(): p.read_bytes() for p in patient.rglob("*") if p.is_file()}
    assert after == before
