from __future__ import annotations

from .absence_detection import AbsenceDetectionHead
from .anatomical_attention import AnatomicalAttentionModule, apply_position_prior
from .double_conv import double_conv3d
from .encoder import Encoder
from .segmentation_head import SegmentationHead, modulate_by_attention

__all__ = [
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "SegmentationHead",
    "apply_position_prior",
    "double_conv3d",
    "modulate_by_attention",
]
