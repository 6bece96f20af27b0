"""Issue 26, around the model: the NIfTI reader in slabs, the chunked pre-flight scan and label counts, the prefetching
loader, per-case timing, progress and the run's summary."""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from monai_sadaan.data.image_folder import InputImageError, check_volume_content, iter_nifti_data
from monai_sadaan.inferers import PrefetchDataLoader
from monai_sadaan.io import InferenceRun, SADAAnCaseWriter
from monai_sadaan.io.geometry import label_counts
from monai_sadaan.io.nifti import GZIP_LEVEL, SADAAnSlabImageReader, read_nifti_array

PRESENCE = {"presence_probability": [0.9] * 5, "confidence": [0.8] * 5, "present": [1, 1, 1, 1, 1]}


def _nifti(path, data, slope=None, inter=None, big_endian=False):
    img = nib.Nifti1Image(data, np.diag([0.8, 0.9, 2.5, 1.0]))
    if big_endian:
        img = nib.Nifti1Image(data.astype(data.dtype.newbyteorder(">")), img.affine, nib.Nifti1Header(endianness=">"))
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    nib.save(img, str(path))
    return path


@pytest.mark.parametrize(
    "name, data, kwargs",
    [
        ("i16.nii.gz", np.arange(-3000, 3000 - 8, dtype=np.int16)[: 19 * 23 * 13].reshape(19, 23, 13), {}),
        ("u8.nii", np.arange(19 * 23 * 13, dtype=np.uint8).reshape(19, 23, 13), {}),
        ("scaled.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13), {"slope": 0.5, "inter": -1024}),
        ("f32.nii.gz", np.linspace(-1, 1, 19 * 23 * 13, dtype=np.float32).reshape(19, 23, 13), {}),
        ("big.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13), {"big_endian": True}),
        ("four.nii.gz", np.arange(19 * 23 * 13, dtype=np.int16).reshape(19, 23, 13, 1), {}),
    ],
)
@pytest.mark.parametrize("slab_bytes", [1, 1000, 1 << 24])
def test_slab_reader_gives_nibabels_values_in_c_order(tmp_path, name, data, kwargs, slab_bytes):
    path = _nifti(tmp_path / name, data, **kwargs)
    expected = np.asanyarray(nib.load(str(path)).dataobj)
    got = read_nifti_array(nib.load(str(path)), slab_bytes=slab_bytes)
    assert got.shape == expected.shape and got.dtype == expected.dtype.newbyteorder("=")
    assert got.flags.c_contiguous  # MONAI's LoadImage would copy anything else
    np.testing.assert_array_equal(got, expected)


def test_bundle_reader_loads_into_c_order_without_a_copy(tmp_path):
    from monai.transforms import LoadImaged

    data = np.arange(20 * 21 * 22, dtype=np.int16).reshape(20, 21, 22)
    path = _nifti(tmp_path / "ct.nii.gz", data)
    image = LoadImaged("image", reader=SADAAnSlabImageReader(), dtype=None, image_only=True, ensure_channel_first=True)(
        {"image": str(path)}
    )["image"]
    assert image.dtype == torch.int16 and tuple(image.shape) == (1, 20, 21, 22)
    np.testing.assert_array_equal(image[0].numpy(), data)
    np.testing.assert_array_equal(image.affine.numpy(), nib.load(str(path)).affine)


def test_a_cut_gzip_stream_is_refused_by_the_scan_and_the_reader(tmp_path):
    noise = np.random.default_rng(0).integers(-1000, 1000, (40, 40, 40)).astype(np.int16)
    path = _nifti(tmp_path / "cut.nii.gz", noise)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputImageError, match="truncated or corrupt"):
        check_volume_content(path)
    with pytest.raises((EOFError, OSError)):
        read_nifti_array(nib.load(str(path)))
    short = tmp_path / "short.nii"
    _nifti(short, np.zeros((10, 10, 10), np.int16))
    short.write_bytes(short.read_bytes()[:-100])
    with pytest.raises(OSError, match="Expected 2000 bytes, got 1900"):
        list(iter_nifti_data(nib.load(str(short)), chunk_items=64))


def test_the_scan_reads_in_chunks_and_finds_nan_and_range(tmp_path):
    data = np.zeros((30, 30, 30), np.float32)
    data[29, 29, 29] = np.nan
    data[0, 0, 1] = np.inf
    with pytest.raises(InputImageError, match="got 1 NaN and 1 Inf voxels"):
        check_volume_content(_nifti(tmp_path / "nan.nii.gz", data))
    ok = _nifti(tmp_path / "ok.nii.gz", np.arange(27000, dtype=np.int16).reshape(30, 30, 30), slope=2.0, inter=-5)
    assert check_volume_content(ok) == (30, 30, 30)
    chunks = list(arr.copy() for arr in iter_nifti_data(nib.load(str(ok)), chunk_items=1000))
    assert len(chunks) == 27 and all(c.size == 1000 for c in chunks)
    stored = np.arange(27000, dtype=np.int16).reshape(30, 30, 30).ravel(order="F")  # NIfTI's file order
    np.testing.assert_array_equal(np.concatenate(chunks), stored)


def test_label_counts_equal_bincount_in_any_memory_order():
    rng = np.random.default_rng(1)
    for order in "CF":
        lm = np.asarray(rng.integers(0, 6, (31, 17, 9)), dtype=np.uint8, order=order)
        lm[lm < 3] = 0
        np.testing.assert_array_equal(label_counts(lm, minlength=8), np.bincount(lm.ravel(), minlength=8))
    assert label_counts(np.zeros((3, 3, 3), np.uint8), minlength=4).tolist() == [27, 0, 0, 0]


def test_outputs_use_gzip_level_one():
    from nibabel.openers import Opener

    from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation

    assert GZIP_LEVEL == 1 and Opener.default_compresslevel == GZIP_LEVEL
    assert write_slicer_segmentation.__defaults__[-1] == GZIP_LEVEL


# ---------------------------------------------------------------------------------------------------- prefetch
class _Slow(torch.utils.data.Dataset):
    def __init__(self, n, fail_at=None, delay=0.0):
        self.n, self.fail_at, self.delay, self.made = n, fail_at, delay, []

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i == self.fail_at:
            raise ValueError(f"case {i} could not be read")
        time.sleep(self.delay)
        self.made.append((i, threading.current_thread().name))
        return {"x": torch.tensor([i])}


def test_prefetch_loader_yields_every_batch_in_order_from_a_thread():
    data = _Slow(5)
    got = [int(b["x"]) for b in PrefetchDataLoader(data, batch_size=1)]
    assert got == [0, 1, 2, 3, 4]
    assert {name for _, name in data.made} == {"sadaan-prefetch"}


def test_prefetch_loader_reads_the_next_case_while_this_one_is_used():
    data = _Slow(3, delay=0.2)
    start = time.perf_counter()
    for _ in PrefetchDataLoader(data, batch_size=1):
        time.sleep(0.2)  # the consumer's work on this case
    # serial: 3 x (0.2 + 0.2) = 1.2 s; overlapped: 0.2 + 3 x 0.2 = 0.8 s
    assert time.perf_counter() - start < 1.1


def test_prefetch_loader_raises_an_error_of_the_thread_at_its_batch():
    seen = []
    with pytest.raises(ValueError, match="case 2 could not be read"):
        for b in PrefetchDataLoader(_Slow(4, fail_at=2), batch_size=1):
            seen.append(int(b["x"]))
    assert seen == [0, 1]  # the epoch does not end quietly after case 1 (MONAI's ThreadDataLoader's behaviour)


def test_prefetch_loader_stops_its_thread_when_the_consumer_stops():
    before = threading.active_count()
    loader = PrefetchDataLoader(_Slow(50, delay=0.01), batch_size=1)
    for i, _ in enumerate(loader):
        if i == 2:
            break
    time.sleep(0.1)
    assert threading.active_count() <= before
    with pytest.raises(ValueError, match="prefetch >= 1"):
        PrefetchDataLoader(_Slow(1), prefetch=0)


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


def test_gzip_level_one_output_reads_back(tmp_path):
    from monai_sadaan.io import write_label_map_nifti

    lm = np.zeros((40, 40, 40), np.uint8, order="F")
    lm[5:30, 10:20, :] = 2
    path = write_label_map_nifti(lm, np.eye(4), tmp_path / "l.nii.gz")
    with gzip.open(path) as f:
        assert len(f.read()) > lm.size
    np.testing.assert_array_equal(np.asarray(nib.load(path).dataobj), lm)


def test_threads_beside_prefetch_leave_a_core_to_the_reader(monkeypatch):
    import os

    from monai_sadaan.inferers import threads_beside_prefetch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert threads_beside_prefetch() == 7
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert threads_beside_prefetch() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads_beside_prefetch() == torch.get_num_threads()


def test_grid_transforms_run_on_one_thread_and_restore_the_setting():
    from monai_sadaan.transforms.spatial import functional as network_grid

    before = torch.get_num_threads()
    seen = []
    with network_grid.one_thread():
        seen.append(torch.get_num_threads())
    assert seen == [1] and torch.get_num_threads() == before


def test_seg_nrrd_is_written_from_the_label_maps_own_buffer(tmp_path):
    """A Fortran-ordered label map (the pipeline's) goes to the .seg.nrrd without a copy of its size; the file is
    byte for byte the one a C-ordered (copied) map gives."""
    import tracemalloc

    import slicerio

    from monai_sadaan.io.slicer_segmentation import write_slicer_segmentation

    lm = np.zeros((400, 300, 100), np.uint8, order="F")  # 12 MB; counting works in 4 M-voxel chunks
    lm[50:150, 20:120, 10:60] = 3
    lm[200:250, :, 70:] = 1
    tracemalloc.start()
    try:
        write_slicer_segmentation(lm, np.eye(4), PRESENCE, tmp_path / "f.seg.nrrd")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < lm.nbytes / 2
    write_slicer_segmentation(np.ascontiguousarray(lm), np.eye(4), PRESENCE, tmp_path / "c.seg.nrrd")
    assert (tmp_path / "f.seg.nrrd").read_bytes() == (tmp_path / "c.seg.nrrd").read_bytes()
    np.testing.assert_array_equal(slicerio.read_segmentation(str(tmp_path / "f.seg.nrrd"))["voxels"], lm)
