from __future__ import annotations

from .presence_fusion import PRESENCE_EVIDENCE_NAMES, PresenceEvidenceFusion, presence_evidence, presence_rule
from .sadaan import (
    SADAAN_OUTPUT_KEYS,
    SADAAnInferenceWrapper,
    SpatialAttentionMedicalSegmenter,
    check_sadaan_input,
    sadaan_outputs,
)

__all__ = [
    "PRESENCE_EVIDENCE_NAMES",
    "SADAAN_OUTPUT_KEYS",
    "PresenceEvidenceFusion",
    "SADAAnInferenceWrapper",
    "SpatialAttentionMedicalSegmenter",
    "check_sadaan_input",
    "presence_evidence",
    "presence_rule",
    "sadaan_outputs",
]
