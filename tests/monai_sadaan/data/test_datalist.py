from __future__ import annotations

import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data import DatalistError, load_datalist, structure_presence, write_phantom_dataset
from monai_sadaan.data.datalist import allocate_counts, stratified_split_counts

TINY = dict(shape=(24, 22, 20))


def test_allocate_counts_largest_remainder():
    assert allocate_counts(10, [0.7, 0.15, 0.15]) == [7, 2, 1]
    assert allocate_counts(7, [1, 1, 1]) == [3, 2, 2]
    assert allocate_counts(0, [1, 2]) == [0, 0]
    assert sum(allocate_counts(101, [0.3, 0.1, 0.1, 0.1, 0.1, 0.2, 0.1])) == 101
    with pytest.raises(ValueError, match="non-negative weights"):
        allocate_counts(3, [1, -1])


def test_stratified_split_counts_reach_every_split():
    assert stratified_split_counts(3, (0.7, 0.15, 0.15)) == [1, 1, 1]
    assert stratified_split_counts(4, (0.7, 0.15, 0.15)) == [2, 1, 1]
    assert stratified_split_counts(20, (0.7, 0.15, 0.15)) == [14, 3, 3]
    assert stratified_split_counts(2, (0.7, 0.15, 0.15)) == [2, 0, 0]  # not enough cases for all three
    assert stratified_split_counts(5, (1.0, 0.0, 0.0)) == [5, 0, 0]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("phantoms")
    path = write_phantom_dataset(root, 9, seed=3, scenarios=("normal", "nephrectomy_left", "splenectomy"), **TINY)
    return root, path


def test_dataset_json_is_decathlon_style_and_stratified(dataset):
    root, path = dataset
    assert path == root / "dataset.json"
    data = json.loads(path.read_text())
    assert data["labels"] == {"0": "background", "1": "left_kidney", "2": "right_kidney", "3": "liver", "4": "spleen", "5": "pancreas"}
    assert data["structures"] == {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 4, "pancreas": 5}
    assert data["name"] and data["numTraining"] == 3 and data["numTest"] == 3
    for split in ("training", "validation", "test"):
        assert Counter(e["scenario"] for e in data[split]) == {"normal": 1, "nephrectomy_left": 1, "splenectomy": 1}
    entries = data["training"] + data["validation"] + data["test"]
    assert len({e["image"] for e in entries}) == 9
    for e in entries:
        assert not e["image"].startswith("/") and e["image"].startswith("imagesTr/")
        assert e["label"] == e["image"].replace("imagesTr/", "labelsTr/")
        assert (root / e["image"]).is_file() and (root / e["label"]).is_file()
        expected_absent = {"normal": set(), "nephrectomy_left": {"left_kidney"}, "splenectomy": {"spleen"}}[e["scenario"]]
        assert {n for n, v in e["present"].items() if not v} == expected_absent
    assert sorted(p.name for p in (root / "imagesTr").iterdir()) == [f"sadaan_{i:04d}.nii.gz" for i in range(9)]


def test_present_in_json_matches_label_files(dataset):
    root, path = dataset
    data = json.loads(path.read_text())
    for e in data["validation"]:
        label = np.asarray(nib.load(str(root / e["label"])).dataobj)
        present, _ = structure_presence(label, data["structures"], data["min_voxels"])
        assert present == e["present"]
        assert list(label.shape) == e["shape"] == [24, 22, 20]


def test_load_datalist_resolves_paths(dataset):
    root, path = dataset
    items = load_datalist(path, "validation")
    assert len(items) == 3
    for item in items:
        assert item["image"].startswith(str(root.resolve())) and item["image"].endswith(".nii.gz")
        assert "scenario" in item and "present" in item
    # MONAI's own reader agrees on the resolved paths
    from monai.data import load_decathlon_datalist

    monai_items = load_decathlon_datalist(str(path), data_list_key="validation")
    assert [str(m["image"]) for m in monai_items] == [i["image"] for i in items]


def test_dataset_is_reproducible(tmp_path, dataset):
    root, path = dataset
    again = write_phantom_dataset(tmp_path, 9, seed=3, scenarios=("normal", "nephrectomy_left", "splenectomy"), **TINY)
    a, b = json.loads(path.read_text()), json.loads(again.read_text())
    assert a["training"] == b["training"] and a["test"] == b["test"]
    name = a["test"][0]["label"]
    np.testing.assert_array_equal(np.asarray(nib.load(str(root / name)).dataobj), np.asarray(nib.load(str(tmp_path / name)).dataobj))


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def test_load_datalist_errors(tmp_path):
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    good = {"image": "a.nii.gz", "label": "a.nii.gz"}
    path = _write_json(tmp_path / "d.json", {"training": [good, good, good, {"image": "a.nii.gz"}]})
    with pytest.raises(DatalistError) as err:
        load_datalist(path, "training")
    assert str(err.value) == "datalist entry 3 of 'training' has no 'label' key; expected keys image, label"
    assert len(load_datalist(path, "training", keys=("image",))) == 4
    with pytest.raises(DatalistError, match="has no 'validation' list; lists found: training"):
        load_datalist(path, "validation")
    missing = _write_json(tmp_path / "m.json", {"training": [{"image": "a.nii.gz", "label": "gone.nii.gz"}]})
    with pytest.raises(DatalistError, match=r"entry 0 of 'training': label file does not exist: .*gone.nii.gz"):
        load_datalist(missing, "training")
    assert load_datalist(missing, "training", check_files=False)[0]["label"].endswith("gone.nii.gz")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DatalistError, match="parse error"):
        load_datalist(bad)
    with pytest.raises(DatalistError, match="missing path"):
        load_datalist(tmp_path / "nope.json")
    not_dict = _write_json(tmp_path / "n.json", {"training": [3]})
    with pytest.raises(DatalistError, match="entry 0 of 'training' is a int"):
        load_datalist(not_dict)


def test_write_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_cases"):
        write_phantom_dataset(tmp_path, 0)
    with pytest.raises(ValueError, match="one weight per scenario"):
        write_phantom_dataset(tmp_path, 3, scenarios=("normal",), weights=(1.0, 2.0))
    with pytest.raises(ValueError, match="expected scenarios from"):
        write_phantom_dataset(tmp_path, 3, scenarios=("normal", "lobectomy"))
    with pytest.raises(ValueError, match="three split fractions"):
        write_phantom_dataset(tmp_path, 3, splits=(0.5, 0.5))
    assert list(tmp_path.iterdir()) == []  # nothing written for bad arguments


def test_parallel_writing_matches_serial(tmp_path):
    kwargs = dict(seed=5, scenarios=("splenectomy", "partial_fov"), **TINY)
    serial = write_phantom_dataset(tmp_path / "serial", 3, **kwargs)
    parallel = write_phantom_dataset(tmp_path / "parallel", 3, num_workers=2, **kwargs)
    a, b = json.loads(serial.read_text()), json.loads(parallel.read_text())
    assert a == b
    for e in a["training"] + a["validation"] + a["test"]:
        for key in ("image", "label"):
            np.testing.assert_array_equal(
                np.asarray(nib.load(str(tmp_path / "serial" / e[key])).dataobj),
                np.asarray(nib.load(str(tmp_path / "parallel" / e[key])).dataobj),
            )
