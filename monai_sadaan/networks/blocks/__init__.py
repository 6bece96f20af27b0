from __future__ import annotations

from .absence_detection import AbsenceDetectionHead
from .anatomical_attention import AnatomicalAttentionModule
from .double_conv import double_conv3d
from .encoder import Encoder
from .presence_fusion import PRESENCE_EVIDENCE_NAMES, PresenceEvidenceFusion, presence_evidence
from .segmentation_head import SegmentationHead

__all__ = [
    "PRESENCE_EVIDENCE_NAMES",
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "PresenceEvidenceFusion",
    "SegmentationHead",
    "double_conv3d",
    "presence_evidence",
]
