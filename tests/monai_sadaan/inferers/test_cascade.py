"""The absence-aware cascade (monai_sadaan.inferers.cascade): boxes in world mm on anisotropic non-RAS inputs, the
fine mask at the right world place, absent structures never painted, memory that follows the box, stage 2's input
and the refusals. Stage 2 is replaced by small modules with a known answer; volumes are tiny."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from monai_sadaan.inferers.cascade import (
    CascadeInputsd,
    CascadeRefine,
    CascadeRefined,
    box_to_input_grid,
    cascade_inputs,
    component_boxes,
    fine_box,
    load_refine_network,
    oriented_affine,
    resample_to_box,
)
from monai_sadaan.transforms import CTToNetworkGrid, CTToNetworkGridd, InputGridLabelMapd
from monai_sadaan.transforms.spatial.functional import find_network_grid_record

# voxel axes (S, L, A) at (2.5, 1.2, 1.6) mm: not RAS, anisotropic
AFFINE = np.array([[0.0, -1.2, 0.0, 30.0], [0.0, 0.0, 1.6, -20.0], [2.5, 0.0, 0.0, -35.0], [0.0, 0.0, 0.0, 1.0]])
SHAPE = (28, 50, 40)
GRID = (16, 16, 16)
CENTRE = np.array([2.0, 12.0, -2.0])  # world mm (RAS)
RADIUS = 11.0


def _world(affine, shape):
    """World (RAS) coordinates of every voxel centre, ``[*shape, 3]``."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    return (ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]).reshape(*shape, 3)


def _ball(radius, centre=CENTRE):
    return np.linalg.norm(_world(AFFINE, SHAPE) - centre, axis=-1) <= radius


def _image(inside=200, outside=-100):
    img = np.where(_ball(RADIUS), inside, outside).astype(np.int16)
    return MetaTensor(torch.from_numpy(img)[None], affine=torch.as_tensor(AFFINE))


class Threshold(torch.nn.Module):
    """Stage 2 that says 'the windowed CT is above 0.53' (the sphere's edge between -100 and 200 HU)."""

    def forward(self, x):
        return (x[:, :1] - 0.53) * 200.0


class Everywhere(torch.nn.Module):
    """Stage 2 that says 'everywhere', and records the shapes it was shown."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape))
        return torch.full_like(x[:, :1], 10.0)


def _stage1(prob_volumes, calls):
    """A case as the bundle's post-processing has it: the preprocessed image with its record, stage 1's
    probabilities on the network grid (from input-grid probability volumes), calls and the coarse label map."""
    d = CTToNetworkGridd("image", GRID)({"image": _image()})
    to_grid = CTToNetworkGrid(GRID, a_min=0.0, a_max=1.0)
    probs = torch.cat([to_grid(MetaTensor(torch.from_numpy(v.astype(np.float32))[None], affine=torch.as_tensor(AFFINE)))
                       for v in prob_volumes])  # fmt: skip
    d.update(pred=probs.as_tensor(), presence_calls=torch.tensor(calls, dtype=torch.float32), source_image=_image())
    return InputGridLabelMapd("pred", label_values=list(range(1, len(calls) + 1)))(d)


def _dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_oriented_affine_maps_the_oriented_view_to_the_same_world_points():
    record = CTToNetworkGrid(GRID).record_for(_image())[0]
    oriented = oriented_affine(record)
    assert np.allclose(np.abs(oriented[:3, :3]), np.diag([1.2, 1.6, 2.5]))
    assert (np.diag(oriented[:3, :3]) > 0).all()  # RAS
    index = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    view = record.oriented_view(index)
    world_in, world_or = _world(AFFINE, SHAPE).reshape(-1, 3), _world(oriented, view.shape)
    for o in [(0, 0, 0), (5, 17, 3), tuple(n - 1 for n in view.shape)]:
        assert np.allclose(world_or[o], world_in[view[o]])


def test_box_is_the_coarse_mask_plus_the_margin_in_world_mm_on_an_anisotropic_non_ras_input():
    record = CTToNetworkGrid(GRID).record_for(_image())[0]
    affine = oriented_affine(record)
    mask = _ball(6.0)
    box = fine_box(record.oriented_view(mask), affine, margin_mm=5.0, fine_spacing=1.5)
    # the mask's world extent (voxel edges) plus 5 mm per world axis
    idx = np.argwhere(mask)
    corners = np.array([[a, b, c] for a in (-0.5, 0.5) for b in (-0.5, 0.5) for c in (-0.5, 0.5)])
    pts = np.concatenate([(idx + k) @ AFFINE[:3, :3].T + AFFINE[:3, 3] for k in corners])
    expected = np.stack([pts.min(0) - 5.0, pts.max(0) + 5.0], 1)
    low = affine[:3, :3] @ np.asarray(box.low) + affine[:3, 3]
    high = affine[:3, :3] @ np.asarray(box.high) + affine[:3, 3]
    assert np.allclose(np.stack([low, high], 1), expected)
    extent = expected[:, 1] - expected[:, 0]
    assert box.shape == tuple(math.ceil(e / 1.5 - 1e-6) for e in extent)
    assert np.allclose(np.linalg.norm(box.affine[:3, :3], axis=0), 1.5)  # the fine spacing, RAS directions
    # centred on the box: the fine grid's first and last centres are symmetric about the box's middle
    first, last = box.affine @ [0, 0, 0, 1], box.affine @ [*(n - 1 for n in box.shape), 1]
    assert np.allclose((first[:3] + last[:3]) / 2, expected.mean(1))
    # clipped to the grid: a margin past the volume stops at its edge
    wide = fine_box(record.oriented_view(mask), affine, margin_mm=500.0, fine_spacing=1.5)
    assert np.allclose(wide.low, -0.5) and np.allclose(np.asarray(wide.high), np.asarray(record.oriented_shape) - 0.5)
    assert fine_box(np.zeros((4, 4, 4), bool), np.eye(4)) is None


def test_resampling_to_a_box_and_back_is_the_identity_for_linear_values():
    affine = np.diag([2.0, 1.0, 3.0, 1.0])
    mask = np.zeros((20, 30, 12), bool)
    mask[5:12, 8:20, 3:8] = True
    box = fine_box(mask, affine, margin_mm=4.0, fine_spacing=1.0)
    ramp = torch.from_numpy(np.fromfunction(lambda i, j, k: 2 * i - j + 0.5 * k, mask.shape, dtype=np.float32))[None]
    fine = resample_to_box(ramp, box)
    assert tuple(fine.shape) == (1, *box.shape)
    # a linear function is kept exactly inside the volume (no clamping there)
    slices, back = box_to_input_grid(fine, box, mask.shape)
    inner = tuple(slice(1, -1) for _ in range(3))
    assert torch.allclose(back[0][inner], ramp[0][slices][inner], atol=1e-4)


def test_the_fine_mask_lands_at_the_right_world_position():
    coarse = _ball(RADIUS + 6.0)  # stage 1's blob: too big
    d = _stage1([coarse.astype(np.float32)], [1.0])
    before = np.asarray(d["label_map"][0]) == 1
    step = CascadeRefined(network=Threshold(), label_values=[1], fine_spacing=1.5, margin_mm=6.0, roi_size=32)
    out = step(d)
    refined = np.asarray(out["label_map"][0]) == 1
    truth = _ball(RADIUS)
    assert _dice(refined, truth) > 0.95 > _dice(before, truth)
    centroid = _world(AFFINE, SHAPE)[refined].mean(0)
    assert np.linalg.norm(centroid - CENTRE) < 0.5  # mm
    assert isinstance(out["label_map"], MetaTensor) and np.allclose(out["label_map"].affine, AFFINE)


def test_a_structure_called_absent_is_never_painted_whatever_stage_2_says():
    big, small = _ball(RADIUS + 6.0).astype(np.float32), _ball(RADIUS).astype(np.float32)
    d = _stage1([big, small, small], [0.0, 1.0, 0.0])  # structure 2 present; 1 and 3 called absent
    everywhere = Everywhere()
    step = CascadeRefined(network=everywhere, label_values=[1, 2, 3], fine_spacing=1.5, margin_mm=3.0, roi_size=32)
    out = step(d)
    labels = np.asarray(out["label_map"][0])
    assert (labels == 1).sum() == 0 and (labels == 3).sum() == 0
    assert len(everywhere.seen) > 0 and all(s[1] == 2 + 3 for s in everywhere.seen)
    assert set(step.refiner.last_boxes) == {2}  # only the structure called present gets a box
    # stage 2 said 'everywhere': the structure fills its box on the input grid, and nothing outside it; the box is
    # the coarse mask's box plus the margin, grown to whole patches
    record = find_network_grid_record(d["image"])
    coarse = fine_box(record.oriented_view(np.asarray(d["label_map"][0]) == 2), oriented_affine(record), 3.0, 1.5)
    [box] = step.refiner.last_boxes[2]
    assert (np.asarray(box.low) <= np.asarray(coarse.low) + 1e-9).all()
    assert (np.asarray(box.high) >= np.asarray(coarse.high) - 1e-9).all()
    assert all(n % 16 == 0 for n in box.shape)
    slices = box.grid_slices(record.oriented_shape)
    view = record.oriented_view(labels)
    assert (view[slices] == 2).all()
    assert (labels == 2).sum() == view[slices].size


def test_overlaps_go_to_the_higher_probability():
    class Preference(torch.nn.Module):  # logit 5 for structure 1 everywhere, 3 for structure 2
        def forward(self, x):
            code = x[:, 2:3, :1, :1, :1]
            return torch.where(code > 0.5, torch.full_like(x[:, :1], 5.0), torch.full_like(x[:, :1], 3.0))

    d = _stage1([_ball(RADIUS).astype(np.float32), _ball(RADIUS, CENTRE + [0, 0, 4.0]).astype(np.float32)], [1.0, 1.0])
    d["label_map"] = d["label_map"].clone()
    out = CascadeRefined(network=Preference(), label_values=[1, 2], fine_spacing=1.5, margin_mm=2.0, roi_size=16)(d)
    labels = np.asarray(out["label_map"][0])
    # structure 1 (logit 5) wins the whole shared part; structure 2 keeps only what lies outside structure 1's box
    assert (labels == 1).sum() > 0 and (labels == 2).sum() > 0
    record = find_network_grid_record(d["image"])
    box1 = fine_box(record.oriented_view(_ball(RADIUS) & (np.asarray(d["label_map"][0]) == 1)), oriented_affine(record), 2.0, 1.5)
    assert box1 is not None
    assert not (record.oriented_view(labels)[box1.grid_slices(record.oriented_shape)] == 2).any()


def test_memory_follows_the_box_and_the_patch():
    d = _stage1([_ball(RADIUS).astype(np.float32)], [1.0])
    everywhere = Everywhere()
    refine = CascadeRefine(everywhere, 1, fine_spacing=1.0, margin_mm=4.0, roi_size=(16, 16, 16))
    shown = []
    original = refine.predict_box
    refine.predict_box = lambda x: shown.append(tuple(x.shape)) or original(x)
    record = find_network_grid_record(d["image"])
    refine(d["source_image"], record, d["pred"], d["presence_calls"], [1], np.asarray(d["label_map"][0]))
    [box] = refine.last_boxes[1]
    coarse = np.asarray(d["label_map"][0]) == 1
    idx = np.argwhere(record.oriented_view(coarse))
    spacing = np.array([1.2, 1.6, 2.5])
    extent = (idx.max(0) - idx.min(0) + 1) * spacing + 8.0
    coarse_box = fine_box(record.oriented_view(coarse), oriented_affine(record), 4.0, 1.0)
    assert coarse_box.shape == tuple(math.ceil(e / 1.0 - 1e-6) for e in extent)
    assert box.shape == tuple(-(-n // 16) * 16 for n in coarse_box.shape)  # grown to whole 16³ patches
    assert shown == [(3, *box.shape)]  # the resampled tensor is the box at the fine spacing, not the volume
    assert set(everywhere.seen) == {(1, 3, 16, 16, 16)}  # stage 2 sees patches


def test_cascade_inputs_and_their_dictionary_version():
    image, context = torch.rand(1, 4, 5, 6), torch.rand(1, 4, 5, 6)
    x = cascade_inputs(image, context, 3, 5)
    assert x.shape == (7, 4, 5, 6)
    assert torch.equal(x[0], image[0]) and torch.equal(x[1], context[0])
    assert torch.equal(x[2:].amax(dim=(1, 2, 3)), torch.tensor([0.0, 0, 0, 1, 0])) and (x[5] == 1).all()
    d = CascadeInputsd("image", num_structures=5)({"image": MetaTensor(image), "context": context, "structure_index": 3})
    assert torch.equal(d["image"].as_tensor(), x) and isinstance(d["image"], MetaTensor)
    with pytest.raises(ValueError, match="structure index in 0..4, got 5"):
        cascade_inputs(image, context, 5, 5)
    with pytest.raises(ValueError, match="context of the same shape"):
        cascade_inputs(image, context[:, :3], 0, 5)


def test_off_passes_through_and_refusals_name_what_came(tmp_path):
    d = {"label_map": torch.zeros(1, 2, 2, 2)}
    assert CascadeRefined(network=None, label_values=[1, 2])(d)["label_map"] is d["label_map"]
    with pytest.raises(KeyError, match="input CT as read under 'source_image'"):
        CascadeRefined(network=Threshold(), label_values=[1])(d)
    with pytest.raises(FileNotFoundError, match=r"refine\.pt.*train_refine\.json"):
        load_refine_network(Threshold(), tmp_path / "models" / "refine.pt")
    with pytest.raises(ValueError, match="label_values or num_structures"):
        CascadeRefined(network=None)
    with pytest.raises(ValueError, match="roi_size"):
        CascadeRefine(Threshold(), 1, roi_size=(16, 16))


def test_trained_weights_load_strictly(tmp_path):
    from monai.networks.nets import BasicUNet

    from monai_glue import CheckpointError

    net = BasicUNet(3, 7, 1, features=(2, 2, 2, 2, 2, 2))
    torch.save({"model": net.state_dict()}, tmp_path / "refine.pt")
    other = BasicUNet(3, 7, 1, features=(2, 2, 2, 2, 2, 2))
    loaded = load_refine_network(other, tmp_path / "refine.pt")
    assert not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(CheckpointError, match="another configuration"):
        load_refine_network(BasicUNet(3, 6, 1, features=(2, 2, 2, 2, 2, 2)), tmp_path / "refine.pt")


def test_a_small_box_gets_a_patch_of_its_own_size():
    refine = CascadeRefine(Everywhere(), 1, roi_size=(96, 96, 96), roi_multiple=16)
    # a side above roi_size is split into the fewest windows of equal size (130: two of 80, not two of 96)
    assert refine.patch_size((40, 130, 96)) == (48, 80, 96)
    assert refine.patch_size((5, 200, 97)) == (32, 80, 64)  # >= 32 (BasicUNet's bottleneck), 3 x 80, 2 x 64
    everywhere = refine.network
    out = refine.predict_box(torch.zeros(3, 20, 40, 100))
    assert out.shape == (1, 20, 40, 100) and set(everywhere.seen) == {(1, 3, 32, 48, 64)}


# ------------------------------------------------------------------------------------------------ one box per component
ISO = np.eye(4)  # 1 mm voxels, RAS: fine voxels of 1 mm with whole-mm margins fall on the grid's own voxel centres


def _cube(shape, lo, size):
    m = np.zeros(shape, bool)
    m[tuple(slice(a, a + s) for a, s in zip(lo, size))] = True
    return m


def test_component_boxes_one_box_per_blob_specks_dropped_overlaps_merged():
    shape = (80, 40, 40)
    a, b = _cube(shape, (5, 10, 10), (10, 10, 10)), _cube(shape, (60, 20, 15), (8, 8, 8))  # 1.0 mL and 0.512 mL
    speck = _cube(shape, (35, 30, 30), (2, 2, 2))  # 0.008 mL
    boxes = component_boxes(a | b | speck, ISO, margin_mm=3.0, fine_spacing=1.5, min_component_ml=0.1)
    assert [(x.low, x.high, x.shape) for x in boxes] == [
        (y.low, y.high, y.shape) for y in (fine_box(a, ISO, 3.0, 1.5), fine_box(b, ISO, 3.0, 1.5))]  # fmt: skip
    assert len(component_boxes(a | b | speck, ISO, 3.0, 1.5, min_component_ml=0.0)) == 3  # the speck kept
    # the largest component always gets a box, whatever its size
    [only] = component_boxes(a | b | speck, ISO, 3.0, 1.5, min_component_ml=100.0)
    assert only.low == fine_box(a, ISO, 3.0, 1.5).low
    # components closer than block_mm count as one; boxes that overlap merge when the merged box costs no more
    near = _cube(shape, (17, 10, 10), (10, 10, 10))  # 2 mm from a
    [one] = component_boxes(a | near, ISO, 3.0, 1.5, min_component_ml=0.1, block_mm=4.0)
    assert one.low == fine_box(a | near, ISO, 3.0, 1.5).low and one.high == fine_box(a | near, ISO, 3.0, 1.5).high
    assert len(component_boxes(a | near, ISO, 3.0, 1.5, min_component_ml=0.1, block_mm=0.0)) == 1  # merged boxes
    assert len(component_boxes(a | near, ISO, 0.0, 1.5, min_component_ml=0.1, block_mm=0.0)) == 2  # apart
    assert component_boxes(np.zeros(shape, bool), ISO) == []
    with pytest.raises(ValueError, match="min_component_ml >= 0 and block_mm >= 0, got -1.0"):
        component_boxes(a, ISO, min_component_ml=-1.0)


def _blobs_case():
    """An isotropic RAS CT with three bright cubes; stage 1 painted structure 1 on the outer two (one coarse mask in
    two places), not on the middle one, and a speck of structure 1 elsewhere; structure 2 is called absent."""
    shape = (96, 40, 40)
    left, middle, right = (_cube(shape, (x, 12, 12), (12, 12, 12)) for x in (6, 42, 78))
    hu = np.where(left | middle | right, 200, -100).astype(np.int16)
    image = MetaTensor(torch.from_numpy(hu)[None], affine=torch.as_tensor(ISO))
    coarse = np.zeros(shape, np.uint8)
    coarse[_cube(shape, (4, 10, 10), (16, 16, 16)) | _cube(shape, (76, 10, 10), (16, 16, 16))] = 1
    coarse[_cube(shape, (44, 33, 33), (2, 2, 2))] = 1  # a speck (0.008 mL)
    record = CTToNetworkGrid(GRID).record_for(image)[0]
    probs = torch.zeros(2, *GRID)
    probs[1] = 1.0  # structure 2 'everywhere' for stage 1, but called absent
    return image, record, probs, torch.tensor([1.0, 0.0]), coarse


def test_one_box_per_component_gives_the_single_box_voxels_inside_each_component_box():
    image, record, probs, calls, coarse = _blobs_case()
    net = Threshold()
    slow = CascadeRefine(net, 2, fine_spacing=1.0, margin_mm=4.0, roi_size=32, per_component=False, overlap=0.25,
                         blend_mode="gaussian")  # fmt: skip
    fast = CascadeRefine(net, 2, fine_spacing=1.0, margin_mm=4.0, roi_size=32, min_component_ml=0.1)
    out_slow = slow(image, record, probs, calls, [1, 2], coarse)
    out_fast = fast(image, record, probs, calls, [1, 2], coarse)
    assert len(slow.last_boxes[1]) == 1 and len(fast.last_boxes[1]) == 2 and set(fast.last_boxes) == {1}
    assert sum(np.prod(b.shape) for b in fast.last_boxes[1]) < 0.5 * np.prod(slow.last_boxes[1][0].shape)
    [big] = slow.last_boxes[1]
    outer = big.grid_slices(coarse.shape)
    for box in fast.last_boxes[1]:
        inner = box.grid_slices(coarse.shape)
        both = tuple(slice(max(a.start, b.start), min(a.stop, b.stop)) for a, b in zip(inner, outer))
        assert (out_fast[both] == 1).sum() == 12**3  # the bright cube, found at 1 mm
        np.testing.assert_array_equal(out_fast[both], out_slow[both])
    middle = _cube(coarse.shape, (42, 12, 12), (12, 12, 12))
    assert (out_slow[middle] == 1).all()  # the single box spans the middle cube, which stage 1 did not paint
    assert (out_fast[middle] == 0).all()  # one box per component: between them, stage 1's answer stays
    assert out_fast[44:46, 33:35, 33:35].max() == 0  # the speck got no box and is not painted
    assert (out_fast == 2).sum() == 0 and (out_slow == 2).sum() == 0  # called absent: never painted


def test_fit_to_patches_grows_by_whole_fine_voxels_and_inward_at_the_edge():
    refine = CascadeRefine(Everywhere(), 1, roi_size=32, roi_multiple=16)
    mask = _cube((60, 60, 80), (0, 20, 25), (5, 9, 40))
    box = fine_box(mask, ISO, margin_mm=2.0, fine_spacing=1.5)
    grown = refine.fit_to_patches(box, mask.shape)
    assert box.shape == (5, 9, 30) and grown.shape == (32, 32, 32)  # at least two multiples of 16 per side
    for axis in range(3):
        centres, own = grown.centres(axis), box.centres(axis)
        offset = int(np.argmin(np.abs(centres - own[0])))
        np.testing.assert_allclose(centres[offset : offset + len(own)], own, atol=1e-9)  # the box's voxels stay
        assert np.allclose(np.diff(centres), box.step[axis])
    assert grown.low[0] >= -0.5 - 1e-9  # at the grid's low edge the growth went inward
    world = grown.affine @ np.array([0, 0, 0, 1.0])
    assert np.allclose(world[:3], [grown.centres(a)[0] for a in range(3)])  # the affine follows the shift (ISO grid)
    assert refine.fit_to_patches(grown, mask.shape) is grown  # whole patches already


def test_fast_window_and_region_write_back_equal_the_plain_ones():
    d = _stage1([_ball(RADIUS).astype(np.float32)], [1.0])
    refine = CascadeRefine(Everywhere(), 1, fine_spacing=1.5, margin_mm=4.0, roi_size=16)
    record = find_network_grid_record(d["image"])
    [box] = refine.boxes(record.oriented_view(np.asarray(d["label_map"][0]) == 1), oriented_affine(record))
    x = refine.box_inputs(d["source_image"], record, d["pred"], 0, box)
    oriented = record.oriented_view(np.asarray(d["source_image"]), channel_first=True)
    plain = resample_to_box(oriented, box, window=refine.window)  # the window on the HU read, then sampled
    torch.testing.assert_close(x[:1], plain, atol=1e-5, rtol=0)
    # a float CT read whole (a box over the whole grid): the window must not clip the caller's voxels in place
    image, iso_record, probs, _, coarse = _blobs_case()
    image = image.float() * 3.0  # 600 and -300 HU: both outside the window
    kept = image.clone()
    everything = fine_box(coarse == 1, ISO, margin_mm=500.0, fine_spacing=1.0)
    assert everything.shape == coarse.shape
    refine.box_inputs(image, iso_record, probs, 0, everything)
    assert torch.equal(image, kept)
    values = torch.rand(1, *box.shape)
    slices, whole = box_to_input_grid(values, box, record.oriented_shape)
    region = tuple(slice(s.start + 2, s.stop - 1) for s in slices)
    part_slices, part = box_to_input_grid(values, box, record.oriented_shape, region=region)
    assert part_slices == region
    assert torch.equal(part, whole[(slice(None), *(slice(2, -1),) * 3)])  # bit for bit


def test_num_threads_holds_while_the_cascade_runs_and_refusals():
    seen = []

    class Threads(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.get_num_threads())
            return torch.full_like(x[:, :1], -10.0)

    d = _stage1([_ball(RADIUS).astype(np.float32)], [1.0])
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    out = CascadeRefined(network=Threads(), label_values=[1], roi_size=16, num_threads=wanted)(d)
    assert set(seen) == {wanted} and torch.get_num_threads() == before
    assert (np.asarray(out["label_map"][0]) == 1).sum() == 0  # stage 2 said 'nowhere': the coarse voxels are gone
    for kwargs, match in [({"overlap": 1.0}, "0 <= overlap < 1"), ({"blend_mode": "mean"}, "blend_mode 'constant'"),
                          ({"sw_batch_size": 0}, "sw_batch_size >= 1"), ({"num_threads": -1}, "num_threads None, 0"),
                          ({"min_component_ml": -1}, "min_component_ml >= 0")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            CascadeRefine(Threshold(), 1, **kwargs)
