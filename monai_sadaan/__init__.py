"""SADAAn: Spatial Attention for Detection of Absent Anatomy, as a MONAI plugin.

The public names below are imported lazily so that ``import monai_sadaan`` stays cheap and a command that only
needs, say, the phantom generator does not pay for the network code.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    # networks
    "SpatialAttentionMedicalSegmenter": "monai_sadaan.networks",
    "Encoder": "monai_sadaan.networks",
    "AnatomicalAttentionModule": "monai_sadaan.networks",
    "AbsenceDetectionHead": "monai_sadaan.networks",
    "SegmentationHead": "monai_sadaan.networks",
    "SADAAnInferenceWrapper": "monai_sadaan.networks",
    "SADAAN_OUTPUT_KEYS": "monai_sadaan.networks",
    "WholeVolumeInferer": "monai_sadaan.inferers",
    # losses
    "SpatialAttentionLoss": "monai_sadaan.losses",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'monai_sadaan' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
