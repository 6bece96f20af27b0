from __future__ import annotations

from .sadaan import SADAAN_OUTPUT_KEYS, SADAAnInferenceWrapper, SpatialAttentionMedicalSegmenter

__all__ = ["SADAAN_OUTPUT_KEYS", "SADAAnInferenceWrapper", "SpatialAttentionMedicalSegmenter"]
