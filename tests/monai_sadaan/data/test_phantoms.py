from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data import (
    DEFAULT_STRUCTURES,
    SCENARIOS,
    TISSUE_HU,
    generate_phantom,
    parse_orientation,
    save_phantom,
    structure_presence,
)
from monai_sadaan.data.geometry import all_orientation_codes
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
