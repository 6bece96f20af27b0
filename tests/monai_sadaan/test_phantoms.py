from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from monai_sadaan.data import (
    DEFAULT_STRUCTURES,
    SCENARIOS,
    TISSUE_HU,
    generate_phantom,
    orientation_affine,
    parse_orientation,
    save_phantom,
    save_phantom_dicom_series,
    structure_presence,
)
from monai_sadaan.data.geometry import affine_to_itk_geometry, all_orientation_codes, itk_geometry_to_affine, reorient_from_ras
from monai_sadaan.data.scenarios import REMOVED_BY_SCENARIO

SMALL = (40, 36, 32)


def world_centroid_from_file(path, value):
    img = nib.load(str(path))
    label = np.asarray(img.dataobj)
    idx = np.argwhere(label == value)
    assert idx.size, f"label {value} missing in {path}"
    return img.affine[:3, :3] @ idx.mean(axis=0) + img.affine[:3, 3]


def test_public_constants():
    assert DEFAULT_STRUCTURES == {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 4, "pancreas": 5}
    assert SCENARIOS == (
        "normal",
        "nephrectomy_left",
        "nephrectomy_right",
        "nephrectomy_bilateral",
        "splenectomy",
        "partial_fov",
        "multi_organ_absence",
    )


@pytest.mark.parametrize("scenario", ["normal", "nephrectomy_left", "nephrectomy_right", "nephrectomy_bilateral", "splenectomy"])
@pytest.mark.parametrize("seed", [0, 1])
def test_fixed_scenarios_remove_exactly_their_organs(scenario, seed):
    p = generate_phantom(scenario, seed, shape=SMALL)
    removed = set(REMOVED_BY_SCENARIO[scenario])
    assert set(p.removed) == removed
    assert p.image.shape == SMALL and p.label.shape == SMALL
    assert p.image.dtype == np.float32 and p.label.dtype == np.int16
    for name, value in DEFAULT_STRUCTURES.items():
        count = int((p.label == value).sum())
        if name in removed:
            assert count == 0 and not p.present[name]
        else:
            assert count >= 20 and p.present[name], (name, count)
    assert set(np.unique(p.label).tolist()) == {0} | {v for n, v in DEFAULT_STRUCTURES.items() if n not in removed}
    # the whole field of view holds the organs: nothing touches the edge outside partial_fov
    assert p.truncated == ()
    assert p.fov_cut is None


@pytest.mark.parametrize("seed", range(4))
def test_multi_organ_absence_removes_several(seed):
    p = generate_phantom("multi_organ_absence", seed, shape=SMALL)
    absent = [n for n, v in p.present.items() if not v]
    assert len(absent) >= 2
    assert set(absent) == set(p.removed) & set(DEFAULT_STRUCTURES)
    assert set(absent) != {"left_kidney", "right_kidney"}  # that is nephrectomy_bilateral
    assert p.present["liver"]


@pytest.mark.parametrize("seed", range(6))
def test_partial_fov_cuts_or_removes_an_organ(seed):
    p = generate_phantom("partial_fov", seed, shape=SMALL)
    assert p.fov_cut is not None and p.removed == ()
    absent = {n for n, v in p.present.items() if not v}
    assert absent or p.truncated, "a partial field of view must cut at least one structure"
    # presence is the recount from the label map with min_voxels
    recount, counts = structure_presence(p.label, p.structures, p.min_voxels)
    assert recount == p.present and counts == p.voxel_counts
    target = p.fov_cut.target
    assert target in absent or target in p.truncated
    for name in p.truncated:
        m = p.label == p.structures[name]
        faces = [m[0], m[-1], m[:, 0], m[:, -1], m[:, :, 0], m[:, :, -1]]
        assert any(f.any() for f in faces)


def test_presence_threshold_is_min_voxels():
    p = generate_phantom("normal", 2, shape=SMALL)
    smallest = min(p.voxel_counts.values())
    assert all(p.present.values())
    q = generate_phantom("normal", 2, shape=SMALL, min_voxels=smallest + 1)
    assert np.array_equal(p.label, q.label)
    assert [n for n, v in q.present.items() if not v] == [n for n, c in p.voxel_counts.items() if c == smallest]


@pytest.mark.parametrize("orientation", ["LPS", "PLI", "SLP", "ARS", None])
def test_left_kidney_lies_on_patient_left_in_written_nifti(tmp_path, orientation):
    p = generate_phantom("normal", 5, shape=SMALL, orientation=orientation)
    if orientation is not None:
        assert nib.aff2axcodes(p.affine) == tuple(orientation)
    image_path, label_path = save_phantom(p, tmp_path / "img.nii.gz", tmp_path / "lbl.nii.gz")
    left = world_centroid_from_file(label_path, DEFAULT_STRUCTURES["left_kidney"])
    right = world_centroid_from_file(label_path, DEFAULT_STRUCTURES["right_kidney"])
    liver = world_centroid_from_file(label_path, DEFAULT_STRUCTURES["liver"])
    spleen = world_centroid_from_file(label_path, DEFAULT_STRUCTURES["spleen"])
    # RAS+: +x is the patient's right
    assert left[0] < right[0]
    assert spleen[0] < liver[0]
    # kidneys are posterior to the liver, the liver is superior to the kidneys
    assert left[1] < liver[1] and right[1] < liver[1]
    assert liver[2] > left[2] and liver[2] > right[2]
    np.testing.assert_allclose(p.world_centroid("left_kidney"), left, atol=1e-4)
    img = nib.load(str(image_path))
    np.testing.assert_allclose(img.affine, p.affine, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), p.image)


def test_deterministic_per_scenario_and_seed():
    a = generate_phantom("splenectomy", 7, shape=SMALL)
    b = generate_phantom("splenectomy", 7, shape=SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.affine, b.affine)
    c = generate_phantom("splenectomy", 8, shape=SMALL)
    assert not np.array_equal(a.label, c.label)
    d = generate_phantom("normal", 7, shape=SMALL)
    assert not np.array_equal(a.image, d.image)


def test_orientation_changes_layout_not_patient():
    ras = generate_phantom("nephrectomy_left", 4, shape=SMALL, orientation="RAS")
    lps = generate_phantom("nephrectomy_left", 4, shape=SMALL, orientation="LPS")
    np.testing.assert_array_equal(lps.image, ras.image[::-1, ::-1, :])
    np.testing.assert_array_equal(lps.label, ras.label[::-1, ::-1, :])
    # voxel (i, j, k) of LPS sits where voxel (I-1-i, J-1-j, k) of RAS sits
    idx = np.array([3, 5, 7])
    ras_idx = np.array([SMALL[0] - 1 - 3, SMALL[1] - 1 - 5, 7])
    np.testing.assert_allclose(lps.affine[:3, :3] @ idx + lps.affine[:3, 3], ras.affine[:3, :3] @ ras_idx + ras.affine[:3, 3])


def test_random_grids_vary():
    phantoms = [generate_phantom("normal", s) for s in range(8)]
    shapes = {p.shape for p in phantoms}
    assert len(shapes) == 8
    assert all(48 <= n <= 96 for p in phantoms for n in p.shape)
    spacings = np.array([p.spacing for p in phantoms])
    assert spacings.min() > 1.0 and spacings.max() < 8.0
    assert spacings.max() / spacings.min() > 1.5
    assert any(max(p.spacing) / min(p.spacing) > 1.2 for p in phantoms)  # anisotropic
    codes = {p.orientation for p in phantoms}
    assert len(codes) >= 3 and codes != {"RAS"}
    for p in phantoms:
        assert nib.aff2axcodes(p.affine) == tuple(p.orientation)
        np.testing.assert_allclose(np.linalg.norm(p.affine[:3, :3], axis=0), p.spacing)
        assert all(p.present.values()) and p.truncated == ()


def test_fixed_shape_and_spacing_fit_the_patient():
    p = generate_phantom("normal", 3, shape=(32, 30, 28), spacing=(2.0, 2.5, 3.0), orientation="RAS")
    assert p.shape == (32, 30, 28)
    np.testing.assert_allclose(p.spacing, (2.0, 2.5, 3.0))
    assert all(p.present.values()) and p.truncated == ()
    q = generate_phantom("normal", 3, spacing=3.0, orientation="LPS")
    np.testing.assert_allclose(q.spacing, (3.0, 3.0, 3.0))


def test_intensities_are_ct_like():
    p = generate_phantom("normal", 1, shape=(48, 44, 40), orientation="RAS")
    assert p.image[0, 0, 0] < -800  # air in the corner
    for name, value in DEFAULT_STRUCTURES.items():
        median = float(np.median(p.image[p.label == value]))
        assert -40.0 < median < 120.0, (name, median)
    body = p.image > -500
    assert np.percentile(p.image[body], 5) < -50  # fat
    assert p.image.max() > 300  # bone
    kidney = np.median(p.image[(p.label == 1) | (p.label == 2)])
    assert abs(kidney - (TISSUE_HU["kidney_cortex"] + TISSUE_HU["kidney_medulla"]) / 2) < 30


def test_configurable_structures():
    structures = {"liver": 7, "aorta": 9, "vertebrae": 11, "gallbladder": 12}
    p = generate_phantom("normal", 0, structures=structures, shape=SMALL)
    assert set(np.unique(p.label).tolist()) <= {0, 7, 9, 11, 12}
    assert p.present == {"liver": True, "aorta": True, "vertebrae": True, "gallbladder": True}
    assert p.structures == structures
    q = generate_phantom("normal", 0, structures=["spleen", "liver"], shape=SMALL)
    assert q.structures == {"spleen": 1, "liver": 2}
    np.testing.assert_array_equal(q.label == 2, p.label == 7)  # same patient, other label values


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scenario": "appendectomy"}, "expected scenarios from"),
        ({"structures": {"heart": 1}}, "expected structure names from"),
        ({"structures": {"liver": 1, "spleen": 1}}, "distinct label value"),
        ({"structures": {"liver": 0}}, "1..32767"),
        ({"shape": (32, 32)}, "three values"),
        ({"shape": (2, 32, 32)}, "integers >= 4"),
        ({"spacing": (1.0, -1.0, 1.0)}, "positive finite"),
        ({"orientation": "RLS"}, "one letter per patient axis"),
        ({"orientation": "XYZ"}, "orientation letters"),
        ({"seed": -1}, "non-negative integer seed"),
        ({"min_voxels": 0}, "min_voxels"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_phantom(**kwargs)


def test_orientation_helpers():
    codes = all_orientation_codes()
    assert len(codes) == 48 and len(set(codes)) == 48 and codes[0] == "RAS"
    assert parse_orientation("PLI") == ((1, -1), (0, -1), (2, -1))
    aff = orientation_affine("PLI", (2.0, 3.0, 4.0), (10.0, 20.0, 30.0))
    np.testing.assert_array_equal(aff[:3, :3], [[0, -3, 0], [-2, 0, 0], [0, 0, -4]])
    assert nib.aff2axcodes(aff) == ("P", "L", "I")
    np.testing.assert_allclose(itk_geometry_to_affine(*affine_to_itk_geometry(aff)), aff)
    arr = np.arange(24).reshape(2, 3, 4)
    out = reorient_from_ras(arr, "PLI")
    assert out.shape == (3, 2, 4)
    assert out[0, 0, 0] == arr[1, 2, 3]  # most Posterior, Left, Inferior voxel of the RAS array


def test_nifti_nrrd_mha_share_geometry(tmp_path):
    p = generate_phantom("normal", 6, shape=(24, 20, 18), orientation="PLI")
    save_phantom(p, tmp_path / "a.nii.gz", tmp_path / "a_label.nrrd")
    save_phantom(p, tmp_path / "a.mha")
    nii, nrrd, mha = (sitk.ReadImage(str(tmp_path / n)) for n in ("a.nii.gz", "a_label.nrrd", "a.mha"))
    for other in (nrrd, mha):
        np.testing.assert_allclose(other.GetOrigin(), nii.GetOrigin(), atol=1e-4)
        np.testing.assert_allclose(other.GetDirection(), nii.GetDirection(), atol=1e-6)
        np.testing.assert_allclose(other.GetSpacing(), nii.GetSpacing(), rtol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(nrrd), p.label.transpose(2, 1, 0))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(mha), p.image.transpose(2, 1, 0))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(nii), p.image.transpose(2, 1, 0))
    with pytest.raises(ValueError, match="expected a file name ending in"):
        save_phantom(p, tmp_path / "a.mhd")
    assert sorted(f.name for f in tmp_path.iterdir()) == ["a.mha", "a.nii.gz", "a_label.nrrd"]  # no temporaries


@pytest.mark.parametrize("orientation", ["LPS", "RAS", "PLI", "LPI", "RPS"])  # the last two are left-handed
def test_dicom_series_reads_back_to_same_geometry(tmp_path, orientation):
    p = generate_phantom("nephrectomy_left", 2, shape=(20, 18, 12), orientation=orientation)
    files = save_phantom_dicom_series(p, tmp_path / "series")
    assert len(files) == 12 and all(f.exists() for f in files)
    series = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(tmp_path / "series"))
    assert len(series) == 1
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path / "series"), series[0]))
    reader.MetaDataDictionaryArrayUpdateOn()
    read = reader.Execute()
    assert reader.GetMetaData(0, "0008|0060").strip() == "CT"
    assert reader.GetMetaData(0, "0020|000e").strip() == series[0]
    # same voxels at the same world positions: compare in one common orientation
    from monai_sadaan.data.writers import phantom_to_sitk

    original = sitk.DICOMOrient(phantom_to_sitk(p.image, p.affine), "LPS")
    read = sitk.DICOMOrient(read, "LPS")
    assert read.GetSize() == original.GetSize()
    np.testing.assert_allclose(read.GetSpacing(), original.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(read.GetOrigin(), original.GetOrigin(), atol=1e-3)
    np.testing.assert_allclose(read.GetDirection(), original.GetDirection(), atol=1e-5)
    diff = sitk.GetArrayFromImage(read).astype(np.float32) - sitk.GetArrayFromImage(original)
    assert np.abs(diff).max() <= 0.5 + 1e-3  # HU rounded to integers
    with pytest.raises(FileExistsError, match="non-empty"):
        save_phantom_dicom_series(p, tmp_path / "series")


def test_preview_png_and_ras_view(tmp_path):
    import matplotlib.image as mpimg

    from monai_sadaan.data.preview import plot_phantom_overview, to_ras

    pli = generate_phantom("splenectomy", 3, shape=(30, 28, 26), orientation="PLI")
    ras = generate_phantom("splenectomy", 3, shape=(28, 30, 26), orientation="RAS")  # PLI's axes 0, 1 are y, x
    image, spacing = to_ras(pli.image, pli.affine)
    np.testing.assert_array_equal(image, ras.image)
    np.testing.assert_allclose(spacing, ras.spacing)
    path = plot_phantom_overview([pli, generate_phantom("normal", 0, shape=SMALL)], tmp_path / "overview.png")
    png = mpimg.imread(str(path))
    assert png.ndim == 3 and png.shape[0] > png.shape[1] * 0.5  # two rows of three panels
    assert png[..., :3].std() > 0.1  # not blank
    with pytest.raises(ValueError, match="at least one phantom"):
        plot_phantom_overview([], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_monai_loaders_agree_on_nifti_and_dicom(tmp_path):
    """The bundle's path: MONAI LoadImage (ITK reader) on the DICOM folder and on the NIfTI file, then RAS."""
    from monai.transforms import Compose, EnsureChannelFirst, LoadImage, Orientation

    p = generate_phantom("nephrectomy_right", 4, shape=(20, 18, 12), orientation="ASL")
    save_phantom(p, tmp_path / "img.nii.gz")
    save_phantom_dicom_series(p, tmp_path / "dicom")
    load = Compose([LoadImage(image_only=True, reader="ITKReader"), EnsureChannelFirst(), Orientation(axcodes="RAS")])
    from_nifti, from_dicom = load(str(tmp_path / "img.nii.gz")), load(str(tmp_path / "dicom"))
    assert from_nifti.shape == from_dicom.shape == (1, 12, 20, 18)  # ASL (20, 18, 12) laid out as R, A, S
    np.testing.assert_allclose(from_dicom.affine.numpy(), from_nifti.affine.numpy(), atol=1e-4)
    assert float((from_dicom - from_nifti).abs().max()) <= 0.5 + 1e-3


@pytest.mark.parametrize("code", all_orientation_codes())
def test_every_orientation_is_the_same_patient_in_world_coordinates(code):
    from monai_sadaan.data.preview import to_ras

    shape = (30, 28, 26)
    p = generate_phantom("normal", 11, shape=shape, orientation=code)
    ras_shape = [0, 0, 0]
    for n, (axis, _) in zip(shape, parse_orientation(code)):
        ras_shape[axis] = n
    ras = generate_phantom("normal", 11, shape=tuple(ras_shape), orientation="RAS")
    assert nib.aff2axcodes(p.affine) == tuple(code)
    image, _ = to_ras(p.image, p.affine)
    np.testing.assert_array_equal(image, ras.image)
    for name in DEFAULT_STRUCTURES:
        np.testing.assert_allclose(p.world_centroid(name), ras.world_centroid(name), atol=1e-6)
    assert p.world_centroid("left_kidney")[0] < p.world_centroid("right_kidney")[0]
    assert p.world_centroid("spleen")[0] < p.world_centroid("liver")[0]


def test_fov_cut_planning_rules():
    from monai_sadaan.data.scenarios import plan_fov_cut

    extents = {
        "liver": np.array([[-10.0, 80.0], [-40.0, 40.0], [0.0, 70.0]]),
        "left_kidney": np.array([[-50.0, -25.0], [-40.0, -20.0], [-40.0, 20.0]]),
        "pancreas": np.array([[-45.0, 20.0], [-10.0, 10.0], [0.0, 25.0]]),
    }
    for seed in range(40):
        rng = np.random.default_rng(seed)
        cut = plan_fov_cut(rng, extents, list(extents), axis_probabilities=(0.0, 0.0, 1.0), absent_probability=1.0)
        low, high = extents[cut.target][2]
        # pushed out through the nearer end of the block [-40, 70]: the liver through the top, the kidney the bottom
        assert cut.side == (1 if cut.target == "liver" else -1 if cut.target == "left_kidney" else cut.side)
        assert (cut.position <= low) if cut.side > 0 else (cut.position >= high)
        lateral = plan_fov_cut(np.random.default_rng(seed), extents, list(extents), axis_probabilities=(1.0, 0.0, 0.0))
        assert lateral.axis == 0 and lateral.target in ("liver", "left_kidney")
        lo, hi = extents[lateral.target][0]
        assert lo < lateral.position < hi  # clipped, never pushed out
        assert lateral.side == (1 if lateral.target == "liver" else -1)
