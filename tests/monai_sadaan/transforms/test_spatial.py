"""``monai_sadaan.transforms.spatial``: a whole volume to the network's grid and back.

``FitToSpatialSize``: resize or pad, invertible through ``Invertd``.

``CTToNetworkGrid`` and the way back (``input_grid_labels`` through ``InputGridLabelMapd``), issue 26: the bundle's
inference path in bounded memory gives what the whole-volume path gave. Tolerance, stated and asserted: **identical**
label maps (0 voxels differ) and identical network inputs and probability maps on the CPU; the written affine is the
input's affine exactly (the whole-volume path's ``Invertd`` recomputed it, off by up to ~1e-14). The whole-volume path
(``Orientationd`` -> ``CTWindowd`` -> ``FitToSpatialSized`` ... ``Invertd`` -> ``PresenceAwareLabelMapd``, the bundle
before issue 26) is kept here as the reference: :data:`REFERENCE_PREPROCESSING` / :data:`REFERENCE_POSTPROCESSING`.
"""

from __future__ import annotations

import copy
import itertools
import json
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, EnsureTyped, Invertd, Orientationd, allow_missing_keys_mode

from monai_sadaan.transforms import (
    CTToNetworkGridd,
    CTWindowd,
    FitToSpatialSize,
    FitToSpatialSized,
    InputGridLabelMapd,
    NetworkGridRecord,
    PresenceAwareLabelMapd,
    find_network_grid_record,
    input_grid_labels,
)
from monai_sadaan.transforms.spatial.functional import linear_support


# ---------------------------------------------------------------- FitToSpatialSize


def meta_pair(shape=(1, 6, 8, 10)):
    label = np.zeros(shape, np.float32)
    label[0, 1:4, 2:6, 3:8] = 1
    label[0, 4:6, 5:8, 0:3] = 2
    image = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return {"image": MetaTensor(torch.as_tensor(image)), "label": MetaTensor(torch.as_tensor(label))}, label


def test_fit_resize_and_invertd_restore_the_grid():
    data, label = meta_pair()
    pre = Compose([FitToSpatialSized(["image", "label"], (16, 16, 16), interp_mode=("trilinear", "nearest-exact"))])
    out = pre(data)
    assert out["image"].shape == (1, 16, 16, 16) and out["label"].shape == (1, 16, 16, 16)
    assert set(torch.unique(out["label"]).tolist()) == {0.0, 1.0, 2.0}  # nearest-exact keeps labels
    out["pred"] = out["label"].clone()
    back = Invertd("pred", pre, orig_keys="label", nearest_interp=True)(out)
    assert back["pred"].shape == (1, 6, 8, 10)
    # on an integer scale factor nearest-exact up/down sampling is exact
    data, label = meta_pair((1, 8, 8, 8))
    pre = Compose([FitToSpatialSized(["image", "label"], (16, 16, 16), interp_mode=("trilinear", "nearest-exact"))])
    out = pre(data)
    out["pred"] = out["label"].clone()
    back = Invertd("pred", pre, orig_keys="label", nearest_interp=True)(out)
    np.testing.assert_array_equal(back["pred"].numpy(), label)


@pytest.mark.parametrize("shape", [(1, 81, 61, 96), (1, 96, 50, 70)])
def test_fit_resize_nearest_exact_label_lines_up_with_the_trilinear_image(shape):
    # a slab at each high face and a block inside; the image is the mask itself, so its trilinear resize
    # thresholded at 0.5 is where the label belongs on the network's grid
    mask = torch.zeros(shape)
    mask[0, -5:, 10:30, 10:40] = 1
    mask[0, 10:30, -5:, 10:40] = 1
    mask[0, 20:50, 15:35, 30:60] = 1
    data = {"image": MetaTensor(mask.clone()), "label": MetaTensor(mask.clone())}
    exact = FitToSpatialSized(["image", "label"], (48, 48, 48), interp_mode=("trilinear", "nearest-exact"))(data)
    legacy = FitToSpatialSized(["image", "label"], (48, 48, 48), interp_mode=("trilinear", "nearest"))(data)
    image_mask = exact["image"] > 0.5
    decided = (exact["image"] - 0.5).abs() > 0.01  # voxels half in, half out could go either way
    lab_exact, lab_legacy = exact["label"] > 0.5, legacy["label"] > 0.5
    disagree_exact = ((lab_exact != image_mask) & decided).sum().item() / image_mask.sum().item()
    disagree_legacy = ((lab_legacy != image_mask) & decided).sum().item() / image_mask.sum().item()
    assert disagree_exact < 0.02
    # torch's legacy "nearest" samples at the output voxels' corners, half an output voxel off the image's centres
    assert disagree_legacy > 5 * max(disagree_exact, 0.01)


def test_fit_pad_round_trip_is_exact_through_invertd():
    data, label = meta_pair()
    pre = Compose([FitToSpatialSized(["image", "label"], (12, 12, 12), mode="pad", pad_value=(-1.0, 0.0))])
    out = pre(data)
    assert out["label"].shape == (1, 12, 12, 12)
    assert out["image"][0, 0, 0, 0].item() == -1.0 and out["label"][0, 0, 0, 0].item() == 0.0
    assert out["label"].sum().item() == label.sum()
    out["pred"] = out["label"].clone()
    back = Invertd("pred", pre, orig_keys="label")(out)
    np.testing.assert_array_equal(back["pred"].numpy(), label)
    with allow_missing_keys_mode(pre):
        inverted = pre.inverse({"image": out["image"]})
    np.testing.assert_array_equal(inverted["image"].numpy(), data["image"].numpy())


def test_fit_pad_with_crop_restores_shape_and_kept_values():
    data, label = meta_pair()
    fit = FitToSpatialSize((4, 12, 8), mode="pad")
    out = fit(data["label"])
    assert out.shape == (1, 4, 12, 8)
    back = fit.inverse(out)
    assert back.shape == (1, 6, 8, 10)
    np.testing.assert_array_equal(back[0, 1:5, :, 1:9].numpy(), label[0, 1:5, :, 1:9])  # the kept centre
    assert back[0, 0].abs().sum() == 0 and back[0, :, :, 0].abs().sum() == 0  # cropped parts come back empty


def test_fit_array_accepts_numpy_and_checks_input():
    out = FitToSpatialSize((4, 4, 4), interp_mode="area")(np.ones((2, 8, 8, 8), np.float32))
    assert tuple(out.shape) == (2, 4, 4, 4) and torch.allclose(torch.as_tensor(out), torch.ones(2, 4, 4, 4))
    with pytest.raises(ValueError, match=r"expected a channel-first 3D volume of shape \(C, D, H, W\), got \(8, 8\)"):
        FitToSpatialSize((4, 4, 4))(np.ones((8, 8)))
    with pytest.raises(ValueError, match="three positive integers"):
        FitToSpatialSize((4, 4))
    with pytest.raises(ValueError, match="'resize' or 'pad'"):
        FitToSpatialSize((4, 4, 4), mode="crop")
    with pytest.raises(ValueError, match="MetaTensor"):
        FitToSpatialSize((4, 4, 4)).inverse(torch.ones(1, 4, 4, 4))


# ---------------------------------------------------------------- CTToNetworkGrid and the way back
BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"
GRID = (16, 12, 20)

REFERENCE_PREPROCESSING = {
    "_target_": "Compose",
    "transforms": [
        {"_target_": "LoadImaged", "keys": "image", "reader": "monai_sadaan.data.readers.SADAAnImageReader",
         "image_only": True, "ensure_channel_first": True},
        {"_target_": "Orientationd", "keys": "image", "axcodes": "RAS"},
        {"_target_": "monai_sadaan.transforms.CTWindowd", "keys": "image"},
        {"_target_": "monai_sadaan.transforms.FitToSpatialSized", "keys": "image", "spatial_size": "@spatial_size",
         "interp_mode": "trilinear"},
        {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"},
    ],
}  # fmt: skip
"""The bundle's preprocessing before issue 26: a float32 copy of the volume, orientated, windowed, resized."""

REFERENCE_POSTPROCESSING_STEPS = [
    {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
     "nearest_interp": False, "to_tensor": True},
    {"_target_": "monai_sadaan.transforms.PresenceAwareLabelMapd", "keys": "pred",
     "presence_key": "presence_calls", "label_values": "$list(@structures.values())", "output_key": "label_map",
     "mask_key": None},
]  # fmt: skip
"""Before issue 26 these two stood where ``InputGridLabelMapd`` stands: five float32 channels at full resolution."""


def _reference_pre() -> Compose:
    return Compose([
        Orientationd("image", axcodes="RAS"), CTWindowd("image"),
        FitToSpatialSized("image", GRID, interp_mode="trilinear"), EnsureTyped("image", dtype=torch.float32),
    ])  # fmt: skip


def _affine(perm, flips, spacing=(0.7, 1.3, 2.1)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = 0
    for axis, (world, flip) in enumerate(zip(perm, flips)):
        a[world, axis] = flip * spacing[axis]
    a[:3, 3] = (10.0, -20.0, 5.0)
    return a


def _both(data: np.ndarray, affine: np.ndarray, probs: torch.Tensor, present: torch.Tensor, values, **kwargs):
    """(reference dict, new dict) after preprocessing and the label map, from the same probabilities."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pre = _reference_pre()
        ref = pre({"image": MetaTensor(torch.from_numpy(data.astype(np.float32))[None], affine=torch.tensor(affine))})
        new = Compose([CTToNetworkGridd("image", GRID), EnsureTyped("image", dtype=torch.float32)])(
            {"image": MetaTensor(torch.from_numpy(data)[None], affine=torch.tensor(affine))}
        )
        ref["pred"] = MetaTensor(probs.clone(), meta=dict(ref["image"].meta))
        new["pred"] = MetaTensor(probs.clone(), meta=dict(new["image"].meta))
        ref["presence_calls"] = new["presence_calls"] = present
        ref = Invertd("pred", pre, orig_keys="image", nearest_interp=False, to_tensor=True)(ref)
        ref["probabilities"] = ref["pred"].clone()
        ref = PresenceAwareLabelMapd("pred", label_values=values, mask_key=None)(ref)
        new = InputGridLabelMapd("pred", label_values=values, probability_key="probabilities", **kwargs)(new)
    return ref, new


def _blobs(rng: np.random.Generator, n: int) -> torch.Tensor:
    """[n, *GRID] probabilities: smooth blobs that cross 0.5, overlapping, near 0 elsewhere."""
    grid = np.stack(np.meshgrid(*[np.arange(g) for g in GRID], indexing="ij"), -1).astype(np.float32)
    out = []
    for _ in range(n):
        centre = rng.uniform(0, np.array(GRID))
        radius = rng.uniform(2, 6)
        out.append(np.exp(-(((grid - centre) ** 2).sum(-1)) / (2 * radius**2)) * rng.uniform(0.6, 1.0))
    return torch.from_numpy(np.stack(out).astype(np.float32))


# ---------------------------------------------------------------------------------------------------- transforms
@pytest.mark.parametrize("perm", list(itertools.permutations(range(3))))
def test_network_input_and_label_map_equal_the_whole_volume_path_in_every_orientation(perm):
    rng = np.random.default_rng(sum(perm))
    data = rng.integers(-1024, 1500, size=(37, 23, 9)).astype(np.int16)  # down- and upsampled axes
    for flips in itertools.product((1, -1), repeat=3):
        affine = _affine(perm, flips)
        probs = torch.rand(3, *GRID)  # noise: most voxels near the threshold, ties between structures
        ref, new = _both(data, affine, probs, torch.tensor([1.0, 0.0, 1.0]), [1, 2, 3])
        assert torch.equal(new["image"].as_tensor(), ref["image"].as_tensor()), (perm, flips)
        assert new["label_map"].shape == ref["label_map"].shape == (1, 37, 23, 9)
        np.testing.assert_array_equal(new["label_map"][0].numpy(), ref["label_map"][0].numpy())
        assert torch.equal(new["probabilities"].as_tensor(), ref["probabilities"].as_tensor())
        np.testing.assert_array_equal(new["label_map"].affine.numpy(), affine)  # exact; Invertd's is recomputed
        np.testing.assert_allclose(ref["label_map"].affine.numpy(), affine, atol=1e-12)


@pytest.mark.parametrize("slab_bytes", [4, 1 << 12, 1 << 30])
def test_label_map_is_the_same_for_any_slab_and_computes_only_inside_the_structures(slab_bytes, monkeypatch):
    rng = np.random.default_rng(5)
    data = rng.normal(40, 300, size=(130, 97, 61)).astype(np.float64)  # float input, every axis downsampled
    probs = _blobs(rng, 4)
    present = torch.tensor([1.0, 1.0, 0.0, 1.0])
    import monai_sadaan.transforms.spatial.functional as ng

    monkeypatch.setattr(ng, "_SLAB_BYTES", slab_bytes)
    monkeypatch.setattr(ng.input_grid_labels, "__defaults__", (0.5, slab_bytes))
    monkeypatch.setattr(ng.input_grid_probabilities, "__defaults__", (slab_bytes,))
    ref, new = _both(data, _affine((1, 0, 2), (-1, -1, 1)), probs, present, [3, 5, 7, 300])
    assert torch.equal(new["image"].as_tensor(), ref["image"].as_tensor())
    labels = new["label_map"][0].numpy()
    np.testing.assert_array_equal(labels, ref["label_map"][0].numpy())
    assert labels.dtype == np.uint16 and labels.flags.f_contiguous  # 300 > 255; NIfTI order
    assert 0 < np.count_nonzero(labels) < labels.size / 2 and not np.any(labels == 7)  # structure 3 is absent


def test_a_structure_below_the_threshold_everywhere_is_not_resampled_at_all(monkeypatch):
    import monai_sadaan.transforms.spatial.functional as ng

    record = NetworkGridRecord((40, 30, 20), (), (0, 1, 2), GRID, np.eye(4))
    probs = torch.full((2, *GRID), 0.499)
    probs[1, 5:8, 4:6, 9:12] = 0.9
    computed = []
    original = ng._Upsampler.slab

    def counting(self, w0, w1, box):
        computed.append((w1 - w0) * (box[0][1] - box[0][0]) * (box[1][1] - box[1][0]))
        return original(self, w0, w1, box)

    monkeypatch.setattr(ng._Upsampler, "slab", counting)
    labels = input_grid_labels(probs, record, torch.ones(2), [1, 2], slab_bytes=40 * 30 * 4)
    assert 0 < len(computed) < 20  # structure 2 only, in the slabs it reaches
    assert sum(computed) < 0.1 * 40 * 30 * 20  # a small part of the volume is resampled
    assert set(np.unique(labels)) == {0, 2}


def test_linear_support_is_the_kernels_own_choice():
    for n_in, n_out in [(512, 48), (48, 512), (300, 48), (7, 48), (48, 48), (1, 5)]:
        support = linear_support(n_in, n_out)
        x = torch.rand(1, 1, n_in)
        kept = torch.from_numpy(support.any(axis=1).astype(np.float32))
        full = torch.nn.functional.interpolate(x, size=n_out, mode="linear", align_corners=False)
        sparse = torch.nn.functional.interpolate(x * kept, size=n_out, mode="linear", align_corners=False)
        assert torch.equal(full, sparse), (n_in, n_out)
        assert support.sum(axis=0).max() <= 2


def test_record_survives_collation_and_is_found_after_it():
    from monai.data import decollate_batch, list_data_collate

    img = MetaTensor(torch.zeros(1, 20, 21, 22, dtype=torch.int16), affine=torch.tensor(_affine((0, 2, 1), (1, -1, 1))))
    out = CTToNetworkGridd("image", GRID)({"image": img})
    back = decollate_batch(list_data_collate([out]))[0]
    record = find_network_grid_record(back["image"])
    assert record.input_shape == (20, 21, 22) and record.spatial_size == GRID
    np.testing.assert_array_equal(record.input_affine, img.affine.numpy())
    with pytest.raises(ValueError, match="record of CTToNetworkGridd"):
        find_network_grid_record(MetaTensor(torch.zeros(1, 4, 4, 4)))


def test_invertd_of_the_new_preprocessing_gives_the_input_grid_and_affine():
    affine = _affine((2, 0, 1), (1, -1, -1))
    img = MetaTensor(torch.arange(30 * 20 * 10, dtype=torch.int16).reshape(1, 30, 20, 10), affine=torch.tensor(affine))
    pre = Compose([CTToNetworkGridd("image", GRID), EnsureTyped("image", dtype=torch.float32)])
    d = pre({"image": img})
    d["pred"] = MetaTensor(torch.rand(2, *GRID), meta=dict(d["image"].meta))
    back = Invertd("pred", pre, orig_keys="image", nearest_interp=False)(d)
    assert tuple(back["pred"].shape) == (2, 30, 20, 10)
    np.testing.assert_array_equal(back["pred"].affine.numpy(), affine)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="three positive integers"):
        CTToNetworkGridd("image", (16, 16))
    with pytest.raises(ValueError, match="axcodes of three letters"):
        CTToNetworkGridd("image", GRID, axcodes="RA")
    record = NetworkGridRecord((8, 8, 8), (), (0, 1, 2), GRID, np.eye(4))
    with pytest.raises(ValueError, match=r"shape \(S, 16, 12, 20\)"):
        input_grid_labels(torch.rand(2, 8, 8, 8), record, torch.ones(2), [1, 2])
    with pytest.raises(ValueError, match="one label value and one presence call per structure"):
        input_grid_labels(torch.rand(2, *GRID), record, torch.ones(3), [1, 2])


# ---------------------------------------------------------------------------------------------------- the bundle
def _run_bundle(images: Path, out: Path, reference: bool) -> None:
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    parser["bundle_root"] = str(BUNDLE)
    parser["dataset_dir"] = str(images)
    parser["output_dir"] = str(out)
    parser["device"] = "$torch.device('cpu')"
    parser["write_probabilities"] = True
    if reference:
        parser["preprocessing"] = copy.deepcopy(REFERENCE_PREPROCESSING)
        post = parser.get("postprocessing")
        steps = post["transforms"]
        at = next(i for i, t in enumerate(steps) if t["_target_"].endswith("InputGridLabelMapd"))
        post["transforms"] = steps[:at] + copy.deepcopy(REFERENCE_POSTPROCESSING_STEPS) + steps[at + 1 :]
        parser["postprocessing"] = post
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser.get_parsed_content("initialize")
        parser.get_parsed_content("run")


@pytest.mark.slow
def test_bundle_writes_what_the_whole_volume_path_wrote(tmp_path):
    """The shipped model on two phantoms (LPS int16, PLI float32): the new bundle and the reference pipeline write
    the same label maps (0 voxels differ), .seg.nrrd voxels, presence rows and probability maps; the geometry is the
    input's exactly in the new one."""
    import slicerio

    from monai_sadaan.data import generate_phantom

    images = tmp_path / "images"
    images.mkdir()
    for name, orientation, dtype, seed in [("lps", "LPS", np.int16, 3), ("pli", "PLI", np.float32, 4)]:
        ph = generate_phantom("nephrectomy_left", seed=seed, shape=(61, 47, 39), orientation=orientation)
        data = np.rint(ph.image).astype(dtype) if dtype == np.int16 else ph.image.astype(dtype)
        nib.save(nib.Nifti1Image(data, ph.affine), str(images / f"{name}.nii.gz"))
    _run_bundle(images, tmp_path / "new", reference=False)
    _run_bundle(images, tmp_path / "ref", reference=True)
    for name in ("lps", "pli"):
        source = nib.load(str(images / f"{name}.nii.gz"))
        new = nib.load(str(tmp_path / "new" / name / f"{name}_labels.nii.gz"))
        ref = nib.load(str(tmp_path / "ref" / name / f"{name}_labels.nii.gz"))
        a, b = np.asarray(new.dataobj), np.asarray(ref.dataobj)
        assert a.shape == source.shape and np.count_nonzero(a) > 100
        np.testing.assert_array_equal(a, b)  # tolerance: identical
        np.testing.assert_array_equal(new.affine, source.affine)
        np.testing.assert_array_equal(new.header.get_sform(), source.header.get_sform())
        seg_new = slicerio.read_segmentation(str(tmp_path / "new" / name / f"{name}.seg.nrrd"))
        seg_ref = slicerio.read_segmentation(str(tmp_path / "ref" / name / f"{name}.seg.nrrd"))
        np.testing.assert_array_equal(seg_new["voxels"], seg_ref["voxels"])
        np.testing.assert_allclose(seg_new["ijkToLPS"], np.diag([-1, -1, 1, 1]) @ source.affine, atol=1e-5)
        rows = [json.loads((tmp_path / t / name / f"{name}_presence.json").read_text())["structures"]
                for t in ("new", "ref")]  # fmt: skip
        assert rows[0] == rows[1]
        p_new = np.asarray(nib.load(str(tmp_path / "new" / name / f"{name}_probabilities.nii.gz")).dataobj)
        p_ref = np.asarray(nib.load(str(tmp_path / "ref" / name / f"{name}_probabilities.nii.gz")).dataobj)
        np.testing.assert_array_equal(p_new, p_ref)
    run = json.loads((tmp_path / "new" / "sadaan_run.json").read_text())
    assert [c["case"] for c in run["timing"]["cases"]] == ["lps", "pli"]
