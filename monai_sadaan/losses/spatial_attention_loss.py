"""The six-part absence-aware loss of SADAAn (seed 002, "Loss Function: SpatialAttentionLoss")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.nn.modules.loss import _Loss

__all__ = ["SpatialAttentionLoss", "DEFAULT_LOSS_WEIGHTS", "LOSS_COMPONENTS"]

#: the seed's default component weights
DEFAULT_LOSS_WEIGHTS: dict[str, float] = {
    "segmentation": 1.0,
    "absence": 2.0,
    "attention_supervision": 0.3,
    "confidence": 0.1,
    "dice": 1.0,
    "false_positive_suppression": 0.5,
    "feature_response_supervision": 0.0,
    "absent_top_voxels": 0.0,
}
"""The seed's six weights, plus ``feature_response_supervision`` and ``absent_top_voxels`` at 0 (options beside the
seed: off by default, so the default total is the seed's six-part sum)."""

#: component names, in the order they are returned (after ``"total"``)
LOSS_COMPONENTS: tuple[str, ...] = (
    "segmentation",
    "dice",
    "absence",
    "false_positive_suppression",
    "attention_supervision",
    "confidence",
    "feature_response_supervision",
    "absent_top_voxels",
)

_EPS = 1e-6


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` [B, S] over the pairs where ``mask`` [B, S] is 1; 0 (still in the graph) when none."""
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def _soft_dice_loss(probs: torch.Tensor, targets: torch.Tensor, smooth: float) -> torch.Tensor:
    """Soft Dice loss per (batch, structure) pair of ``[B, S, N]`` probabilities and targets: ``[B, S]``."""
    inter = (probs * targets).sum(-1)
    return 1.0 - (2.0 * inter + smooth) / (probs.sum(-1) + targets.sum(-1) + smooth)


def _bce_on_probs(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of probabilities clamped to ``[eps, 1 - eps]`` (finite gradients at 0 and 1),
    in float32 with autocast off (``F.binary_cross_entropy`` refuses to run under CUDA autocast)."""
    with torch.autocast(device_type=probs.device.type, enabled=False):
        return F.binary_cross_entropy(probs.float().clamp(_EPS, 1.0 - _EPS), targets.float())


class SpatialAttentionLoss(_Loss):
    """Absence-aware multi-task loss for :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter`.

    The seed's six components and two optional ones, each a 0-d tensor, and their weighted sum ``"total"``:

    - ``"segmentation"``: binary cross-entropy with logits over the voxels of *present* structures only: per
      (batch, structure) pair the voxel mean, then the mean over present pairs (0 when none is present).
    - ``"dice"``: soft Dice loss ``1 - (2 sum(p g) + eps) / (sum(p) + sum(g) + eps)`` of ``sigmoid(logits)``
      per present (batch, structure) pair, averaged over present pairs (0 when none).
    - ``"absence"``: focal loss on the two-class ``absence_logits`` (class 1 = present) against
      ``presence_targets``: ``alpha_t * (1 - p_t) ** focal_gamma * CE``, with ``alpha_t = focal_alpha`` for
      present targets and ``1 - focal_alpha`` for absent ones (the RetinaNet convention: with the seed's 0.25 the
      rarer *absent* class is weighted 3 to 1). ``focal_alpha=None, focal_gamma=0`` gives plain cross-entropy.
    - ``"false_positive_suppression"``: the mean predicted probability ``sigmoid(logits)`` over the voxels of
      *absent* (batch, structure) pairs, averaged over absent pairs: 0 for an empty prediction, growing with
      predicted volume and certainty (0 when no pair is absent).
    - ``"attention_supervision"``: binary cross-entropy between ``attention_maps`` (in [0, 1]) and
      ``attention_targets`` over all pairs; without ``attention_targets`` the segmentation targets serve (so
      attention is pushed to zero for absent structures).
    - ``"confidence"``: binary cross-entropy between ``confidence_scores`` and the (detached) probability the
      absence head gave the true class, ``p_t = 1 - |presence_prob - presence_target|``: confidence is pulled
      high where the presence call is right and low where it is wrong, so a confident wrong call costs most.
    - ``"feature_response_supervision"`` (not in the seed; weight 0 by default): binary cross-entropy with
      logits between ``feature_responses`` and ``segmentation_targets`` over all pairs, plus the soft Dice loss
      of ``sigmoid(feature_responses)`` over present pairs (as for the segmentation: the Dice term keeps small
      organs from drowning in background voxels). The seed leaves the
      feature matcher unsupervised: it learns only through the one alignment score per structure, so the
      alignment can settle on any monotone code (measured on the phantom bundle: the right kidney's score came
      out *higher* when the kidney was absent). Supervised, ``sigmoid(feature_responses)`` is a voxel-wise
      detector and the alignment score (its attention-weighted mean) is near 1 for a present structure and
      near 0 for an absent one, a direct input for the presence classifiers.
    - ``"absent_top_voxels"`` (not in the seed; weight 0 by default): for each *absent* (batch, structure) pair the
      mean of its ``absent_top_k`` highest voxel probabilities, averaged over absent pairs (0 when none). The
      seed's ``false_positive_suppression`` averages over every voxel of the volume, so an absent organ painted
      with 50 confident voxels costs 50 / 110,592 at 48³, next to nothing; yet 8 such voxels make the structure
      present under a ``min_voxels=8`` rule. This term is 1 for an absent structure painted with ``absent_top_k``
      confident voxels and 0 for an empty one, whatever the volume size, and its gradient reaches only those
      voxels. Set ``absent_top_k`` to the presence threshold in voxels.

    Args:
        structure_names: names of the S structures, in channel order (only their number is used for checks).
        weights: component weights; a partial mapping overrides the seed's defaults
            (segmentation 1.0, absence 2.0, attention_supervision 0.3, confidence 0.1, dice 1.0,
            false_positive_suppression 0.5), feature_response_supervision 0 and absent_top_voxels 0. Unknown keys
            raise ``ValueError``.
        focal_alpha: weight of the *present* class in the absence focal loss, in [0, 1], or None for no class
            weighting. Defaults to the seed's 0.25.
        focal_gamma: focusing exponent of the absence focal loss, >= 0. Defaults to the seed's 2.0.
        smooth: numerator and denominator smoothing of the soft Dice.
        absent_top_k: number of highest voxel probabilities ``absent_top_voxels`` averages (>= 1; fewer when the
            volume is smaller).

    Inputs of ``forward(outputs, targets)``:
        outputs: the network's dict with ``segmentation_logits`` [B, S, D, H, W], ``attention_maps``
            [B, S, D, H, W] in [0, 1], ``absence_logits`` [B, S, 2] and ``confidence_scores`` [B, S] in [0, 1];
            ``feature_responses`` [B, S, D, H, W] (logits) only when ``feature_response_supervision`` has a
            positive weight.
        targets: dict with ``segmentation_targets`` [B, S, D, H, W] in {0, 1}, ``presence_targets`` [B, S] in
            {0, 1} and optionally ``attention_targets`` [B, S, D, H, W] in [0, 1].

    Returns:
        dict ``{"total", "segmentation", "dice", "absence", "false_positive_suppression",
        "attention_supervision", "confidence", "feature_response_supervision", "absent_top_voxels"}`` of 0-d float
        tensors; ``total`` is the weighted sum. ``feature_response_supervision`` is computed whenever the outputs
        hold ``feature_responses`` (for logging, even at weight 0) and is 0 otherwise.

    Raises:
        KeyError: a required output or target key is missing.
        ValueError: a tensor's shape does not match what the targets imply, or bad constructor arguments.

    Example::

        loss = SpatialAttentionLoss(["liver", "spleen"], weights={"absence": 4.0})
        parts = loss(model(image), {"segmentation_targets": masks, "presence_targets": presence})
        parts["total"].backward()
    """

    def __init__(
        self,
        structure_names: Sequence[str],
        weights: Mapping[str, float] | None = None,
        focal_alpha: float | None = 0.25,
        focal_gamma: float = 2.0,
        smooth: float = 1e-5,
        absent_top_k: int = 8,
    ) -> None:
        super().__init__()
        if isinstance(structure_names, str) or len(structure_names) == 0:
            raise ValueError(f"expected a non-empty sequence of structure names, got {structure_names!r}")
        self.structure_names = list(structure_names)
        self.num_structures = len(self.structure_names)
        merged = dict(DEFAULT_LOSS_WEIGHTS)
        if weights is not None:
            unknown = sorted(set(weights) - set(DEFAULT_LOSS_WEIGHTS))
            if unknown:
                raise ValueError(
                    f"unknown loss weight keys {unknown}; expected a subset of {sorted(DEFAULT_LOSS_WEIGHTS)}"
                )
            for k, v in weights.items():
                if float(v) < 0:
                    raise ValueError(f"expected a non-negative weight for {k!r}, got {v}")
                merged[k] = float(v)
        self.weights = merged
        if focal_alpha is not None and not 0.0 <= float(focal_alpha) <= 1.0:
            raise ValueError(f"expected focal_alpha in [0, 1] or None, got {focal_alpha}")
        if float(focal_gamma) < 0:
            raise ValueError(f"expected focal_gamma >= 0, got {focal_gamma}")
        self.focal_alpha = None if focal_alpha is None else float(focal_alpha)
        self.focal_gamma = float(focal_gamma)
        self.smooth = float(smooth)
        if isinstance(absent_top_k, bool) or not isinstance(absent_top_k, int) or absent_top_k < 1:
            raise ValueError(f"expected absent_top_k as an integer >= 1, got {absent_top_k!r}")
        self.absent_top_k = absent_top_k

    @staticmethod
    def _fetch(d: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
        if not isinstance(d, Mapping):
            raise TypeError(f"expected the {what} as a dict, got {type(d).__name__}")
        if key not in d:
            raise KeyError(f"expected key {key!r} in the {what}, got keys {sorted(d)}")
        value = d[key]
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"expected {what}[{key!r}] to be a tensor, got {type(value).__name__}")
        return value

    @staticmethod
    def _check_shape(name: str, value: torch.Tensor, expected: tuple[int, ...], source: str) -> None:
        if tuple(value.shape) != expected:
            raise ValueError(f"expected {name} of shape {expected} ({source}), got {tuple(value.shape)}")

    def forward(  # type: ignore[override]
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        seg_t = self._fetch(targets, "segmentation_targets", "targets")
        pres_t = self._fetch(targets, "presence_targets", "targets")
        if seg_t.ndim < 3:
            raise ValueError(f"expected segmentation_targets of shape (B, S, *spatial), got {tuple(seg_t.shape)}")
        b, s = seg_t.shape[:2]
        if s != self.num_structures:
            raise ValueError(
                f"expected {self.num_structures} structures ({self.structure_names}) in segmentation_targets, "
                f"got shape {tuple(seg_t.shape)}"
            )
        vol_shape = tuple(seg_t.shape)
        self._check_shape("presence_targets", pres_t, (b, s), "batch and structures of segmentation_targets")

        logits = self._fetch(outputs, "segmentation_logits", "outputs")
        att = self._fetch(outputs, "attention_maps", "outputs")
        abs_logits = self._fetch(outputs, "absence_logits", "outputs")
        conf = self._fetch(outputs, "confidence_scores", "outputs")
        self._check_shape("segmentation_logits", logits, vol_shape, "shape of segmentation_targets")
        self._check_shape("attention_maps", att, vol_shape, "shape of segmentation_targets")
        self._check_shape("absence_logits", abs_logits, (b, s, 2), "batch, structures, two classes")
        self._check_shape("confidence_scores", conf, (b, s), "batch and structures")
        att_t = targets.get("attention_targets")
        if att_t is None:
            att_t = seg_t
        else:
            self._check_shape("attention_targets", att_t, vol_shape, "shape of segmentation_targets")

        seg_t = seg_t.to(dtype=torch.float32)
        present = (pres_t.to(dtype=torch.float32) > 0.5).to(torch.float32)  # [B, S]
        absent = 1.0 - present
        logits = logits.float()
        flat_logits = logits.reshape(b, s, -1)
        flat_t = seg_t.reshape(b, s, -1)
        probs = torch.sigmoid(flat_logits)

        # 1. BCE on present structures
        bce = F.binary_cross_entropy_with_logits(flat_logits, flat_t, reduction="none").mean(-1)  # [B, S]
        seg_loss = _masked_mean(bce, present)

        # 2. soft Dice on present structures
        dice_loss = _masked_mean(_soft_dice_loss(probs, flat_t, self.smooth), present)

        # 3. focal / cross-entropy presence classification
        log_p = F.log_softmax(abs_logits.float(), dim=-1)  # [B, S, 2]
        log_pt = torch.where(present > 0.5, log_p[..., 1], log_p[..., 0])
        pt = log_pt.exp()
        focal = -log_pt
        if self.focal_gamma > 0:
            focal = (1.0 - pt).pow(self.focal_gamma) * focal
        if self.focal_alpha is not None:
            alpha_t = present * self.focal_alpha + absent * (1.0 - self.focal_alpha)
            focal = alpha_t * focal
        absence_loss = focal.mean()

        # 4. predicted mass on absent structures
        fp_loss = _masked_mean(probs.mean(-1), absent)

        # 5. attention maps against attention targets, all pairs
        att_loss = _bce_on_probs(att, att_t)

        # 6. confidence against the probability given to the true class
        conf_loss = _bce_on_probs(conf, pt.detach())

        # 7. (optional, not in the seed) feature responses as a voxel-wise detector of each structure
        if self.weights["feature_response_supervision"] > 0 or "feature_responses" in outputs:
            responses = self._fetch(outputs, "feature_responses", "outputs")
            self._check_shape("feature_responses", responses, vol_shape, "shape of segmentation_targets")
            flat_r = responses.float().reshape(b, s, -1)
            r_dice = _soft_dice_loss(torch.sigmoid(flat_r), flat_t, self.smooth)
            response_loss = F.binary_cross_entropy_with_logits(flat_r, flat_t) + _masked_mean(r_dice, present)
        else:
            response_loss = logits.new_zeros(())

        # 8. (optional, not in the seed) the most confident voxels of absent structures
        top_k = min(self.absent_top_k, probs.shape[-1])
        absent_top = _masked_mean(probs.topk(top_k, dim=-1).values.mean(-1), absent)

        parts = {
            "segmentation": seg_loss,
            "dice": dice_loss,
            "absence": absence_loss,
            "false_positive_suppression": fp_loss,
            "attention_supervision": att_loss,
            "confidence": conf_loss,
            "feature_response_supervision": response_loss,
            "absent_top_voxels": absent_top,
        }
        total = sum(self.weights[k] * v for k, v in parts.items())
        return {"total": total, **parts}  # type: ignore[dict-item]
