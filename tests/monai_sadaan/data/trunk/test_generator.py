from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data import DEFAULT_STRUCTURES, structure_presence
from monai_sadaan.data.scenarios import SCENARIOS, TRUNK_SCENARIOS
from monai_sadaan.data.trunk import DEFAULT_FOV_WEIGHTS, FIELDS_OF_VIEW, TrunkPhantom, generate_trunk_phantom
from monai_sadaan.data.trunk.physics import TISSUE_INDEX

SMALL = (40, 36, 40)
FIVE = tuple(DEFAULT_STRUCTURES)


def _tissue_case(scenario, seed, **kwargs):
    """A case and its tissue-class map (RAS), by catching the canvas the generator paints."""
    import monai_sadaan.data.trunk.generator as gen

    caught = {}
    original = gen.render_patient

    def spy(canvas, patient, removed):
        caught["canvas"], caught["patient"] = canvas, patient
        return original(canvas, patient, removed)

    gen.render_patient = spy
    try:
        p = generate_trunk_phantom(scenario, seed, **kwargs)
    finally:
        gen.render_patient = original
    return p, caught["canvas"], caught["patient"]


def test_scenarios_and_fields_of_view_constants():
    assert TRUNK_SCENARIOS == SCENARIOS + ("pancreatectomy",)
    assert FIELDS_OF_VIEW == (
        "chest", "chest_abdomen", "abdomen", "abdomen_pelvis", "pelvis", "slab", "whole_trunk", "limited_abdomen",
    )  # fmt: skip


def test_deterministic_for_a_seed():
    a = generate_trunk_phantom("splenectomy", 3, shape=SMALL)
    b = generate_trunk_phantom("splenectomy", 3, shape=SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.affine, b.affine)
    assert (a.field_of_view, a.phase) == (b.field_of_view, b.phase)
    c = generate_trunk_phantom("splenectomy", 4, shape=SMALL)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(3))
def test_presence_is_the_label_count(seed):
    p = generate_trunk_phantom("multi_organ_absence", seed, shape=SMALL)
    present, counts = structure_presence(p.label, p.structures, p.min_voxels)
    assert present == p.present and counts == p.voxel_counts
    assert isinstance(p, TrunkPhantom)
    meta = p.metadata()
    assert meta["field_of_view"] == p.field_of_view and meta["phase"] == p.phase and meta["intensity_mode"] == "ct"
    json.dumps(meta)


@pytest.mark.parametrize("fov", ["chest", "pelvis"])
@pytest.mark.parametrize("seed", range(3))
def test_chest_and_pelvis_views_hold_none_of_the_five(fov, seed):
    p = generate_trunk_phantom("normal", seed, field_of_view=fov, shape=SMALL)
    assert p.field_of_view == fov
    assert not any(p.present.values())
    assert all(c == 0 for c in p.voxel_counts.values())
    assert p.image.max() > 300  # bone in view
    assert (p.image > -500).mean() > 0.2  # a body, not an empty box


@pytest.mark.parametrize("seed", range(3))
def test_abdomen_view_holds_all_five_in_the_normal_scenario(seed):
    p = generate_trunk_phantom("normal", seed, field_of_view="abdomen", shape=(48, 44, 40))
    assert all(p.present.values()), p.voxel_counts


def test_nephrectomy_left_bed_is_fat_or_bowel():
    p, canvas, patient = _tissue_case("nephrectomy_left", 2, field_of_view="abdomen", shape=(56, 52, 48),
                                      orientation="RAS")
    assert p.voxel_counts["left_kidney"] == 0 and not p.present["left_kidney"]
    assert p.present["right_kidney"]
    k = patient.organs["left_kidney"]
    box = canvas.box(k.extent(0.6))
    r, _ = k.radius(*canvas.grid(box))
    inside = np.broadcast_to(r < 0.6, canvas.tissue[box].shape)
    bed = canvas.tissue[box][inside]
    allowed = [TISSUE_INDEX[t] for t in ("visceral_fat", "fat", "gut_wall", "gut_fluid", "feces", "gas", "soft_tissue",
                                         "metal", "muscle", "venous_blood", "arterial_blood", "urine",
                                         "spleen")]  # the spleen's lower pole sinks into the empty left fossa
    assert bed.size > 0 and np.isin(bed, allowed).mean() > 0.95
    fat_or_bowel_tissues = ("visceral_fat", "fat", "gut_wall", "gut_fluid", "feces", "gas")
    fat_or_bowel = np.isin(bed, [TISSUE_INDEX[t] for t in fat_or_bowel_tissues])
    assert fat_or_bowel.mean() > 0.6
    bed_hu = p.image[box][inside]  # orientation RAS: the image has the canvas' voxel order
    assert np.median(bed_hu) < 20.0  # fat and bowel, not kidney parenchyma (which enhances to > 100 HU or ~35)


def test_kidneys_beside_the_spine_right_lower_than_left():
    dz = []
    for seed in range(3):
        p, canvas, patient = _tissue_case("normal", seed, field_of_view="abdomen", shape=(40, 36, 40))
        left, right = p.world_centroid("left_kidney"), p.world_centroid("right_kidney")
        assert left[0] < -25 < 25 < right[0]  # either side of the spine (RAS: +x is the patient's right)
        assert abs(left[0]) < 110 and abs(right[0]) < 110
        L = patient.level_z
        for c in (left, right):
            assert L["L4"] < c[2] < L["T11"]  # about T12-L3
            ys = float(patient.spine_xy(np.array([c[2]]))[1][0])
            assert abs(c[1] - ys) < 40  # beside the vertebral body, not in front of it
        dz.append(left[2] - right[2])
    assert np.mean(dz) > 5.0


def test_organ_volumes_within_adult_ranges():
    """Median labelled volume over whole-trunk cases, against adult ranges of anatomy texts (kidney about
    120-200 mL each, liver 1.2-2 L, spleen 150-250 mL, pancreas 60-100 mL), with room for the coarse grid."""
    volumes = {name: [] for name in FIVE}
    for seed in range(4):
        p = generate_trunk_phantom("normal", 100 + seed, field_of_view="whole_trunk", shape=(72, 72, 120))
        voxel_ml = abs(np.linalg.det(p.affine[:3, :3])) / 1000.0
        for name in FIVE:
            volumes[name].append(p.voxel_counts[name] * voxel_ml)
    median = {name: float(np.median(v)) for name, v in volumes.items()}
    assert 110.0 < median["left_kidney"] < 210.0 and 110.0 < median["right_kidney"] < 210.0, median
    assert 1100.0 < median["liver"] < 2200.0, median
    assert 110.0 < median["spleen"] < 280.0, median
    assert 45.0 < median["pancreas"] < 110.0, median


def test_domain_randomisation_changes_intensities_not_labels():
    ct = generate_trunk_phantom("normal", 5, field_of_view="abdomen", shape=SMALL)
    rnd = generate_trunk_phantom("normal", 5, field_of_view="abdomen", shape=SMALL, intensity_mode="random")
    np.testing.assert_array_equal(ct.label, rnd.label)
    np.testing.assert_array_equal(ct.affine, rnd.affine)
    assert rnd.intensity_mode == "random" and rnd.metadata()["intensity_mode"] == "random"
    liver = ct.label == DEFAULT_STRUCTURES["liver"]
    assert abs(float(np.median(ct.image[liver])) - float(np.median(rnd.image[liver]))) > 1.0 or \
        abs(float(np.median(ct.image[ct.label == 1])) - float(np.median(rnd.image[ct.label == 1]))) > 1.0
    assert not np.allclose(ct.image, rnd.image)
    assert -1024 <= rnd.image.min() and rnd.image.max() <= 3071


def test_hu_per_tissue_and_phase():
    shape = (56, 52, 48)
    kw = dict(field_of_view="abdomen", shape=shape, orientation="RAS")
    by_phase = {ph: _tissue_case("normal", 7, phase=ph, **kw) for ph in ("non_contrast", "arterial", "portal_venous")}

    def median(phase, tissue):
        """Median HU over the tissue's voxels away from its edges (or its upper quartile when it is too thin)."""
        from scipy import ndimage

        p, canvas, _ = by_phase[phase]
        mask = canvas.tissue == TISSUE_INDEX[tissue]
        core = ndimage.binary_erosion(mask, iterations=1)
        if core.sum() >= 20:
            return float(np.median(p.image[core]))
        assert mask.sum() >= 5, tissue
        return float(np.percentile(p.image[mask], 75))

    assert median("arterial", "arterial_blood") > median("non_contrast", "arterial_blood") + 120
    assert median("arterial", "kidney_cortex") > median("non_contrast", "kidney_cortex") + 60
    assert median("portal_venous", "liver") > median("non_contrast", "liver") + 20
    for phase in by_phase:
        assert -200 < median(phase, "visceral_fat") < 0
        assert 20 < median(phase, "muscle") < 110
        assert median(phase, "cancellous_bone") > 100
        p = by_phase[phase][0]
        assert p.image.min() >= -1024 and p.image.max() <= 3071


@pytest.mark.parametrize("orientation", ["LPS", "PLI", None])
def test_grid_affine_and_orientation(orientation):
    p = generate_trunk_phantom("normal", 9, field_of_view="abdomen", shape=SMALL, orientation=orientation)
    assert p.image.shape == p.label.shape == SMALL
    assert p.image.dtype == np.float32 and p.label.dtype == np.int16
    assert nib.aff2axcodes(p.affine) == tuple(p.orientation)
    np.testing.assert_allclose(np.linalg.norm(p.affine[:3, :3], axis=0), p.spacing)
    assert p.world_centroid("left_kidney")[0] < p.world_centroid("right_kidney")[0]
    assert p.world_centroid("spleen")[0] < p.world_centroid("liver")[0]
    ras = generate_trunk_phantom("normal", 9, field_of_view="abdomen", shape=tuple(
        SMALL[j] for j in np.argsort([a for a, _ in __import__("monai_sadaan.data.geometry", fromlist=["x"])
                                      .parse_orientation(p.orientation)])), orientation="RAS")
    np.testing.assert_allclose(p.world_centroid("liver"), ras.world_centroid("liver"), atol=1e-4)


def test_random_grids_follow_the_field_of_view():
    shapes, spacings = [], []
    for seed in range(2):
        p = generate_trunk_phantom("normal", seed, field_of_view="whole_trunk")
        shapes.append(p.shape)
        spacings.append(p.spacing)
        assert all(8 <= n <= 128 for n in p.shape)
        z_axis = [j for j, c in enumerate(p.orientation) if c in "SI"][0]
        assert p.shape[z_axis] * p.spacing[z_axis] > 500  # neck to pelvic floor
    slab = generate_trunk_phantom("normal", 0, field_of_view="slab")
    z_axis = [j for j, c in enumerate(slab.orientation) if c in "SI"][0]
    assert 15 < slab.shape[z_axis] * slab.spacing[z_axis] < 65


@pytest.mark.parametrize("seed", range(3))
def test_limited_abdomen_is_a_short_scan_through_the_organ_band(seed):
    """``limited_abdomen``: 6-15 cm along z, inside the band from the lowest organ's bottom to the higher of the dome
    and the highest organ's top (10 mm either side), so the scan holds abdominal organs."""
    p, _, patient = _tissue_case("normal", seed, field_of_view="limited_abdomen", shape=(24, 24, 24))
    z_lo, z_hi = p.fov_box[2]
    assert 60.0 <= z_hi - z_lo <= 150.0
    names = ("left_kidney", "right_kidney", "liver", "spleen", "pancreas")
    top = max(max(patient.organ_extent(n)[2, 1] for n in names), patient.domes["right"][2], patient.domes["left"][2])
    bottom = min(patient.organ_extent(n)[2, 0] for n in names)
    band = (bottom - 10.0, top + 10.0)
    if band[1] - band[0] > z_hi - z_lo:
        assert band[0] - 1e-6 <= z_lo and z_hi <= band[1] + 1e-6
    else:  # a band shorter than the scan: the scan is centred on it (10 mm play)
        assert abs(0.5 * (z_lo + z_hi) - 0.5 * sum(band)) <= 10.0 + 1e-6
    assert any(p.present.values()) and p.field_of_view == "limited_abdomen"


def test_limited_abdomen_is_drawn_only_when_weighted():
    """Not in the default weights (every seed's default draw is what it was before the field existed); with a weight
    it is drawn."""
    assert "limited_abdomen" not in DEFAULT_FOV_WEIGHTS
    drawn = [generate_trunk_phantom("normal", seed, shape=(8, 8, 8)).field_of_view for seed in range(12)]
    assert "limited_abdomen" not in drawn
    only = {"limited_abdomen": 1.0}
    assert {generate_trunk_phantom("normal", s, fov_weights=only, shape=(8, 8, 8)).field_of_view for s in range(3)} == {
        "limited_abdomen"}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"scenario": "appendectomy"}, "expected scenarios from"),
        ({"field_of_view": "head"}, "expected field_of_view"),
        ({"phase": "delayed"}, "expected phase"),
        ({"intensity_mode": "mri"}, "expected intensity_mode"),
        ({"fov_weights": {"legs": 1}}, "expected field-of-view names"),
        ({"fov_weights": {"chest": -1}}, "non-negative weight"),
        ({"shape": (2, 32, 32)}, "integers >= 4"),
        ({"orientation": "RLS"}, "one letter per patient axis"),
        ({"seed": -1}, "non-negative integer seed"),
        ({"min_voxels": 0}, "min_voxels"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_trunk_phantom(**kwargs)


def test_pancreatectomy_removes_the_pancreas_only_in_the_trunk_generator():
    p = generate_trunk_phantom("pancreatectomy", 1, field_of_view="abdomen", shape=SMALL)
    assert p.removed == ("pancreas",) and not p.present["pancreas"] and p.voxel_counts["pancreas"] == 0
    assert p.present["liver"]
    from monai_sadaan.data import generate_phantom

    with pytest.raises(ValueError, match="expected scenarios from"):
        generate_phantom("pancreatectomy", 0)


def test_labels_sit_on_their_own_tissues():
    p, canvas, _ = _tissue_case("normal", 6, field_of_view="abdomen_pelvis", shape=(48, 44, 56), orientation="RAS")
    own = {
        "left_kidney": ("kidney_cortex", "kidney_medulla"),
        "right_kidney": ("kidney_cortex", "kidney_medulla"),
        "liver": ("liver", "portal_blood", "venous_blood"),
        "spleen": ("spleen",),
        "pancreas": ("pancreas", "visceral_fat"),
    }
    for name, tissues in own.items():
        m = canvas.label == p.structures[name]
        assert m.any(), name
        assert np.isin(canvas.tissue[m], [TISSUE_INDEX[t] for t in tissues]).all(), name
    np.testing.assert_array_equal(canvas.label, p.label)  # RAS: the label map is the canvas'


@pytest.mark.parametrize("seed", range(4))
def test_partial_fov_cuts_an_organ_in_view(seed):
    p = generate_trunk_phantom("partial_fov", seed, shape=(40, 36, 40))
    assert p.field_of_view not in ("chest", "pelvis", "slab")
    assert p.fov_cut is not None and p.removed == ()
    target = p.fov_cut.target
    assert target not in p.structures or not p.present[target] or target in p.truncated


def test_small_bowel_fills_the_mid_abdomen():
    """Between L2 and L4 a real peritoneal cavity is mostly bowel with mesenteric fat between the loops: bowel wall,
    fluid, faeces and gas make up at least 40% of what lies between the organs (version 4 drew about 35%)."""
    bowel = [TISSUE_INDEX[t] for t in ("gut_wall", "gut_fluid", "feces", "gas")]
    free = bowel + [TISSUE_INDEX["visceral_fat"]]
    shares = []
    for seed in range(3):
        _, canvas, patient = _tissue_case("normal", 300 + seed, field_of_view="abdomen", shape=(64, 64, 64))
        zs = canvas.axes[2]
        band = canvas.tissue[:, :, (zs > patient.level_z["L4"]) & (zs < patient.level_z["L2"])]
        shares.append(np.isin(band, bowel).sum() / max(1, np.isin(band, free).sum()))
    assert float(np.mean(shares)) >= 0.40, shares
    # about a third of the small-bowel loops are collapsed (a slit of fluid inside a thick wall)
    assert 0.0 < np.mean([s > 2.5 for s in patient.bowel_lumen_shrink]) < 0.8
    assert len(patient.bowel_lumen_shrink) == len(patient.bowel)


def test_a_crop_renders_the_same_case_on_part_of_the_grid():
    """``crop`` renders only a box of the field of view: the same patient and labels at the same world points, the
    image's own noise aside; the field of view (``fov_box``) is the whole case's."""
    kwargs = dict(field_of_view="abdomen", spacing=4.0, orientation="RAS")
    full = generate_trunk_phantom("normal", 5, **kwargs)
    lo = np.array([10, 12, 6])
    hi = lo + np.array([14, 16, 12])
    edges = (full.affine @ np.c_[np.stack([lo - 0.5, hi - 0.5]), np.ones(2)].T).T[:, :3]
    crop = generate_trunk_phantom("normal", 5, crop=edges.T, **kwargs)
    assert crop.shape == tuple(int(v) for v in hi - lo)
    np.testing.assert_allclose(crop.affine[:3, :3], full.affine[:3, :3])
    np.testing.assert_allclose(crop.affine[:3, 3], (full.affine @ np.r_[lo, 1])[:3], atol=1e-6)
    np.testing.assert_array_equal(crop.label, full.label[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]])
    np.testing.assert_allclose(crop.fov_box, full.fov_box)
    fine = generate_trunk_phantom("normal", 5, crop=edges.T, **{**kwargs, "spacing": 1.5})
    assert np.allclose(fine.spacing, 1.5) and fine.shape == tuple(int(round(v)) for v in (hi - lo) * 4.0 / 1.5)


@pytest.mark.parametrize(
    "crop, message",
    [([[0, 1], [0, 1]], r"\(3, 2\) finite"), ([[0, 1], [0, 1], [2, 1]], "low < high"),
     ([[0, 1], [0, 1], [5000, 5100]], "overlaps the field of view")],
)
def test_bad_crops_raise(crop, message):
    with pytest.raises(ValueError, match=message):
        generate_trunk_phantom("normal", 0, shape=8, crop=crop)


def test_kidneys_lie_in_perirenal_fat():
    """Gerota's fascia keeps a fat plane around each kidney: in the voxels just outside a kidney, fat outnumbers the
    liver, spleen and bowel together, and no bowel loop touches the renal capsule through the perirenal space. With
    ``perirenal_fat_mm`` set to zero (what version 5 drew) the same patient's kidneys touch far more of those."""
    from scipy.ndimage import binary_dilation

    import monai_sadaan.data.trunk.generator as gen

    fat = [TISSUE_INDEX["fat"], TISSUE_INDEX["visceral_fat"]]
    neighbours = [TISSUE_INDEX[t] for t in ("liver", "spleen", "gut_wall", "gut_fluid", "feces", "gas")]

    def shell_shares(canvas):
        shares = []
        for name in ("left_kidney", "right_kidney"):
            kidney = canvas.label == DEFAULT_STRUCTURES[name]
            shell = binary_dilation(kidney) & ~kidney
            shares.append((np.isin(canvas.tissue[shell], fat).mean(), np.isin(canvas.tissue[shell], neighbours).mean()))
        return np.array(shares)

    kwargs = dict(field_of_view="abdomen", spacing=2.5, orientation="RAS")
    _, canvas, patient = _tissue_case("normal", 41, **kwargs)
    assert 3.0 <= patient.extras["perirenal_fat_mm"] <= 29.0
    with_fat = shell_shares(canvas)
    assert (with_fat[:, 0] > with_fat[:, 1]).all(), with_fat

    original = gen.sample_patient

    def thin(*args, **kw):
        p = original(*args, **kw)
        p.extras["perirenal_fat_mm"] = 0.0
        return p

    gen.sample_patient = thin
    try:
        _, canvas0, _ = _tissue_case("normal", 41, **kwargs)
    finally:
        gen.sample_patient = original
    without = shell_shares(canvas0)
    assert (with_fat[:, 1] < without[:, 1]).all() and (with_fat[:, 0] > without[:, 0]).all(), (with_fat, without)


def test_pancreas_fat_fraction_follows_the_patient():
    """A fatty pancreas (interlobular fat, labelled as the gland, as segmentations label it) holds about the fraction
    of fat the patient drew; a lean gland keeps only its thin clefts."""
    import monai_sadaan.data.trunk.generator as gen

    fractions = {}
    for drawn in (0.03, 0.5):
        original = gen.sample_patient

        def fixed(*args, _drawn=drawn, **kw):
            p = original(*args, **kw)
            p.extras["pancreas_fat"] = _drawn
            return p

        gen.sample_patient = fixed
        try:
            _, canvas, _ = _tissue_case("normal", 42, field_of_view="abdomen", spacing=2.0, orientation="RAS")
        finally:
            gen.sample_patient = original
        gland = canvas.label == DEFAULT_STRUCTURES["pancreas"]
        fractions[drawn] = float((canvas.tissue[gland] == TISSUE_INDEX["visceral_fat"]).mean())
    assert fractions[0.03] < 0.1, fractions
    assert 0.35 < fractions[0.5] < 0.6, fractions
