"""``benchmarks/sadaan_real_ct.py`` and ``benchmarks/train_plain_unet.py``: case derivation on the real CT, scoring
arithmetic on hand-made arrays, table and summary counts, checkpoint handling (the networks are not run on the real
case here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark

SPATIAL = (48, 48, 48)
MIN_VOXELS = 8


def _bench():
    return load_benchmark("sadaan_real_ct")


@pytest.fixture(scope="module")
def sources():
    bench = _bench()
    if not bench.DEFAULT_DATA.is_dir():
        pytest.skip(f"the real CT folder is missing: {bench.DEFAULT_DATA} (shared/ beside the checkout)")
    return bench.load_sources(bench.DEFAULT_DATA)


@pytest.fixture(scope="module")
def cases(sources):
    return {c.name: c for c in _bench().derive_cases(sources, SPATIAL, MIN_VOXELS, thin_slices=6, dilation=2)}


def _world(affine, ijk):
    return (np.asarray(affine) @ np.c_[ijk, np.ones(len(ijk))].T).T[:, :3]


# ------------------------------------------------------------------------------------------------- derivation
def test_slab_affine_keeps_every_voxel_centre_in_place():
    bench = _bench()
    affine = np.array([[-0.8, 0.1, 0, 120], [0.05, 0.7, 0.2, -40], [0, -0.1, 2.5, 33], [0, 0, 0, 1]])
    ijk = np.array([[0, 0, 0], [3, 7, 2], [10, 1, 5]], dtype=float)
    for axis, start in ((2, 17), (0, 4), (1, 0)):
        shifted = ijk.copy()
        shifted[:, axis] += start
        np.testing.assert_allclose(_world(bench.slab_affine(affine, start, axis), ijk), _world(affine, shifted))


def test_cases_geometry_and_voxels_follow_their_sources(sources, cases):
    ct, ct_aff, sm, sm_aff = sources["ct"], sources["ct_affine"], sources["sm"], sources["sm_affine"]
    assert list(cases) == ["whole", "upper_abdomen", "pelvis_only", "thin_slab_no_kidneys", "nephrectomy_left",
                           "nephrectomy_right", "nephrectomy_bilateral", "splenectomy"]  # fmt: skip
    np.testing.assert_array_equal(cases["whole"].image, ct)
    np.testing.assert_array_equal(cases["upper_abdomen"].affine, sm_aff)  # the header as it is
    np.testing.assert_array_equal(cases["pelvis_only"].image, ct[..., :40])
    thin = cases["thin_slab_no_kidneys"]
    assert thin.image.shape[2] == 6
    np.testing.assert_array_equal(thin.image, sm[..., 24:30])
    ijk = np.array([[0, 0, 0], [60, 50, 5], [121, 100, 3]], dtype=float)
    np.testing.assert_allclose(_world(thin.affine, ijk), _world(sm_aff, ijk + [0, 0, 24]))
    np.testing.assert_allclose(_world(cases["pelvis_only"].affine, ijk), _world(ct_aff, ijk))


def test_written_cases_keep_their_affines_and_truth(cases, tmp_path):
    bench = _bench()
    chosen = [cases["thin_slab_no_kidneys"], cases["splenectomy"]]
    images, truth = bench.write_cases(chosen, tmp_path)
    for case in chosen:
        img = nib.load(str(images / f"{case.name}.nii.gz"))
        np.testing.assert_allclose(img.affine, case.affine, atol=1e-4)
        np.testing.assert_array_equal(np.asarray(img.dataobj), case.image)
        lab = nib.load(str(truth / f"{case.name}_truth.nii.gz"))
        np.testing.assert_array_equal(np.asarray(lab.dataobj), case.truth_labels)
    assert (tmp_path / "cases.json").is_file()


def test_totalsegmentator_ids_map_to_sadaan_values():
    bench = _bench()
    seg = np.array([0, 1, 2, 3, 4, 5, 6, 7, 14, 117])
    np.testing.assert_array_equal(bench.totalseg_to_sadaan(seg), [0, 4, 2, 1, 0, 3, 0, 5, 0, 0])


def test_truth_tables(cases):
    everything = {"left_kidney": True, "right_kidney": True, "liver": True, "spleen": True, "pancreas": True}
    assert cases["whole"].present == everything and cases["whole"].dice_slices == (82, 112)
    assert cases["upper_abdomen"].present == everything and cases["upper_abdomen"].dice_slices is None
    assert not any(cases["pelvis_only"].present.values())
    # the top six slices: liver and spleen, no kidney, no pancreas (it ends at slice 19)
    assert cases["thin_slab_no_kidneys"].present == {**everything, "left_kidney": False, "right_kidney": False,
                                                     "pancreas": False}  # fmt: skip
    assert cases["nephrectomy_left"].present == {**everything, "left_kidney": False}
    assert cases["nephrectomy_right"].present == {**everything, "right_kidney": False}
    assert cases["nephrectomy_bilateral"].present == {**everything, "left_kidney": False, "right_kidney": False}
    assert cases["splenectomy"].present == {**everything, "spleen": False}


@pytest.mark.parametrize("name, removed, ts_ids", [("nephrectomy_left", (1,), (3,)), ("splenectomy", (4,), (1,)),
                                                   ("nephrectomy_bilateral", (1, 2), (2, 3))])  # fmt: skip
def test_fat_filled_bed_has_no_label_and_fat_values(sources, cases, name, removed, ts_ids):
    bench = _bench()
    case, seg, sm = cases[name], sources["seg"], sources["sm"]
    bed = bench.organ_bed(seg, ts_ids, 2)
    organ = np.isin(seg, ts_ids)
    assert not np.isin(case.truth_labels, removed).any()
    assert not case.truth_labels[bed].any()
    assert abs(float(case.image[organ].mean()) + 100.0) < 10.0  # the organ itself: fat, about -100 HU
    assert 3.0 < float(case.image[organ].std()) < 80.0  # with noise, not a constant
    np.testing.assert_array_equal(case.image[~bed], sm[~bed])  # nothing outside the bed changes
    others = (seg != 0) & ~organ
    assert not (bed & others).any()  # the bed never takes another labelled voxel
    kept = [v for v in range(1, 6) if v not in removed]
    for v in kept:  # other organs keep their labels
        np.testing.assert_array_equal(case.truth_labels == v, cases["upper_abdomen"].truth_labels == v)


def test_noise_estimate_is_a_ct_noise_level(sources):
    sigma = _bench().estimate_noise_sigma(sources["sm"], sources["seg"])
    assert 3.0 < sigma < 60.0


def test_bed_dilation_reaches_beyond_the_label_but_not_into_other_labels():
    bench = _bench()
    seg = np.zeros((9, 9, 9), np.int64)
    seg[4, 4, 4] = 3  # the organ
    seg[4, 6, 4] = 5  # another organ two voxels away
    bed = bench.organ_bed(seg, (3,), 2)
    assert bed[4, 4, 4] and bed[4, 4, 6] and bed[6, 4, 4] and bed[4, 5, 4]
    assert not bed[4, 6, 4] and not bed[4, 4, 7]
    assert int(bed.sum()) == 25 - 1  # the 2-step 6-connected ball has 25 voxels, one belongs to the other organ


def test_thin_slab_refuses_slices_with_kidneys(sources):
    bench = _bench()
    with pytest.raises(ValueError, match="no kidney voxel"):
        bench.thin_slab_range(sources["seg"], 8)  # slice 22 holds left kidney voxels
    assert bench.thin_slab_range(sources["seg"], 7) == (23, 30)


def test_network_grid_presence_counts_on_the_resized_grid():
    bench = _bench()
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[1, 2, 3] = 3  # one voxel -> 2 x 2 x 2 = 8 voxels on an 8^3 grid
    labels[0:2, 0:2, 0] = 4
    present, counts = bench.network_grid_presence(labels, np.diag([-1.0, 1, 1, 1]), (8, 8, 8), 8)
    assert counts["liver"] == 8 and counts["spleen"] == 32 and counts["pancreas"] == 0
    assert present["liver"] and present["spleen"] and not present["pancreas"]
    present, _ = bench.network_grid_presence(labels, np.eye(4), (8, 8, 8), 9)
    assert not present["liver"] and present["spleen"]


# ------------------------------------------------------------------------------------------------- scoring
def _tiny_case(present, dice_slices=None):
    bench = _bench()
    truth = np.zeros((4, 4, 4), np.uint8)
    truth[0, 0, 0:4] = 3  # liver: 4 voxels
    return bench.Case("c", np.zeros((4, 4, 4), np.int16), np.diag([2.0, 2.0, 2.0, 1.0]), truth, present, dice_slices)


def test_dice_and_false_positive_volume_by_hand():
    bench = _bench()
    assert bench.dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert bench.dice(np.array([1, 1, 0, 0], bool), np.array([0, 1, 1, 1], bool)) == pytest.approx(2 / 5)
    present = {"left_kidney": False, "right_kidney": False, "liver": True, "spleen": False, "pancreas": False}
    pred = np.zeros((4, 4, 4), np.uint8)
    pred[0, 0, 1:3] = 3  # 2 of the 4 liver voxels
    pred[0, 1, 0] = 3  # one liver voxel outside
    pred[3, 3, 0:3] = 4  # 3 spleen voxels, spleen absent
    calls = {"left_kidney": False, "right_kidney": False, "liver": True, "spleen": True, "pancreas": False}
    rows = {r.structure: r for r in bench.score_case("m", _tiny_case(present), pred, calls, {})}
    assert rows["liver"].dice == pytest.approx(2 * 2 / (3 + 4)) and rows["liver"].fp_ml is None
    assert rows["spleen"].fp_ml == pytest.approx(3 * 8 / 1000) and rows["spleen"].dice is None
    assert rows["pancreas"].fp_ml == 0.0 and rows["spleen"].painted_voxels == 3
    # Dice only on slices 1..2: liver truth 2 voxels there, prediction 2 voxels, all shared
    rows = {r.structure: r for r in bench.score_case("m", _tiny_case(present, (1, 3)), pred, calls, {})}
    assert rows["liver"].dice == pytest.approx(1.0)
    with pytest.raises(ValueError, match="expected a label map of shape"):
        bench.score_case("m", _tiny_case(present), pred[:3], calls, {})


def test_summary_and_table_count_what_they_say():
    bench = _bench()
    R = bench.Row
    rows = [
        R("m", "upper_abdomen", "liver", True, True, 0.9, 0.8, None, 10),
        R("m", "upper_abdomen", "spleen", True, False, 0.2, 0.0, None, 0),
        R("m", "whole", "liver", True, True, 0.9, 0.5, None, 12),
        R("m", "pelvis_only", "liver", False, True, 0.99, None, 12.5, 400),
        R("m", "pelvis_only", "spleen", False, False, 0.1, None, 0.0, 0),
        R("m", "pelvis_only", "pancreas", False, False, 0.3, None, 0.02, 1),
    ]
    s = bench.summarise(rows)
    assert (s["calls_right"], s["calls_total"], s["absent_total"]) == (4, 6, 3)
    assert s["mean_dice_upper_abdomen"] == pytest.approx(0.4) and s["mean_dice_all"] == pytest.approx(1.3 / 3)
    assert [(a["case"], a["structure"]) for a in s["absent_painted"]] == [("pelvis_only", "liver"),
                                                                          ("pelvis_only", "pancreas")]  # fmt: skip
    table = bench.format_table(rows)
    assert table.count("**wrong**") == 2 and len(table.splitlines()) == 2 + len(rows)
    assert "| pelvis_only | liver | absent | present **wrong** | 0.990 | - | 12.5 |" in table
    line = bench.format_summary("m", s)
    assert "calls right 4/6" in line and "2/3" in line
    assert bench.summarise([])["mean_dice_all"] is None


# ------------------------------------------------------------------------------------------------- arguments
def test_model_arguments_and_git_checkpoints(tmp_path):
    bench = _bench()
    args = bench.parse_args(["--model", "v0.10.0=git:3eeda09", "--model", "new=/x/model.pt", "--unet", "u=/y.pt"])
    assert args.models == [("v0.10.0", "git:3eeda09"), ("new", "/x/model.pt")] and args.unets == [("u", "/y.pt")]
    assert bench.parse_args([]).models == [("shipped", str(bench.BUNDLE / "models" / "model.pt"))]
    args = bench.parse_args(["--model", "a=/x.pt", "--model", "b=/x.pt", "--model_args", "b=--test_time_norm true"])
    assert args.model_args == {"b": ["--test_time_norm", "true"]}
    cmd = bench.bundle_command(bench.BUNDLE, tmp_path / "i", tmp_path / "o", Path("/x.pt"), args.model_args["b"])
    assert cmd[-3:] == ["/x.pt", "--test_time_norm", "true"]
    for bad in (["--model", "noequals"], ["--model", "a=1", "--unet", "a=2"], ["--model", "a b=1"],
                ["--model", "a=1", "--model_args", "c=--x 1"],
                ["--model", "a=1", "--model_args", "a=--x 1", "--model_args", "a=--y 2"]):  # fmt: skip
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
    try:
        subprocess.run(["git", "cat-file", "-e", "3eeda09"], cwd=bench.ROOT, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no git history with commit 3eeda09 here")
    path = bench.resolve_checkpoint("git:3eeda09", "old", tmp_path)
    assert path == tmp_path / "checkpoints" / "old.pt" and path.stat().st_size > 1_000_000
    with pytest.raises(FileNotFoundError, match="at git revision"):
        bench.resolve_checkpoint("git:0000000000", "bad", tmp_path)
    with pytest.raises(FileNotFoundError, match="missing path"):
        bench.resolve_checkpoint(str(tmp_path / "none.pt"), "none", tmp_path)
    cmd = bench.bundle_command(bench.BUNDLE, tmp_path / "i", tmp_path / "o", path)
    assert cmd[1:4] == ["-m", "monai.bundle", "run"] and cmd[cmd.index("--ckpt_path") + 1] == str(path)


def test_overview_figure_is_written(cases, tmp_path):
    bench = _bench()
    case = cases["thin_slab_no_kidneys"]
    out = bench.overview_figure(case, {"copy": case.truth_labels}, tmp_path / "f.png")
    assert out.stat().st_size > 5_000


# ------------------------------------------------------------------------------------------------- UNet recipe
def test_unet_checkpoint_round_trip_and_atomic_save(tmp_path):
    torch = pytest.importorskip("torch")
    from monai.networks.nets import UNet

    train = load_benchmark("train_plain_unet")
    net_args = train.unet_arguments([4, 8, 16])
    assert net_args["out_channels"] == 6 and net_args["strides"] == [2, 2] and net_args["num_res_units"] == 2
    net = UNet(**net_args)
    state = {"model": net.state_dict(), "optimizer": {}, "epoch": 3, "iteration": 12, "network": net_args}
    path = tmp_path / "run" / "model.pt"
    train.save_state(path, state)
    loaded = train.load_state(path)
    assert loaded["epoch"] == 3 and loaded["network"] == net_args
    rebuilt = _bench().load_unet(path)
    x = torch.rand(1, 1, 16, 16, 16)
    torch.testing.assert_close(rebuilt(x), net.eval()(x))

    class Unpicklable:
        pass

    with pytest.raises(Exception):
        train.save_state(path, {**state, "epoch": Unpicklable()})
    assert train.load_state(path)["epoch"] == 3  # the earlier checkpoint is intact
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left
    with pytest.raises(ValueError, match="missing keys"):
        torch.save({"model": {}}, tmp_path / "other.pt")
        train.load_state(tmp_path / "other.pt")
    with pytest.raises(SystemExit):
        train.parse_args(["--datalist", "d.json", "--epochs", "0"])
    assert train.parse_args(["--datalist", "d.json"]).channels == [16, 32, 64, 128, 256]


def test_unet_baseline_runs_through_the_bundle_preprocessing_and_back(cases, tmp_path):
    torch = pytest.importorskip("torch")

    class HalfLiver(torch.nn.Module):
        """Logits on the network grid: liver in the half of low first-axis index (towards L in RAS), background
        elsewhere; it checks the input it gets is the bundle's grid."""

        def forward(self, x):
            assert tuple(x.shape) == (1, 1, *SPATIAL) and 0.0 <= float(x.min()) <= float(x.max()) <= 1.0
            logits = torch.zeros(1, 6, *SPATIAL)
            logits[:, 0] = 5.0
            logits[:, 3, : SPATIAL[0] // 2] = 10.0
            return logits

    bench = _bench()
    case = cases["thin_slab_no_kidneys"]
    images, _ = bench.write_cases([case], tmp_path)
    labels, calls, peak = bench.unet_case(HalfLiver(), bench.bundle_preprocessing(bench.BUNDLE), images, 8, case)
    assert labels.shape == case.image.shape and labels.dtype == np.uint8
    assert calls == {"left_kidney": False, "right_kidney": False, "liver": True, "spleen": False, "pancreas": False}
    assert peak["liver"] > 0.99 and peak["spleen"] < 0.01
    half = case.image.shape[0] // 2  # 122 voxels: the grid's boundary falls between input voxels 60 and 61
    assert (labels[:half] == 3).all() and (labels[half:] == 0).all()


def test_grid_ceiling_is_exact_on_a_grid_the_labels_fit_and_loses_a_thin_structure():
    """On a 2x-coarser grid, regions aligned to 2-voxel blocks with faces on at most two axes come back exactly: a
    coarse voxel is its block's mean, and a fine voxel next to a face reads 0.75 of its side per axis (0.75 and
    0.5625 > 0.5; a corner on three axes, 0.42, would be lost). A one-voxel sheet averages to 0.5 and is lost."""
    labels = np.zeros((8, 8, 8), dtype=np.uint8)
    labels[0:4] = 3  # liver: one face, on x
    labels[4:8, 0:4] = 1  # faces on x and y
    labels[6, 4:8] = 5  # a one-voxel sheet
    flip = np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS array order: the function orientates and puts it back
    rct = _bench()
    for affine in (np.eye(4), flip):
        case = rct.Case("c", np.zeros((8, 8, 8), np.int16), affine, labels, {n: True for n in rct.STRUCTURES}, None, "")
        out = rct.grid_ceiling_labels(case, (4, 4, 4))
        assert out.dtype == np.uint8 and out.shape == labels.shape
        np.testing.assert_array_equal(out == 3, labels == 3)
        np.testing.assert_array_equal(out == 1, labels == 1)
        assert not (out == 5).any()
    same = rct.grid_ceiling_labels(case, (8, 8, 8))  # the case's own grid: the labels themselves
    np.testing.assert_array_equal(same, labels)
