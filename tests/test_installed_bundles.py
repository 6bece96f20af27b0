"""The bundles where an installed package puts them: a wheel built from the working tree, installed into a fresh
virtual environment, run from a temporary folder with the documented ``sadaan-bundle`` command.

The venv gets the wheel only (``--no-deps``, no index); the test environment's site-packages is added by a ``.pth``
file so that torch, MONAI and the rest need no download. ``.pth`` files inside that folder are not processed, so an
editable install of this checkout stays invisible, and every command runs from a temporary folder: the package
imported is the wheel's, which the test asserts.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED_SUFFIXES = ("/LICENSE", ".json", ".conf", ".md", "/models/model.pt", "/models/real_satellite/model.pt",
                    "/models/real_radar/model.pt")


def _working_tree_copy(dest: Path) -> Path:
    """The files a fresh clone would have (tracked, plus new files git does not ignore): no build/, data, outputs."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
        check=True,
    ).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["MPLBACKEND"] = "Agg"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs a git checkout to know the working tree's files")
    root = tmp_path_factory.mktemp("wheel_install")
    src = _working_tree_copy(root / "src")
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
         str(wheels), str(src)],
        check=True, env=_clean_env(), cwd=root,
    )
    (wheel,) = wheels.glob("monai_sadaan-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_test_environment.pth").write_text("\n".join(sorted(outer)) + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True, env=_clean_env(), cwd=root,
    )
    work = root / "work"
    work.mkdir()
    return {"wheel": wheel, "venv": venv, "python": py, "bin": venv / "bin", "work": work}


def _run(installed, *args, check=True):
    proc = subprocess.run([str(a) for a in args], cwd=installed["work"], env=_clean_env(), capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.slow
def test_wheel_carries_each_bundle_and_nothing_else(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    bundle_files = [n for n in names if n.startswith("monai_glue/bundles/") and n.count("/") > 2]
    for bundle in ("sadaan_abdominal_ct_segmentation", "gru_timeseries_regression", "iam4vp_cloudcasting"):
        for rel in ("LICENSE", "configs/metadata.json", "configs/inference.json", "configs/logging.conf",
                    "docs/README.md"):
            assert f"monai_glue/bundles/{bundle}/{rel}" in names
    for bundle in ("sadaan_abdominal_ct_segmentation", "gru_timeseries_regression", "iam4vp_cloudcasting"):
        assert f"monai_glue/bundles/{bundle}/models/model.pt" in names
    for real in ("real_satellite", "real_radar"):  # IAM4VP weights trained on real frames
        assert f"monai_glue/bundles/iam4vp_cloudcasting/models/{real}/model.pt" in names
    assert all(n.endswith(SHIPPED_SUFFIXES) for n in bundle_files), bundle_files
    assert not [n for n in bundle_files if "/data/" in n or "/eval/" in n or "training_state" in n]


@pytest.mark.slow
def test_installed_package_is_the_wheel_not_the_checkout(installed):
    out = _run(installed, installed["python"], "-c",
               "import monai_sadaan, monai_glue.bundles as b, monai_sadaan.demo as d; "
               "print(monai_sadaan.__file__); print(b.bundle_root('sadaan_abdominal_ct_segmentation')); "
               "print(d.DEFAULT_BUNDLE)").stdout.split()
    venv = str(installed["venv"].resolve())
    assert all(line.startswith(venv) for line in out), out
    assert not any(line.startswith(str(REPO)) for line in out)
    listed = _run(installed, installed["bin"] / "sadaan-bundle", "list").stdout.split()
    assert listed == ["gru_timeseries_regression", "iam4vp_cloudcasting", "sadaan_abdominal_ct_segmentation"]


@pytest.mark.slow
def test_sadaan_inference_from_any_folder(installed):
    from monai_sadaan.data import generate_phantom, save_phantom

    scans = installed["work"] / "scans"
    scans.mkdir()
    save_phantom(generate_phantom("nephrectomy_left", seed=3), scans / "case_a.nii.gz")
    _run(installed, installed["bin"] / "sadaan-bundle", "run", "sadaan_abdominal_ct_segmentation",
         "--dataset_dir", "scans", "--output_dir", "sadaan_out")
    case = installed["work"] / "sadaan_out" / "case_a"
    assert (case / "case_a_labels.nii.gz").stat().st_size > 0 and (case / "case_a.seg.nrrd").is_file()
    report = json.loads((case / "case_a_presence.json").read_text())
    calls = {s["structure"]: s["present"] for s in report["structures"]}
    assert calls["left_kidney"] is False and calls["liver"] is True
    assert (installed["work"] / "sadaan_out" / "sadaan_run.json").is_file()
    site = installed["venv"] / "lib"
    assert not list(site.rglob("sadaan_abdominal_ct_segmentation/eval")), "nothing written into the package"


@pytest.mark.slow
def test_gru_inference_and_iam4vp_small_weights(installed):
    _run(installed, installed["bin"] / "sadaan-bundle", "run", "gru_timeseries_regression", "--output_dir", "gru")
    with open(installed["work"] / "gru" / "predictions_full.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 309 and float(rows[-1]["prediction"]) > 0
    # the shipped small weights with configs/small.json, as docs/README.md says
    from seq_models.data.cloud_generator import generate_cloud_dataset
    from seq_models.data.satellite import write_frames

    write_frames(generate_cloud_dataset(8, 64, 64, seed=2), installed["work"] / "clouds" / "test.zarr")
    _run(installed, installed["bin"] / "sadaan-bundle", "run", "iam4vp_cloudcasting", "--configs", "inference,small",
         "--data_path", "clouds/test.zarr", "--output_dir", "fc")
    import xarray as xr

    with xr.open_dataset(installed["work"] / "fc" / "forecast_00000.nc", engine="h5netcdf") as out:
        assert out["forecast"].shape == (4, 11, 64, 64)
        assert float(out["forecast"].min()) >= 0 and float(out["forecast"].max()) <= 1
    # weights missing (another --ckpt_path): one line naming the file and how to get weights
    proc = _run(installed, installed["bin"] / "sadaan-bundle", "run", "iam4vp_cloudcasting", "--configs",
                "inference,small", "--ckpt_path", "missing.pt", "--data_path", "clouds/test.zarr", "--output_dir",
                "fc2", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no trained weights at missing.pt") and "configs/train.json" in last
