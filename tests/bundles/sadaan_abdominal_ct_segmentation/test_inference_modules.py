"""What one run of ``configs/inference.json`` imports of the project: the modules of what it uses, not those of the
switches it leaves off (the ``.seg.nrrd`` writer, the cascade), of inputs it does not have (DICOM geometry) or of
training (augmentations, targets, engines, losses, the sequence models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[3] / "bundles" / "sadaan_abdominal_ct_segmentation"

_CHILD = """
import json, sys
import nibabel as nib, numpy as np
from monai.bundle import run
inputs, outputs, bundle = sys.argv[1:4]
volume = np.random.default_rng(0).normal(0, 100, (40, 40, 30)).astype(np.float32)
nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 3.0, 1.0])), inputs + "/case.nii.gz")
run(config_file=bundle + "/configs/inference.json", bundle_root=bundle, output_dir=outputs, dataset_dir=inputs,
    write_segmentation=False)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("monai_sadaan", "monai_glue", "seq_models"))))
"""


def test_inference_imports_only_the_modules_it_uses(tmp_path):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, str(inputs), str(outputs), str(BUNDLE)],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    loaded = set(json.loads(r.stdout.strip().splitlines()[-1]))
    assert sorted(p.name for p in (outputs / "case").iterdir() if not p.name.startswith(".")) == [
        "case_colour_table.csv", "case_labels.nii.gz", "case_presence.csv", "case_presence.json",
    ]  # fmt: skip
    used = {
        "monai_sadaan.data.image_folder", "monai_sadaan.data.readers", "monai_sadaan.transforms.spatial.dictionary",
        "monai_sadaan.inferers.prefetch", "monai_sadaan.inferers.whole_volume", "monai_sadaan.networks.nets.sadaan",
        "monai_sadaan.networks.nets.presence_fusion", "monai_sadaan.transforms.post.dictionary",
        "monai_sadaan.io.case_writer", "monai_sadaan.io.run_outputs", "monai_glue.checkpoint",
        "monai_sadaan.networks.fast_inference",
    }  # fmt: skip
    assert used <= loaded, sorted(used - loaded)
    not_used = {
        "monai_sadaan.io.slicer_segmentation", "monai_sadaan.data.dicom_geometry",
        "monai_sadaan.transforms.intensity.dictionary", "monai_sadaan.inferers.cascade",
    }  # fmt: skip
    assert not loaded & not_used, sorted(loaded & not_used)
    training = ("monai_sadaan.transforms.absence", "monai_sadaan.transforms.targets", "monai_sadaan.engines",
                "monai_sadaan.losses", "monai_sadaan.data.phantoms", "monai_sadaan.data.trunk", "seq_models")
    assert not [m for m in loaded if m.startswith(training)], sorted(m for m in loaded if m.startswith(training))


_SWITCH_CHILD = """
import json, sys
import nibabel as nib, numpy as np
from monai.bundle import run
inputs, outputs, bundle, switch = sys.argv[1:5]
volume = np.random.default_rng(0).normal(0, 100, (40, 40, 30)).astype(np.float32)
volume[10:30, 10:30, 5:25] += 60.0
nib.save(nib.Nifti1Image(volume, np.diag([2.0, 2.0, 3.0, 1.0])), inputs + "/case.nii.gz")
run(config_file=bundle + "/configs/inference.json", bundle_root=bundle, output_dir=outputs, dataset_dir=inputs,
    write_segmentation=False, test_time_norm=switch)
"""


def test_test_time_norm_switch_reaches_the_shipped_network(tmp_path):
    """``--test_time_norm true`` (a string, as from the command line) changes what the shipped weights say."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    probabilities = {}
    for switch in ("false", "true"):
        inputs, outputs = tmp_path / f"in_{switch}", tmp_path / f"out_{switch}"
        inputs.mkdir()
        r = subprocess.run(
            [sys.executable, "-c", _SWITCH_CHILD, str(inputs), str(outputs), str(BUNDLE), switch],
            capture_output=True, text=True, timeout=600, env=env,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        report = json.loads((outputs / "case" / "case_presence.json").read_text())
        probabilities[switch] = [row["presence_probability"] for row in report["structures"]]
    assert len(probabilities["true"]) == len(probabilities["false"]) == 5
    assert max(abs(a - b) for a, b in zip(probabilities["true"], probabilities["false"])) > 1e-3
