"""SADAAn's networks: the segmenter (:mod:`.sadaan`) and its optional presence fusion head (:mod:`.presence_fusion`,
imported on first use)."""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.networks.nets.presence_fusion": (
            "PRESENCE_EVIDENCE_NAMES", "PresenceEvidenceFusion", "presence_evidence", "presence_rule",
        ),
        "monai_sadaan.networks.nets.sadaan": (
            "SADAAN_OUTPUT_KEYS", "SADAAnInferenceWrapper", "SpatialAttentionMedicalSegmenter", "check_sadaan_input",
            "sadaan_outputs",
        ),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
