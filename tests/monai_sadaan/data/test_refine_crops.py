"""Stage-2 training crops (monai_sadaan.data.refine_crops): the crop holds its organ at the fine spacing with a
context that follows it, the same arguments give the same dataset, the datalist is reused or remade by its stamp.
Coarse spacings keep every case to a second or two."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data.refine_crops import (
    ensure_refine_datalist,
    generate_refine_crops,
    simulate_stage1_context,
    write_refine_dataset,
)

FAST = {"fine_spacing": 4.0, "locator_shape": 24}


def test_a_crop_holds_its_organ_at_the_fine_spacing_with_a_context_that_follows_it():
    crops = generate_refine_crops("normal", 0, **FAST)
    assert [c.structure for c in crops] == ["left_kidney", "right_kidney", "liver", "spleen", "pancreas"]
    assert [c.structure_index for c in crops] == [0, 1, 2, 3, 4]
    for c in crops:
        assert c.image.shape == c.label.shape == c.context.shape
        assert np.allclose(np.diag(c.affine)[:3], 4.0)  # RAS, the fine spacing
        inside = c.label.astype(bool)
        assert inside.any() and not inside.all()
        assert 0.0 <= c.context.min() and c.context.max() <= 1.0
        assert c.context[inside].mean() > c.context[~inside].mean() + 0.1, c.structure


def test_nephrectomy_crops_leave_the_removed_kidney_out():
    crops = generate_refine_crops("nephrectomy_left", 0, **FAST)
    assert "left_kidney" not in [c.structure for c in crops] and "right_kidney" in [c.structure for c in crops]


def test_simulated_context_is_deterministic_for_a_stream_and_checks_its_input():
    mask = np.zeros((30, 30, 30), bool)
    mask[10:20, 8:22, 12:18] = True
    a = simulate_stage1_context(mask, 1.5, np.random.default_rng(1))
    b = simulate_stage1_context(mask, 1.5, np.random.default_rng(1))
    c = simulate_stage1_context(mask, 1.5, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.shape == mask.shape and a.dtype == np.float32
    with pytest.raises(ValueError, match="3-D mask and positive spacings"):
        simulate_stage1_context(mask[0], 1.5, np.random.default_rng(0))


def _arrays(root, entries):
    return [np.asarray(nib.load(str(root / e[k])).dataobj) for e in entries for k in ("image", "context", "label")]


def test_the_training_datalist_is_deterministic_for_a_seed(tmp_path):
    kwargs = dict(num_cases=3, seed=4, splits=(0.67, 0.33, 0.0), scenarios=("normal", "splenectomy"), **FAST)
    first = write_refine_dataset(tmp_path / "a", **kwargs)
    second = write_refine_dataset(tmp_path / "b", **kwargs)
    a, b = json.loads(first.read_text()), json.loads(second.read_text())
    assert a == b
    entries = a["training"] + a["validation"]
    assert len(a["training"]) > 0 and len(a["validation"]) > 0 and a["test"] == []
    assert {e["seed"] for e in a["training"]}.isdisjoint({e["seed"] for e in a["validation"]})  # cases, not crops
    assert all(e["structure"] != "spleen" for e in entries if e["scenario"] == "splenectomy")
    assert all(np.array_equal(x, y) for x, y in zip(_arrays(tmp_path / "a", entries), _arrays(tmp_path / "b", entries)))
    assert not list((tmp_path / "a").rglob("*.tmp*"))  # atomic writes leave nothing behind
    other = json.loads(write_refine_dataset(tmp_path / "c", **{**kwargs, "seed": 5}).read_text())
    assert other["training"] != a["training"]


def test_ensure_reuses_the_dataset_and_remakes_it_when_the_arguments_change(tmp_path):
    path = ensure_refine_datalist(tmp_path, num_cases=1, seed=0, splits=(1.0, 0.0, 0.0), **FAST)
    made = (tmp_path / "dataset.json").stat().st_mtime_ns
    assert ensure_refine_datalist(tmp_path, num_cases=1, seed=0, splits=(1.0, 0.0, 0.0), num_workers=0, **FAST) == path
    assert (tmp_path / "dataset.json").stat().st_mtime_ns == made
    ensure_refine_datalist(tmp_path, num_cases=1, seed=1, splits=(1.0, 0.0, 0.0), **FAST)
    assert json.loads((tmp_path / "dataset.json").read_text())["generator"]["seed"] == 1
