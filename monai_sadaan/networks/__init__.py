"""SADAAn networks: the blocks (encoder, attention module, heads), the segmenter built from them, its presence
fusion head, the presence gating rule, the fast eval-only graph and test-time normalisation.

=============================== ======================================================================================
module                          what it holds
=============================== ======================================================================================
:mod:`.nets.sadaan`             :class:`SpatialAttentionMedicalSegmenter`, read top to bottom, and its export wrapper
:mod:`.blocks.sadaan_block`     its four stages: :class:`Encoder`, :class:`AnatomicalAttentionModule`,
                                :class:`AbsenceDetectionHead`, :class:`SegmentationHead`
:mod:`.nets.presence_fusion`    :class:`PresenceEvidenceFusion`, the optional final presence call
:mod:`.presence`                the presence call and the gating of masks by it
:mod:`.fast_inference`          :func:`build_fast_inference`: a faster eval-only graph of a trained segmenter
:mod:`.test_time_norm`          :func:`use_input_statistics`: BatchNorm that also uses each test case's own statistics
:mod:`.checkpointing`           :func:`checkpointed_stages`: the training graph ``use_checkpoint`` runs (a quarter of
                                the plain step's memory; imported only when it runs)
=============================== ======================================================================================

Names are imported on first use: a model without presence fusion does not import it, a run without
``fast_inference`` does not import the fast graph.
"""

from __future__ import annotations

from monai_glue.lazy_names import lazy_names, names_by_module

_LAZY: dict[str, str] = names_by_module(
    {
        "monai_sadaan.networks.blocks.sadaan_block": (
            "AbsenceDetectionHead", "AnatomicalAttentionModule", "Encoder", "SegmentationHead",
        ),
        "monai_sadaan.networks.fast_inference": (
            "FastSADAAnInference", "attach_fast_inference", "build_fast_inference",
        ),
        "monai_sadaan.networks.nets.sadaan": (
            "SADAAN_OUTPUT_KEYS", "SADAAnInferenceWrapper", "SpatialAttentionMedicalSegmenter",
        ),
        "monai_sadaan.networks.nets.presence_fusion": (
            "PRESENCE_EVIDENCE_NAMES", "PresenceEvidenceFusion", "presence_evidence",
        ),
        "monai_sadaan.networks.presence": ("call_presence", "gate_by_presence", "presence_masks"),
        "monai_sadaan.networks.test_time_norm": (
            "InputStatisticsBatchNorm3d", "use_input_statistics", "uses_input_statistics",
        ),
        "monai_glue.checkpoint": ("unwrap_model",),
    }
)  # fmt: skip

__all__ = sorted(_LAZY)

__getattr__ = lazy_names(__name__, _LAZY)
