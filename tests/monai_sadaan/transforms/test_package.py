"""``monai_sadaan.transforms`` imports nothing until a name is used; the inference transform loads only its own
modules (the spatial ones and the CT window it applies); every other public name loads on first use."""

from __future__ import annotations

import subprocess
import sys


def test_inference_transforms_import_without_augmentations_targets_or_post():
    code = (
        "import sys, monai_sadaan.transforms as t\n"
        "def loaded(): return sorted(m[len('monai_sadaan.transforms.'):] for m in sys.modules\n"
        "                            if m.startswith('monai_sadaan.transforms.'))\n"
        "print(loaded())\n"
        "t.CTToNetworkGridd\n"
        "print(loaded())\n"
        "missing = [n for n in t.__all__ if not hasattr(t, n)]\n"
        "print(missing)\n"
        "print(t.RandSyntheticResectiond.__module__, t.PRESENCE_TARGETS, t.InputGridLabelMapd.__module__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert eval(out[0]) == []
    assert eval(out[1]) == [
        "intensity", "intensity.array", "spatial", "spatial.array", "spatial.dictionary", "spatial.functional",
    ]  # fmt: skip
    assert eval(out[2]) == []
    assert out[3] == (
        "monai_sadaan.transforms.absence.dictionary presence_targets monai_sadaan.transforms.post.dictionary"
    )
