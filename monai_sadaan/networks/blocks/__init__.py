from __future__ import annotations

from .absence_detection import AbsenceDetectionHead
from .anatomical_attention import AnatomicalAttentionModule
from .double_conv import double_conv3d
from .encoder import Encoder
from .segmentation_head import SegmentationHead

__all__ = ["AbsenceDetectionHead", "AnatomicalAttentionModule", "Encoder", "SegmentationHead", "double_conv3d"]
