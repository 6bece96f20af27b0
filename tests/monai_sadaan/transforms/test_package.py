"""``monai_sadaan.transforms`` imports only what inference needs; every other public name loads on first use."""

from __future__ import annotations

import subprocess
import sys


def test_inference_transforms_import_without_augmentations_targets_or_post():
    code = (
        "import sys, monai_sadaan.transforms as t\n"
        "loaded = {m for m in sys.modules if m.startswith('monai_sadaan.transforms.')}\n"
        "print(sorted(m.split('.')[2] for m in loaded))\n"
        "missing = [n for n in t.__all__ if not hasattr(t, n)]\n"
        "print(missing)\n"
        "print(t.RandSyntheticResectiond.__module__, t.PRESENCE_TARGETS, t.InputGridLabelMapd.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert set(eval(out[0])) == {"intensity", "spatial", "utils"}
    assert eval(out[1]) == []
    assert out[2] == (
        "monai_sadaan.transforms.absence.dictionary presence_targets monai_sadaan.transforms.post.dictionary"
    )
