"""SADAAn: Spatial Attention for Detection of Absent Anatomy, as a MONAI plugin.

The public names below are imported lazily so that ``import monai_sadaan`` stays cheap and a command that only
needs, say, the phantom generator does not pay for the network code.
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names

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


__getattr__ = lazy_names(__name__, _LAZY)
