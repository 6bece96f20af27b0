"""SADAAn: Spatial Attention for Detection of Absent Anatomy, as a MONAI plugin.

The public names below are imported lazily so that ``import monai_sadaan`` stays cheap and a command that only
needs, say, the phantom generator does not pay for the network code.
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

__version__ = "0.1.0"

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.networks": (
            "SpatialAttentionMedicalSegmenter", "Encoder", "AnatomicalAttentionModule", "AbsenceDetectionHead",
            "SegmentationHead", "SADAAnInferenceWrapper", "SADAAN_OUTPUT_KEYS",
        ),
        "monai_sadaan.inferers": ("WholeVolumeInferer",),
        "monai_sadaan.losses": ("SpatialAttentionLoss",),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)


__getattr__ = lazy_names(__name__, _LAZY)
