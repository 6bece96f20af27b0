"""The helpers of ``benchmarks/sadaan_clinical_ct.py`` on tiny volumes (the benchmark itself runs at 512 x 512 x N)."""

from __future__ import annotations

import sys

import nibabel as nib
import numpy as np
import pytest

from tests.benchmark_scripts import load_benchmark


def _bench():
    return load_benchmark("sadaan_clinical_ct")


def test_make_volume_keeps_the_field_of_view_and_the_ct_values(tmp_path):
    bench = _bench()
    src = np.arange(6 * 5 * 4, dtype=np.int16).reshape(6, 5, 4) * 10 - 500
    affine = np.array([[-2.0, 0, 0, 30], [0, 3.0, 0, -10], [0, 0, 5.0, 7], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(src, affine), str(tmp_path / "src.nii.gz"))
    out = bench.make_volume(tmp_path / "src.nii.gz", (12, 10, 8), tmp_path / "big" / "ct.nii.gz")
    img = nib.load(str(out))
    assert img.shape == (12, 10, 8) and img.get_data_dtype() == np.int16
    np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :3], axis=0), [1.0, 1.5, 2.5])
    # the outer voxel faces stay where they were: first corner = source corner
    corner = lambda a: a[:3, :3] @ np.full(3, -0.5) + a[:3, 3]  # noqa: E731
    np.testing.assert_allclose(corner(img.affine), corner(affine))
    data = np.asarray(img.dataobj)
    assert data.min() >= src.min() and data.max() <= src.max()


def test_floor_script_writes_a_same_size_uint8_label_map(tmp_path):
    bench = _bench()
    ct = np.full((8, 9, 10), -1000, np.int16)
    ct[2:5, 2:5, 2:5] = 700
    nib.save(nib.Nifti1Image(ct, np.eye(4)), str(tmp_path / "ct.nii.gz"))
    wall, rss, output = bench.run_measured(
        [sys.executable, "-c", bench.FLOOR_SCRIPT.replace("import numpy as np, nibabel as nib, torch, monai",
                                                          "import numpy as np, nibabel as nib"),
         str(tmp_path / "ct.nii.gz"), str(tmp_path / "l.nii.gz")]
    )  # fmt: skip
    labels = nib.load(str(tmp_path / "l.nii.gz"))
    assert labels.shape == ct.shape and labels.get_data_dtype() == np.uint8
    assert int(np.asarray(labels.dataobj).sum()) == 27 and wall > 0 and rss > 1
    with pytest.raises(SystemExit, match="failed"):
        bench.run_measured([sys.executable, "-c", "raise SystemExit(3)"])


def test_startup_ratio_and_lines():
    bench = _bench()
    manifest = {"timing": {"preflight_seconds": 1.0, "inference_seconds": 4.0, "commit_seconds": 0.5, "cases": []}}
    assert bench.startup_seconds(12.0, manifest) == pytest.approx(6.5)
    single = bench.Measurement("bundle", 300, 1, 12.0, 900.0, 6.5, [4.0])
    many = bench.Measurement("bundle", 300, 10, 56.5, 950.0, 6.5, [5.0] * 10)
    assert bench.folder_ratio(single, many) == pytest.approx(5.0 / 5.5)
    floor = bench.Measurement("floor", 300, 1, 6.0, 800.0)
    assert bench.line(single, floor) == "| 300 | 1 | 6.0 | 800 | 12.0 | 900 | 2.00 | 1.12 | 6.5 |"


def test_arguments():
    bench = _bench()
    args = bench.parse_args(["--slices", "256", "512", "768", "--folder", "10", "--repeat", "2"])
    assert args.slices == [256, 512, 768] and args.folder == 10 and args.repeat == 2 and args.size == 512
    assert args.source.name == "example_ct.nii.gz"
    with pytest.raises(SystemExit):
        bench.parse_args(["--repeat", "0"])


def test_a_manifest_without_timing_gives_no_startup():
    bench = _bench()
    assert bench.startup_seconds(20.0, {"status": "complete"}) is None
    old = bench.Measurement("bundle", 300, 1, 28.0, 5300.0)
    assert bench.line(old, bench.Measurement("floor", 300, 1, 7.0, 850.0)).endswith("| 4.00 | 6.24 | - |")
    assert bench.parse_args(["--code_root", "/tmp/x"]).code_root.name == "x"
