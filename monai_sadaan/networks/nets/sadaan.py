"""SADAAn: Spatial Attention for Detection of Absent Anatomy (seed 002)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from monai_glue.checkpoint import StateOfWrappedModel
from monai_glue.config_values import parse_bool
from monai_sadaan.networks.blocks.sadaan_block import (
    AbsenceDetectionHead,
    AnatomicalAttentionModule,
    Encoder,
    SegmentationHead,
    check_positive_sizes,
)
from monai_sadaan.networks.presence import call_presence, presence_masks

if TYPE_CHECKING:
    from monai_sadaan.networks.nets.presence_fusion import PresenceEvidenceFusion

__all__ = [
    "SADAAN_OUTPUT_KEYS",
    "SADAAnInferenceWrapper",
    "SpatialAttentionMedicalSegmenter",
    "check_sadaan_input",
    "sadaan_outputs",
]

#: keys of the dict returned by :meth:`SpatialAttentionMedicalSegmenter.forward`, in order
SADAAN_OUTPUT_KEYS: tuple[str, ...] = (
    "attention_maps",
    "feature_responses",
    "alignment_scores",
    "position_priors",
    "absence_logits",
    "presence_probs",
    "confidence_scores",
    "segmentation_logits",
    "segmentation_probs",
    "presence_calls",
    "segmentation_masks",
)


def check_sadaan_input(
    x: Any, in_channels: int, spatial_size: tuple[int, int, int], training: bool, presence_threshold: float = 0.5
) -> None:
    """Raise ``ValueError`` unless ``x`` is a finite ``[B, in_channels, *spatial_size]`` floating point tensor.

    Args:
        x: the candidate input.
        in_channels: image channels the network takes.
        spatial_size: ``(D, H, W)`` the network takes.
        training: whether the network is in training mode (BatchNorm then needs two values per channel at the
            deepest level, four poolings down).
        presence_threshold: must lie in [0, 1].

    Raises:
        ValueError: naming the expected and the received shape, the dtype, the number of non-finite values or the
            threshold.
    """
    expected = f"(B, {in_channels}, {', '.join(str(s) for s in spatial_size)})"
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor of shape {expected}, got {type(x).__name__}")
    if x.ndim != 5 or x.shape[1] != in_channels or tuple(x.shape[2:]) != tuple(spatial_size) or x.shape[0] < 1:
        raise ValueError(f"expected input of shape {expected}, got {tuple(x.shape)}")
    deepest_voxels = (spatial_size[0] // 16) * (spatial_size[1] // 16) * (spatial_size[2] // 16)
    if training and x.shape[0] * deepest_voxels < 2:
        raise ValueError(
            "expected more than one value per channel at the deepest encoder level in training mode "
            f"(BatchNorm), got batch size {x.shape[0]} at spatial size {tuple(spatial_size)}: use a batch of 2+"
        )
    if not x.is_floating_point():
        raise ValueError(f"expected a floating point input, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"expected finite input values, got {bad} NaN/Inf values in input of shape {tuple(x.shape)}")
    if not 0.0 <= float(presence_threshold) <= 1.0:
        raise ValueError(f"expected presence_threshold in [0, 1], got {presence_threshold}")


def sadaan_outputs(
    x: torch.Tensor,
    attention_maps: torch.Tensor,
    feature_responses: torch.Tensor,
    alignment_scores: torch.Tensor,
    position_priors: torch.Tensor,
    absence_logits: torch.Tensor,
    presence_probs: torch.Tensor,
    confidence_scores: torch.Tensor,
    segmentation_logits: torch.Tensor,
    segmentation_probs: torch.Tensor,
    presence_fusion: PresenceEvidenceFusion | None = None,
    presence_threshold: float = 0.5,
) -> dict[str, torch.Tensor]:
    """The output dict of :meth:`SpatialAttentionMedicalSegmenter.forward` from its four stages' results.

    With ``presence_fusion`` the absence logits and presence probabilities are the fusion's; the presence calls
    are ``presence_probs >= presence_threshold`` and the masks are emptied for structures called absent
    (:func:`~monai_sadaan.networks.presence.presence_masks`). Shapes as in the forward's docstring.
    """
    if presence_fusion is not None:
        from monai_sadaan.networks.nets.presence_fusion import presence_evidence  # imported with the fusion

        evidence = presence_evidence(
            x, absence_logits, alignment_scores, confidence_scores, segmentation_probs, attention_maps,
            feature_responses, position_priors,
        )  # fmt: skip
        absence_logits = presence_fusion(evidence, absence_logits)
        presence_probs = torch.softmax(absence_logits, dim=-1)[..., 1]
    presence_calls = call_presence(presence_probs, presence_threshold).to(segmentation_probs.dtype)
    return {
        "attention_maps": attention_maps,
        "feature_responses": feature_responses,
        "alignment_scores": alignment_scores,
        "position_priors": position_priors,
        "absence_logits": absence_logits,
        "presence_probs": presence_probs,
        "confidence_scores": confidence_scores,
        "segmentation_logits": segmentation_logits,
        "segmentation_probs": segmentation_probs,
        "presence_calls": presence_calls,
        "segmentation_masks": presence_masks(segmentation_probs, presence_calls),
    }


def _spatial_size_or_alias(spatial_size: Sequence[int] | None, spatial_dims: Sequence[int] | None) -> tuple[int, ...]:
    """The network's ``(D, H, W)`` from ``spatial_size`` or its seed alias ``spatial_dims``: whichever is given,
    both when they agree, ``(64, 64, 64)`` when neither is.

    Raises:
        ValueError: both are given with different values.
    """
    size = None if spatial_size is None else tuple(int(s) for s in spatial_size)
    alias = None if spatial_dims is None else tuple(int(s) for s in spatial_dims)
    if size is not None and alias is not None and size != alias:
        raise ValueError(
            "expected spatial_size or its alias spatial_dims (the seed's name of the same (D, H, W) size), or both "
            f"with the same value, got spatial_size={size} and spatial_dims={alias}"
        )
    return size if size is not None else alias if alias is not None else (64, 64, 64)


class SpatialAttentionMedicalSegmenter(nn.Module):
    """Multi-structure 3D segmentation that also decides, per structure, whether it is present at all.

    The network runs four stages in order: :class:`Encoder` (U-Net features at full resolution),
    :class:`AnatomicalAttentionModule` (attention under a learned position prior, alignment scores),
    :class:`AbsenceDetectionHead` (presence probability and confidence per structure) and
    :class:`SegmentationHead` (attention-modulated logits). Masks of structures judged absent are emptied.

    With the defaults and ``memory_efficient_head=False`` it reproduces the seed 002 torchinfo table exactly
    (8,019,230 parameters). ``memory_efficient_head=True`` (default) gives the same logits without the
    ``S``-fold copy of the refined features (only the ``segmentation_layer`` row of the table changes).
    A faster eval-only graph with the same outputs is built from a trained model by
    :func:`~monai_sadaan.networks.fast_inference.build_fast_inference`.

    Example::

        net = SpatialAttentionMedicalSegmenter(num_structures=5, spatial_size=(64, 64, 64))
        out = net(torch.randn(2, 1, 64, 64, 64))
        out["segmentation_masks"].shape  # (2, 5, 64, 64, 64)
        out["presence_probs"].shape      # (2, 5)

    Args:
        in_channels: image channels.
        num_structures: number of anatomical structures ``S``.
        spatial_size: ``(D, H, W)`` the network accepts, each divisible by 16 (four 2x poolings); the learned
            position prior covers exactly this field of view, so inputs must have this size. ``None`` (default):
            ``spatial_dims`` if given, else ``(64, 64, 64)``.
        memory_efficient_head: copy-free segmentation head (same logits as the seed's literal layout).
        features: encoder widths of the five levels.
        feature_channels: channels of the shared full-resolution feature map; the attention and refinement
            hidden layers use ``feature_channels // 2`` (64 in the seed model).
        dropout: dropout probability in the presence classifiers.
        use_checkpoint: training memory saver: whenever gradients are enabled the four stages run in small
            segments under ``torch.utils.checkpoint``, recomputed in backward instead of keeping their activations,
            and the 128-channel feature map is never computed
            (:func:`~monai_sadaan.networks.checkpointing.checkpointed_stages`: about a quarter of the plain
            training step's peak memory at the seed size). Outputs, gradients and BatchNorm statistics are those of
            the plain graph up to float rounding; BatchNorm statistics are updated once per step.
        presence_fusion: add a :class:`PresenceEvidenceFusion` that makes the final presence call from the head's
            logit together with evidence read off the segmentation, attention and image (not in the seed; off by
            default). Unfitted, it is the identity on the head's call; fit it on a frozen network with
            :func:`monai_sadaan.engines.fit_presence_fusion`.
        presence_fusion_hidden_channels: width of the fusion's hidden tanh layer (0, the default: a logistic
            regression). Only with ``presence_fusion``.
        spatial_dims: the seed's name of ``spatial_size`` (seed 002 builds the network with
            ``spatial_dims=(64, 64, 64)``), accepted as an alias. It is a size here, not MONAI's number of spatial
            dimensions.

    Raises:
        ValueError: if ``spatial_size`` and ``spatial_dims`` are both given and differ, if the size is not three
            sizes divisible by 16, or a size/width is not positive; a
            switch (``memory_efficient_head``, ``use_checkpoint``, ``presence_fusion``) that is not true or false
            (the string ``"false"`` is false, ``"flase"`` is refused).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_structures: int = 5,
        spatial_size: Sequence[int] | None = None,
        memory_efficient_head: bool = True,
        features: Sequence[int] = (16, 32, 64, 128, 256),
        feature_channels: int = 128,
        dropout: float = 0.1,
        use_checkpoint: bool = False,
        presence_fusion: bool = False,
        presence_fusion_hidden_channels: int = 0,
        spatial_dims: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        # switches arrive from bundle configs and command lines, where "false" is a (true) string: parse strictly
        memory_efficient_head = parse_bool(memory_efficient_head, "memory_efficient_head")
        presence_fusion = parse_bool(presence_fusion, "presence_fusion")
        spatial_size = _spatial_size_or_alias(spatial_size, spatial_dims)
        if len(spatial_size) != 3 or any(s < 16 or s % 16 for s in spatial_size):
            raise ValueError(
                f"expected spatial_size of three sizes (D, H, W), each a positive multiple of 16, got {spatial_size}"
            )
        check_positive_sizes(in_channels=in_channels, num_structures=num_structures)
        if feature_channels < 2:
            raise ValueError(f"expected feature_channels >= 2, got {feature_channels}")
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.spatial_size = spatial_size
        self.use_checkpoint = parse_bool(use_checkpoint, "use_checkpoint")
        hidden_channels = feature_channels // 2

        self.encoder = Encoder(in_channels=in_channels, features=features, feature_channels=feature_channels)
        self.attention_module = AnatomicalAttentionModule(
            in_channels=feature_channels,
            num_structures=num_structures,
            spatial_size=spatial_size,
            hidden_channels=hidden_channels,
        )
        self.absence_detector = AbsenceDetectionHead(
            num_structures=num_structures, feature_dim=feature_channels, dropout=dropout
        )
        self.segmentation_head = SegmentationHead(
            in_channels=feature_channels,
            num_structures=num_structures,
            hidden_channels=hidden_channels,
            memory_efficient=memory_efficient_head,
        )
        self.presence_fusion: PresenceEvidenceFusion | None = None
        if presence_fusion:  # the fusion's module is imported only when a config switches it on
            from monai_sadaan.networks.nets.presence_fusion import PresenceEvidenceFusion

            self.presence_fusion = PresenceEvidenceFusion(num_structures, presence_fusion_hidden_channels)

    def expected_input_shape(self) -> str:
        """The accepted input shape as text, e.g. ``"(B, 1, 64, 64, 64)"``."""
        return f"(B, {self.in_channels}, {', '.join(str(s) for s in self.spatial_size)})"

    def check_input(self, x: torch.Tensor, presence_threshold: float = 0.5) -> None:
        """Raise ``ValueError`` unless ``x`` is a finite ``[B, in_channels, *spatial_size]`` tensor (see
        :func:`check_sadaan_input`)."""
        check_sadaan_input(x, self.in_channels, self.spatial_size, self.training, presence_threshold)

    def forward(self, x: torch.Tensor, presence_threshold: float = 0.5) -> dict[str, torch.Tensor]:
        """
        Args:
            x: image batch ``[B, in_channels, D, H, W]`` with ``(D, H, W) == spatial_size``, finite values.
            presence_threshold: a structure is called present when its presence probability is ``>=`` this.

        Returns:
            a dict with, in this order (``S = num_structures``):

            - ``attention_maps`` ``[B, S, D, H, W]`` in [0, 1]
            - ``feature_responses`` ``[B, S, D, H, W]`` logits
            - ``alignment_scores`` ``[B, S]`` in [0, 1]
            - ``position_priors`` ``[B, S, D, H, W]`` (expanded view of the learned prior)
            - ``absence_logits`` ``[B, S, 2]`` (index 1 = present; the fused logits when ``presence_fusion``)
            - ``presence_probs`` ``[B, S]``
            - ``confidence_scores`` ``[B, S]``
            - ``segmentation_logits`` ``[B, S, D, H, W]``
            - ``segmentation_probs`` ``[B, S, D, H, W]``
            - ``presence_calls`` ``[B, S]`` float 0/1: ``presence_probs >= presence_threshold``
            - ``segmentation_masks`` ``[B, S, D, H, W]`` float 0/1: ``segmentation_probs > 0.5``, all zero for
              structures called absent.

        Raises:
            ValueError: for an input of the wrong shape, dtype or with NaN/Inf values, or a threshold outside [0, 1].
        """
        if not torch.jit.is_tracing():
            self.check_input(x, presence_threshold)
        if self.use_checkpoint and torch.is_grad_enabled():  # the same stages, recomputed in backward
            from monai_sadaan.networks.checkpointing import checkpointed_stages  # training only: not loaded at inference

            stages = checkpointed_stages(self, x)
            return sadaan_outputs(x, *stages, self.presence_fusion, presence_threshold)
        features = self.encoder(x)
        attention_maps, feature_responses, alignment_scores, position_priors = self.attention_module(features)
        presence_probs, absence_logits, confidence_scores = self.absence_detector(features, alignment_scores)
        segmentation_logits, segmentation_probs = self.segmentation_head(features, attention_maps)
        return sadaan_outputs(
            x, attention_maps, feature_responses, alignment_scores, position_priors, absence_logits, presence_probs,
            confidence_scores, segmentation_logits, segmentation_probs, self.presence_fusion, presence_threshold,
        )  # fmt: skip


class SADAAnInferenceWrapper(StateOfWrappedModel):
    """Tensor-only view of :class:`SpatialAttentionMedicalSegmenter` for TorchScript, ONNX-style export and
    MONAI's ``verify_net_in_out`` / ``ckpt_export``.

    ``forward(x)`` returns a tuple ``(segmentation_probs, presence_probs, confidence_scores)``:
    ``[B, S, D, H, W]``, ``[B, S]`` and ``[B, S]``. Masks and presence calls are a threshold away
    (``presence_probs >= 0.5``; ``segmentation_probs > 0.5`` zeroed where absent) and are left to the caller so
    the exported graph carries no threshold. Input checks run in eager mode; a traced graph skips them.

    Export by tracing: ``torch.jit.trace(wrapper, example)``, or MONAI's
    ``convert_to_torchscript(wrapper, path, inputs=[example], verify=True, use_trace=True)`` /
    ``ckpt_export(..., use_trace=True, input_shape=[1, in_channels, D, H, W])``. ``torch.jit.script`` is not
    supported (the checkpointed path, :mod:`monai_sadaan.networks.checkpointing`, is plain Python); the traced
    graph is fixed to the model's ``spatial_size`` anyway.

    The wrapper's state dict is the wrapped model's (no ``model.`` prefix), so a checkpoint of the bare network,
    as the bundle writes it, loads into either; that is what MONAI's ``ckpt_export --net_id export_network_def``
    needs.

    Args:
        model: the network to wrap (its mode, eval or train, is left as it is).
        outputs: the output keys returned, in order. One key returns a single tensor, which is what MONAI's
            ``verify_net_in_out`` checks (``outputs=("segmentation_probs",)``).
    """

    def __init__(
        self,
        model: SpatialAttentionMedicalSegmenter,
        outputs: Sequence[str] = ("segmentation_probs", "presence_probs", "confidence_scores"),
    ) -> None:
        super().__init__()
        unknown = [k for k in outputs if k not in SADAAN_OUTPUT_KEYS]
        if not outputs or unknown:
            raise ValueError(f"expected output keys from {list(SADAAN_OUTPUT_KEYS)}, got {list(outputs)}")
        self.model = model
        self.outputs = tuple(outputs)

    def forward(self, x: torch.Tensor) -> Any:
        """
        Args:
            x: ``[B, in_channels, D, H, W]`` image batch.

        Returns:
            by default ``(segmentation_probs [B, S, D, H, W], presence_probs [B, S], confidence_scores [B, S])``;
            the tensors named by ``outputs`` (a single tensor when one key is given).
        """
        out = self.model(x)
        if len(self.outputs) == 1:
            return out[self.outputs[0]]
        return tuple(out[k] for k in self.outputs)
