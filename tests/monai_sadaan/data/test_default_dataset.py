from __future__ import annotations

import json
import os

import pytest
import nibabel as nib
import numpy as np

from monai_sadaan.data import load_datalist, structure_presence
from monai_sadaan.data.default_dataset import ensure_phantom_datalist

STRUCTURES = {"left_kidney": 1, "spleen": 2}


def _mtime(path: str) -> int:
    return os.stat(path).st_mtime_ns


def test_reuses_a_matching_dataset_and_regenerates_on_other_arguments(tmp_path):
    path = ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES)
    data = json.loads(open(path).read())
    # one case per scenario: 0.7/0.15/0.15 of one case is one training case
    assert (data["numTraining"], data["numValidation"], data["numTest"]) == (7, 0, 0)
    # the default stamp has no "splits" entry, so datasets written before splits were configurable stay valid
    assert json.loads((tmp_path / ".generated_with.json").read_text()) == {
        "num_cases": 7, "seed": 4, "structures": STRUCTURES,
    }  # fmt: skip
    before = _mtime(path)
    assert ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES) == path
    assert _mtime(path) == before  # reused, not rewritten

    ensure_phantom_datalist(tmp_path, num_cases=7, seed=5, structures=STRUCTURES)
    assert json.loads(open(path).read())["generator"]["seed"] == 5


def test_held_out_splits_put_every_case_in_the_test_split(tmp_path):
    path = ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES, splits=(0, 0, 1))
    assert len(load_datalist(path, "test")) == 7
    assert json.loads(open(path).read())["numTraining"] == 0
    assert json.loads((tmp_path / ".generated_with.json").read_text())["splits"] == [0.0, 0.0, 1.0]
    # asking for the default splits again regenerates: the stamp records the splits it was made with
    path = ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES)
    assert json.loads(open(path).read())["numTest"] == 0


def test_rejects_a_split_list_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="three split fractions"):
        ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES, splits=(0.5, 0.5))
    assert not any(tmp_path.iterdir())


def test_scenario_weights_set_the_case_counts_and_are_stamped(tmp_path):
    weights = {"partial_fov": 3, "normal": 1}
    path = ensure_phantom_datalist(tmp_path, num_cases=8, seed=4, structures=STRUCTURES, scenario_weights=weights)
    data = json.loads(open(path).read())
    cases = [c for split in ("training", "validation", "test") for c in data[split]]
    # largest remainder: 8 * 3/4 = 6 partial-FOV cases, 8 * 1/4 = 2 normal ones, nothing else
    assert sorted(c["scenario"] for c in cases) == ["normal"] * 2 + ["partial_fov"] * 6
    stamp = json.loads((tmp_path / ".generated_with.json").read_text())
    assert stamp["scenario_weights"] == {"partial_fov": 3.0, "normal": 1.0}
    before = _mtime(path)
    assert ensure_phantom_datalist(tmp_path, num_cases=8, seed=4, structures=STRUCTURES, scenario_weights=weights) == path
    assert _mtime(path) == before
    # equal weights again: the stamp differs, so the dataset is made anew with every scenario
    ensure_phantom_datalist(tmp_path, num_cases=8, seed=4, structures=STRUCTURES)
    data = json.loads(open(path).read())
    assert len({c["scenario"] for split in ("training", "validation", "test") for c in data[split]}) == 7


@pytest.mark.parametrize(
    "weights, message",
    [({"no_such_scenario": 1}, "no_such_scenario"), ({}, "non-empty mapping"), ([1, 2], "non-empty mapping")],
)
def test_rejects_bad_scenario_weights_before_writing(tmp_path, weights, message):
    with pytest.raises(ValueError, match=message):
        ensure_phantom_datalist(tmp_path, num_cases=7, seed=4, structures=STRUCTURES, scenario_weights=weights)
    assert not any(tmp_path.iterdir())


def test_dataset_builder_trunk_writes_a_loadable_datalist(tmp_path):
    weights = {"abdomen": 1.0, "pelvis": 1.0}
    path = ensure_phantom_datalist(tmp_path, num_cases=3, seed=2, structures={"liver": 1, "left_kidney": 2},
                                   scenario_weights={"normal": 2, "pancreatectomy": 1}, generator="trunk",
                                   fov_weights=weights, domain_randomization=0.5)
    data = json.loads(open(path).read())
    assert data["generator"]["name"] == "trunk" and data["generator"]["fov_weights"] == weights
    entries = [e for split in ("training", "validation", "test") for e in load_datalist(path, split)]
    assert len(entries) == 3
    for e in entries:
        assert e["field_of_view"] in weights and e["intensity_mode"] in ("ct", "random")
        label = np.asarray(nib.load(e["label"]).dataobj)
        present, _ = structure_presence(label, {"liver": 1, "left_kidney": 2}, data["min_voxels"])
        assert present == e["present"]
    stamp = json.loads((tmp_path / ".generated_with.json").read_text())
    assert stamp["generator"] == "trunk" and stamp["domain_randomization"] == 0.5
    # the generator is part of what decides reuse
    mtime = (tmp_path / "dataset.json").stat().st_mtime_ns
    ensure_phantom_datalist(tmp_path, num_cases=3, seed=2, structures={"liver": 1, "left_kidney": 2},
                            scenario_weights={"normal": 2, "pancreatectomy": 1}, generator="trunk",
                            fov_weights=weights, domain_randomization=0.5)
    assert (tmp_path / "dataset.json").stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="expected generator"):
        ensure_phantom_datalist(tmp_path, num_cases=3, generator="legs")
    with pytest.raises(ValueError, match="trunk options"):
        ensure_phantom_datalist(tmp_path, num_cases=3, domain_randomization=0.5)
