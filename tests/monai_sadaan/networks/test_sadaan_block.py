"""The SADAAn blocks of :mod:`monai_sadaan.networks.blocks.sadaan_block`: ``check_positive_sizes``, the one refusal of
layer sizes below 1 that every block and the network share, and the double conv they are built from."""

from __future__ import annotations

import pytest

from monai_sadaan.networks import SpatialAttentionMedicalSegmenter
from monai_sadaan.networks.blocks import (
    AbsenceDetectionHead,
    AnatomicalAttentionModule,
    Encoder,
    SegmentationHead,
    check_positive_sizes,
    double_conv3d,
)


def test_positive_sizes_pass():
    check_positive_sizes(in_channels=1, hidden_dims=(64, 32))


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: check_positive_sizes(width=0), "expected positive width, got 0"),
        (lambda: SegmentationHead(0, 5, 64), "expected positive in_channels, num_structures and hidden_channels, got 0, 5 and 64"),
        (
            lambda: AnatomicalAttentionModule(128, 5, (16, 16, 16), 0),
            "expected positive in_channels, num_structures and hidden_channels, got 128, 5 and 0",
        ),
        (
            lambda: AbsenceDetectionHead(5, 128, (64, 0), 64),
            r"expected positive num_structures, feature_dim, hidden_dims and confidence_hidden, got 5, 128, \(64, 0\) and 64",
        ),
        (lambda: Encoder(0), "expected positive in_channels and feature_channels, got 0 and 128"),
        (lambda: SpatialAttentionMedicalSegmenter(in_channels=0), "expected positive in_channels and num_structures, got 0 and 5"),
    ],
)
def test_sizes_below_one_are_refused_naming_every_size(build, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        build()


def test_segmentation_head_refines_with_the_encoders_double_conv():
    assert repr(SegmentationHead(8, 3, 4).feature_refine) == repr(double_conv3d(8, 4))
