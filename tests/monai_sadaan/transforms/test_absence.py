"""``monai_sadaan.transforms.absence``: field-of-view cuts, structure-edge cuts and synthetic resections, and the
training pipeline they run in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

from monai_sadaan.transforms import (
    CTWindowd,
    FitToSpatialSized,
    LabelMapToStructures,
    LabelMapToStructuresd,
    RandFieldOfViewCrop,
    RandFieldOfViewCropd,
    RandStructureEdgeCrop,
    RandStructureEdgeCropd,
    RandSyntheticResection,
    RandSyntheticResectiond,
)
from tests.monai_sadaan.transforms.tiny_volumes import STRUCTURES, tiny_label_map


# ---------------------------------------------------------------- RandFieldOfViewCrop


def image_and_label():
    label = tiny_label_map()
    image = np.random.default_rng(1).normal(100, 10, label.shape).astype(np.float32)
    return {"image": image, "label": label}


def derive_targets(d, min_voxels=1, attention_sigma=1.0):
    """The targets of ``d``'s label map, derived as the bundle's ``derive_targets`` does after the augmentations."""
    return LabelMapToStructuresd("label", STRUCTURES, min_voxels=min_voxels, attention_sigma=attention_sigma)(d)


def test_fov_crop_makes_top_structure_absent_in_fill_mode():
    d = image_and_label()
    before = derive_targets(d)
    t = RandFieldOfViewCropd(["image", "label"], prob=1.0, fraction_range=(0.3, 0.3), axes=(0,), max_sides=1)
    for seed in range(20):  # find a draw that cuts the top: the liver (D 0-1) leaves the field of view
        out = t.set_random_state(seed)(d)
        if t.cropper.box[0][0] > 0:
            break
    assert t.cropper.box == ((3, 0, 0), (10, 8, 8))
    out = derive_targets(out)
    np.testing.assert_array_equal(out["presence_targets"], [0.0, 1.0, 1.0])
    assert out["segmentation_targets"][0].sum() == 0 and out["attention_targets"][0].max() == 0
    np.testing.assert_array_equal(out["segmentation_targets"][1:], before["segmentation_targets"][1:])
    assert out["image"].shape == d["image"].shape and (out["image"][:, :3] == 0).all()
    np.testing.assert_array_equal(out["image"][:, 3:], d["image"][:, 3:])
    assert (out["label"] == 1).sum() == 0
    # the input dict is left as it was
    np.testing.assert_array_equal(d["label"], tiny_label_map())
    np.testing.assert_array_equal(before["presence_targets"], [1.0, 1.0, 1.0])


def test_fov_crop_then_targets_count_presence_with_min_voxels():
    d = image_and_label()
    # cut the bottom 2 of 10 slices: the kidney voxel (D 9) goes, the spleen keeps D 4-7 = 64 voxels
    t = RandFieldOfViewCropd(["image", "label"], prob=1.0, fraction_range=(0.2, 0.2))
    for seed in range(20):
        out = t.set_random_state(seed)(d)
        if t.cropper.box[1][0] < 10:
            break
    assert t.cropper.box == ((0, 0, 0), (8, 8, 8))
    out = derive_targets(out, min_voxels=65)
    np.testing.assert_array_equal(out["presence_targets"], [0.0, 0.0, 0.0])  # liver 24 < 65, spleen 64 < 65
    assert out["segmentation_targets"].sum() == 0


def test_fov_crop_mode_returns_smaller_arrays_that_fit_again():
    d = image_and_label()
    pipeline = Compose(
        [
            RandFieldOfViewCropd(
                ["image", "label"], prob=1.0, fraction_range=(0.2, 0.4), axes=(0, 1), max_sides=4, mode="crop"
            ),
            FitToSpatialSized(["image", "label"], (8, 8, 8), interp_mode=("trilinear", "nearest-exact")),
            LabelMapToStructuresd("label", STRUCTURES, attention_sigma=1.0),
        ]
    ).set_random_state(3)
    crop = pipeline.transforms[0]
    out = crop(d)
    (s0, s1, s2), (e0, e1, e2) = crop.cropper.box
    assert out["image"].shape == (1, e0 - s0, e1 - s1, e2 - s2) and out["image"].shape != d["image"].shape
    assert out["label"].shape[1:] == out["image"].shape[1:]
    np.testing.assert_array_equal(np.asarray(out["image"]), d["image"][:, s0:e0, s1:e1, s2:e2])
    fitted = pipeline(d)
    for key in ("image", "label", "segmentation_targets", "attention_targets"):
        assert tuple(fitted[key].shape[1:]) == (8, 8, 8), key


def test_fov_crop_is_deterministic_and_respects_prob():
    d = image_and_label()
    a = RandFieldOfViewCropd(["image", "label"], prob=1.0, axes=(0, 1, 2), max_sides=3).set_random_state(7)
    b = RandFieldOfViewCropd(["image", "label"], prob=1.0, axes=(0, 1, 2), max_sides=3).set_random_state(7)
    for _ in range(5):
        oa, ob = a(d), b(d)
        assert a.cropper.box == b.cropper.box
        np.testing.assert_array_equal(oa["image"], ob["image"])
    never = RandFieldOfViewCropd(["image", "label"], prob=0.0)(d)
    np.testing.assert_array_equal(never["image"], d["image"])


def test_fov_crop_array_boxes_stay_inside_and_keep_a_voxel():
    t = RandFieldOfViewCrop(prob=1.0, fraction_range=(0.0, 0.9), axes=(0, 1, 2), max_sides=6).set_random_state(0)
    img = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    for _ in range(50):
        out = t(img)
        starts, ends = t.box
        assert all(0 <= s < e <= n for s, e, n in zip(starts, ends, (3, 4, 5)))
        inside = out[:, starts[0] : ends[0], starts[1] : ends[1], starts[2] : ends[2]]
        torch.testing.assert_close(inside, img[:, starts[0] : ends[0], starts[1] : ends[1], starts[2] : ends[2]])
        assert out.sum() == inside.sum()  # fill value 0 outside


def test_fov_crop_errors():
    with pytest.raises(ValueError, match="fraction_range"):
        RandFieldOfViewCrop(fraction_range=(0.5, 1.0))
    with pytest.raises(ValueError, match="axes"):
        RandFieldOfViewCrop(axes=(3,))
    with pytest.raises(ValueError, match="max_sides"):
        RandFieldOfViewCrop(axes=(0,), max_sides=3)
    with pytest.raises(ValueError, match=r"shape \(C, D, H, W\), got \(10, 8\)"):
        RandFieldOfViewCrop(prob=1.0)(np.zeros((10, 8)))
    d = image_and_label()
    d["image"] = d["image"][:, :5]
    with pytest.raises(ValueError, match="one spatial grid"):
        RandFieldOfViewCropd(["image", "label"], prob=1.0)(d)


# ---------------------------------------------------------------- RandStructureEdgeCrop


def test_structure_edge_crop_keeps_the_drawn_share_of_the_target():
    label = tiny_label_map()
    img = torch.arange(10 * 8 * 8, dtype=torch.float32).view(1, 10, 8, 8)
    # spleen: D 4-8 (extent 5); 0.4 * 5 = 2 slices kept. Cutting the top end keeps D 0-5 (6 slices), cutting the
    # bottom end keeps D 7-9 (3 slices): the larger volume wins
    t = RandStructureEdgeCrop(prob=1.0, kept_fraction_range=(0.4, 0.4), candidate_labels=[2])
    out = t(img, label)
    assert t.target_label == 2 and t.box == ((0, 0, 0), (6, 8, 8))
    torch.testing.assert_close(out, img[:, :6])
    assert int((t(label, randomize=False) == 2).sum()) == 2 * 4 * 4
    # nothing kept: the edge stops at the spleen's first slice
    t = RandStructureEdgeCrop(prob=1.0, kept_fraction_range=(0.0, 0.0), candidate_labels=[2])
    assert t(img, label).shape == (1, 4, 8, 8) and t.box == ((0, 0, 0), (4, 8, 8))
    # liver: D 0-1; one slice kept. The top cut would keep 1 slice, the bottom cut keeps D 1-9
    t = RandStructureEdgeCrop(prob=1.0, kept_fraction_range=(0.5, 0.5), candidate_labels={"liver": 1})
    out = t(label, label)
    assert t.box == ((1, 0, 0), (10, 8, 8)) and int((out == 1).sum()) == 3 * 4
    # along W (axis 2) the liver spans columns 2-5: a quarter of it kept is one column, the top cut keeps W 0-2
    t = RandStructureEdgeCrop(prob=1.0, kept_fraction_range=(0.25, 0.25), axes=(2,), candidate_labels=[1])
    out = t(label, label)
    assert t.box == ((0, 0, 0), (10, 8, 3)) and int((out == 1).sum()) == 2 * 3


def test_structure_edge_crop_draws_every_structure_and_respects_prob():
    label = tiny_label_map()
    t = RandStructureEdgeCrop(prob=1.0, kept_fraction_range=(0.0, 0.3), axes=(0, 1, 2)).set_random_state(0)
    targets = set()
    for _ in range(40):
        out = t(label, label)
        targets.add(t.target_label)
        starts, ends = t.box
        assert all(0 <= s < e <= n for s, e, n in zip(starts, ends, (10, 8, 8)))
        kept = int((out == t.target_label).sum())
        assert kept < int((label == t.target_label).sum())  # at most 30 % of its extent stays
    assert targets == {1, 2, 3}
    never = RandStructureEdgeCrop(prob=0.0)
    np.testing.assert_array_equal(never(label, label), label)
    assert never.target_label is None
    # no candidate in the label map: nothing is cut
    t = RandStructureEdgeCrop(prob=1.0, candidate_labels=[7])
    np.testing.assert_array_equal(t(label, label), label)
    assert t.target_label is None and t.box == ((0, 0, 0), (10, 8, 8))


def test_structure_edge_crop_dict_cuts_every_key_and_targets_follow():
    d = image_and_label()
    t = RandStructureEdgeCropd(["image", "label"], prob=1.0, kept_fraction_range=(0.0, 0.0), candidate_labels=[2])
    out = derive_targets(t.set_random_state(0)(d))
    # the spleen (D 4-8) and the kidney voxel (D 9) leave with the cut at D 4; the liver stays whole
    assert t.cropper.box == ((0, 0, 0), (4, 8, 8))
    for key in ("image", "label", "segmentation_targets", "attention_targets"):
        assert tuple(out[key].shape[1:]) == (4, 8, 8), key
    np.testing.assert_array_equal(out["presence_targets"], [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(out["image"]), d["image"][:, :4])
    assert out["segmentation_targets"][0].sum() == 24
    np.testing.assert_array_equal(d["label"], tiny_label_map())  # the input dict is left as it was
    a = RandStructureEdgeCropd(["image", "label"], prob=1.0, axes=(0, 1, 2)).set_random_state(5)
    b = RandStructureEdgeCropd(["image", "label"], prob=1.0, axes=(0, 1, 2)).set_random_state(5)
    for _ in range(5):
        np.testing.assert_array_equal(a(d)["image"], b(d)["image"])
        assert a.cropper.box == b.cropper.box


def test_structure_edge_crop_errors():
    label = tiny_label_map()
    with pytest.raises(ValueError, match="kept_fraction_range"):
        RandStructureEdgeCrop(kept_fraction_range=(0.5, 1.5))
    with pytest.raises(ValueError, match="label map .* got None"):
        RandStructureEdgeCrop(prob=1.0)(np.zeros((1, 10, 8, 8)))
    with pytest.raises(ValueError, match=r"on the image grid \(10, 8, 8\), got shape \(1, 5, 8, 8\)"):
        RandStructureEdgeCrop(prob=1.0)(np.zeros((1, 10, 8, 8)), label[:, :5])
    with pytest.raises(ValueError, match=r"label map of shape \(1, D, H, W\)"):
        RandStructureEdgeCrop(prob=1.0).randomize(label[0])
    d = image_and_label()
    with pytest.raises(KeyError, match="'seg'"):
        RandStructureEdgeCropd(["image"], label_key="seg", prob=1.0)(d)


# ---------------------------------------------------------------- RandSyntheticResection


def resection_dict():
    label = tiny_label_map()
    image = np.full(label.shape, 10.0, np.float32)
    image[label == 2] = 300.0  # the spleen is bright
    rng = np.random.default_rng(2)
    image += rng.normal(0, 5, label.shape).astype(np.float32)
    image[0, :, 0, :] = -50.0  # a dark wall far from the spleen, outside its ring
    return {"image": image, "label": label}


def ring_values(image, label, value, width):
    region = torch.as_tensor(label[0] == value)
    dilated = torch.nn.functional.max_pool3d(region[None, None].float(), 2 * width + 1, 1, width)[0, 0] > 0
    ring = (dilated & ~region & torch.as_tensor(label[0] == 0)).numpy()
    return image[0][ring]


def test_resection_removes_the_structure_and_fills_from_its_ring():
    d = resection_dict()
    before = derive_targets(d)
    t = RandSyntheticResectiond("image", "label", STRUCTURES, candidates=["spleen"], prob=1.0, ring_width=1)
    out = derive_targets(t.set_random_state(0)(d))
    assert t.removed_label == 2
    region = d["label"][0] == 2
    assert (out["label"] == 2).sum() == 0 and (out["label"][0][region] == 0).all()
    ring = ring_values(d["image"], d["label"], 2, 1)
    filled = out["image"][0][region]
    assert ring.min() <= filled.min() and filled.max() <= ring.max()
    assert filled.max() < 100.0  # nothing of the bright organ is left
    assert abs(filled.mean() - ring.mean()) < 3 * ring.std() / np.sqrt(region.sum()) + 1.0
    assert filled.std() > 0.5 * ring.std()  # the ring's noise level comes along
    np.testing.assert_array_equal(out["image"][0][~region], d["image"][0][~region])  # nothing else changes
    np.testing.assert_array_equal(out["presence_targets"], [1.0, 0.0, 1.0])
    assert out["segmentation_targets"][1].sum() == 0 and out["attention_targets"][1].max() == 0
    np.testing.assert_array_equal(out["segmentation_targets"][0], before["segmentation_targets"][0])
    np.testing.assert_array_equal(before["presence_targets"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(d["label"], tiny_label_map())  # input untouched


def test_resection_is_deterministic_and_picks_only_present_candidates():
    d = resection_dict()
    a = RandSyntheticResectiond("image", "label", STRUCTURES, prob=1.0).set_random_state(5)
    b = RandSyntheticResectiond("image", "label", STRUCTURES, prob=1.0).set_random_state(5)
    removed = set()
    for _ in range(12):
        oa, ob = a(d), b(d)
        assert a.removed_label == b.removed_label
        np.testing.assert_array_equal(oa["image"], ob["image"])
        removed.add(a.removed_label)
    assert removed == {1, 2, 3}
    no_label = dict(d)
    no_label["label"] = np.zeros_like(d["label"])
    out = RandSyntheticResectiond("image", "label", STRUCTURES, prob=1.0)(no_label)
    np.testing.assert_array_equal(out["image"], d["image"])
    assert RandSyntheticResectiond("image", "label", STRUCTURES, prob=0.0)(d)["image"] is d["image"]


def test_resection_array_on_torch_and_label_only_dict():
    d = resection_dict()
    t = RandSyntheticResection(prob=1.0, candidate_labels=[1]).set_random_state(0)
    img, lab = t(torch.as_tensor(d["image"]), MetaTensor(torch.as_tensor(d["label"])))
    assert isinstance(img, torch.Tensor) and isinstance(lab, MetaTensor)
    assert t.removed_label == 1 and (lab == 1).sum() == 0
    out = RandSyntheticResectiond("image", "label", STRUCTURES, candidates=[3], prob=1.0, allow_missing_keys=True)(
        {"label": d["label"]}
    )
    out = derive_targets(out)
    assert (out["label"] == 3).sum() == 0 and out["presence_targets"].tolist() == [1.0, 1.0, 0.0]


def test_resection_errors():
    with pytest.raises(ValueError, match="unknown candidate structure 'heart'"):
        RandSyntheticResectiond("image", "label", STRUCTURES, candidates=["heart"])
    with pytest.raises(ValueError, match="unknown candidate label value 7"):
        RandSyntheticResectiond("image", "label", STRUCTURES, candidates=[7])
    with pytest.raises(ValueError, match="ring_width"):
        RandSyntheticResection(ring_width=0)
    d = resection_dict()
    with pytest.raises(ValueError, match="same grid"):
        RandSyntheticResection(prob=1.0)(d["image"][:, :5], d["label"])
    with pytest.raises(ValueError, match=r"expected a label map of shape \(1, D, H, W\), got \(10, 8, 8\)"):
        RandSyntheticResection(prob=1.0)(d["image"], d["label"][0])


# ---------------------------------------------------------------- targets derived once, after the augmentations


def hand_volume():
    """[1, 6, 3, 3]: structure 1 the 2x2 corner of the top slice (4 voxels), 2 a 2x2x2 block at D 3-4 (8 voxels),
    3 one voxel of the bottom slice."""
    label = np.zeros((1, 6, 3, 3), np.int64)
    label[0, 0, 0:2, 0:2] = 1
    label[0, 3:5, 1:3, 1:3] = 2
    label[0, 5, 0, 0] = 3
    image = np.arange(label.size, dtype=np.float32).reshape(label.shape)
    return {"image": image, "label": label}


def remove_a_structure(kind):
    """``(augmentation, channel it removes)``: a field-of-view cut of the top slice (structure 1 leaves) or the
    resection of structure 2."""
    if kind == "field_of_view_crop":
        t = RandFieldOfViewCropd(["image", "label"], prob=1.0, fraction_range=(0.2, 0.2), axes=(0,))
        for seed in range(20):  # round(0.2 * 6) = 1 slice off the top (structure 1) or the bottom (structure 3)
            t.set_random_state(seed)(hand_volume())
            if t.cropper.box[0][0] == 1:
                return t.set_random_state(seed), 0
        raise AssertionError("no seed in 0..19 cuts the top slice")
    return RandSyntheticResectiond("image", "label", STRUCTURES, candidates=["spleen"], prob=1.0), 1


def before_and_patched(kind, sigma):
    """What the pipeline gave before the targets moved after the augmentations: targets of the original label map,
    then the patch the augmentations applied (the cut slab zeroed and presence recounted; the resected channel
    zeroed and its presence set to 0)."""
    masks, presence, attention = LabelMapToStructures(STRUCTURES, attention_sigma=sigma)(hand_volume()["label"])
    if kind == "field_of_view_crop":
        masks[:, 0], attention[:, 0] = 0.0, 0.0
        presence = (masks.reshape(3, -1).sum(1) >= 1).astype(np.float32)
    else:
        presence[1] = 0.0
    keep = presence.reshape(-1, 1, 1, 1)
    return masks * keep, presence, attention * keep


@pytest.mark.parametrize("kind", ["field_of_view_crop", "synthetic_resection"])
def test_targets_derived_after_an_absence_augmentation_by_hand(kind):
    t, removed = remove_a_structure(kind)
    out = t(hand_volume())
    assert int((out["label"] == removed + 1).sum()) == 0
    # by hand, attention_sigma 0 (attention = mask): the removed channel is empty and absent, the others unchanged
    masks = np.zeros((3, 6, 3, 3), np.float32)
    masks[0, 0, 0:2, 0:2] = 1.0
    masks[1, 3:5, 1:3, 1:3] = 1.0
    masks[2, 5, 0, 0] = 1.0
    masks[removed] = 0.0
    presence = np.ones(3, np.float32)
    presence[removed] = 0.0
    got = derive_targets(out, attention_sigma=0.0)
    np.testing.assert_array_equal(got["segmentation_targets"], masks)
    np.testing.assert_array_equal(got["presence_targets"], presence)
    np.testing.assert_array_equal(got["attention_targets"], masks)
    # and equal to deriving before the augmentation and patching, halo included (no halo reaches the cut slab)
    for sigma in (0.0, 0.5):
        got = derive_targets(out, attention_sigma=sigma)
        want = before_and_patched(kind, sigma)
        for key, w in zip(("segmentation_targets", "presence_targets", "attention_targets"), want):
            np.testing.assert_array_equal(got[key], w, err_msg=f"{key}, sigma {sigma}")


@pytest.mark.parametrize("kind", ["field_of_view_crop", "synthetic_resection"])
def test_absence_augmentations_leave_the_targets_alone(kind):
    """They edit the image and the label map only: targets already in the dict are neither cut nor patched."""
    d = derive_targets(hand_volume())
    t, removed = remove_a_structure(kind)
    out = t(d)
    assert int((out["label"] == removed + 1).sum()) == 0
    for key in ("segmentation_targets", "presence_targets", "attention_targets"):
        assert out[key] is d[key], key


# ---------------------------------------------------------------- the training pipeline as a whole


def test_training_pipeline_keeps_label_masks_and_presence_consistent():
    """MetaTensors through window, fit, field-of-view cut, resection and targets, then collation: after every
    draw the masks equal the label map's structures, presence equals 'mask has >= min_voxels voxels', and the
    attention targets are zero exactly for absent structures."""
    from monai.data import list_data_collate

    label = np.zeros((1, 10, 12, 14), np.float32)
    label[0, 0:3, 2:6, 2:7] = 1
    label[0, 4:9, 5:10, 6:12] = 2
    label[0, 8:10, 0:3, 0:3] = 3
    image = np.where(label > 0, 60.0, -40.0).astype(np.float32) + np.random.default_rng(4).normal(
        0, 10, label.shape
    ).astype(np.float32)
    min_voxels = 3
    pipeline = Compose(
        [
            CTWindowd("image"),
            FitToSpatialSized(["image", "label"], (8, 8, 8), interp_mode=("trilinear", "nearest-exact")),
            RandFieldOfViewCropd(["image", "label"], prob=0.7, axes=(0, 1, 2), max_sides=2),
            RandSyntheticResectiond("image", "label", STRUCTURES, prob=0.5, min_voxels=min_voxels),
            LabelMapToStructuresd("label", STRUCTURES, min_voxels=min_voxels, attention_sigma=1.0),
        ]
    ).set_random_state(11)
    samples = []
    saw_absent = False
    for _ in range(12):
        out = pipeline({"image": MetaTensor(torch.as_tensor(image)), "label": MetaTensor(torch.as_tensor(label))})
        assert isinstance(out["image"], MetaTensor) and isinstance(out["segmentation_targets"], MetaTensor)
        masks, presence = out["segmentation_targets"].numpy(), np.asarray(out["presence_targets"])
        lab = out["label"].numpy()[0]
        for s, value in enumerate(STRUCTURES.values()):
            count = int((lab == value).sum())
            if presence[s]:
                np.testing.assert_array_equal(masks[s], (lab == value).astype(np.float32))
                assert count >= min_voxels and out["attention_targets"][s].max() == 1.0
            else:
                assert masks[s].sum() == 0 and out["attention_targets"][s].max() == 0
                saw_absent = True
        samples.append(out)
    assert saw_absent
    batch = list_data_collate(samples[:4])
    assert batch["image"].shape == (4, 1, 8, 8, 8) and batch["segmentation_targets"].shape == (4, 3, 8, 8, 8)
    assert batch["presence_targets"].shape == (4, 3)


def test_bundle_training_pipeline_derives_the_targets_once_after_the_augmentations(tmp_path):
    """``train.json``'s ``train#preprocessing`` with both absence augmentations forced on (overridden by id): one
    ``LabelMapToStructuresd``, after every augmentation, so each sample's targets are those of its own edited label
    map, attention halo included; ``validate#preprocessing`` derives the same targets without augmentation."""
    import nibabel as nib
    from monai.bundle import ConfigParser

    bundle = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"
    label = np.zeros((20, 20, 20), np.int16)
    label[2:8, 3:9, 4:10] = 1
    label[2:8, 11:17, 4:10] = 2
    label[9:16, 4:12, 10:17] = 3
    label[14:19, 13:18, 3:8] = 4
    label[10:13, 13:17, 12:17] = 5
    image = np.where(label > 0, 40 + 10 * label, -80).astype(np.int16)
    for name, array in (("image", image), ("label", label)):
        nib.save(nib.Nifti1Image(array, np.diag([1.5, 1.5, 2.0, 1.0])), str(tmp_path / f"{name}.nii.gz"))
    item = {"image": str(tmp_path / "image.nii.gz"), "label": str(tmp_path / "label.nii.gz"), "scenario": "normal"}

    parser = ConfigParser()
    parser.read_config(str(bundle / "configs" / "train.json"))
    parser["bundle_root"] = str(bundle)
    parser["spatial_size"] = [16, 16, 16]
    for augmentation in ("augment_field_of_view_crop", "augment_synthetic_resection"):
        parser[f"{augmentation}#prob"] = 1.0
    parser.get_parsed_content("imports")
    train = parser.get_parsed_content("train#preprocessing").set_random_state(0)
    validate = parser.get_parsed_content("validate#preprocessing")
    names = [type(t).__name__ for t in train.transforms]
    assert names.count("LabelMapToStructuresd") == 1
    assert all(names.index("LabelMapToStructuresd") > i for i, n in enumerate(names) if n.startswith("Rand"))
    assert [type(t).__name__ for t in validate.transforms].count("LabelMapToStructuresd") == 1

    structures, min_voxels = parser.get_parsed_content("structures"), parser.get_parsed_content("min_voxels")
    derive = LabelMapToStructures(structures, min_voxels=min_voxels)
    plain = validate(dict(item))
    np.testing.assert_array_equal(np.asarray(plain["presence_targets"]), [1.0] * 5)
    for key, want in zip(("segmentation_targets", "presence_targets", "attention_targets"), derive(plain["label"])):
        np.testing.assert_array_equal(np.asarray(plain[key]), np.asarray(want), err_msg=key)
    absent = 0
    for _ in range(6):
        out = train(dict(item))
        want = derive(out["label"])
        for key, w in zip(("segmentation_targets", "presence_targets", "attention_targets"), want):
            np.testing.assert_array_equal(np.asarray(out[key]), np.asarray(w), err_msg=key)
        absent += int((np.asarray(out["presence_targets"]) == 0).sum())
    assert absent >= 6  # every sample lost at least its resected structure
