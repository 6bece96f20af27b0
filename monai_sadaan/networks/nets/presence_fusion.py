"""Presence calls from all the evidence the network already computes, not only the pooled features.

The presence classifiers of :class:`AbsenceDetectionHead` see globally average-pooled features and one alignment
score. A sliver of an organ at the edge of a cut field of view barely moves a global average, while the
segmentation head does paint it; and an organ the position prior expects but the image lacks can be painted too.
:class:`PresenceEvidenceFusion` weighs, per structure, the head's logit against evidence read off the network's
own maps: how much the segmentation paints and how sure it is, how much of it lies on the volume's faces and how
deep, the image under it and around it, whether another structure claims the same voxels, where it lies, and how
much the other structures paint. It is a logistic regression on those numbers, optionally with one hidden tanh
layer, fitted on a frozen network (:func:`monai_sadaan.engines.fit_presence_fusion`), not trained by
back-propagation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["PRESENCE_EVIDENCE_NAMES", "PresenceEvidenceFusion", "presence_evidence", "presence_rule"]

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
    # where and on what the segmentation lies
    "overlap_with_other_structures",
    "position_prior_under_segmentation",
    "attention_under_segmentation",
    "mean_depth_from_faces",
    "boundary_contrast",
    "boundary_intensity_std",
    "centroid_axis_0",
    "centroid_axis_1",
    "centroid_axis_2",
    "feature_response_under_segmentation",
)

#: the evidence values of the older twelve-value layout (the first twelve names)
LEGACY_EVIDENCE_COUNT: int = 12

_LOGIT_CLIP = 20.0
_EDGE_INDEX = PRESENCE_EVIDENCE_NAMES.index("edge_fraction")
_SOFT_VOLUME_INDEX = PRESENCE_EVIDENCE_NAMES.index("log_soft_volume")
_BOUNDARY_WIDTH = 2  # voxels: the shell around the painted voxels that boundary_* read


def presence_evidence(
    image: torch.Tensor,
    absence_logits: torch.Tensor,
    alignment_scores: torch.Tensor,
    confidence_scores: torch.Tensor,
    segmentation_probs: torch.Tensor,
    attention_maps: torch.Tensor,
    feature_responses: torch.Tensor,
    position_priors: torch.Tensor,
    edge_width: int = 2,
) -> torch.Tensor:
    """Per-structure evidence for the presence call (see :data:`PRESENCE_EVIDENCE_NAMES`), with ``P`` the
    segmentation probabilities of a structure, ``M = P > 0.5`` its painted voxels, ``x`` the image and
    ``<v> = sum(P * v) / sum(P)`` a mean weighted by ``P`` (0 where nothing is painted at all):

    * ``head_logit``: present minus absent logit of the head, clipped to [-20, 20];
    * ``alignment_score``, ``confidence_score``: as the network gives them;
    * ``log_soft_volume``: ``log(1 + sum P)``; ``log_mask_voxels``: ``log(1 + #M)``;
    * ``max_segmentation_prob``: ``max P``;
    * ``mean_intensity_under_segmentation`` / ``intensity_std_under_segmentation``: mean and standard deviation
      of ``x`` weighted by ``P``; 0 when ``M`` is empty;
    * ``edge_fraction``: share of ``sum P`` within ``edge_width`` voxels of a face of the volume;
    * ``log_attention_mass``: ``log(1 + sum attention)``; ``max_attention``;
    * ``max_feature_response``: largest feature-response logit, clipped to [-20, 20];
    * ``overlap_with_other_structures``: ``<max of the other structures' P>`` (0 for a single structure);
    * ``position_prior_under_segmentation``, ``attention_under_segmentation``,
      ``feature_response_under_segmentation``: ``<prior>``, ``<attention>``, ``<sigmoid(feature response)>``;
    * ``mean_depth_from_faces``: ``<d>``, ``d`` the distance in voxels from a voxel to the nearest face (0 on it);
    * ``boundary_contrast``: mean ``x`` over ``M`` minus mean ``x`` over the shell ``R`` of voxels within 2
      (Chebyshev distance) of ``M`` but outside it; ``boundary_intensity_std``: standard deviation of ``x`` over
      ``R``; both 0 when ``M`` is empty;
    * ``centroid_axis_0/1/2``: ``<c>`` with ``c`` the voxel index along that axis mapped to [-1, 1].

    Args:
        image: ``[B, 1, D, H, W]`` the network's input (its first channel is used).
        absence_logits: ``[B, S, 2]`` (index 1 = present).
        alignment_scores, confidence_scores: ``[B, S]``.
        segmentation_probs, attention_maps, feature_responses, position_priors: ``[B, S, D, H, W]``.
        edge_width: thickness (voxels) of the shell counted by ``edge_fraction``.

    Returns:
        ``[B, S, len(PRESENCE_EVIDENCE_NAMES)]``, float32, without gradient.

    Raises:
        ValueError: for an ``edge_width`` below 1 or one that leaves no interior.
    """
    w = int(edge_width)
    spatial = tuple(segmentation_probs.shape[2:])
    if w < 1 or 2 * w >= min(spatial):
        raise ValueError(f"expected edge_width >= 1 leaving an interior in {spatial}, got {edge_width}")
    with torch.no_grad():
        eps = 1e-6
        b, s = alignment_scores.shape
        probs5 = segmentation_probs.float()
        probs = probs5.flatten(2)  # [B, S, N]
        x = image[:, :1].float().flatten(2)  # [B, 1, N]
        mass = probs.sum(-1)
        mask5 = (probs5 > 0.5).to(probs.dtype)  # the painted voxels M
        mask = mask5.flatten(2)
        voxels = mask.sum(-1)
        painted = (voxels > 0).float()

        def under(values: torch.Tensor) -> torch.Tensor:  # <values>, values broadcastable to [B, S, N]
            return (probs * values).sum(-1) / (mass + eps)

        mean = under(x)
        std = (under((x - mean[..., None]) ** 2)).clamp_min(0).sqrt()
        device = probs.device
        axes = [torch.arange(n, device=device, dtype=torch.float32) for n in spatial]
        grids = torch.meshgrid(*axes, indexing="ij")
        depth = torch.stack([torch.minimum(g, n - 1 - g) for g, n in zip(grids, spatial)]).amin(0).flatten()
        shell = (depth < w).to(probs.dtype)
        attention = attention_maps.float().flatten(2)
        responses = feature_responses.float().flatten(2)
        if s > 1:
            # the highest probability among the other structures: the top one, or the runner-up where it is j itself
            top, top_index = probs.topk(2, dim=1)  # [B, 2, N]
            own = torch.arange(s, device=device)[None, :, None] == top_index[:, :1]
            overlap = under(torch.where(own, top[:, 1:], top[:, :1]))
        else:
            overlap = torch.zeros_like(mass)
        # the shell of voxels within _BOUNDARY_WIDTH of the painted ones, outside them
        k = 2 * _BOUNDARY_WIDTH + 1
        grown = F.max_pool3d(mask5.reshape(b * s, 1, *spatial), k, 1, _BOUNDARY_WIDTH).reshape(b, s, -1)
        ring = (grown - mask).clamp(0, 1)
        ring_n = ring.sum(-1)
        ring_mean = (ring * x).sum(-1) / (ring_n + eps)
        ring_std = ((ring * (x - ring_mean[..., None]) ** 2).sum(-1) / (ring_n + eps)).clamp_min(0).sqrt()
        mask_mean = (mask * x).sum(-1) / (voxels + eps)
        centroids = [under((g.flatten() / max(n - 1, 1)) * 2 - 1) for g, n in zip(grids, spatial)]
        evidence = [
            (absence_logits[..., 1] - absence_logits[..., 0]).float().clamp(-_LOGIT_CLIP, _LOGIT_CLIP),
            alignment_scores.float(),
            torch.log1p(mass),
            torch.log1p(voxels),
            probs.amax(-1),
            mean * painted,
            std * painted,
            under(shell),
            torch.log1p(attention.sum(-1)),
            attention.amax(-1),
            responses.amax(-1).clamp(-_LOGIT_CLIP, _LOGIT_CLIP),
            confidence_scores.float(),
            overlap,
            under(position_priors.float().flatten(2)),
            under(attention),
            under(depth),
            (mask_mean - ring_mean) * painted,
            ring_std * painted,
            *centroids,
            under(torch.sigmoid(responses)),
        ]
        return torch.stack(evidence, dim=-1).reshape(b, s, len(PRESENCE_EVIDENCE_NAMES))


def presence_rule(
    standardised: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    hidden: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The rule of :class:`PresenceEvidenceFusion` before its gate (also what
    :func:`monai_sadaan.engines.fit_presence_rule` fits).

    Args:
        standardised: ``[B, S, K]`` evidence, standardised.
        weight: ``[S, K]``; bias: ``[S]``.
        hidden: ``(hidden_weight [H, K + 2S], hidden_bias [H], output_weight [H])`` or ``None``; the hidden layer
            reads ``[u, onehot(s), v]`` with ``v`` the standardised ``log_soft_volume`` of every structure.

    Returns:
        ``[B, S]`` present-minus-absent logits.
    """
    r = (standardised * weight).sum(-1) + bias
    if hidden is not None:
        b, s = standardised.shape[:2]
        onehot = torch.eye(s, dtype=standardised.dtype, device=standardised.device).expand(b, s, s)
        volumes = standardised[..., _SOFT_VOLUME_INDEX][:, None, :].expand(b, s, s)
        inputs = torch.cat([standardised, onehot, volumes], dim=-1)
        r = r + torch.tanh(F.linear(inputs, hidden[0], hidden[1])) @ hidden[2]
    return r


class PresenceEvidenceFusion(nn.Module):
    """Per-structure presence rule on standardised evidence: a logistic regression, optionally with one hidden layer.

    With ``u = (e[b, s] - evidence_mean) / evidence_std`` the standardised evidence of structure ``s``,

    ``r[b, s] = sum_k weight[s, k] * u[k] + bias[s] + output_weight . tanh(hidden_weight @ [u, onehot(s), v[b]] +
    hidden_bias)``

    where ``v[b]`` is the standardised ``log_soft_volume`` of every structure of the case (how much each of them
    paints) and the hidden term exists only for ``hidden_channels > 0``. The call is ``z = r`` where the structure's
    segmentation lies on the volume's faces (``edge_fraction >= edge_gate``) and the head's own logit elsewhere: the
    head's weak spot is an organ cut by the field of view, while inside the volume its call is the better one
    (painted but removed organs). The returned absence logits are ``[-z / 2, z / 2]``, so that
    ``softmax(...)[..., 1] = sigmoid(z)`` and the logit difference is ``z``.

    It starts as the identity on the head's call: weight 1 on ``head_logit``, 0 elsewhere, output weights 0, no
    shift or scaling, so a network with an unfitted fusion calls exactly what its head calls. A checkpoint without
    fusion entries (made before the fusion existed) loads as that identity; one with the older layout (twelve
    evidence values, no hidden layer) loads as the same rule, with weight 0 on the newer evidence. The weights do
    not require gradients: they are set by :func:`monai_sadaan.engines.fit_presence_fusion` (or :meth:`set_fit`).

    Args:
        num_structures: ``S``.
        hidden_channels: ``H``, width of the hidden tanh layer; 0 (default) for the plain regression.

    Raises:
        ValueError: for ``num_structures < 1`` or ``hidden_channels < 0``.
    """

    #: a checkpoint without this module's entries loads it as the identity (see ``load_state_dict_checked``)
    optional_in_checkpoint: bool = True

    def __init__(self, num_structures: int, hidden_channels: int = 0) -> None:
        super().__init__()
        if num_structures < 1:
            raise ValueError(f"expected num_structures >= 1, got {num_structures}")
        if hidden_channels < 0:
            raise ValueError(f"expected hidden_channels >= 0, got {hidden_channels}")
        k = len(PRESENCE_EVIDENCE_NAMES)
        self.num_structures = num_structures
        self.hidden_channels = int(hidden_channels)
        self.weight = nn.Parameter(torch.zeros(num_structures, k), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(num_structures), requires_grad=False)
        if self.hidden_channels:
            h = self.hidden_channels
            self.hidden_weight = nn.Parameter(torch.zeros(h, self.hidden_inputs), requires_grad=False)
            self.hidden_bias = nn.Parameter(torch.zeros(h), requires_grad=False)
            self.output_weight = nn.Parameter(torch.zeros(h), requires_grad=False)
        self.register_buffer("evidence_mean", torch.zeros(k))
        self.register_buffer("evidence_std", torch.ones(k))
        self.register_buffer("edge_gate", torch.zeros(()))
        self.reset_parameters()

    @property
    def hidden_inputs(self) -> int:
        """Inputs of the hidden layer: the ``K`` standardised evidence values, the structure's one-hot code and
        the ``S`` standardised soft volumes of the case."""
        return len(PRESENCE_EVIDENCE_NAMES) + 2 * self.num_structures

    def reset_parameters(self) -> None:
        """Back to the identity on the head's logit."""
        with torch.no_grad():
            self.weight.zero_()
            self.weight[:, 0] = 1.0
            self.bias.zero_()
            if self.hidden_channels:
                self.hidden_weight.zero_()
                self.hidden_bias.zero_()
                self.output_weight.zero_()
            self.evidence_mean.zero_()
            self.evidence_std.fill_(1.0)
            self.edge_gate.zero_()

    def set_fit(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        edge_gate: float = 0.0,
        hidden: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Install a fitted rule.

        Args:
            weight: ``[S, K]`` on standardised evidence; bias: ``[S]``; mean, std: ``[K]`` (std > 0).
            edge_gate: the rule decides where ``edge_fraction >= edge_gate`` (0: everywhere), the head elsewhere.
            hidden: ``(hidden_weight [H, K + 2S], hidden_bias [H], output_weight [H])`` for a fusion with
                ``hidden_channels = H > 0`` (required there; ``None`` for the plain regression).

        Raises:
            ValueError: for shapes other than these, a non-positive / non-finite std or an edge gate outside [0, 1].
        """
        k = len(PRESENCE_EVIDENCE_NAMES)
        s = self.num_structures
        shapes = (tuple(weight.shape), tuple(bias.shape), tuple(mean.shape), tuple(std.shape))
        if shapes != ((s, k), (s,), (k,), (k,)):
            raise ValueError(f"expected weight, bias, mean, std of shapes {((s, k), (s,), (k,), (k,))}, got {shapes}")
        h = self.hidden_channels
        if h:
            want = ((h, self.hidden_inputs), (h,), (h,))
            got = tuple(tuple(t.shape) for t in hidden) if hidden is not None else None
            if got != want:
                raise ValueError(
                    f"expected hidden (hidden_weight, hidden_bias, output_weight) of shapes {want}, got {got}"
                )
        elif hidden is not None:
            raise ValueError("expected hidden=None for a fusion built with hidden_channels=0, got hidden-layer weights")
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
            if h:  # hidden checked above
                self.hidden_weight.copy_(hidden[0])
                self.hidden_bias.copy_(hidden[1])
                self.output_weight.copy_(hidden[2])

    def fused_logit(self, evidence: torch.Tensor) -> torch.Tensor:
        """``[B, S, K]`` evidence -> ``[B, S]`` present-minus-absent logit ``z`` (gated, see the class)."""
        return torch.where(self._gate(evidence), self._regression(evidence), evidence[..., 0])

    def _regression(self, evidence: torch.Tensor) -> torch.Tensor:
        standardised = (evidence - self.evidence_mean) / self.evidence_std
        hidden = (self.hidden_weight, self.hidden_bias, self.output_weight) if self.hidden_channels else None
        return presence_rule(standardised, self.weight, self.bias, hidden)

    def _gate(self, evidence: torch.Tensor) -> torch.Tensor:
        return evidence[..., _EDGE_INDEX] >= self.edge_gate

    def forward(self, evidence: torch.Tensor, head_logits: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            evidence: ``[B, S, K]`` from :func:`presence_evidence` (no gradient).
            head_logits: optional ``[B, S, 2]`` head logits; when given, the ``head_logit`` evidence is recomputed
                from them so that gradients reach the head (its value is the same).

        Returns:
            ``[B, S, 2]`` absence logits (index 1 = present).
        """
        if head_logits is not None and torch.is_grad_enabled() and head_logits.requires_grad:
            live = (head_logits[..., 1] - head_logits[..., 0]).clamp(-_LOGIT_CLIP, _LOGIT_CLIP)
            evidence = torch.cat([live[..., None], evidence[..., 1:]], dim=-1)
        z = self.fused_logit(evidence)
        return torch.stack([-0.5 * z, 0.5 * z], dim=-1)

    def upgrade_state_dict(self, state_dict: dict[str, Any], prefix: str) -> None:
        """Bring, in place, this module's entries of an older checkpoint to the current layout: none at all (made
        before the fusion existed) -> the identity; twelve evidence values (the older layout) -> weight 0, mean 0
        and std 1 on the newer evidence; no hidden layer where this fusion has one -> a hidden layer with output
        weight 0. Each gives the same calls as the checkpoint's own rule. Entries of another shape are left for
        the loader to report."""
        names = ("weight", "bias", "evidence_mean", "evidence_std", "edge_gate")
        if not any(prefix + n in state_dict for n in names):
            identity = PresenceEvidenceFusion(self.num_structures, self.hidden_channels)
            for n, t in identity.state_dict().items():
                state_dict[prefix + n] = t.to(self.weight.device)
            return
        k, old = len(PRESENCE_EVIDENCE_NAMES), LEGACY_EVIDENCE_COUNT
        pads = {"weight": 0.0, "evidence_mean": 0.0, "evidence_std": 1.0}
        for n, fill in pads.items():
            t = state_dict.get(prefix + n)
            if isinstance(t, torch.Tensor) and t.ndim >= 1 and t.shape[-1] == old and k > old:
                extra = torch.full((*t.shape[:-1], k - old), fill, dtype=t.dtype, device=t.device)
                state_dict[prefix + n] = torch.cat([t, extra], dim=-1)
        hidden = ("hidden_weight", "hidden_bias", "output_weight")
        if self.hidden_channels and not any(prefix + n in state_dict for n in hidden):
            for n in hidden:
                state_dict[prefix + n] = torch.zeros_like(getattr(self, n))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        self.upgrade_state_dict(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
