"""SADAAnCaseWriter / SaveSADAAnOutputsd: every output of a case, all or nothing."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import slicerio
import torch
from monai.data import MetaTensor
from monai.transforms import Compose

import monai_sadaan.io.case_writer as case_writer_module
from monai_sadaan.io import SADAAnCaseWriter, SaveSADAAnOutputsd, case_name_from_path, read_presence_report, safe_case_name

AFFINE = np.diag([0.7, 0.7, 3.0, 1.0])
AFFINE[:3, 3] = [-100.0, -120.0, 50.0]
VOXEL_ML = 0.7 * 0.7 * 3.0 / 1000.0
VECTORS = {
    "presence_probability": [0.9, 0.2, 0.95, 0.8, 0.7],
    "confidence": [0.8, 0.6, 0.9, 0.7, 0.5],
    "present": [True, False, True, True, True],
}


def _labelmap() -> np.ndarray:
    lm = np.zeros((10, 9, 8), dtype=np.uint8)
    lm[1:4, 1:4, 1:3] = 1
    lm[5:9, 2:8, 2:7] = 3
    lm[0:2, 6:9, 5:8] = 4
    lm[8, 0, 0] = 5
    return lm


def test_case_writer_writes_every_output(tmp_path):
    lm = _labelmap()
    probs = np.stack([(lm == v).astype(np.float32) for v in range(1, 6)])
    files = SADAAnCaseWriter(tmp_path)("case_007", lm, AFFINE, VECTORS, probabilities=probs)
    case_dir = tmp_path / "case_007"
    assert sorted(p.name for p in case_dir.iterdir()) == sorted(
        [
            "case_007_labels.nii.gz", "case_007.seg.nrrd", "case_007_colour_table.csv",
            "case_007_presence.json", "case_007_presence.csv", "case_007_probabilities.nii.gz",
            ".sadaan-case.json",
        ]
    )  # fmt: skip
    assert [p.name for p in tmp_path.iterdir()] == ["case_007"]  # no staging folder left
    assert files["segmentation"] == str(case_dir / "case_007.seg.nrrd")

    np.testing.assert_array_equal(np.asarray(nib.load(files["label_map"]).dataobj), lm)
    seg = slicerio.read_segmentation(files["segmentation"])
    np.testing.assert_array_equal(seg["voxels"], lm)
    assert slicerio.segment_from_name(seg, "right_kidney")["status"] == "flagged"
    assert nib.load(files["probabilities"]).shape == (10, 9, 8, 5)

    doc = read_presence_report(files["presence_json"])
    assert doc["files"]["segmentation"] == "case_007.seg.nrrd"
    assert set(doc["files"]) == {
        "label_map", "segmentation", "colour_table", "probabilities", "presence_csv", "presence_json",
    }  # fmt: skip
    volumes = {r.structure: r.volume_ml for r in doc["structures"]}
    assert volumes["liver"] == pytest.approx(4 * 6 * 5 * VOXEL_ML)
    assert volumes["spleen"] == pytest.approx(2 * 3 * 3 * VOXEL_ML)
    assert [r.present for r in doc["structures"]] == [True, False, True, True, True]


def test_case_outputs_get_default_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        SADAAnCaseWriter(tmp_path)("c", _labelmap(), AFFINE, VECTORS)
    finally:
        os.umask(umask)
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "c").iterdir()} == {0o644}


def test_case_writer_failure_leaves_no_partial_case(tmp_path, monkeypatch):
    writer = SADAAnCaseWriter(tmp_path)
    writer("c1", _labelmap(), AFFINE, VECTORS)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(case_writer_module, "write_colour_table", broken)
    changed = dict(VECTORS, present=[False] * 5)
    with pytest.raises(OSError, match="disk full"):
        writer("c1", _labelmap(), AFFINE, changed)  # a re-run that fails keeps the earlier result intact
    with pytest.raises(OSError, match="disk full"):
        writer("c2", _labelmap(), AFFINE, VECTORS)  # a new case that fails leaves nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()} == before


def test_case_writer_rerun_replaces_the_case(tmp_path):
    writer = SADAAnCaseWriter(tmp_path, write_segmentation=False)
    writer("c1", _labelmap(), AFFINE, VECTORS)
    files = writer("c1", _labelmap(), AFFINE, dict(VECTORS, present=[False] * 5))
    assert "segmentation" not in files
    doc = json.loads(open(files["presence_json"]).read())
    assert [r["present"] for r in doc["structures"]] == [False] * 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "a b", "-x"])
def test_case_writer_rejects_unsafe_case_names(tmp_path, name):
    with pytest.raises(ValueError, match="case name"):
        SADAAnCaseWriter(tmp_path)(name, _labelmap(), AFFINE, VECTORS)


def test_case_writer_rejects_probabilities_on_another_grid(tmp_path):
    with pytest.raises(ValueError, match=r"\[S, X, Y, Z\] on the label map's grid"):
        SADAAnCaseWriter(tmp_path)("c", _labelmap(), AFFINE, VECTORS, probabilities=np.zeros((5, 4, 4, 4)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "path, name",
    [
        ("/data/case_007.nii.gz", "case_007"),
        ("/data/ct.scan.nrrd", "ct.scan"),
        ("/data/CT_0001/", "CT_0001"),
        ("img.mha", "img"),
        ("/x/seg.seg.nrrd", "seg"),
    ],
)
def test_case_name_from_path(path, name):
    assert case_name_from_path(path) == name


def test_save_sadaan_outputsd_reads_the_case_name_from_metadata(tmp_path):
    lm = _labelmap()
    pred = MetaTensor(
        torch.from_numpy(lm[None].astype(np.float32)),
        affine=torch.from_numpy(AFFINE),
        meta={"filename_or_obj": "/data/in/patient_12.nii.gz"},
    )
    presence = {k: torch.tensor(v, dtype=torch.float32) for k, v in VECTORS.items()}
    out = Compose([SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path)])({"pred": pred, "presence": presence})
    assert out["pred"] is pred
    assert out["sadaan_files"]["label_map"] == str(tmp_path / "patient_12" / "patient_12_labels.nii.gz")
    img = nib.load(out["sadaan_files"]["label_map"])
    np.testing.assert_allclose(img.affine, AFFINE, atol=1e-6)


def test_save_sadaan_outputsd_without_a_case_name_raises(tmp_path):
    t = SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, affine_key="affine")
    with pytest.raises(KeyError, match="filename_or_obj"):
        t({"pred": _labelmap(), "affine": AFFINE, "presence": VECTORS})
    t = SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, affine_key="affine", case_name_key="name")
    out = t({"pred": _labelmap(), "affine": AFFINE, "presence": VECTORS, "name": ["CT 1 (arterial)"]})
    assert out["sadaan_files"]["presence_csv"] == str(tmp_path / "CT_1_arterial" / "CT_1_arterial_presence.csv")
    assert (tmp_path / "CT_1_arterial" / "CT_1_arterial_presence.csv").is_file()


def test_save_sadaan_outputsd_falls_back_to_metadata_without_the_case_key(tmp_path):
    """MONAI Label runs the postprocessing on dicts without the datalist's 'case' key."""
    pred = MetaTensor(
        torch.from_numpy(_labelmap()[None].astype(np.int16)),
        affine=torch.from_numpy(AFFINE),
        meta={"filename_or_obj": "/studies/abd ct.nrrd"},
    )
    out = SaveSADAAnOutputsd(keys="label_map", output_dir=tmp_path, case_name_key="case")(
        {"label_map": pred, "presence": VECTORS}
    )
    assert out["sadaan_files"]["label_map"] == str(tmp_path / "abd_ct" / "abd_ct_labels.nii.gz")


@pytest.mark.parametrize("name, safe", [("CT 1 (arterial)", "CT_1_arterial"), ("..", "case"), ("a/b", "a_b"), ("x+y.z", "x+y.z")])
def test_safe_case_name(name, safe):
    assert safe_case_name(name) == safe


# ---------------------------------------------------------------- ownership, booleans, report fields (issue 22)
def test_writer_refuses_a_folder_of_the_users_own_files(tmp_path):
    """Before: the writer moved the folder aside and deleted it. Now: refused, naming the folder and its files."""
    from monai_sadaan.io import OutputFolderError

    mine = tmp_path / "c1"
    mine.mkdir()
    (mine / "IM0001.dcm").write_bytes(b"dicom")
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputFolderError, match=r"c1 exists and holds 2 entries this tool did not write: IM0001\.dcm"):
        SADAAnCaseWriter(tmp_path)("c1", _labelmap(), AFFINE, VECTORS)
    assert sorted(p.name for p in mine.iterdir()) == ["IM0001.dcm", "notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1"]  # no staging folder left


def test_writer_refuses_a_result_folder_the_user_added_files_to(tmp_path):
    writer = SADAAnCaseWriter(tmp_path)
    writer("c1", _labelmap(), AFFINE, VECTORS)
    (tmp_path / "c1" / "my_measurements.xlsx").write_bytes(b"x")
    from monai_sadaan.io import OutputFolderError

    with pytest.raises(OutputFolderError, match=r"holds 1 entry this tool did not write: my_measurements\.xlsx"):
        writer("c1", _labelmap(), AFFINE, VECTORS)
    assert (tmp_path / "c1" / "my_measurements.xlsx").read_bytes() == b"x"
    (tmp_path / "c1" / "my_measurements.xlsx").unlink()
    writer("c1", _labelmap(), AFFINE, VECTORS)  # the tool's own result alone is replaced


def test_writer_refuses_a_result_of_another_input_or_case(tmp_path):
    from monai_sadaan.io import OutputFolderError, register_case_files

    writer = SADAAnCaseWriter(tmp_path)
    writer("a", _labelmap(), AFFINE, VECTORS, source=tmp_path / "in" / "a.nii")
    before = (tmp_path / "a" / "a_labels.nii.gz").read_bytes()
    with pytest.raises(OutputFolderError, match=r"holds the result for input .*a\.nii, this input of case 'a' is"):
        writer("a", _labelmap(), AFFINE, VECTORS, source=tmp_path / "in" / "a.nii.gz")
    assert (tmp_path / "a" / "a_labels.nii.gz").read_bytes() == before
    writer("a", _labelmap(), AFFINE, VECTORS, source=tmp_path / "in" / "a.nii")  # same input: replaced
    writer("a", _labelmap(), AFFINE, VECTORS)  # source unknown: the case name decides
    # a file added later and registered keeps the folder replaceable
    (tmp_path / "a" / "a_overview.png").write_bytes(b"png")
    register_case_files(tmp_path / "a", ["a_overview.png"])
    writer("a", _labelmap(), AFFINE, VECTORS)
    assert not (tmp_path / "a" / "a_overview.png").exists()


def test_writer_refuses_to_write_over_its_own_input(tmp_path):
    """A DICOM series folder as input and its parent as output: the case folder is the input."""
    from monai_sadaan.io import OutputFolderError

    series = tmp_path / "ct"
    series.mkdir()
    for i in range(3):
        (series / f"IM{i:04d}.dcm").write_bytes(b"dicom")
    with pytest.raises(OutputFolderError, match=r"case folder .*ct is its own input .*ct: expected outputs apart"):
        SADAAnCaseWriter(tmp_path)("ct", _labelmap(), AFFINE, VECTORS, source=series)
    assert sorted(p.name for p in series.iterdir()) == ["IM0000.dcm", "IM0001.dcm", "IM0002.dcm"]


def test_writer_refuses_a_file_or_link_in_place_of_the_case_folder(tmp_path):
    from monai_sadaan.io import OutputFolderError

    (tmp_path / "c1").write_text("a file")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "c2").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputFolderError, match="found a file"):
        SADAAnCaseWriter(tmp_path)("c1", _labelmap(), AFFINE, VECTORS)
    with pytest.raises(OutputFolderError, match="found a link"):
        SADAAnCaseWriter(tmp_path)("c2", _labelmap(), AFFINE, VECTORS)
    assert (tmp_path / "c1").read_text() == "a file" and (tmp_path / "c2").is_symlink()


@pytest.mark.parametrize(
    "value, written", [("false", False), ("False", False), ("0", False), ("true", True), (False, False)]
)
def test_write_segmentation_is_parsed_strictly(tmp_path, value, written):
    """Before: the string "false" from the command line was true and the .seg.nrrd was written."""
    files = SADAAnCaseWriter(tmp_path, write_segmentation=value)("c", _labelmap(), AFFINE, VECTORS)
    assert ("segmentation" in files) is written
    assert (tmp_path / "c" / "c.seg.nrrd").exists() is written


def test_write_switches_refuse_unclear_values(tmp_path):
    with pytest.raises(ValueError, match="expected write_segmentation to be true or false .* got 'nope'"):
        SADAAnCaseWriter(tmp_path, write_segmentation="nope")
    with pytest.raises(ValueError, match="expected write_probabilities to be true or false"):
        SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, write_probabilities="maybe")
    lm = _labelmap()
    probs = np.stack([(lm == v).astype(np.float32) for v in range(1, 6)])
    files = SADAAnCaseWriter(tmp_path, write_probabilities="no")("c", lm, AFFINE, VECTORS, probabilities=probs)
    assert "probabilities" not in files


def test_presence_report_names_the_source_and_the_input_flags(tmp_path, caplog):
    import csv
    import logging

    flags = [{"code": "not_ct_like", "message": "intensities 0..255, not CT"}]
    pred = MetaTensor(torch.from_numpy(_labelmap()[None].astype(np.float32)), affine=torch.from_numpy(AFFINE))
    data = {
        "pred": pred, "presence": VECTORS, "case": ["img"],  # after collation: one-element lists
        "source": ["/data/in/img.png.nii.gz"], "input_flags": [json.dumps(flags)],
    }  # fmt: skip
    with caplog.at_level(logging.WARNING):
        out = SaveSADAAnOutputsd(keys="pred", output_dir=tmp_path, case_name_key="case")(data)
    doc = json.loads(open(out["sadaan_files"]["presence_json"]).read())
    assert doc["source"] == "/data/in/img.png.nii.gz"
    assert doc["input_flags"] == flags
    assert doc["warnings"] == ["not_ct_like: intensities 0..255, not CT"]
    assert "intensities 0..255, not CT [not_ct_like]" in caplog.text
    with open(out["sadaan_files"]["presence_csv"], newline="") as f:
        table = list(csv.DictReader(f))
    assert {(r["source"], r["input_flags"]) for r in table} == {("/data/in/img.png.nii.gz", "not_ct_like")}
    marker = json.loads((tmp_path / "img" / ".sadaan-case.json").read_text())
    assert marker["source"] == "/data/in/img.png.nii.gz" and "img_presence.json" in marker["files"]
    # neither key: both optional (MONAI Label, the plain writer)
    files = SADAAnCaseWriter(tmp_path)("plain", _labelmap(), AFFINE, VECTORS)
    doc = json.loads(open(files["presence_json"]).read())
    assert doc["source"] is None and doc["input_flags"] == [] and doc["warnings"] == []
    with pytest.raises(ValueError, match="expected each input flag as"):
        SADAAnCaseWriter(tmp_path)("bad", _labelmap(), AFFINE, VECTORS, input_flags='[{"code": 1}]')


def _write_tiny_case(args):
    """One process of the concurrency test: write case 'c' ``n`` times with the plain writer API."""
    out, n, seed = args
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n):
        presence = dict(VECTORS, presence_probability=list(rng.uniform(0, 1, 5)))
        try:
            SADAAnCaseWriter(out, write_segmentation=False)("c", _labelmap()[:4, :4, :4], AFFINE, presence)
        except Exception as e:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(e).__name__}: {e}")
    return errors


def test_concurrent_writers_of_one_case(tmp_path):
    """Before: 2 FileNotFoundErrors in 6 x 150 writes and leaked .old-* folders. Now: a lock around the swap."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")  # the writers use numpy / nibabel only
    with ctx.Pool(4) as pool:
        errors = pool.map(_write_tiny_case, [(str(tmp_path), 20, s) for s in range(4)])
    assert errors == [[], [], [], []]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no .partial-* / .old-* left
    doc = read_presence_report(tmp_path / "c" / "c_presence.json")
    marker = json.loads((tmp_path / "c" / ".sadaan-case.json").read_text())
    written = sorted(p.name for p in (tmp_path / "c").iterdir() if p.name != ".sadaan-case.json")
    assert written == sorted(marker["files"])
    assert sorted(doc["files"].values()) == sorted(marker["files"])


def test_a_killed_writers_staging_is_removed_by_the_next_write(tmp_path):
    """A writer killed mid-case leaves a hidden staging folder; the next write into the folder removes it."""
    import signal
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        import monai_sadaan.io.case_writer as cw
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        cw.write_colour_table = die
        lm = np.zeros((4, 4, 4), np.uint8)
        v = {{"presence_probability": [0.5] * 5, "confidence": [0.5] * 5}}
        cw.SADAAnCaseWriter({str(tmp_path)!r})("c1", lm, np.eye(4), v)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".c1.partial-")
    (tmp_path / "mine").mkdir()
    (tmp_path / ".my_hidden_folder").mkdir()  # not a staging folder: left alone
    SADAAnCaseWriter(tmp_path)("c2", _labelmap(), AFFINE, VECTORS)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".my_hidden_folder", "c2", "mine"]


def test_the_swap_happens_under_the_output_folders_lock(tmp_path, monkeypatch):
    """The check-and-swap of a case holds an flock on the output folder: a concurrent writer waits for it."""
    import fcntl
    import os

    seen = []
    real_swap = case_writer_module.swap_in

    def checking_swap(new, final):
        fd = os.open(str(tmp_path), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("unlocked")
        except BlockingIOError:
            seen.append("locked")
        finally:
            os.close(fd)
        real_swap(new, final)

    monkeypatch.setattr(case_writer_module, "swap_in", checking_swap)
    writer = SADAAnCaseWriter(tmp_path)
    writer("c", _labelmap(), AFFINE, VECTORS)
    writer("c", _labelmap(), AFFINE, VECTORS)
    assert seen == ["locked", "locked"]


def test_a_result_moved_aside_by_a_writer_killed_mid_swap_is_put_back(tmp_path):
    """Killed between the two renames of a swap: the earlier result waits in a marked '.old' folder, and the next
    write into the output folder puts it back under its name (before: a killed swap could lose it)."""
    import signal
    import subprocess
    import sys
    import textwrap

    SADAAnCaseWriter(tmp_path)("c1", _labelmap(), AFFINE, VECTORS)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()}
    code = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        import monai_glue.atomic as atomic
        real = os.replace
        calls = []
        class _OS:
            def __getattr__(self, name):
                return getattr(os, name)
            @staticmethod
            def replace(a, b):
                if calls and ".c1.old-" in str(calls[-1][1]):  # the old folder is aside, the new one not in place
                    os.kill(os.getpid(), signal.SIGKILL)
                calls.append((a, b))
                real(a, b)
        atomic.os = _OS()
        from monai_sadaan.io import SADAAnCaseWriter
        v = {{"presence_probability": [0.1] * 5, "confidence": [0.5] * 5}}
        SADAAnCaseWriter({str(tmp_path)!r})("c1", np.zeros((4, 4, 4), np.uint8), np.eye(4), v)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert not (tmp_path / "c1").exists()
    assert sorted(p.name.split("-")[0] for p in tmp_path.iterdir()) == [".c1.old", ".c1.partial"]
    SADAAnCaseWriter(tmp_path)("c2", _labelmap(), AFFINE, VECTORS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c1", "c2"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "c1").iterdir()} == before


def test_slicer_reader_reads_the_source_and_warnings_and_skips_staging(tmp_path):
    from monai_sadaan.slicer.core import find_results, read_results

    flags = [{"code": "not_ct_like", "message": "0..255"}]
    SADAAnCaseWriter(tmp_path)("a", _labelmap(), AFFINE, VECTORS, source="/data/a.nii.gz", input_flags=flags)
    SADAAnCaseWriter(tmp_path)("b", _labelmap(), AFFINE, VECTORS)
    (tmp_path / ".b.partial-host.1.x" / "b").mkdir(parents=True)  # a staging folder: not a result
    result = read_results(tmp_path / "a")
    assert result.source == "/data/a.nii.gz" and result.warnings == ["not_ct_like: 0..255"]
    assert result.label_map_path.is_file() and len(result.presence) == 5
    assert read_results(tmp_path / "b").source is None and read_results(tmp_path / "b").warnings == []
    assert sorted(find_results(tmp_path)) == ["a", "b"]


@pytest.mark.parametrize("code", ["no_air", "byte_range", "constant_intensity", "intensity_beyond_ct_range"])
def test_calls_are_withheld_on_an_image_that_is_not_ct(tmp_path, code):
    """A not-CT flag: every call null / withheld, nothing painted, the Slicer segments not started; a geometry flag
    leaves the calls and the label map as they are."""
    import csv

    flags = [{"code": code, "message": "not CT"}, {"code": "implausible_spacing", "message": "odd spacing"}]
    files = SADAAnCaseWriter(tmp_path)("x", _labelmap(), AFFINE, VECTORS, input_flags=flags)
    doc = json.loads(open(files["presence_json"]).read())
    assert doc["calls_withheld"] == [code]
    assert [r["present"] for r in doc["structures"]] == [None] * 5
    assert [r["volume_ml"] for r in doc["structures"]] == [0.0] * 5
    # the network's raw outputs stay
    assert [r["presence_probability"] for r in doc["structures"]] == VECTORS["presence_probability"]
    assert nib.load(files["label_map"]).get_fdata().max() == 0
    with open(files["presence_csv"], newline="") as f:
        assert {r["present"] for r in csv.DictReader(f)} == {"withheld"}
    report = read_presence_report(files["presence_json"])
    assert [r.present for r in report["structures"]] == [None] * 5
    seg = slicerio.read_segmentation(files["segmentation"])
    assert {s["status"] for s in seg["segments"]} == {"notstarted"}
    assert all(s["tags"]["SADAAn.Present"] == "withheld" for s in seg["segments"])

    # geometry alone: the calls stand
    only_geometry = [{"code": "implausible_spacing", "message": "odd spacing"}]
    files = SADAAnCaseWriter(tmp_path)("y", _labelmap(), AFFINE, VECTORS, input_flags=only_geometry)
    doc = json.loads(open(files["presence_json"]).read())
    assert doc["calls_withheld"] == []
    assert [r["present"] for r in doc["structures"]] == VECTORS["present"]
    np.testing.assert_array_equal(np.asarray(nib.load(files["label_map"]).dataobj), _labelmap())
