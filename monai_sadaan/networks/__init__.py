"""SADAAn networks: the blocks (encoder, attention module, heads) and the segmenter built from them."""

from __future__ import annotations

from .blocks import AbsenceDetectionHead, AnatomicalAttentionModule, Encoder, SegmentationHead
from .nets import SADAAN_OUTPUT_KEYS, SADAAnInferenceWrapper, SpatialAttentionMedicalSegmenter

__all__ = [
    "SADAAN_OUTPUT_KEYS",
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "SADAAnInferenceWrapper",
    "SegmentationHead",
    "SpatialAttentionMedicalSegmenter",
]
