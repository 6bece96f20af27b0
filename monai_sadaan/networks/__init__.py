"""SADAAn networks: the blocks (encoder, attention module, heads) and the segmenter built from them."""

from __future__ import annotations

from .blocks import (
    AbsenceDetectionHead,
    AnatomicalAttentionModule,
    Encoder,
    PresenceEvidenceFusion,
    SegmentationHead,
)
from .nets import SADAAN_OUTPUT_KEYS, SADAAnInferenceWrapper, SpatialAttentionMedicalSegmenter
from .presence_head_tuning import PresenceHeadTuning

__all__ = [
    "SADAAN_OUTPUT_KEYS",
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "PresenceEvidenceFusion",
    "PresenceHeadTuning",
    "SADAAnInferenceWrapper",
    "SegmentationHead",
    "SpatialAttentionMedicalSegmenter",
]
