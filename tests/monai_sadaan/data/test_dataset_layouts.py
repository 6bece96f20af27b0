"""Public data set layouts (TotalSegmentator, Decathlon / nnU-Net, image and label folders) converted into the
SADAAn bundle's datalist, then trained on for an epoch with the tiny network; the refusals name the subject; the
real TotalSegmentator example CT (validation only: converted and run forward, never trained on)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_sadaan.data import (
    DEFAULT_STRUCTURES,
    LAYOUTS,
    TOTALSEGMENTATOR_V2_CLASSES,
    DatasetLayoutError,
    check_datalist_structures,
    convert_dataset,
    generate_phantom,
    label_name_key,
    load_datalist,
    read_label_table,
    resolve_structure_mapping,
    split_by_presence_pattern,
)
from monai_sadaan.data.cli import main as cli_main
from tests.conftest import free_port

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"
REAL_CT = Path(__file__).resolve().parents[4] / "shared" / "data" / "real_ct" / "totalsegmentator_example"
TINY = {"spatial_size": [16, 16, 16], "features": [2, 4, 4, 4, 4], "feature_channels": 4}
TINY_ARGS = ["--spatial_size", "[16,16,16]", "--features", "[2,4,4,4,4]", "--feature_channels", "4"]
# six subjects with four presence patterns; a 20^3 phantom is drawn in milliseconds
SCENARIOS = ["normal", "nephrectomy_left", "splenectomy", "normal", "nephrectomy_right", "normal"]
TS_NAMES = {"left_kidney": "kidney_left", "right_kidney": "kidney_right", "liver": "liver", "spleen": "spleen", "pancreas": "pancreas"}  # fmt: skip
V2_IDS = {"left_kidney": 3, "right_kidney": 2, "liver": 5, "spleen": 1, "pancreas": 7}
# BTCV's numbering (1 spleen, 2 right kidney, 3 left kidney, 6 liver, 11 pancreas; the rest is never drawn here)
BTCV_TABLE = {1: "spleen", 2: "right kidney", 3: "left kidney", 4: "gallbladder", 5: "esophagus", 6: "liver",
              7: "stomach", 8: "aorta", 9: "inferior vena cava", 10: "portal vein and splenic vein", 11: "pancreas",
              12: "right adrenal gland", 13: "left adrenal gland"}  # fmt: skip
BTCV_IDS = {"left_kidney": 3, "right_kidney": 2, "liver": 6, "spleen": 1, "pancreas": 11}


def _phantoms(n: int = 6) -> list:
    return [generate_phantom(SCENARIOS[i % len(SCENARIOS)], seed=i, shape=20, orientation="RAS") for i in range(n)]


def _relabel(label: np.ndarray, ids: dict[str, int]) -> np.ndarray:
    out = np.zeros(label.shape, dtype=np.uint8)
    for name, value in DEFAULT_STRUCTURES.items():
        out[label == value] = ids[name]
    return out


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), str(path))


def _image(p) -> np.ndarray:
    return np.rint(p.image).astype(np.int16)


def _write_totalsegmentator(root: Path, phantoms: list, multilabel: bool = False) -> None:
    for i, p in enumerate(phantoms):
        d = root / f"s{i:04d}"
        _save(_image(p), p.affine, d / "ct.nii.gz")
        if multilabel:
            _save(_relabel(p.label, V2_IDS), p.affine, d / "segmentations.nii.gz")
            continue
        for name, value in DEFAULT_STRUCTURES.items():
            _save((p.label == value).astype(np.uint8), p.affine, d / "segmentations" / f"{TS_NAMES[name]}.nii.gz")
        _save(np.zeros(p.label.shape, np.uint8), p.affine, d / "segmentations" / "gallbladder.nii.gz")
    (root / "meta.csv").write_text("image_id;age;split\n" + "".join(f"s{i:04d};50;{'train' if i < 4 else 'val' if i == 4 else 'test'}\n" for i in range(len(phantoms))))  # fmt: skip


def _write_msd(root: Path, phantoms: list) -> None:
    # MSD: "labels" value -> name, a "training" list with ./ paths; liver with a tumour label inside it
    ids = {"left_kidney": 3, "right_kidney": 2, "liver": 4, "spleen": 1, "pancreas": 6}
    training = []
    for i, p in enumerate(phantoms):
        label = _relabel(p.label, ids)
        liver = np.argwhere(label == 4)
        label[tuple(liver[len(liver) // 2])] = 5  # one "cancer" voxel inside the liver
        _save(_image(p), p.affine, root / "imagesTr" / f"abdomen_{i}.nii.gz")
        _save(label, p.affine, root / "labelsTr" / f"abdomen_{i}.nii.gz")
        training.append({"image": f"./imagesTr/abdomen_{i}.nii.gz", "label": f"./labelsTr/abdomen_{i}.nii.gz"})
    labels = {"0": "background", "1": "spleen", "2": "Kidney (R)", "3": "Kidney (L)", "4": "liver", "5": "cancer", "6": "pancreas"}  # fmt: skip
    meta = {"name": "Abdomen", "modality": {"0": "CT"}, "labels": labels, "numTraining": len(training), "training": training}
    (root / "dataset.json").write_text(json.dumps(meta))


def _write_nnunet(root: Path, phantoms: list) -> None:
    # nnU-Net v2: "labels" name -> value, channel suffix _0000, no training list
    ids = {"left_kidney": 2, "right_kidney": 3, "liver": 1, "spleen": 4, "pancreas": 5}
    for i, p in enumerate(phantoms):
        _save(_image(p), p.affine, root / "imagesTr" / f"abd_{i:03d}_0000.nii.gz")
        _save(_relabel(p.label, ids), p.affine, root / "labelsTr" / f"abd_{i:03d}.nii.gz")
    labels = {"background": 0, "liver": 1, "kidney_l": 2, "kidney_r": 3, "spleen": 4, "pancreas": 5}
    meta = {"channel_names": {"0": "CT"}, "labels": labels, "numTraining": len(phantoms), "file_ending": ".nii.gz"}
    (root / "dataset.json").write_text(json.dumps(meta))


def _write_btcv(root: Path, phantoms: list) -> Path:
    # BTCV-style names (img0001 / label0001) and a value,name CSV table
    for i, p in enumerate(phantoms):
        _save(_image(p), p.affine, root / "img" / f"img{i + 1:04d}.nii.gz")
        _save(_relabel(p.label, BTCV_IDS), p.affine, root / "label" / f"label{i + 1:04d}.nii.gz")
    table = root / "labels.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["value", "name"])
        w.writerows(sorted(BTCV_TABLE.items()))
    return table


def _run(args: list[str], timeout: int = 600, module: tuple[str, ...] = ("monai.bundle",)) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, "-m", *module, *args]
    return subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=env)  # fmt: skip


def _parser(root: Path, datalist: Path, overlays: tuple[str, ...] = (), **overrides):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config([str(BUNDLE / "configs" / "train.json"), *(str(BUNDLE / "configs" / o) for o in overlays)])
    parser.update({"bundle_root": str(root), "datalist": str(datalist), "device": "$torch.device('cpu')",
                   "epochs": 1, "val_interval": 1, "batch_size": 2, **TINY, **overrides})  # fmt: skip
    return parser


def _train_one_epoch(root: Path, datalist: Path) -> list[dict]:
    """train.json with --datalist only (its CacheDataset), one epoch in this process; returns the metrics history."""
    parser = _parser(root, datalist)
    trainer = parser.get_parsed_content("train#trainer")
    losses: list[float] = []
    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append(float(e.state.output["loss"].detach())))
    trainer.run()
    assert len(losses) >= 1 and all(np.isfinite(losses))
    return json.loads((root / "models" / "metrics_history.json").read_text())


def _check_entries(datalist: Path, phantoms: list, subjects: list[str]) -> dict:
    """Every subject once; voxel counts and presence from the phantom; the written label map on the image's grid
    in the bundle's numbering."""
    data = json.loads(datalist.read_text())
    entries = {e["subject"]: e for split in ("training", "validation", "test") for e in data[split]}
    assert sorted(entries) == sorted(subjects)
    assert data["numTraining"] + data["numValidation"] + data["numTest"] == len(subjects)
    assert data["structures"] == DEFAULT_STRUCTURES and data["min_voxels"] == 8
    for subject, p in zip(subjects, phantoms):
        e = entries[subject]
        assert e["voxels"] == {k: int(v) for k, v in p.voxel_counts.items()}
        assert e["present"] == {k: int(v) >= 8 for k, v in p.voxel_counts.items()}
        absent = [k for k, v in e["present"].items() if not v]
        assert e["scenario"] == ("all present" if not absent else "absent " + "+".join(absent))
        written = nib.load(str(datalist.parent / e["label"]))
        image = nib.load(e["image"])
        assert written.get_data_dtype() == np.uint8
        assert written.shape == image.shape
        np.testing.assert_allclose(written.affine, image.affine, atol=1e-5)
        np.testing.assert_array_equal(np.asarray(written.dataobj), p.label)  # phantoms use the bundle's numbering
    return data


# ---------------------------------------------------------------------------------------------------------------
# names, tables, splits


@pytest.mark.parametrize(
    "name", ["kidney_left", "left kidney", "Kidney (L)", "kidney_l", "L kidney", "Lt. kidney", "KidneyLeft", "LEFT_KIDNEY"]
)
def test_left_kidney_spellings_match(name):
    assert resolve_structure_mapping({"left_kidney": 1}, [name, "kidney_right", "kidney_cyst_left"]) == {"left_kidney": [name]}


def test_structure_mapping_checks():
    assert label_name_key("Kidney (R)") == label_name_key("right_kidney") == ("kidney", "right")
    names = list(TOTALSEGMENTATOR_V2_CLASSES.values())
    got = resolve_structure_mapping(DEFAULT_STRUCTURES, names)
    assert got == {"left_kidney": ["kidney_left"], "right_kidney": ["kidney_right"], "liver": ["liver"],
                   "spleen": ["spleen"], "pancreas": ["pancreas"]}  # fmt: skip
    # words joined: "gall bladder" is the gallbladder; "portal vein and splenic vein" is not the spleen
    assert resolve_structure_mapping({"gallbladder": 6}, ["gall bladder", "liver"]) == {"gallbladder": ["gall bladder"]}
    with pytest.raises(DatasetLayoutError, match=r"needs 'spleen', but the data set never labels it"):
        resolve_structure_mapping({"spleen": 4}, ["portal vein and splenic vein", "liver"])
    with pytest.raises(DatasetLayoutError, match=r"'left_kidney' matches several labels.*'kidney_left', 'left kidney'"):
        resolve_structure_mapping({"left_kidney": 1}, ["kidney_left", "left kidney"])
    # explicit: by name or by value of the table, several labels in one structure
    table = {1: "liver", 2: "cancer"}
    assert resolve_structure_mapping({"liver": 3}, ["liver", "cancer"], {"liver": [1, "cancer"]}, table) == {"liver": ["liver", "cancer"]}  # fmt: skip
    with pytest.raises(DatasetLayoutError, match=r"gives 'liver' the label 'hepar', which the data set does not have"):
        resolve_structure_mapping({"liver": 3}, ["liver"], {"liver": "hepar"})
    with pytest.raises(DatasetLayoutError, match=r"'liver' is mapped to two structures: 'liver' and 'spleen'"):
        resolve_structure_mapping({"liver": 3, "spleen": 4}, ["liver"], {"spleen": "liver"})


def test_totalsegmentator_v2_class_map():
    assert len(TOTALSEGMENTATOR_V2_CLASSES) == 117 and sorted(TOTALSEGMENTATOR_V2_CLASSES) == list(range(1, 118))
    expected = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver", 6: "stomach",
                7: "pancreas", 18: "small_bowel", 19: "duodenum", 20: "colon", 21: "urinary_bladder", 26: "vertebrae_S1",
                27: "vertebrae_L5", 31: "vertebrae_L1", 32: "vertebrae_T12", 50: "vertebrae_C1", 52: "aorta",
                63: "inferior_vena_cava", 64: "portal_vein_and_splenic_vein", 79: "spinal_cord", 86: "autochthon_left",
                89: "iliopsoas_right", 92: "rib_left_1", 115: "rib_right_12", 117: "costal_cartilages"}  # fmt: skip
    assert {k: TOTALSEGMENTATOR_V2_CLASSES[k] for k in expected} == expected


def test_label_tables(tmp_path):
    assert read_label_table({"0": "background", "1": "liver"}) == {1: "liver"}  # MSD
    assert read_label_table({"background": 0, "liver": 1, "kidney": [2, 3]}) == {1: "liver", 2: "kidney", 3: "kidney"}  # nnU-Net
    assert read_label_table('{"1": "spleen", "6": "liver"}') == {1: "spleen", 6: "liver"}
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("label;organ\n1;spleen\n3;left kidney\n")
    assert read_label_table(csv_path) == {1: "spleen", 3: "left kidney"}
    (tmp_path / "t2.csv").write_text("spleen,1\nliver,6\n")  # name,value rows
    assert read_label_table(tmp_path / "t2.csv") == {1: "spleen", 6: "liver"}
    with pytest.raises(DatasetLayoutError, match=r"expected value 0 to be the background.*got 'liver'"):
        read_label_table({"0": "liver", "1": "spleen"})
    with pytest.raises(DatasetLayoutError, match=r"label value 2 has two names.*'a' and 'b'"):
        read_label_table({"a": 2, "b": [2]})
    with pytest.raises(DatasetLayoutError, match=r"got a missing path"):
        read_label_table(tmp_path / "none.csv")


def test_split_is_deterministic_and_stratified():
    patterns = {f"s{i:02d}": [True, i % 3 != 0, True] for i in range(30)}  # 10 with the second structure absent
    a = split_by_presence_pattern(patterns, seed=5)
    assert a == split_by_presence_pattern(dict(reversed(list(patterns.items()))), seed=5)
    assert a != split_by_presence_pattern(patterns, seed=6)
    for flag in (True, False):
        group = [a[s] for s, p in patterns.items() if p[1] is flag]
        counts = [group.count(split) for split in ("training", "validation", "test")]
        assert counts == ([14, 3, 3] if flag else [7, 2, 1])
    # patterns too rare for three splits are pooled, so that they still reach validation and test
    rare = {f"r{i}": [i % 2 == 0, True] for i in range(4)}
    assert sorted(split_by_presence_pattern(rare, seed=0).values()) == ["test", "training", "training", "validation"]


# ---------------------------------------------------------------------------------------------------------------
# layouts -> datalist -> training


def test_totalsegmentator_layout_through_the_bundle(tmp_path):
    """Converter command -> train.json with real_data.json (persistent cache, AMP off on CPU) for one epoch ->
    evaluate.json on the test split, every step through MONAI's bundle command."""
    phantoms = _phantoms()
    _write_totalsegmentator(tmp_path / "ts", phantoms)
    out = tmp_path / "converted"
    assert cli_main(["convert", "--layout", "totalsegmentator", "--input", str(tmp_path / "ts"), "--output_dir",
                     str(out), "--split_file", str(tmp_path / "ts" / "meta.csv"), "--no_progress"]) == 0  # fmt: skip
    subjects = [f"s{i:04d}" for i in range(6)]
    data = _check_entries(out / "dataset.json", phantoms, subjects)
    # meta.csv's split column (train / val / test) decides the split
    assert [e["subject"] for e in data["training"]] == subjects[:4]
    assert [e["subject"] for e in data["validation"]] == ["s0004"] and [e["subject"] for e in data["test"]] == ["s0005"]
    assert data["structure_mapping"]["left_kidney"] == {"labels": ["kidney_left"]}
    assert data["unmapped_labels"] == ["gallbladder"]
    assert data["presence_counts"]["left_kidney"] == {"present": 5, "absent": 1}
    assert not list(out.rglob("*.tmp*"))  # atomic writes leave no temporary file

    root = tmp_path / "bundle"
    common = ["--bundle_root", str(root), "--datalist", str(out / "dataset.json"), *TINY_ARGS]
    r = _run(["run", "--config_file", "['configs/train.json','configs/real_data.json']", *common,
              "--epochs", "1", "--val_interval", "1", "--batch_size", "2"])  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    history = json.loads((root / "models" / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and np.isfinite(history[0]["loss_total"])
    assert (root / "models" / "model.pt").is_file()  # the best validation Dice so far
    cached = list((root / "cache").rglob("*.pt"))
    assert len(cached) == 5  # the four training and one validation subject, resampled once
    r = _run(["run", "--config_file", "['configs/train.json','configs/evaluate.json']", *common])
    assert r.returncode == 0, r.stderr[-3000:]
    with open(root / "eval" / "per_scenario.csv") as f:
        rows = {row["scenario"]: row for row in csv.DictReader(f)}
    assert set(rows) == {data["test"][0]["scenario"], "all"} and rows["all"]["cases"] == "1"


@pytest.mark.slow
def test_multi_gpu_config_trains_and_resumes_on_a_converted_datalist(tmp_path):
    """torchrun, two CPU processes (gloo): multi_gpu_train.json with real_data.json on a converted data set, one
    epoch, then resumed to two: every rank continues from the saved epoch (before the fix only rank 0 did, and
    the other rank's extra epoch broke the run)."""
    phantoms = _phantoms(8)
    _write_totalsegmentator(tmp_path / "ts", phantoms)
    path = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts", splits=(0.5, 0.5, 0))
    assert json.loads(path.read_text())["numValidation"] == 4  # two per rank
    root = tmp_path / "ddp"
    args = ["--nproc_per_node=2", "--master_port", str(free_port()), "-m", "monai.bundle", "run", "--config_file",
            "['configs/train.json','configs/multi_gpu_train.json','configs/real_data.json']", "--bundle_root",
            str(root), "--datalist", str(path), "--val_interval", "1", "--batch_size", "2", *TINY_ARGS]  # fmt: skip
    r = _run([*args, "--epochs", "1"], module=("torch.distributed.run",))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    r = _run([*args, "--epochs", "2"], module=("torch.distributed.run",))
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    epochs = [line.split("Epoch[")[1][0] for line in (r.stdout + r.stderr).splitlines() if "SupervisedTrainer - INFO - Epoch[" in line and "Complete" in line]  # fmt: skip
    assert epochs == ["2", "2"]  # both ranks resumed at epoch 2
    history = json.loads((root / "models" / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]


def test_totalsegmentator_multilabel_file_trains(tmp_path):
    phantoms = _phantoms()
    _write_totalsegmentator(tmp_path / "ts", phantoms, multilabel=True)
    path = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts", seed=1)
    data = _check_entries(path, phantoms, [f"s{i:04d}" for i in range(6)])
    assert data["structure_mapping"]["pancreas"] == {"labels": ["pancreas"], "values": [7]}
    assert data["source"]["label_table_source"] == "TotalSegmentator v2"
    # two strata of three (all present; the three single absences pooled): one subject of each per split
    for split in ("training", "validation", "test"):
        assert sorted(e["scenario"] == "all present" for e in data[split]) == [False, True]
    # two worker processes write the same datalist and label maps
    parallel = convert_dataset("totalsegmentator", tmp_path / "out2", root=tmp_path / "ts", seed=1, num_workers=2)
    assert json.loads(parallel.read_text()) == data
    for e in data["training"]:
        a, b = (nib.load(str(tmp_path / folder / e["label"])) for folder in ("out", "out2"))
        np.testing.assert_array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
        np.testing.assert_array_equal(a.affine, b.affine)
    history = _train_one_epoch(tmp_path / "bundle", path)
    assert [h["epoch"] for h in history] == [1]


def test_decathlon_layouts_train(tmp_path):
    phantoms = _phantoms()
    _write_msd(tmp_path / "msd", phantoms)
    # the liver with its tumour label: the union makes the bundle's liver
    path = convert_dataset("msd", tmp_path / "msd_out", root=tmp_path / "msd", mapping={"liver": ["liver", "cancer"]})
    data = _check_entries(path, phantoms, [f"abdomen_{i}" for i in range(6)])
    assert data["structure_mapping"]["liver"] == {"labels": ["liver", "cancer"], "values": [4, 5]}
    assert data["structure_mapping"]["left_kidney"] == {"labels": ["Kidney (L)"], "values": [3]}
    assert data["name"].startswith("SADAAn datalist from Abdomen")
    _write_nnunet(tmp_path / "nnunet", phantoms)
    path = convert_dataset("nnunet", tmp_path / "nn_out", root=tmp_path / "nnunet")
    data = _check_entries(path, phantoms, [f"abd_{i:03d}" for i in range(6)])
    assert all(e["image"].endswith("_0000.nii.gz") for e in data["training"])
    assert data["structure_mapping"]["right_kidney"] == {"labels": ["kidney_r"], "values": [3]}
    history = _train_one_epoch(tmp_path / "bundle", path)
    assert [h["epoch"] for h in history] == [1]


def test_folders_layout_with_a_label_table_trains(tmp_path):
    phantoms = _phantoms()
    table = _write_btcv(tmp_path / "btcv", phantoms)
    path = convert_dataset("folders", tmp_path / "out", images_dir=tmp_path / "btcv" / "img",
                           labels_dir=tmp_path / "btcv" / "label", label_table=table)  # fmt: skip
    data = _check_entries(path, phantoms, [f"img{i + 1:04d}" for i in range(6)])
    assert data["structure_mapping"]["spleen"] == {"labels": ["spleen"], "values": [1]}
    assert "portal vein and splenic vein" in data["unmapped_labels"]
    history = _train_one_epoch(tmp_path / "bundle", path)
    assert [h["epoch"] for h in history] == [1]


def test_adding_a_structure(tmp_path):
    """docs/fine_tuning.md's recipe: convert with a sixth structure (the gallbladder, matched by name), then
    fine_tune.json from a five-structure checkpoint: the encoder carries over, the heads get six structures."""
    six = {**DEFAULT_STRUCTURES, "gallbladder": 6}
    phantoms = [generate_phantom(SCENARIOS[i], seed=i, structures=six, shape=20, orientation="RAS") for i in range(6)]
    root = tmp_path / "ts"
    _write_totalsegmentator(root, phantoms)  # the five structures, an empty gallbladder file ...
    for i, p in enumerate(phantoms):  # ... which now holds the gallbladder
        _save((p.label == 6).astype(np.uint8), p.affine, root / f"s{i:04d}" / "segmentations" / "gallbladder.nii.gz")
    path = convert_dataset("totalsegmentator", tmp_path / "out6", root=root, structures=six)
    data = json.loads(path.read_text())
    assert data["structure_mapping"]["gallbladder"] == {"labels": ["gallbladder"]} and data["unmapped_labels"] == []
    entries = {e["subject"]: e for split in ("training", "validation", "test") for e in data[split]}
    assert [entries[f"s{i:04d}"]["voxels"]["gallbladder"] for i in range(6)] == [int(p.voxel_counts["gallbladder"]) for p in phantoms]  # fmt: skip
    # a five-structure checkpoint (the shipped model's place), then the fine-tuning on six
    five = convert_dataset("totalsegmentator", tmp_path / "out5", root=root)
    bundle = tmp_path / "bundle"
    _train_one_epoch(bundle, five)
    parser = _parser(bundle, path, ("fine_tune.json",), structures=six)
    parser.get_parsed_content("train#trainer").run()
    tuned = torch.load(bundle / "models" / "fine_tuned" / "training_state.pt", weights_only=True)["model"]
    base = torch.load(bundle / "models" / "model.pt", weights_only=True)
    assert tuned["attention_module.position_embeddings"].shape[1] == 6
    assert base["attention_module.position_embeddings"].shape[1] == 5


def test_persistent_cache_resamples_each_subject_once(tmp_path, monkeypatch):
    """real_data.json: the load / orient / window / resize part runs once per subject, the augmentation every
    epoch; a cache made at another grid size is not reused."""
    from monai.transforms import LoadImaged

    phantoms = _phantoms()
    _write_totalsegmentator(tmp_path / "ts", phantoms)
    path = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts", splits=(1, 0, 0))
    calls: list[str] = []
    original = LoadImaged.__call__
    monkeypatch.setattr(LoadImaged, "__call__", lambda self, data, *a, **k: calls.append(data["image"]) or original(self, data, *a, **k))  # fmt: skip
    ds = _parser(tmp_path / "b", path, ("real_data.json",)).get_parsed_content("train#dataset")
    for _ in range(3):  # three epochs
        items = [ds[i] for i in range(len(ds))]
    assert len(calls) == 6 and len(set(calls)) == 6
    assert tuple(items[0]["image"].shape) == (1, 16, 16, 16)
    ds = _parser(tmp_path / "b", path, ("real_data.json",), spatial_size=[12, 12, 12]).get_parsed_content("train#dataset")
    assert tuple(ds[0]["image"].shape) == (1, 12, 12, 12) and len(calls) == 7
    # the datalist's structure table is checked against the bundle's
    with pytest.raises(RuntimeError) as e:  # MONAI wraps the expression's error
        _parser(tmp_path / "c", path, ("real_data.json",), structures={"liver": 1}).get_parsed_content("train#dataset")
    causes = []
    error: BaseException | None = e.value
    while error is not None:
        causes.append(error)
        error = error.__cause__
    assert any(isinstance(c, DatasetLayoutError) and "structures {'liver': 1} do not match the datalist" in str(c) for c in causes)
    assert check_datalist_structures(path, {"liver": 3, "spleen": 4}) == str(path)


# ---------------------------------------------------------------------------------------------------------------
# refusals


def test_refusals_name_the_subject(tmp_path):
    phantoms = _phantoms(4)
    # a structure the data set never labels: a spleen-only Decathlon task
    spleen = tmp_path / "spleen"
    for i, p in enumerate(phantoms):
        _save(_image(p), p.affine, spleen / "imagesTr" / f"spleen_{i}.nii.gz")
        _save((p.label == 4).astype(np.uint8), p.affine, spleen / "labelsTr" / f"spleen_{i}.nii.gz")
    (spleen / "dataset.json").write_text(json.dumps({"modality": {"0": "CT"}, "labels": {"0": "background", "1": "spleen"}}))
    with pytest.raises(DatasetLayoutError, match=r"needs 'left_kidney', 'right_kidney', 'liver', 'pancreas', but the data set never labels them"):  # fmt: skip
        convert_dataset("decathlon", tmp_path / "o1", root=spleen)
    assert not (tmp_path / "o1").exists()
    # ... which trains as a one-structure bundle
    path = convert_dataset("decathlon", tmp_path / "o1", root=spleen, structures={"spleen": 4})
    assert json.loads(path.read_text())["presence_counts"] == {"spleen": {"present": 3, "absent": 1}}

    # inconsistent numbering: one subject written with another numbering (values outside the table)
    btcv = tmp_path / "btcv"
    table = _write_btcv(btcv, phantoms)
    p = phantoms[0]  # all five present
    _save(_relabel(p.label, {"left_kidney": 1, "right_kidney": 2, "liver": 3, "spleen": 14, "pancreas": 5}), p.affine,
          btcv / "label" / "label0001.nii.gz")  # fmt: skip
    folders = {"images_dir": btcv / "img", "labels_dir": btcv / "label", "label_table": table}
    with pytest.raises(DatasetLayoutError) as e:
        convert_dataset("folders", tmp_path / "o2", **folders)
    assert "subject 'img0001': label values [14] in" in str(e.value) and "not in the label table" in str(e.value)
    assert "expected 0 background or: 1 spleen, 2 right kidney, 3 left kidney" in str(e.value)
    assert "1 subjects refused" in str(e.value) and not (tmp_path / "o2" / "dataset.json").exists()
    # ... and with values inside the table but left and right swapped
    _save(_relabel(p.label, {**BTCV_IDS, "left_kidney": 2, "right_kidney": 3}), p.affine, btcv / "label" / "label0001.nii.gz")
    with pytest.raises(DatasetLayoutError, match=r"subject 'img0001': 'left_kidney' \(label 1\) lies to the patient's right of 'right_kidney'"):  # fmt: skip
        convert_dataset("folders", tmp_path / "o2", **folders)
    assert convert_dataset("folders", tmp_path / "o2", check_laterality=False, **folders).is_file()

    # geometry: a label shifted by 2 mm, and a label on another grid
    _save(_relabel(p.label, BTCV_IDS), p.affine + np.array([[0, 0, 0, 2.0]] * 3 + [[0, 0, 0, 0]]), btcv / "label" / "label0001.nii.gz")  # fmt: skip
    with pytest.raises(DatasetLayoutError, match=r"subject 'img0001': label geometry does not match the image: the affines differ by 2 mm"):  # fmt: skip
        convert_dataset("folders", tmp_path / "o3", **folders)
    _save(_relabel(p.label, BTCV_IDS)[:, :, :-1], p.affine, btcv / "label" / "label0001.nii.gz")
    with pytest.raises(DatasetLayoutError, match=r"subject 'img0001': label geometry does not match the image: expected shape \(20, 20, 20\) \(of img0001.nii.gz\), got \(20, 20, 19\)"):  # fmt: skip
        convert_dataset("folders", tmp_path / "o3", **folders)
    # no label file
    os.remove(btcv / "label" / "label0001.nii.gz")
    with pytest.raises(DatasetLayoutError, match=r"subject 'img0001': no label file for img0001.nii.gz in"):
        convert_dataset("folders", tmp_path / "o4", **folders)
    os.remove(spleen / "labelsTr" / "spleen_1.nii.gz")
    (spleen / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "spleen"}}))
    with pytest.raises(DatasetLayoutError, match=r"subject 'spleen_1': no label file: expected .*labelsTr/spleen_1.nii.gz"):
        convert_dataset("decathlon", tmp_path / "o4", root=spleen, structures={"spleen": 4})

    ts = tmp_path / "ts"
    _write_totalsegmentator(ts, phantoms)
    os.remove(ts / "s0001" / "segmentations" / "pancreas.nii.gz")
    with pytest.raises(DatasetLayoutError, match=r"subject 's0001': no label file for 'pancreas': expected .*s0001/segmentations/pancreas.nii.gz"):  # fmt: skip
        convert_dataset("totalsegmentator", tmp_path / "o5", root=ts)
    # overlapping masks, and a mask that is not binary
    liver = nib.load(str(ts / "s0003" / "segmentations" / "liver.nii.gz"))
    spleen = np.asarray(nib.load(str(ts / "s0003" / "segmentations" / "spleen.nii.gz")).dataobj)
    both = np.asarray(liver.dataobj) | spleen
    _save(both, liver.affine, ts / "s0003" / "segmentations" / "liver.nii.gz")
    with pytest.raises(DatasetLayoutError, match=rf"subject 's0003': the masks of 'liver' and 'spleen' overlap in {int(spleen.sum())} voxels"):  # fmt: skip
        convert_dataset("totalsegmentator", tmp_path / "o5", root=ts, structures={"liver": 3, "spleen": 4})
    _save(both * 2, liver.affine, ts / "s0003" / "segmentations" / "liver.nii.gz")
    with pytest.raises(DatasetLayoutError, match=r"subject 's0003': expected a binary mask \(values 0 and 1\) in .*liver.nii.gz, got values \[0, 2\]"):  # fmt: skip
        convert_dataset("totalsegmentator", tmp_path / "o5", root=ts, structures={"liver": 3, "spleen": 4})
    shutil.rmtree(ts / "s0002" / "segmentations")
    with pytest.raises(DatasetLayoutError, match=r"subject 's0002': no label file: expected .*s0002/segmentations/<structure>.nii.gz masks"):  # fmt: skip
        convert_dataset("totalsegmentator", tmp_path / "o5", root=ts)
    # subjects left out (by name or by --limit) are not checked
    kept = convert_dataset("totalsegmentator", tmp_path / "o6", root=ts, exclude=["s000[1-3]"])
    assert [e["subject"] for split in ("training", "validation", "test") for e in json.loads(kept.read_text())[split]] == ["s0000"]  # fmt: skip
    assert convert_dataset("totalsegmentator", tmp_path / "o7", root=ts, limit=1).is_file()


def test_output_folder_and_command_errors(tmp_path, capsys):
    phantoms = _phantoms(4)
    _write_totalsegmentator(tmp_path / "ts", phantoms)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(DatasetLayoutError, match=r"refusing to write into .*mine: the folder is not empty and is not an output of this converter"):  # fmt: skip
        convert_dataset("totalsegmentator", foreign, root=tmp_path / "ts")
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    first = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts")
    again = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts")  # an earlier output: rewritten
    assert json.loads(first.read_text()) == json.loads(again.read_text())
    assert len(load_datalist(again, "training")) == 2  # 4 subjects: 2 / 1 / 1
    with pytest.raises(SystemExit) as e:
        cli_main(["convert", "--layout", "folders", "--input", str(tmp_path / "ts"), "--output_dir", str(tmp_path / "o")])
    assert e.value.code == 2
    assert "expected a label table for the 'folders' layout" in capsys.readouterr().err
    assert set(LAYOUTS) == {"totalsegmentator", "decathlon", "msd", "nnunet", "folders"}


# ---------------------------------------------------------------------------------------------------------------
# the real example CT: validation only (converted and run forward, never trained on)


@pytest.mark.skipif(not (REAL_CT / "example_seg.nii.gz").is_file(), reason="the shared real CT example is not here")
def test_real_totalsegmentator_ct_converts_and_runs_forward(tmp_path):
    subject = tmp_path / "ts" / "example"
    subject.mkdir(parents=True)
    shutil.copy(REAL_CT / "example_ct_sm.nii.gz", subject / "ct.nii.gz")
    seg = nib.load(str(REAL_CT / "example_seg.nii.gz"))
    labels = np.asarray(seg.dataobj)
    for value in np.unique(labels)[1:]:  # one binary file per structure, as the data set ships them
        _save((labels == value).astype(np.uint8), seg.affine, subject / "segmentations" / f"{TOTALSEGMENTATOR_V2_CLASSES[int(value)]}.nii.gz")  # fmt: skip
    path = convert_dataset("totalsegmentator", tmp_path / "out", root=tmp_path / "ts", splits=(0, 0, 1))
    data = json.loads(path.read_text())
    assert data["numTraining"] == 0 and data["numValidation"] == 0  # nothing to train on
    (entry,) = data["test"]
    assert entry["voxels"] == {"left_kidney": 3676, "right_kidney": 3947, "liver": 38634, "spleen": 9452, "pancreas": 644}
    assert entry["present"] == dict.fromkeys(DEFAULT_STRUCTURES, True) and entry["scenario"] == "all present"
    written = np.asarray(nib.load(str(path.parent / entry["label"])).dataobj)
    for name, v2 in V2_IDS.items():
        np.testing.assert_array_equal(written == DEFAULT_STRUCTURES[name], labels == v2)

    # the bundle's validation pipeline and network (shipped weights) on the converted case: a forward pass
    from monai.bundle import ConfigParser
    from monai.data import list_data_collate

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    # the shipped weights (bundle 0.10.0) carry the presence fusion that train.json's trunk recipe leaves out
    parser.update({"bundle_root": str(tmp_path / "b"), "datalist": str(path), "device": "$torch.device('cpu')",
                   "presence_fusion": True})
    item = parser.get_parsed_content("validate#preprocessing")(load_datalist(path, "test")[0])
    assert item["presence_targets"].tolist() == [1.0] * 5  # all five on the 48^3 grid too
    net = parser.get_parsed_content("network")
    net.load_state_dict(torch.load(BUNDLE / "models" / "model.pt", weights_only=True))
    net.eval()
    with torch.no_grad():
        out = net(list_data_collate([item])["image"])
    assert tuple(out["segmentation_probs"].shape) == (1, 5, 48, 48, 48)
    assert tuple(out["presence_probs"].shape) == (1, 5)
    assert torch.isfinite(out["presence_probs"]).all() and ((out["presence_probs"] >= 0) & (out["presence_probs"] <= 1)).all()
