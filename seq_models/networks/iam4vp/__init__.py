"""IAM4VP cloudcasting network (seed 003), one concept per file."""

from __future__ import annotations

from .attention import Attention
from .conv_sc import ConvSC
from .convnext import ConvNeXt_block, ConvNeXt_bottle
from .decoder import Decoder
from .encoder import Encoder
from .iam4vp import IAM4VP
from .layer_norm import ChannelsFirstLayerNorm
from .lka import LKA
from .predictor import Predictor
from .refinement import SpatioTemporalRefinement
from .time_mlp import SinusoidalPosEmb, TimeMLP

__all__ = [
    "Attention",
    "ChannelsFirstLayerNorm",
    "ConvNeXt_block",
    "ConvNeXt_bottle",
    "ConvSC",
    "Decoder",
    "Encoder",
    "IAM4VP",
    "LKA",
    "Predictor",
    "SinusoidalPosEmb",
    "SpatioTemporalRefinement",
    "TimeMLP",
]
