"""Presence calls from all the evidence the network already computes, not only the pooled features.

The presence classifiers of :class:`AbsenceDetectionHead` see globally average-pooled features and one alignment
score. A sliver of an organ at the edge of a cut field of view barely moves a global average, while the
segmentation head does paint it; and an organ the position prior expects but the image lacks can be painted too.
:class:`PresenceEvidenceFusion` weighs, per structure, the head's logit against evidence read off the network's
own maps (how much the segmentation paints, how sure it is, how much of it lies on the volume's faces, the image
intensity under it, the attention mass). It is a logistic regression on those numbers: fitted in closed form on a
frozen network (:func:`monai_sadaan.engines.fit_presence_fusion`), not trained by back-propagation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

__all__ = ["PRESENCE_EVIDENCE_NAMES", "PresenceEvidenceFusion", "presence_evidence"]

#: the evidence per structure, in the order of the last axis of :func:`presence_evidence`
PRESENCE_EVIDENCE_NAMES: tuple[str, ...] = (
    "head_logit",
    "alignment_score",
    "log_soft_volume",
    "log_mask_voxels",
    "max_segmentation_prob",
    "mean_intensity_under_segmentation",
    "intensity_std_under_segmentation",
    "edge_fraction",
    "log_attention_mass",
    "max_attention",
    "max_feature_response",
    "confidence_score",
)

_LOGIT_CLIP = 20.0
_EDGE_INDEX = PRESENCE_EVIDENCE_NAMES.index("edge_fraction")


def presence_evidence(
    image: torch.Tensor,
    absence_logits: torch.Tensor,
    alignment_scores: torch.Tensor,
    confidence_scores: torch.Tensor,
    segmentation_probs: torch.Tensor,
    attention_maps: torch.Tensor,
    feature_responses: torch.Tensor,
    edge_width: int = 2,
) -> torch.Tensor:
    """Per-structure evidence for the presence call (see :data:`PRESENCE_EVIDENCE_NAMES`), with ``P`` the
    segmentation probabilities of a structure and ``x`` the image:

    * ``head_logit``: present minus absent logit of the head, clipped to [-20, 20];
    * ``alignment_score``, ``confidence_score``: as the network gives them;
    * ``log_soft_volume``: ``log(1 + sum P)``; ``log_mask_voxels``: ``log(1 + #(P > 0.5))``;
    * ``max_segmentation_prob``: ``max P``;
    * ``mean_intensity_under_segmentation`` / ``intensity_std_under_segmentation``: mean and standard deviation
      of ``x`` weighted by ``P``; 0 when no voxel has ``P > 0.5``;
    * ``edge_fraction``: share of ``sum P`` within ``edge_width`` voxels of a face of the volume;
    * ``log_attention_mass``: ``log(1 + sum attention)``; ``max_attention``;
    * ``max_feature_response``: largest feature-response logit, clipped to [-20, 20].

    Args:
        image: ``[B, 1, D, H, W]`` the network's input (its first channel is used).
        absence_logits: ``[B, S, 2]`` (index 1 = present).
        alignment_scores, confidence_scores: ``[B, S]``.
        segmentation_probs, attention_maps, feature_responses: ``[B, S, D, H, W]``.
        edge_width: thickness (voxels) of the shell counted by ``edge_fraction``.

    Returns:
        ``[B, S, len(PRESENCE_EVIDENCE_NAMES)]``, float32, without gradient.

    Raises:
        ValueError: for an ``edge_width`` below 1 or one that leaves no interior.
    """
    w = int(edge_width)
    if w < 1 or 2 * w >= min(segmentation_probs.shape[2:]):
        raise ValueError(
            f"expected edge_width >= 1 leaving an interior in {tuple(segmentation_probs.shape[2:])}, got {edge_width}"
        )
    with torch.no_grad():
        eps = 1e-6
        b, s = alignment_scores.shape
        probs = segmentation_probs.float().flatten(2)  # [B, S, N]
        x = image[:, :1].float().flatten(2)  # [B, 1, N]
        mass = probs.sum(-1)
        voxels = (probs > 0.5).sum(-1).float()
        painted = (voxels > 0).float()
        mean = (probs * x).sum(-1) / (mass + eps)
        std = ((probs * (x - mean[..., None]) ** 2).sum(-1) / (mass + eps)).clamp_min(0).sqrt()
        shell = torch.ones(segmentation_probs.shape[2:], dtype=torch.bool, device=probs.device)
        shell[w:-w, w:-w, w:-w] = False
        edge = (probs * shell.flatten().to(probs.dtype)).sum(-1) / (mass + eps)
        attention = attention_maps.float().flatten(2)
        evidence = [
            (absence_logits[..., 1] - absence_logits[..., 0]).float().clamp(-_LOGIT_CLIP, _LOGIT_CLIP),
            alignment_scores.float(),
            torch.log1p(mass),
            torch.log1p(voxels),
            probs.amax(-1),
            mean * painted,
            std * painted,
            edge,
            torch.log1p(attention.sum(-1)),
            attention.amax(-1),
            feature_responses.float().flatten(2).amax(-1).clamp(-_LOGIT_CLIP, _LOGIT_CLIP),
            confidence_scores.float(),
        ]
        return torch.stack(evidence, dim=-1).reshape(b, s, len(PRESENCE_EVIDENCE_NAMES))


class PresenceEvidenceFusion(nn.Module):
    """Per-structure logistic regression on standardised presence evidence.

    ``r[b, s] = sum_k weight[s, k] * (e[b, s, k] - evidence_mean[k]) / evidence_std[k] + bias[s]``. The call is
    ``z = r`` where the structure's segmentation lies on the volume's faces (``edge_fraction >= edge_gate``) and the
    head's own logit elsewhere: the head's weak spot is an organ cut by the field of view, while inside the volume
    its call is the better one (painted but removed organs). The returned absence logits are ``[-z / 2, z / 2]``,
    so that ``softmax(...)[..., 1] = sigmoid(z)`` and the logit difference is ``z``.

    It starts as the identity on the head's call: weight 1 on ``head_logit``, 0 elsewhere, no shift or scaling,
    so a network with an unfitted fusion calls exactly what its head calls. A checkpoint without fusion entries
    (made before the fusion existed) loads as that identity. The weights do not require gradients: they are set
    by :func:`monai_sadaan.engines.fit_presence_fusion` (or :meth:`set_fit`).

    Args:
        num_structures: ``S``.

    Raises:
        ValueError: for ``num_structures < 1``.
    """

    #: a checkpoint without this module's entries loads it as the identity (see ``load_state_dict_checked``)
    optional_in_checkpoint: bool = True

    def __init__(self, num_structures: int) -> None:
        super().__init__()
        if num_structures < 1:
            raise ValueError(f"expected num_structures >= 1, got {num_structures}")
        k = len(PRESENCE_EVIDENCE_NAMES)
        self.num_structures = num_structures
        self.weight = nn.Parameter(torch.zeros(num_structures, k), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_structures), requires_grad=False)
        self.register_buffer("evidence_mean", torch.zeros(k))
        self.register_buffer("evidence_std", torch.ones(k))
        self.register_buffer("edge_gate", torch.zeros(()))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Back to the identity on the head's logit."""
        with torch.no_grad():
            self.weight.zero_()
            self.weight[:, 0] = 1.0
            self.bias.zero_()
            self.evidence_mean.zero_()
            self.evidence_std.fill_(1.0)
            self.edge_gate.zero_()

    def set_fit(
        self, weight: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, edge_gate: float = 0.0
    ) -> None:
        """Install a fitted regression.

        Args:
            weight: ``[S, K]`` on standardised evidence; bias: ``[S]``; mean, std: ``[K]`` (std > 0).
            edge_gate: the regression decides where ``edge_fraction >= edge_gate`` (0: everywhere), the head elsewhere.

        Raises:
            ValueError: for shapes other than these, a non-positive / non-finite std or an edge gate outside [0, 1].
        """
        k = len(PRESENCE_EVIDENCE_NAMES)
        s = self.num_structures
        shapes = (tuple(weight.shape), tuple(bias.shape), tuple(mean.shape), tuple(std.shape))
        if shapes != ((s, k), (s,), (k,), (k,)):
            raise ValueError(f"expected weight, bias, mean, std of shapes {((s, k), (s,), (k,), (k,))}, got {shapes}")
        if not bool(torch.isfinite(std).all()) or bool((std <= 0).any()):
            raise ValueError(f"expected a positive, finite evidence std, got {std.tolist()}")
        if not 0.0 <= float(edge_gate) <= 1.0:
            raise ValueError(f"expected edge_gate in [0, 1], got {edge_gate}")
        with torch.no_grad():
            self.edge_gate.fill_(float(edge_gate))
            self.weight.copy_(weight)
            self.bias.copy_(bias)
            self.evidence_mean.copy_(mean)
            self.evidence_std.copy_(std)

    def fused_logit(self, evidence: torch.Tensor) -> torch.Tensor:
        """``[B, S, K]`` evidence -> ``[B, S]`` present-minus-absent logit ``z`` (gated, see the class)."""
        return torch.where(self._gate(evidence), self._regression(evidence), evidence[..., 0])

    def _regression(self, evidence: torch.Tensor) -> torch.Tensor:
        standardised = (evidence - self.evidence_mean) / self.evidence_std
        return (standardised * self.weight).sum(-1) + self.bias

    def _gate(self, evidence: torch.Tensor) -> torch.Tensor:
        return evidence[..., _EDGE_INDEX] >= self.edge_gate

    def forward(self, evidence: torch.Tensor, head_logits: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            evidence: ``[B, S, K]`` from :func:`presence_evidence` (no gradient).
            head_logits: optional ``[B, S, 2]`` head logits; when given, the ``head_logit`` term is recomputed
                from them so that gradients reach the head (its value is the same).

        Returns:
            ``[B, S, 2]`` absence logits (index 1 = present).
        """
        z = self.fused_logit(evidence)
        if head_logits is not None and torch.is_grad_enabled() and head_logits.requires_grad:
            live = (head_logits[..., 1] - head_logits[..., 0]).clamp(-_LOGIT_CLIP, _LOGIT_CLIP)
            slope = torch.where(self._gate(evidence), self.weight[:, 0] / self.evidence_std[0], torch.ones_like(z))
            z = z + slope * (live - live.detach())
        return torch.stack([-0.5 * z, 0.5 * z], dim=-1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # a checkpoint made before the fusion existed: load the identity
        names = ("weight", "bias", "evidence_mean", "evidence_std", "edge_gate")
        if not any(prefix + n in state_dict for n in names):
            identity = PresenceEvidenceFusion(self.num_structures)
            for n in names:
                state_dict[prefix + n] = getattr(identity, n).detach().to(getattr(self, n).device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
