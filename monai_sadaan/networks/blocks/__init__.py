"""The blocks of SADAAn: its four stages (encoder, anatomical attention, absence detection, segmentation head) and
the double convolution they are built from, in :mod:`.sadaan_block`."""

from __future__ import annotations

from .sadaan_block import (
    AbsenceDetectionHead,
    AnatomicalAttentionModule,
    Encoder,
    SegmentationHead,
    apply_position_prior,
    check_positive_sizes,
    compose_with_projection,
    double_conv3d,
    modulate_by_attention,
)
