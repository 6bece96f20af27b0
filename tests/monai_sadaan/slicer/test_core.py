"""The Slicer module's Slicer-free core: input preparation, the bundle command, running it, reading results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.io import SADAAnCaseWriter
from monai_sadaan.slicer.core import (
    CaseResult,
    InferenceError,
    build_inference_command,
    export_volume,
    find_results,
    prepare_input,
    presence_table,
    read_results,
    run_inference,
)

IJK_TO_RAS = np.array([[0.0, 0.0, -3.0, 40.0], [-0.75, 0.0, 0.0, 60.0], [0.0, 0.8, 0.0, -70.0], [0, 0, 0, 1.0]])
VECTORS = {
    "presence_probability": [0.9, 0.1, 0.95, 0.8, 0.7],
    "confidence": [0.8, 0.6, 0.9, 0.7, 0.5],
    "present": [True, False, True, True, True],
}


def _bundle(tmp_path: Path, config: dict | None = None, with_meta: bool = True) -> Path:
    bundle = tmp_path / "bundle"
    (bundle / "configs").mkdir(parents=True)
    (bundle / "configs" / "inference.json").write_text(json.dumps(config or {"run": "$print('hello')"}))
    if with_meta:
        (bundle / "configs" / "metadata.json").write_text(json.dumps({"version": "0.1.0"}))
    return bundle


# ---------------------------------------------------------------- inputs


def test_export_volume_from_slicer_array_order(tmp_path):
    kji = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)  # K=4, J=5, I=6 as arrayFromVolume gives it
    path = export_volume(kji, IJK_TO_RAS, tmp_path / "v.nii.gz")
    img = nib.load(path)
    assert img.shape == (6, 5, 4)
    data = np.asarray(img.dataobj)
    assert data[2, 3, 1] == kji[1, 3, 2]
    np.testing.assert_allclose(img.affine, IJK_TO_RAS, atol=1e-6)
    ijk = export_volume(np.transpose(kji, (2, 1, 0)), IJK_TO_RAS, tmp_path / "w.nii.gz", array_order="ijk")
    np.testing.assert_array_equal(np.asarray(nib.load(ijk).dataobj), data)


@pytest.mark.parametrize(
    "array, matrix, kwargs, message",
    [
        (np.zeros((3, 3)), IJK_TO_RAS, {}, r"3D scalar volume, got shape \(3, 3\)"),
        (np.zeros((3, 3, 3)), np.eye(3), {}, "4x4 IJK-to-RAS"),
        (np.zeros((3, 3, 3)), IJK_TO_RAS, {"array_order": "xyz"}, "array_order"),
    ],
)
def test_export_volume_rejects_bad_input(tmp_path, array, matrix, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_volume(array, matrix, tmp_path / "v.nii.gz", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_prepare_input_copies_a_nifti_file_and_exports_arrays(tmp_path):
    src = export_volume(np.ones((3, 4, 5), np.float32), IJK_TO_RAS, tmp_path / "src.nii.gz")
    target = prepare_input(src, tmp_path / "in", "patient_1")
    assert target == tmp_path / "in" / "patient_1.nii.gz"
    assert target.read_bytes() == src.read_bytes()
    target2 = prepare_input(np.zeros((3, 4, 5), np.int16), tmp_path / "in2", "p2", ijk_to_ras=IJK_TO_RAS)
    assert nib.load(target2).shape == (5, 4, 3)


def test_prepare_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing path"):
        prepare_input(tmp_path / "nope.nii.gz", tmp_path / "in", "c")
    (tmp_path / "x.mha").write_bytes(b"x")
    with pytest.raises(ValueError, match="NIfTI input"):
        prepare_input(tmp_path / "x.mha", tmp_path / "in", "c")
    with pytest.raises(ValueError, match="ijk_to_ras"):
        prepare_input(np.zeros((3, 3, 3)), tmp_path / "in", "c")
    with pytest.raises(ValueError, match="case name"):
        prepare_input(np.zeros((3, 3, 3)), tmp_path / "in", "../c", ijk_to_ras=IJK_TO_RAS)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "other.nii.gz").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"empty input folder .* \['other.nii.gz'\]"):
        prepare_input(np.zeros((3, 3, 3)), busy, "c", ijk_to_ras=IJK_TO_RAS)


# ---------------------------------------------------------------- command


def test_build_inference_command(tmp_path):
    bundle = _bundle(tmp_path)
    cmd = build_inference_command(bundle, tmp_path / "in", tmp_path / "out", python="/opt/py/bin/python")
    b = bundle.resolve()
    assert cmd == [
        "/opt/py/bin/python", "-m", "monai.bundle", "run",
        "--config_file", str(b / "configs" / "inference.json"),
        "--meta_file", str(b / "configs" / "metadata.json"),
        "--bundle_root", str(b),
        "--dataset_dir", str((tmp_path / "in").resolve()),
        "--output_dir", str((tmp_path / "out").resolve()),
    ]  # fmt: skip
    cmd = build_inference_command(
        bundle, "in", "out", device="cuda:1", overrides={"writer#absent": "omit", "threshold": 0.3}, meta_file=None
    )
    assert "--meta_file" not in cmd and cmd[0] == sys.executable
    assert cmd[-6:] == ["--device", "$torch.device('cuda:1')", "--writer#absent", "'omit'", "--threshold", "0.3"]


def test_build_inference_command_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="bundle folder"):
        build_inference_command(tmp_path / "nope", "in", "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="inference config"):
        build_inference_command(tmp_path / "empty", "in", "out")
    with pytest.raises(ValueError, match="device"):
        build_inference_command(_bundle(tmp_path), "in", "out", device="gpu0")


INJECTED_DEVICE = "cuda') if __import__('os').system('touch {marker}') else torch.device('cpu"


def test_build_inference_command_refuses_code_in_the_device(tmp_path):
    """Issue 22 item 7: the device was pasted into ``$torch.device('...')``, so this string ran a shell command."""
    marker = tmp_path / "INJ"
    bundle = _bundle(tmp_path)
    with pytest.raises(ValueError, match=r"expected device 'cpu', 'mps', 'cuda' or 'cuda:N', got \"cuda'\) if __import__"):
        build_inference_command(bundle, "in", "out", device=INJECTED_DEVICE.format(marker=marker))
    for bad in ("cuda:0'", "cuda:x", "gpu", " cpu; ls", "", "cuda:1)"):
        with pytest.raises(ValueError, match="expected device"):
            build_inference_command(bundle, "in", "out", device=bad)
    assert build_inference_command(bundle, "in", "out", device=" CUDA:2 ")[-2:] == ["--device", "$torch.device('cuda:2')"]
    assert not marker.exists()


def test_device_injection_runs_nothing_through_run_inference(tmp_path):
    """The whole path the Slicer module takes: refused before any subprocess starts, no marker, no output folder."""
    marker = tmp_path / "INJ"
    with pytest.raises(ValueError, match="expected device"):
        run_inference(_bundle(tmp_path), tmp_path / "in", tmp_path / "out", device=INJECTED_DEVICE.format(marker=marker))
    assert not marker.exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ckpt_path": "$__import__('os').system('touch x')"}, r"override 'ckpt_path'.*starting with '\$', '@' or '%'"),
        ({"ckpt_path": "@network_def"}, r"override 'ckpt_path'.*starting with '\$', '@' or '%'"),
        ({"ckpt_path": "%/etc/other.json#net"}, r"override 'ckpt_path'.*starting with '\$', '@' or '%'"),
        ({"ckpt_path": "/data/run#2/model.pt"}, r"without '#'.*'/data/run#2/model.pt'"),
        ({"ckpt_path": "x@::y"}, r"without '#'"),
        ({"run": ["$print(1)"]}, r"override 'run'\[0\].*starting with '\$'"),
        ({"network_def": {"_target_": "os.system", "command": "ls"}}, r"a mapping with '_target_'"),
        ({"threshold": float("nan")}, "expected a finite number for override 'threshold'"),
        ({"threshold": object()}, "got object"),
        ({"--config_file": "/x"}, "expected an override id"),
        ({"a b": 1}, "expected an override id"),
        ({"config_file": "/elsewhere/inference.json"}, "which the command sets itself"),
        ({"device": "cpu"}, "which the command sets itself"),
    ],
)
def test_build_inference_command_refuses_overrides_monai_would_evaluate(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        build_inference_command(_bundle(tmp_path), "in", "out", overrides=overrides)


def test_build_inference_command_refuses_paths_monai_would_rewrite(tmp_path):
    bundle = _bundle(tmp_path)
    for kwargs in ({"input_dir": tmp_path / "in#1", "output_dir": "out"}, {"input_dir": "in", "output_dir": tmp_path / "o#"}):
        with pytest.raises(ValueError, match=r"expected the (dataset_dir|output_dir) path without '#'"):
            build_inference_command(bundle, **kwargs)


def test_override_values_reach_the_config_as_given(tmp_path):
    """What ``python -m monai.bundle run`` (fire, then MONAI's parser) makes of each override value."""
    fire = pytest.importorskip("fire")
    from monai.bundle import ConfigParser

    overrides = {
        "flag": False, "name": "1", "pair": "a,b", "word": "true", "none": None, "rate": 0.3,
        "sizes": [16, 16, 16], "nested": {"k": "v", "n": [1, "x"]}, "path": str(tmp_path / "a b" / "m.pt"),
    }  # fmt: skip
    cmd = build_inference_command(_bundle(tmp_path), "in", "out", overrides=overrides)
    received: dict = {}

    def run(**kwargs):
        received.update(kwargs)

    fire.Fire({"run": run}, command=["run"] + cmd[cmd.index("--bundle_root") :])
    parser = ConfigParser({k: received[k] for k in overrides})
    assert {k: parser.get_parsed_content(k) for k in overrides} == overrides


# ---------------------------------------------------------------- results


def _write_case(out: Path, name: str = "case_3", **kwargs) -> dict:
    lm = np.zeros((6, 6, 4), np.uint8)
    lm[1:3, 1:3, 1:3] = 1
    lm[3:6, 3:6, 0:2] = 3
    return SADAAnCaseWriter(out, **kwargs)(name, lm, np.diag([2.0, 2.0, 5.0, 1.0]), VECTORS)


def test_read_results_reads_what_the_writer_wrote(tmp_path):
    files = _write_case(tmp_path)
    r = read_results(tmp_path / "case_3")
    assert isinstance(r, CaseResult) and r.case_name == "case_3"
    assert str(r.segmentation_path) == files["segmentation"]
    assert str(r.label_map_path) == files["label_map"]
    assert str(r.colour_table_path) == files["colour_table"]
    assert r.probabilities_path is None
    assert [row["structure"] for row in r.presence] == ["left_kidney", "right_kidney", "liver", "spleen", "pancreas"]
    assert r.absent_structures == ["right_kidney"]
    assert r.presence[0]["volume_ml"] == pytest.approx(8 * 20.0 / 1000)
    assert r.presence[2]["volume_ml"] == pytest.approx(18 * 20.0 / 1000)
    assert find_results(tmp_path) == {"case_3": r}


def test_read_results_without_segmentation(tmp_path):
    _write_case(tmp_path, write_segmentation=False)
    assert read_results(tmp_path / "case_3").segmentation_path is None


def test_read_results_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="case output folder"):
        read_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="presence report"):
        read_results(tmp_path / "empty")
    files = _write_case(tmp_path)
    Path(files["label_map"]).unlink()
    with pytest.raises(FileNotFoundError, match="label_map file"):
        read_results(tmp_path / "case_3")
    Path(files["presence_json"]).write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_results(tmp_path / "case_3")
    Path(files["presence_json"]).write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="SADAAn presence report"):
        read_results(tmp_path / "case_3")


def test_presence_table_marks_absent_structures(tmp_path):
    _write_case(tmp_path)
    table = presence_table(read_results(tmp_path / "case_3"))
    assert table[0] == ["Structure", "Call", "P(present)", "Confidence", "Volume (ml)"]
    assert table[1] == ["left_kidney", "present", "0.900", "0.800", "0.2"]
    assert table[2] == ["right_kidney", "ABSENT", "0.100", "0.600", "0.0"]
    assert len(table) == 6
    assert not read_results(tmp_path / "case_3").calls_withheld


def test_presence_table_of_an_image_that_is_not_ct(tmp_path):
    lm = np.zeros((6, 6, 4), np.uint8)
    lm[1:3, 1:3, 1:3] = 1
    flags = [{"code": "byte_range", "message": "values 0..255"}]
    SADAAnCaseWriter(tmp_path)("photo", lm, np.diag([2.0, 2.0, 5.0, 1.0]), VECTORS, input_flags=flags)
    r = read_results(tmp_path / "photo")
    assert r.calls_withheld and r.absent_structures == []
    table = presence_table(r)
    assert [row[1] for row in table[1:]] == ["withheld: not CT"] * 5
    assert table[1] == ["left_kidney", "withheld: not CT", "0.900", "0.800", "0.0"]


# ---------------------------------------------------------------- running the bundle (real monai.bundle runs)


def test_run_inference_raises_with_the_error_tail(tmp_path):
    bundle = _bundle(tmp_path, {"run": "$undefined_name_sadaan_test()"})
    with pytest.raises(InferenceError) as info:
        run_inference(bundle, tmp_path / "in", tmp_path / "out", timeout=120)
    message = str(info.value)
    assert "exit status" in message and "undefined_name_sadaan_test" in message
    log = (tmp_path / "out" / "sadaan_inference.log").read_text()
    assert "undefined_name_sadaan_test" in log


def test_run_inference_without_results_raises(tmp_path, monkeypatch):
    # what 3D Slicer's launcher does to the environment: an external Python only starts if it is removed
    monkeypatch.setenv("PYTHONHOME", str(tmp_path / "slicer-python-home"))
    calls = []
    bundle = _bundle(tmp_path, {"run": "$print('nothing written', __import__('os').environ.get('SADAAN_TEST_VAR'))"})
    with pytest.raises(InferenceError, match="wrote no case results"):
        run_inference(
            bundle, tmp_path / "in", tmp_path / "out", timeout=120, poll=lambda: calls.append(1),
            env={"SADAAN_TEST_VAR": "seen"},
        )  # fmt: skip
    assert calls  # the poll callback ran while the subprocess did
    assert "nothing written seen" in (tmp_path / "out" / "sadaan_inference.log").read_text()


def test_run_inference_timeout(tmp_path):
    bundle = _bundle(tmp_path, {"run": "$__import__('time').sleep(60)"})
    with pytest.raises(InferenceError, match="timeout"):
        run_inference(bundle, tmp_path / "in", tmp_path / "out", timeout=1.0)


def test_core_imports_without_numpy_or_torch():
    code = (
        "import sys; import monai_sadaan.slicer.core; "
        "bad = [m for m in ('numpy', 'torch', 'monai', 'nibabel') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"


@pytest.mark.slow
@pytest.mark.skipif(not (BUNDLE / "configs" / "inference.json").is_file(), reason="the bundle is not written yet")
def test_run_inference_end_to_end_with_the_real_bundle(tmp_path):
    """The real bundle (untrained weights, so no claim about quality) on a phantom, read back by the core."""
    import slicerio
    import torch
    from monai.bundle import ConfigParser

    from monai_sadaan.data import generate_phantom, save_volume

    parser = ConfigParser()
    parser.read_config(str(BUNDLE / "configs" / "inference.json"))
    torch.manual_seed(0)
    torch.save({"model": parser.get_parsed_content("network_def").state_dict()}, tmp_path / "model.pt")
    phantom = generate_phantom("nephrectomy_left", seed=2, shape=32, orientation="LPS")
    save_volume(phantom.image, phantom.affine, tmp_path / "in" / "ph_1.nii.gz")

    results = run_inference(
        BUNDLE, tmp_path / "in", tmp_path / "out", device="cpu", timeout=300,
        overrides={"ckpt_path": str(tmp_path / "model.pt")},
    )  # fmt: skip
    assert list(results) == ["ph_1"]
    r = results["ph_1"]
    image = nib.load(tmp_path / "in" / "ph_1.nii.gz")
    labels = nib.load(r.label_map_path)
    assert labels.shape == image.shape
    np.testing.assert_allclose(labels.affine, image.affine, atol=1e-4)
    seg = slicerio.read_segmentation(str(r.segmentation_path))
    np.testing.assert_allclose(seg["ijkToLPS"], np.diag([-1, -1, 1, 1]) @ image.affine, atol=1e-4)
    np.testing.assert_array_equal(seg["voxels"], np.asarray(labels.dataobj))
    voxel_ml = abs(np.linalg.det(image.affine[:3, :3])) / 1000
    lm = np.asarray(labels.dataobj)
    for row in r.presence:
        assert row["volume_ml"] == pytest.approx((lm == row["label"]).sum() * voxel_ml)
        if not row["present"]:
            assert row["volume_ml"] == 0.0  # masks of structures called absent are suppressed
        status = slicerio.segment_from_name(seg, row["structure"])["status"]
        assert status == ("inprogress" if row["present"] else "flagged")
