"""InferenceRun: up-front output checks, all-or-nothing runs, the run manifest, stale staging, one-line causes
(issue 22, items 1, 5, 6 and 12); per-case timing, progress and the run's summary. In-process, with the plain case
writer; the bundle's command line is in tests/test_bad_input_matrix.py."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import monai_sadaan.io.case_writer as case_writer_module
from monai_glue.atomic import make_staging_dir
from monai_sadaan.io import (
    RUN_MANIFEST,
    InferenceRun,
    InferenceRunFailed,
    OutputFolderError,
    SADAAnCaseWriter,
    read_case_marker,
)

AFFINE = np.diag([0.7, 0.7, 3.0, 1.0])
VECTORS = {"presence_probability": [0.9, 0.2, 0.95, 0.8, 0.7], "confidence": [0.8, 0.6, 0.9, 0.7, 0.5]}


def _lm(value: int = 3) -> np.ndarray:
    lm = np.zeros((6, 5, 4), np.uint8)
    lm[1:4, 1:3, 1:3] = value
    return lm


def _inputs(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for n in names:
        (folder / f"{n}.nii.gz").write_bytes(b"image")
        items.append({"image": str(folder / f"{n}.nii.gz"), "case": n, "source": str(folder / f"{n}.nii.gz")})
    return items


def _run_cases(run: InferenceRun, fail_at: str | None = None, error: BaseException | None = None) -> None:
    """Write every case of the run's datalist with the writer, inside the run; raise ``error`` at ``fail_at``."""
    with run:
        writer = SADAAnCaseWriter(run.output_dir, inference_run=run)
        for item in run.datalist:
            if item["case"] == fail_at:
                raise error
            writer(item["case"], _lm(), AFFINE, VECTORS)


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---------------------------------------------------------------- up-front checks (item 1)
def test_run_into_the_parent_of_a_dicom_series_is_refused_before_anything_is_written(tmp_path):
    """Before: `run patient/ct patient` deleted the 24 DICOM files and exited 0."""
    series = tmp_path / "patient" / "ct"
    series.mkdir(parents=True)
    for i in range(24):
        (series / f"IM{i + 1:04d}.dcm").write_bytes(b"dicom %d" % i)
    before = _snapshot(tmp_path)
    run = InferenceRun(tmp_path / "patient", dataset_dir=series, datalist=[{"image": str(series), "case": "ct"}])
    with pytest.raises(OutputFolderError) as info:
        run.check()
    message = str(info.value)
    assert "case folder" in message and "is its own input" in message
    listed = "IM0001.dcm, IM0002.dcm, IM0003.dcm, IM0004.dcm, IM0005.dcm, ... (19 more)"
    assert f"holds 24 entries this tool did not write: {listed}" in message
    with pytest.raises(OutputFolderError):
        _run_cases(run)
    assert _snapshot(tmp_path) == before  # nothing deleted, nothing added
    assert sorted(p.name for p in (tmp_path / "patient").iterdir()) == ["ct"]


def test_an_input_named_like_a_bundle_folder_does_not_replace_it(tmp_path):
    """Before: `--output_dir .` from the bundle folder with an input `models.nii.gz` deleted models/model.pt."""
    bundle = tmp_path / "bundle"
    (bundle / "models").mkdir(parents=True)
    (bundle / "models" / "model.pt").write_bytes(b"weights")
    datalist = _inputs(tmp_path / "in", ["models"])
    run = InferenceRun(bundle, dataset_dir=tmp_path / "in", datalist=datalist)
    with pytest.raises(OutputFolderError, match=r"models exists and holds 1 entry this tool did not write: model\.pt"):
        _run_cases(run)
    assert (bundle / "models" / "model.pt").read_bytes() == b"weights"
    assert sorted(p.name for p in bundle.iterdir()) == ["models"]


def test_every_problem_is_reported_in_one_error(tmp_path):
    inputs = tmp_path / "in"
    datalist = _inputs(inputs, ["a", "b"])
    datalist.append({"image": str(inputs / "a.nii"), "case": "a"})  # a.nii and a.nii.gz: one case name
    (tmp_path / "in" / "b").mkdir()
    (tmp_path / "in" / "b" / "keep.txt").write_text("x")
    with pytest.raises(OutputFolderError) as info:
        InferenceRun(inputs, dataset_dir=inputs, datalist=datalist).check()
    message = str(info.value)
    assert message.startswith(f"refused to write into {inputs} (3 problems): 1) the output folder")
    assert "is the input folder (--dataset_dir" in message
    assert "expected one input per case name, inputs" in message and "all give case 'a'" in message
    assert "in/b exists and holds 1 entry this tool did not write: keep.txt" in message
    assert "\n" not in message


def test_inputs_turns_a_refusal_into_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    datalist = _inputs(tmp_path / "in", ["a"])
    (out / "a").mkdir(parents=True)
    (out / "a" / "mine.txt").write_text("x")
    run = InferenceRun(out, dataset_dir=tmp_path / "in")
    with pytest.raises(InferenceRunFailed) as info:
        run.inputs(lambda folder: datalist, tmp_path / "in")
    assert str(info.value).startswith("error: refused to write into")
    assert str(info.value).endswith("nothing was written")
    assert isinstance(info.value, SystemExit) and isinstance(info.value.cause, OutputFolderError)
    assert sorted(p.name for p in out.rglob("*")) == ["a", "mine.txt"]


# ---------------------------------------------------------------- all or nothing, manifest (items 5, 6)
def test_a_late_failure_leaves_no_output_of_the_run_and_earlier_results_intact(tmp_path):
    out = tmp_path / "out"
    datalist = _inputs(tmp_path / "in", ["c0", "c1", "c2"])
    _run_cases(InferenceRun(out, tmp_path / "in", datalist))
    first = json.loads((out / RUN_MANIFEST).read_text())
    assert first["status"] == "complete" and first["error"] is None
    before = _snapshot(out)
    datalist.append(_inputs(tmp_path / "in", ["c3"])[0])  # a new case, after c1
    datalist.sort(key=lambda d: d["case"])
    run = InferenceRun(out, tmp_path / "in", datalist)
    with pytest.raises(ValueError, match="spacing 1e-30"):
        _run_cases(run, fail_at="c2", error=ValueError("spacing 1e-30 fails in the writer"))
    assert run.state == "failed"
    after = _snapshot(out)
    manifest = json.loads(after.pop(RUN_MANIFEST))
    before.pop(RUN_MANIFEST)
    assert after == before  # c0, c1 of the failed run not in place, c3 absent, earlier results unchanged
    assert sorted(p.name for p in out.iterdir()) == ["c0", "c1", "c2", RUN_MANIFEST]  # no staging left
    assert manifest["status"] == "failed" and manifest["run_id"] == run.run_id
    assert manifest["error"]["type"] == "ValueError" and "spacing 1e-30" in manifest["error"]["message"]
    assert [r["case"] for r in manifest["inputs"]] == ["c0", "c1", "c2", "c3"]
    assert {r["case"]: r["this_run"] for r in manifest["results"]} == {"c0": False, "c1": False, "c2": False}
    assert {r["run_id"] for r in manifest["results"]} == {first["run_id"]}


def test_the_manifest_names_the_run_its_inputs_and_versions(tmp_path):
    import monai
    import torch

    import monai_sadaan

    out = tmp_path / "out"
    datalist = _inputs(tmp_path / "in", ["a", "b"])
    datalist[1]["input_flags"] = json.dumps([{"code": "not_ct_like", "message": "0..255"}])
    run = InferenceRun(out, tmp_path / "in", datalist)
    _run_cases(run)
    doc = json.loads((out / RUN_MANIFEST).read_text())
    assert doc["format"] == "sadaan-run/1" and doc["status"] == "complete" and doc["run_id"] == run.run_id
    assert doc["versions"]["monai_sadaan"] == monai_sadaan.__version__
    assert doc["versions"]["monai"] == monai.__version__ and doc["versions"]["torch"] == torch.__version__
    assert doc["inputs"] == [
        {"case": "a", "source": datalist[0]["source"], "input_flags": []},
        {"case": "b", "source": datalist[1]["source"], "input_flags": [{"code": "not_ct_like", "message": "0..255"}]},
    ]
    assert doc["dataset_dir"] == str(tmp_path / "in") and doc["started"] and doc["finished"]
    assert [(r["case"], r["this_run"]) for r in doc["results"]] == [("a", True), ("b", True)]
    for case in ("a", "b"):
        marker = read_case_marker(out / case)
        assert marker["run_id"] == run.run_id and marker["source"] == datalist[0 if case == "a" else 1]["source"]


def test_a_failure_before_any_case_leaves_the_output_folder_as_it_was(tmp_path):
    """A checkpoint for another configuration fails before the first case: no manifest, no folder created."""
    out = tmp_path / "new" / "out"
    run = InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["a"]))
    with pytest.raises(RuntimeError, match="model failed"):
        with run:
            raise RuntimeError("model failed")
    assert not (tmp_path / "new").exists()


def test_a_rerun_replaces_its_own_results_and_keeps_other_cases(tmp_path):
    out = tmp_path / "out"
    _run_cases(InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["a", "b"])))
    old_b = _snapshot(out / "b")
    run = InferenceRun(out, tmp_path / "in2", _inputs(tmp_path / "in2", ["c"]))
    _run_cases(run)
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c", RUN_MANIFEST]
    assert _snapshot(out / "b") == old_b
    results = {r["case"]: r["this_run"] for r in json.loads((out / RUN_MANIFEST).read_text())["results"]}
    assert results == {"a": False, "b": False, "c": True}
    again = InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["a"]))
    _run_cases(again)
    assert read_case_marker(out / "a")["run_id"] == again.run_id


def test_a_killed_runs_staging_is_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = make_staging_dir(out, "sadaan-run")
    (stale / "c0").mkdir()
    (stale / "c0" / "c0_labels.nii.gz").write_bytes(b"half")
    marker = json.loads((stale / ".sadaan-staging.json").read_text())
    (stale / ".sadaan-staging.json").write_text(json.dumps({**marker, "pid": _dead_pid()}))
    other_host = make_staging_dir(out, "sadaan-run")
    (other_host / ".sadaan-staging.json").write_text(json.dumps({**marker, "pid": 1, "host": "elsewhere"}))
    _run_cases(InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["c0"])))
    assert not stale.exists()
    assert other_host.exists()  # another host's staging: not ours to judge
    assert (out / "c0" / "c0_labels.nii.gz").read_bytes() != b"half"


# ---------------------------------------------------------------- concurrency (item 12)
def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "out"
    first = InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["a"]))
    second = InferenceRun(out, tmp_path / "in", first.datalist, lock_timeout=0.2)
    with first:
        with pytest.raises(OutputFolderError, match=rf"found a SADAAn run in progress \(pid {os.getpid()} on "):
            second.start()
        SADAAnCaseWriter(out, inference_run=first)("a", _lm(), AFFINE, VECTORS)
    assert second.state == "new" and (out / "a").is_dir()


# ---------------------------------------------------------------- one-line causes (item 6)
class _Evaluator:
    """Stands for the bundle's evaluator: writes each case through the writer, which may fail like a full disk."""

    def __init__(self, run: InferenceRun, names: list[str]) -> None:
        self.writer = SADAAnCaseWriter(run.output_dir, inference_run=run)
        self.names = names

    def run(self) -> None:
        for n in self.names:
            self.writer(n, _lm(), AFFINE, VECTORS)


def test_a_full_disk_is_reported_in_one_line(tmp_path, monkeypatch):
    out = tmp_path / "out"
    datalist = _inputs(tmp_path / "in", ["c0", "c1", "c2"])
    calls = []
    real = case_writer_module.write_label_map_nifti

    def filling_disk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(case_writer_module, "write_label_map_nifti", filling_disk)
    run = InferenceRun(out, tmp_path / "in", datalist)
    with pytest.raises(InferenceRunFailed) as info:
        run.run(_Evaluator(run, ["c0", "c1", "c2"]))
    message = str(info.value)
    assert message == (
        f"error: no space left on device (ENOSPC) while writing case 'c1' into {out}; nothing of this run was put in "
        f"place in {out}, earlier results there are unchanged"
    )
    assert info.value.code == message and isinstance(info.value.cause, OSError)
    assert sorted(p.name for p in out.iterdir()) == [RUN_MANIFEST]
    doc = json.loads((out / RUN_MANIFEST).read_text())
    assert doc["status"] == "failed" and doc["error"]["errno"] == "ENOSPC" and doc["results"] == []


def test_an_unknown_error_keeps_its_traceback(tmp_path):
    run = InferenceRun(tmp_path / "out", tmp_path / "in", _inputs(tmp_path / "in", ["c0"]))

    class Broken:
        def run(self):
            raise ZeroDivisionError("a bug")

    with pytest.raises(ZeroDivisionError, match="a bug"):
        run.run(Broken())
    assert run.state == "failed"


def test_a_commit_that_fails_half_way_is_rolled_back(tmp_path, monkeypatch):
    """The commit renames case by case; if one rename fails, the cases already put in place go back to staging and
    the earlier results they replaced come back: all or nothing at the very end too."""
    import monai_sadaan.io.run_outputs as run_outputs

    out = tmp_path / "out"
    datalist = _inputs(tmp_path / "in", ["a", "b", "c"])
    _run_cases(InferenceRun(out, tmp_path / "in", datalist))
    before = _snapshot(out)

    class _OS:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(src, dst):
            if str(dst) == str(out / "b") and ".sadaan-run.partial-" in str(src):
                raise OSError(errno.EIO, "Input/output error", str(dst))
            os.replace(src, dst)

    monkeypatch.setattr(run_outputs, "os", _OS())
    run = InferenceRun(out, tmp_path / "in", datalist)
    with pytest.raises(OSError, match="Input/output error"):
        _run_cases(run)
    after = _snapshot(out)
    manifest = json.loads(after.pop(RUN_MANIFEST))
    before.pop(RUN_MANIFEST)
    assert after == before and manifest["status"] == "failed"
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", "c", RUN_MANIFEST]


def test_the_plain_writer_refuses_a_folder_its_own_thread_holds_instead_of_waiting_forever(tmp_path):
    out = tmp_path / "out"
    run = InferenceRun(out, tmp_path / "in", _inputs(tmp_path / "in", ["a"]))
    with run:
        with pytest.raises(RuntimeError, match="this thread already holds its lock .* write through the run"):
            SADAAnCaseWriter(out)("b", _lm(), AFFINE, VECTORS)
        SADAAnCaseWriter(out, inference_run=run)("a", _lm(), AFFINE, VECTORS)
    SADAAnCaseWriter(out)("b", _lm(), AFFINE, VECTORS)  # after the run: free again
    assert sorted(p.name for p in out.iterdir()) == ["a", "b", RUN_MANIFEST]


PRESENCE = {"presence_probability": [0.9] * 5, "confidence": [0.8] * 5, "present": [1, 1, 1, 1, 1]}


# ---------------------------------------------------------------------------------------------------- timing
def _write_cases(tmp_path, names, progress, pause=0.0):
    out = tmp_path / "out"
    run = InferenceRun(out, datalist=[{"image": str(tmp_path / f"{n}.nii.gz"), "case": n} for n in names],
                       progress=progress)  # fmt: skip
    run.inputs(lambda: run.datalist)
    lm = np.zeros((6, 6, 6), np.uint8)
    lm[1:3, 1:3, 1:3] = 3
    with run:
        writer = SADAAnCaseWriter(out, inference_run=run)
        for n in names:
            time.sleep(pause)
            writer(n, lm, np.eye(4), PRESENCE)
    return run, json.loads((out / "sadaan_run.json").read_text())


def test_each_case_is_timed_logged_and_named_in_the_summary_and_manifest(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="monai_sadaan.io.run_outputs"):
        run, manifest = _write_cases(tmp_path, ["a", "b", "c"], progress=False, pause=0.05)
    timing = manifest["timing"]
    assert [c["case"] for c in timing["cases"]] == ["a", "b", "c"]
    assert all(c["seconds"] >= 0.05 for c in timing["cases"])
    assert timing["inference_seconds"] >= sum(c["seconds"] for c in timing["cases"]) - 1e-2
    assert timing["preflight_seconds"] is not None and timing["commit_seconds"] is not None
    assert "case 2/3 b: written in" in caplog.text
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SADAAn run")]
    assert len(summary) == 1 and "3 cases in" in summary[0]
    for c in timing["cases"]:
        assert f"{c['case']} {c['seconds']:.2f} s" in summary[0]


def test_a_progress_bar_counts_the_cases(tmp_path, capsys):
    _write_cases(tmp_path, ["a", "b"], progress=True)
    err = capsys.readouterr().err
    assert "SADAAn" in err and "2/2" in err


def test_a_failed_run_keeps_its_timing_in_the_manifest(tmp_path):
    out = tmp_path / "out"
    run = InferenceRun(out, datalist=[{"image": str(tmp_path / f"{n}.nii.gz"), "case": n} for n in "ab"],
                       progress=False)  # fmt: skip
    lm = np.zeros((4, 4, 4), np.uint8)
    with pytest.raises(RuntimeError, match="boom"):
        with run:
            SADAAnCaseWriter(out, inference_run=run)("a", lm, np.eye(4), PRESENCE)
            raise RuntimeError("boom")
    manifest = json.loads((out / "sadaan_run.json").read_text())
    assert manifest["status"] == "failed" and [c["case"] for c in manifest["timing"]["cases"]] == ["a"]
