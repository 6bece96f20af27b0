from __future__ import annotations

import json

import pytest

from monai_sadaan.data import load_datalist
from monai_sadaan.data.default_dataset import ensure_phantom_datalist

STRUCTURES = {"left_kidney": 1, "spleen": 2}


def _mtime(path: str) -> int:
    import os

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
