"""The SADAAn bundle through MONAI's own command line: metadata, training, resuming, evaluation, inference on bad
input, fine-tuning and distributed training. Tiny network and phantom settings keep each run to seconds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tests.conftest import free_port

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"
TINY = ["--spatial_size", "[16,16,16]", "--features", "[2,4,4,4,4]", "--feature_channels", "4"]


def _run(args: list[str], timeout: int = 600, module: list[str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}
    cmd = [sys.executable, "-m", *(module or ["monai.bundle"]), *args]
    return subprocess.run(cmd, cwd=BUNDLE, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=timeout, env=env)


def _train_args(root: Path, data: Path, epochs: int) -> list[str]:
    return [
        "run", "--config_file", "configs/train.json", "--bundle_root", str(root), "--data_dir", str(data),
        "--num_cases", "21", "--epochs", str(epochs), "--val_interval", "1", "--batch_size", "2", *TINY,
    ]  # fmt: skip


def test_verify_metadata_offline():
    r = _run(["verify_metadata", "--meta_file", "configs/metadata.json", "--filepath", "configs/metadata_schema.json"])
    assert r.returncode == 0, r.stderr[-2000:]
    assert "metadata is verified with no error" in r.stdout + r.stderr


def test_metadata_names_the_structures_of_the_configs():
    meta = json.loads((BUNDLE / "configs" / "metadata.json").read_text())
    inference = json.loads((BUNDLE / "configs" / "inference.json").read_text())
    names = list(inference["structures"])
    assert list(meta["network_data_format"]["outputs"]["pred"]["channel_def"].values()) == names
    assert meta["network_data_format"]["outputs"]["pred"]["num_channels"] == len(names)
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == inference["spatial_size"]


@pytest.mark.slow
def test_train_resume_evaluate_and_fine_tune(tmp_path):
    data = tmp_path / "data"
    # 1. two epochs in one go
    full = tmp_path / "full"
    r = _run(_train_args(full, data, 2))
    assert r.returncode == 0, r.stderr[-3000:]
    history_full = json.loads((full / "models" / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history_full] == [1, 2]
    assert (full / "models" / "model.pt").is_file()  # best validation Dice
    # 2. one epoch, then resume to two: the same history as the uninterrupted run
    part = tmp_path / "part"
    assert _run(_train_args(part, data, 1)).returncode == 0
    r = _run(_train_args(part, data, 2))
    assert r.returncode == 0, r.stderr[-3000:]
    history_resumed = json.loads((part / "models" / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history_resumed] == [1, 2]
    for a, b in zip(history_full, history_resumed):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-6), k
    # 3. evaluation on the test split, per scenario
    r = _run(
        ["run", "--config_file", "['configs/train.json','configs/evaluate.json']", "--bundle_root", str(full),
         "--data_dir", str(data), "--num_cases", "21", *TINY]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    with open(full / "eval" / "per_scenario.csv") as f:
        rows = {row["scenario"]: row for row in csv.DictReader(f)}
    assert "all" in rows and 0.0 <= float(rows["all"]["presence_accuracy"]) <= 1.0
    assert (full / "eval" / "per_scenario.png").read_bytes()[:4] == b"\x89PNG"
    # 4. fine-tuning on two structures from the five-structure checkpoint, frozen encoder
    ft = _run(
        ["run", "--config_file", "['configs/train.json','configs/fine_tune.json']", "--bundle_root", str(full),
         "--data_dir", str(data), "--num_cases", "21", "--epochs", "1", *TINY,
         "--structures", "{'liver': 3, 'spleen': 4}", "--freeze_encoder", "True"]
    )  # fmt: skip
    assert ft.returncode == 0, ft.stderr[-3000:]
    tuned = torch.load(full / "models" / "fine_tuned" / "training_state.pt", weights_only=True)["model"]
    base = torch.load(full / "models" / "model.pt", weights_only=True)
    assert tuned["attention_module.position_embeddings"].shape[1] == 2  # a prior for each of the new structures
    enc = [k for k in base if k.startswith("encoder.") and "num_batches" not in k]
    assert enc and all(torch.equal(tuned[k], base[k]) for k in enc)  # frozen encoder unchanged
    # 5. warm start on the same structure set: every weight from the checkpoint but the presence classifiers
    from monai.bundle import ConfigParser

    warm = ConfigParser()
    warm.read_config([str(BUNDLE / "configs" / "train.json"), str(BUNDLE / "configs" / "warm_start.json")])
    warm.update({"bundle_root": str(full), "data_dir": str(data), "num_cases": 21, "device": "$torch.device('cpu')",
                 "spatial_size": [16, 16, 16], "features": [2, 4, 4, 4, 4], "feature_channels": 4})  # fmt: skip
    net = warm.get_parsed_content("network")
    reset = "absence_detector.absence_classifiers."
    started = net.state_dict()
    assert all(torch.equal(started[k], base[k]) for k in base if not k.startswith(reset))
    assert not all(torch.equal(started[k], base[k]) for k in base if k.startswith(reset))
    assert warm.get_parsed_content("ckpt_dir") == str(full) + "/models/warm_start"  # the input stays as it is
    # 6. presence fusion fitted on the frozen network, on a fifth set (seed 7) and the training cases of a
    # sixth (seed 21); only the fusion changes
    r = _run(
        ["run", "--config_file", "['configs/train.json','configs/presence_fusion.json']", "--bundle_root", str(full),
         "--num_cases", "21", "--fusion_extra_num_cases", "6", *TINY]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    fifth = json.loads((full / "data" / "phantoms_seed7_fusion" / "dataset.json").read_text())
    sixth = json.loads((full / "data" / "phantoms_seed21_fusion" / "dataset.json").read_text())
    assert fifth["generator"]["seed"] == 7 and sixth["generator"]["seed"] == 21 and len(sixth["training"]) == 6
    fused = torch.load(full / "models" / "presence_fusion" / "model.pt", weights_only=True)
    fusion_keys = {k for k in fused if k.startswith("presence_fusion.")}
    names = ("weight", "bias", "evidence_mean", "evidence_std", "edge_gate", "hidden_weight", "hidden_bias", "output_weight")
    assert fusion_keys == {"presence_fusion." + k for k in names}
    assert fused["presence_fusion.hidden_weight"].shape[0] == 16  # the configs' hidden layer
    assert fused.keys() - fusion_keys == base.keys() - fusion_keys
    assert all(torch.equal(fused[k], base[k]) for k in fused if k not in fusion_keys)  # the network is frozen
    assert fused["presence_fusion.weight"][:, 1:].abs().sum() > 0  # fitted: more than the head's own logit
    assert float(fused["presence_fusion.edge_gate"]) == pytest.approx(0.2)  # the config's gate
    report = json.loads((full / "models" / "presence_fusion" / "presence_fusion.json").read_text())
    assert report["training_cases"] == len(fifth["training"]) + 6 and report["validation_cases"] == len(fifth["validation"])
    assert report["fit_gated_only"] is True and report["hidden_channels"] == 16
    assert report["training"]["fused"]["errors"] <= report["training"]["head"]["errors"]


def _write_inputs(folder: Path) -> None:
    from monai_sadaan.data import generate_phantom, save_phantom

    folder.mkdir(parents=True)
    save_phantom(generate_phantom("normal", seed=1, shape=24), folder / "good.nii.gz")


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad_name, content, message",
    [
        ("corrupt.nii.gz", b"this is not a nifti file", "corrupt or unknown file"),
        ("empty.nii.gz", b"", "empty file"),
    ],
)
def test_inference_on_bad_input_fails_clearly_and_writes_nothing(tmp_path, bad_name, content, message):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    _write_inputs(inputs)
    (inputs / bad_name).write_bytes(content)
    r = _run(["run", "--config_file", "configs/inference.json", "--dataset_dir", str(inputs), "--output_dir", str(outputs), *TINY])
    assert r.returncode != 0
    assert message in r.stderr
    assert not outputs.exists() or not any(outputs.iterdir())


@pytest.mark.slow
def test_inference_with_a_checkpoint_for_another_structure_set_fails_clearly(tmp_path):
    from monai_sadaan import SpatialAttentionMedicalSegmenter

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    _write_inputs(inputs)
    other = SpatialAttentionMedicalSegmenter(num_structures=3, spatial_size=(16, 16, 16), features=(2, 4, 4, 4, 4), feature_channels=4)
    torch.save(other.state_dict(), tmp_path / "other.pt")
    r = _run(
        ["run", "--config_file", "configs/inference.json", "--dataset_dir", str(inputs), "--output_dir", str(outputs),
         "--ckpt_path", str(tmp_path / "other.pt"), *TINY]
    )  # fmt: skip
    assert r.returncode != 0
    assert "made for another configuration" in r.stderr and "expected (5," in r.stderr
    assert not outputs.exists() or not any(outputs.iterdir())


@pytest.mark.slow
def test_verify_net_in_out_and_torchscript_export_equal_eager(tmp_path):
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    for k, v in {"spatial_size": [16, 16, 16], "features": [2, 4, 4, 4, 4], "feature_channels": 4}.items():
        parser[k] = v
    torch.manual_seed(0)
    net = parser.get_parsed_content("network_def")
    fusion = net.presence_fusion  # fitted, with its hidden layer, so that the traced graph carries the evidence terms
    k, h, inputs = fusion.weight.shape[1], fusion.hidden_channels, fusion.hidden_inputs
    assert h == 16  # the configs' fusion
    hidden = (torch.linspace(-1, 1, h * inputs).reshape(h, inputs), torch.linspace(-0.3, 0.3, h), torch.linspace(1, -1, h))
    fusion.set_fit(torch.linspace(-1, 1, 5 * k).reshape(5, k), torch.linspace(-0.5, 0.5, 5), torch.zeros(k),
                   torch.full((k,), 2.0), 0.0, hidden)  # fmt: skip
    torch.save(net.state_dict(), tmp_path / "model.pt")  # the bare network, as training writes it
    r = _run(
        ["verify_net_in_out", "--net_id", "export_network_def", "--meta_file", "configs/metadata.json",
         "--config_file", "configs/inference.json", "--export_outputs", "['segmentation_probs']",
         "--_meta_#network_data_format#inputs#image#spatial_shape", "[16,16,16]", "--device", "cpu", *TINY]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    assert "data shape of network is verified with no error" in r.stdout + r.stderr
    ts = tmp_path / "model.ts"
    r = _run(
        ["ckpt_export", "--net_id", "export_network_def", "--filepath", str(ts), "--ckpt_file", str(tmp_path / "model.pt"),
         "--meta_file", "configs/metadata.json", "--config_file", "configs/inference.json", "--use_trace", "True",
         "--input_shape", "[1,1,16,16,16]", *TINY]
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    exported = torch.jit.load(str(ts))
    # the export carries the inference switch: test-time normalisation (default on) is in the traced graph
    from monai_sadaan.networks import use_input_statistics, uses_input_statistics

    use_input_statistics(net, parser["test_time_norm_source_weight"], test_time_norm=parser["test_time_norm"])
    assert uses_input_statistics(net)
    net.eval()
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        eager = net(x)
        seg, presence, confidence = exported(x)
    torch.testing.assert_close(seg, eager["segmentation_probs"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(presence, eager["presence_probs"], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(confidence, eager["confidence_scores"], atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_multi_gpu_config_trains_with_two_cpu_processes(tmp_path):
    """torchrun with 2 processes on CPU: gloo backend, DistributedDataParallel, DistributedSampler."""
    root = tmp_path / "ddp"
    r = _run(
        ["--nproc_per_node=2", "--master_port", str(free_port()), "-m", "monai.bundle", "run", "--config_file",
         "['configs/train.json','configs/multi_gpu_train.json']", "--bundle_root", str(root),
         "--data_dir", str(tmp_path / "data"), "--num_cases", "28", "--epochs", "1", "--val_interval", "1",
         "--batch_size", "2", *TINY],
        module=["torch.distributed.run"],
    )  # fmt: skip
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    history = json.loads((root / "models" / "metrics_history.json").read_text())
    assert [h["epoch"] for h in history] == [1]
    state = torch.load(root / "models" / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state)  # saved without the DDP wrapper


@pytest.mark.parametrize("overlays", [(), ("evaluate.json",), ("presence_fusion.json",), ("multi_gpu_train.json",)])
def test_train_json_test_time_norm_switch_trains_and_runs_with_case_statistics(tmp_path, overlays):
    """``--test_time_norm true`` in train.json: BatchNorm mixes each case's statistics in training as well as at
    evaluation, through every overlay that builds on train.json's network; default off (plain BatchNorm)."""
    from monai.bundle import ConfigParser

    from monai_sadaan.networks import InputStatisticsBatchNorm3d, SpatialAttentionMedicalSegmenter, unwrap_model

    configs = [str(BUNDLE / "configs" / name) for name in ("train.json", *overlays)]
    tiny = {"spatial_size": [16, 16, 16], "features": [2, 4, 4, 4, 4], "feature_channels": 4}
    ckpt = tmp_path / "start.pt"
    torch.save(SpatialAttentionMedicalSegmenter(num_structures=5, presence_fusion=True, **tiny).state_dict(), ckpt)
    for switch, want in (("false", False), ("true", True)):
        parser = ConfigParser()
        parser.read_config(configs)
        parser.update({"bundle_root": str(tmp_path), "pretrained_ckpt": str(ckpt), "device": "$torch.device('cpu')",
                       "test_time_norm": switch, "test_time_norm_source_weight": 0.25, **tiny})  # fmt: skip
        if "multi_gpu_train.json" in overlays:
            net = parser.get_parsed_content("network#module")  # DDP needs a process group; its module is built alone
        else:
            net = unwrap_model(parser.get_parsed_content("network"))
        norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d)]
        assert norms and all(isinstance(m, InputStatisticsBatchNorm3d) == want for m in norms)
        if want:
            assert all(m.in_training and m.source_weight == 0.25 for m in norms)


@pytest.mark.parametrize("overlay", ["warm_start.json", "fine_tune.json"])
@pytest.mark.parametrize("multi_gpu_first", [False, True])
def test_overlays_that_load_weights_keep_them_under_multi_gpu_train_in_any_order(tmp_path, overlay, multi_gpu_first):
    """Overlays define ``prepared_network`` (the network with its starting weights), multi_gpu_train.json wraps it:
    stacked either way round, the network DDP receives holds the checkpoint's weights."""
    from monai.bundle import ConfigParser

    from monai_sadaan.networks import SpatialAttentionMedicalSegmenter

    tiny = {"spatial_size": [16, 16, 16], "features": [2, 4, 4, 4, 4], "feature_channels": 4}
    source = SpatialAttentionMedicalSegmenter(num_structures=5, **tiny)
    for p in source.parameters():
        torch.nn.init.normal_(p)
    ckpt = tmp_path / "start.pt"
    torch.save(source.state_dict(), ckpt)
    configs = [str(BUNDLE / "configs" / name) for name in ("train.json", overlay, "multi_gpu_train.json")]
    if multi_gpu_first:
        configs[1], configs[2] = configs[2], configs[1]
    parser = ConfigParser()
    parser.read_config(configs)
    parser.update({"bundle_root": str(tmp_path), "pretrained_ckpt": str(ckpt), "device": "$torch.device('cpu')", **tiny})
    assert parser.get("network#module") == "@training_network"  # the one expression train.json's network is
    assert parser.get("training_network").startswith("$monai_sadaan.networks.use_input_statistics(@prepared_network.to(")
    started = parser.get_parsed_content("prepared_network").state_dict()
    assert torch.equal(started["encoder.enc1.0.weight"], source.state_dict()["encoder.enc1.0.weight"])


def _train_json(tmp_path: Path, **overrides):
    """``train.json`` read into a ``ConfigParser`` with ``bundle_root`` in ``tmp_path`` and ``overrides`` set."""
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "train.json"))
    parser.update({"bundle_root": str(tmp_path), **overrides})
    return parser


def _touch_case(folder: Path, name: str) -> dict[str, str]:
    """An entry whose image and label files exist (their content is not read by the datalist)."""
    folder.mkdir(parents=True, exist_ok=True)
    entry = {}
    for key in ("image", "label"):
        path = folder / f"{name}_{key}.nii.gz"
        path.write_bytes(b"")
        entry[key] = str(path)
    return entry


def test_train_json_extra_training_data_joins_the_training_split_only(tmp_path):
    """``extra_train_data_dir`` adds a second phantom set (another generator, its own seed and scenario weights) to
    the training list; validation stays the main dataset's; default: the main dataset alone."""
    main = {"training": [_touch_case(tmp_path / "main", f"t{i}") for i in range(2)],
            "validation": [_touch_case(tmp_path / "main", "v0")]}  # fmt: skip
    (tmp_path / "main" / "dataset.json").write_text(json.dumps(main))
    base = {"datalist": str(tmp_path / "main" / "dataset.json"), "data_workers": 0}

    parser = _train_json(tmp_path, **base)
    assert [e["image"] for e in parser.get_parsed_content("train#dataset#data")] == [e["image"] for e in main["training"]]

    extra_dir = tmp_path / "abdominal"
    parser = _train_json(tmp_path, **base, extra_train_data_dir=str(extra_dir), extra_train_num_cases=3,
                         extra_train_seed=5, extra_train_scenario_weights={"normal": 1, "partial_fov": 2})
    data = parser.get_parsed_content("train#dataset#data")
    assert [e["image"] for e in data[:2]] == [e["image"] for e in main["training"]]
    extra = data[2:]
    assert len(extra) == 3  # every generated case is a training case
    assert all(Path(e["image"]).is_file() and Path(e["image"]).is_relative_to(extra_dir) for e in extra)
    assert {e["scenario"] for e in extra} <= {"normal", "partial_fov"}
    stamp = json.loads((extra_dir / "dataset.json").read_text())
    assert len(stamp["training"]) == 3 and not stamp.get("validation") and not stamp.get("test")
    assert [e["image"] for e in parser.get_parsed_content("validate#dataset#data")] == [main["validation"][0]["image"]]


def test_train_json_field_of_view_weights_reach_the_generated_dataset(tmp_path):
    """``data_fov_weights`` is the trunk generator's field-of-view mix: every case is drawn from it and the stamp
    records it; default (null): the generator's default mix, as before the option existed."""
    from monai_sadaan.data.trunk import DEFAULT_FOV_WEIGHTS

    common = {"num_cases": 2, "seed": 3, "data_splits": [1.0, 0.0, 0.0], "data_workers": 0}
    parser = _train_json(tmp_path, data_dir=str(tmp_path / "limited"), data_fov_weights={"limited_abdomen": 1}, **common)
    cases = json.loads(Path(parser.get_parsed_content("datalist")).read_text())["training"]
    assert len(cases) == 2 and {e["field_of_view"] for e in cases} == {"limited_abdomen"}
    stamp = json.loads((tmp_path / "limited" / ".generated_with.json").read_text())
    assert stamp["fov_weights"] == {"limited_abdomen": 1.0}
    assert _train_json(tmp_path).get("data_fov_weights") is None
    parser = _train_json(tmp_path, data_dir=str(tmp_path / "default"), **common)
    parser.get_parsed_content("datalist")
    assert json.loads((tmp_path / "default" / ".generated_with.json").read_text())["fov_weights"] == DEFAULT_FOV_WEIGHTS


def test_train_json_appearance_augmentation_switch(tmp_path):
    """``appearance_augmentation`` (default off) appends affine, gamma, histogram-shift, blur and noise augmentation
    after the intensity shift; labels stay label values (nearest), the image keeps its grid; a bad value is refused."""
    names = {}
    for switch in (False, True):
        parser = _train_json(tmp_path, appearance_augmentation=switch)
        names[switch] = [type(t).__name__ for t in parser.get_parsed_content("train#augmentation")]
    assert names[False] == ["RandFieldOfViewCropd", "RandSyntheticResectiond", "RandScaleIntensityd",
                            "RandShiftIntensityd"]  # fmt: skip
    assert names[True] == names[False] + ["RandAffined", "RandAdjustContrastd", "RandHistogramShiftd",
                                          "RandGaussianSmoothd", "RandGaussianNoised"]  # fmt: skip

    from monai.transforms import Compose

    always = {f"augment_appearance#{i}#prob": 1.0 for i in range(5)}
    parser = _train_json(tmp_path, appearance_augmentation="true", **always)

    augment = Compose(parser.get_parsed_content("augment_appearance"))
    augment.set_random_state(seed=3)
    label = torch.zeros(1, 16, 16, 16)
    label[0, 4:12, 4:10, 5:11] = 3.0
    label[0, 6:9, 11:14, 6:10] = 5.0
    image = 0.2 + 0.5 * (label > 0).float()
    out = augment({"image": image.clone(), "label": label.clone()})
    assert out["image"].shape == image.shape and out["label"].shape == label.shape
    assert set(torch.unique(torch.as_tensor(out["label"])).tolist()) <= {0.0, 3.0, 5.0}
    assert not torch.equal(torch.as_tensor(out["image"]), image)

    parser = _train_json(tmp_path, appearance_augmentation="sometimes")
    with pytest.raises(RuntimeError) as info:  # MONAI wraps the expression's error
        parser.get_parsed_content("train#augmentation")
    assert "expected appearance_augmentation to be true or false" in str(info.value.__cause__)


def test_train_json_short_scan_augmentation_switch(tmp_path):
    """``short_scan_augmentation`` (default off) puts a shorter scan first: slabs cut off one or both z ends, the rest
    stretched back to the network's grid as inference stretches a short real scan."""
    from monai.data import MetaTensor
    from monai.transforms import Compose

    names = {}
    for switch in ("false", "true"):
        parser = _train_json(tmp_path, short_scan_augmentation=switch)
        names[switch] = [type(t).__name__ for t in parser.get_parsed_content("train#augmentation")]
    assert names["true"] == ["RandFieldOfViewCropd", "FitToSpatialSized"] + names["false"]
    assert names["false"][0] == "RandFieldOfViewCropd" and "FitToSpatialSized" not in names["false"]

    parser = _train_json(tmp_path, spatial_size=[16, 16, 16], **{"augment_short_scan#0#prob": 1.0,
                                                             "augment_short_scan#0#fraction_range": [0.25, 0.25]})
    augment = Compose(parser.get_parsed_content("augment_short_scan"))
    label = torch.zeros(1, 16, 16, 16)
    label[0, 4:12, 4:12, 0:4] = 3.0  # cut away with the inferior slab
    label[0, 4:12, 4:12, 6:10] = 1.0  # kept: 4 of the 8 or 12 slices left
    label[0, 4:12, 4:12, 12:16] = 5.0  # cut away with the superior slab
    for seed in range(6):
        augment.set_random_state(seed=seed)
        out = augment({"image": MetaTensor(label / 5.0), "label": MetaTensor(label.clone())})
        assert out["image"].shape == label.shape and out["label"].shape == label.shape
        kept = set(torch.unique(torch.as_tensor(out["label"])).tolist())
        assert 1.0 in kept and kept <= {0.0, 1.0, 3.0, 5.0} and not {3.0, 5.0} <= kept  # one or both ends gone
        z = torch.nonzero(torch.as_tensor(out["label"])[0, 8, 8] == 1.0).flatten()
        assert len(z) == (8 if not kept & {3.0, 5.0} else 5)  # 4 slices of 8 (both cut) or of 12, over 16
