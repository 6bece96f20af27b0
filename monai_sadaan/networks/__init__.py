"""SADAAn networks: the blocks (encoder, attention module, heads), the segmenter built from them, its presence
fusion head, the presence gating rule and the fast eval-only graph."""

from __future__ import annotations

from .blocks import AbsenceDetectionHead, AnatomicalAttentionModule, Encoder, SegmentationHead
from .fast_inference import FastSADAAnInference, build_fast_inference
from .nets import (
    PRESENCE_EVIDENCE_NAMES,
    SADAAN_OUTPUT_KEYS,
    PresenceEvidenceFusion,
    SADAAnInferenceWrapper,
    SpatialAttentionMedicalSegmenter,
    presence_evidence,
)
from .presence import call_presence, gate_by_presence, presence_masks
from .utils import unwrap_model

__all__ = [
    "PRESENCE_EVIDENCE_NAMES",
    "SADAAN_OUTPUT_KEYS",
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "FastSADAAnInference",
    "PresenceEvidenceFusion",
    "SADAAnInferenceWrapper",
    "SegmentationHead",
    "SpatialAttentionMedicalSegmenter",
    "build_fast_inference",
    "call_presence",
    "gate_by_presence",
    "presence_evidence",
    "presence_masks",
    "unwrap_model",
]
