"""Per-structure presence/absence classification with a confidence estimate (SADAAn stage 3)."""

from __future__ import annotations

import torch
import torch.nn as nn

from monai_sadaan.networks.utils import check_positive_sizes

__all__ = ["AbsenceDetectionHead"]


class AbsenceDetectionHead(nn.Module):
    """Decide for every structure whether it is present, from pooled features and its alignment score.

    * ``global_pool``: ``AdaptiveAvgPool3d(1)`` over the features, giving ``g`` of shape ``[B, F]``.
    * ``absence_classifiers``: one MLP per structure on ``cat(g, alignment[:, s])`` (``F + 1`` inputs):
      ``Linear(F + 1, 64) -> ReLU -> Dropout -> Linear(64, 32) -> ReLU -> Linear(32, 2)``; logit 1 is "present".
    * ``confidence_head``: ``Linear(F, 64) -> ReLU -> Linear(64, S) -> Sigmoid`` on ``g``.

    Args:
        num_structures: number of anatomical structures ``S``.
        feature_dim: channels ``F`` of the incoming features.
        hidden_dims: widths of the two hidden layers of each classifier.
        confidence_hidden: width of the hidden layer of ``confidence_head``.
        dropout: dropout probability after the first classifier layer.

    Raises:
        ValueError: for non-positive sizes or a dropout outside [0, 1).
    """

    def __init__(
        self,
        num_structures: int = 5,
        feature_dim: int = 128,
        hidden_dims: tuple[int, int] = (64, 32),
        confidence_hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        check_positive_sizes(
            num_structures=num_structures, feature_dim=feature_dim, hidden_dims=hidden_dims,
            confidence_hidden=confidence_hidden,
        )  # fmt: skip
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {dropout}")
        self.num_structures = num_structures
        self.feature_dim = feature_dim
        h1, h2 = hidden_dims
        self.global_pool = nn.AdaptiveAvgPool3d(1)
        self.absence_classifiers = nn.ModuleList(
            nn.Sequential(
                nn.Linear(feature_dim + 1, h1),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
                nn.Linear(h1, h2),
                nn.ReLU(inplace=True),
                nn.Linear(h2, 2),
            )
            for _ in range(num_structures)
        )
        self.confidence_head = nn.Sequential(
            nn.Linear(feature_dim, confidence_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(confidence_hidden, num_structures),
            nn.Sigmoid(),
        )

    def forward(
        self, features: torch.Tensor, alignment_scores: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            features: ``[B, F, D, H, W]``.
            alignment_scores: ``[B, S]`` from :class:`AnatomicalAttentionModule`.

        Returns:
            ``(presence_probs, absence_logits, confidence_scores)``: ``[B, S]`` = softmax(logits)[..., 1],
            ``[B, S, 2]`` (index 0 absent, 1 present) and ``[B, S]`` in [0, 1].
        """
        return self.classify(self.global_pool(features).flatten(1), alignment_scores)

    def classify(
        self, pooled: torch.Tensor, alignment_scores: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`forward` on features already pooled.

        Args:
            pooled: ``[B, F]`` spatial mean of the features.
            alignment_scores: ``[B, S]``.

        Returns:
            as :meth:`forward`.
        """
        absence_logits = torch.stack(
            [
                classifier(torch.cat([pooled, alignment_scores[:, s : s + 1]], dim=1))
                for s, classifier in enumerate(self.absence_classifiers)
            ],
            dim=1,
        )
        presence_probs = torch.softmax(absence_logits, dim=-1)[..., 1]
        confidence_scores = self.confidence_head(pooled)
        return presence_probs, absence_logits, confidence_scores
