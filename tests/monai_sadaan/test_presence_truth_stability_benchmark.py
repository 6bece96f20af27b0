"""``benchmarks/sadaan_presence_truth_stability.py``: the grid the bundle scores presence on, and shifts of it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_sadaan.transforms import FitToSpatialDims
from tests.benchmark_scripts import load_benchmark


def _benchmark():
    return load_benchmark("sadaan_presence_truth_stability")


def test_grid_indices_by_hand():
    bench = _benchmark()
    # 4 native voxels onto 2: centres 0.5 and 1.5 of the grid read native 1 and 3; half a voxel lower, 0 and 2
    np.testing.assert_array_equal(bench.grid_indices(4, 2, 0.0), [1, 3])
    np.testing.assert_array_equal(bench.grid_indices(4, 2, -0.5), [0, 2])
    # upsampling 2 -> 4 repeats each native voxel; shifts past the edge are clipped into the volume
    np.testing.assert_array_equal(bench.grid_indices(2, 4, 0.0), [0, 0, 1, 1])
    np.testing.assert_array_equal(bench.grid_indices(2, 4, 0.75), [0, 1, 1, 1])
    with pytest.raises(ValueError, match="less than one grid voxel"):
        bench.grid_indices(4, 2, 1.0)


@pytest.mark.parametrize("shape", [(37, 20, 53), (96, 49, 63), (12, 12, 12)])
def test_unshifted_counts_equal_the_bundle_resampling(shape):
    bench = _benchmark()
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, size=shape).astype(np.int16)
    structures = {"a": 1, "b": 2, "c": 3}
    fit = FitToSpatialDims((16, 24, 20), interp_mode="nearest-exact")
    resampled = np.asarray(fit(torch.as_tensor(label[None], dtype=torch.float32)))[0]
    expected = {name: int((resampled == value).sum()) for name, value in structures.items()}
    assert bench.shifted_grid_counts(label, structures, (16, 24, 20), (0.0, 0.0, 0.0)) == expected


def _one_slice_label() -> np.ndarray:
    # a structure one native slice thick at the low face of axis 0 (ratio 2 onto the grid), and a large one
    label = np.zeros((8, 4, 4), np.int16)
    label[0] = 1
    label[2:6] = 2
    return label


def test_stability_table_flags_a_sliver_the_grid_misses_by_half_a_voxel():
    bench = _benchmark()
    labels = {"case.nii.gz": _one_slice_label()}
    items = [{"label": "case.nii.gz", "scenario": "partial_fov"}]
    structures = {"sliver": 1, "organ": 2}
    # unshifted, grid voxel 0 reads native slice 1: the sliver (16 native voxels) leaves nothing on the grid.
    # Half a voxel lower it reads slice 0: 16 grid voxels, present from min_voxels 8 on.
    shifts = [(-0.5, 0.0, 0.0), (0.25, 0.0, 0.0)]
    table = bench.stability_table(
        items, structures, shifts, spatial_dims=(4, 4, 4), min_voxels=8, load_label=labels.get
    )
    assert table["all"]["calls"] == 2
    assert table["all"]["unstable"] == 1  # the sliver only; the organ is present on every grid
    assert table["all"]["flip_rate"] == pytest.approx(0.25)  # 1 of 2 shifts for 1 of 2 calls
    assert table["partial_fov"] == table["all"]


def test_stability_table_counts_wrong_calls_and_checks_the_per_case_rows():
    bench = _benchmark()
    labels = {"case.nii.gz": _one_slice_label()}
    items = [{"label": "case.nii.gz", "scenario": "partial_fov"}]
    structures = {"sliver": 1, "organ": 2}
    rows = [
        {"case": "case_0000", "structure": "sliver", "correct": "False", "target_voxels": "0"},
        {"case": "case_0000", "structure": "organ", "correct": "False", "target_voxels": "32"},
    ]
    table = bench.stability_table(
        items, structures, [(-0.5, 0.0, 0.0)], spatial_dims=(4, 4, 4), min_voxels=8, per_case_rows=rows,
        load_label=labels.get,
    )  # fmt: skip
    assert (table["all"]["wrong"], table["all"]["wrong_unstable"]) == (2, 1)
    rows[1]["target_voxels"] = "31"
    with pytest.raises(ValueError, match="expected case_0000/organ to hold 32 target voxels"):
        bench.stability_table(items, structures, 1, spatial_dims=(4, 4, 4), per_case_rows=rows, load_label=labels.get)
    with pytest.raises(ValueError, match="expected 2 per-case rows"):
        bench.stability_table(
            items, structures, 1, spatial_dims=(4, 4, 4), per_case_rows=rows[:1], load_label=labels.get
        )
    with pytest.raises(ValueError, match="at least one shift"):
        bench.stability_table(items, structures, [], load_label=labels.get)
