"""The blocks of SADAAn (seed 002): the four stages the segmenter of :mod:`monai_sadaan.networks.nets.sadaan` chains,
in the order it runs them (one module, as MONAI keeps one network's blocks together in ``segresnet_block.py`` or
``unetr_block.py``):

1. :class:`Encoder`: a U-Net style encoder-decoder that turns the image into full-resolution feature maps.
2. :class:`AnatomicalAttentionModule`: structure-specific spatial attention under a learned anatomical position prior.
3. :class:`AbsenceDetectionHead`: per-structure presence/absence classification with a confidence estimate.
4. :class:`SegmentationHead`: attention-modulated per-structure segmentation.

:func:`double_conv3d` is the basic unit of the encoder and the segmentation head; :func:`apply_position_prior` and
:func:`modulate_by_attention` are the arithmetic of stages 2 and 4 and :func:`compose_with_projection` that of a
convolution reading the encoder's output, shared with the fast inference graph
(:mod:`monai_sadaan.networks.fast_inference`) and the checkpointed training graph
(:mod:`monai_sadaan.networks.checkpointing`); :func:`check_positive_sizes` is the one refusal of layer sizes below
1 that every block and the network share.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

__all__ = [
    "AbsenceDetectionHead",
    "AnatomicalAttentionModule",
    "Encoder",
    "SegmentationHead",
    "apply_position_prior",
    "check_positive_sizes",
    "compose_with_projection",
    "double_conv3d",
    "modulate_by_attention",
]


def check_positive_sizes(**sizes: int | Sequence[int]) -> None:
    """Refuse a layer size (a channel count, a width, or a sequence of them) below 1, naming every size given.

    Args:
        sizes: argument name -> its value, in the order the message names them.

    Raises:
        ValueError: ``expected positive in_channels and num_structures, got 0 and 5`` when any value is below 1.

    Example::

        check_positive_sizes(in_channels=in_channels, num_structures=num_structures)
    """
    values = [v for size in sizes.values() for v in (size if isinstance(size, Sequence) else (size,))]
    if min(values) < 1:
        names = list(sizes)
        given = [str(tuple(v)) if isinstance(v, Sequence) else str(v) for v in sizes.values()]

        def _and(words: list[str]) -> str:
            return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"

        raise ValueError(f"expected positive {_and(names)}, got {_and(given)}")


def double_conv3d(in_channels: int, out_channels: int) -> nn.Sequential:
    """Build ``Conv3d(k3, pad 1) -> BatchNorm3d -> ReLU -> Conv3d(k3, pad 1) -> BatchNorm3d -> ReLU``.

    A plain ``nn.Sequential`` (children ``0..5``) rather than a subclass, so that state-dict keys
    (``enc1.0.weight``) and torchinfo rows (``Sequential (enc1)``) read exactly as in the seed model.

    Args:
        in_channels: number of input channels.
        out_channels: number of output channels of both convolutions.

    Returns:
        the six-layer block, mapping ``[B, in_channels, D, H, W]`` to ``[B, out_channels, D, H, W]``.
    """
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )

# ------------------------------------------------------------------------------------------------ stage 1: encoder


class Encoder(nn.Module):
    """Five-level 3D U-Net encoder-decoder with skip connections, ending in a 1x1x1 projection.

    Layout (seed 002, ``features=(16, 32, 64, 128, 256)``, ``feature_channels=128``)::

        enc1 ─pool─ enc2 ─pool─ enc3 ─pool─ enc4 ─pool─ enc5
          │           │           │           │           │
        dec1 ─up1── dec2 ─up2── dec3 ─up3── dec4 ─up4─────┘  -> final_conv (1x1x1, features[0] -> feature_channels)

    ``enc*``/``dec*`` are double convolutions (Conv3d k3, BatchNorm3d, ReLU, twice), ``pool`` is one
    ``MaxPool3d(2)`` reused at every level, ``up*`` are ``ConvTranspose3d(kernel 2, stride 2)`` halving the
    channels, and each ``dec*`` sees the concatenation ``[upsampled, skip]``.

    Args:
        in_channels: number of image channels.
        features: channel widths of the five levels, shallow to deep.
        feature_channels: channels of the returned full-resolution feature map.

    Raises:
        ValueError: when ``features`` does not hold five positive widths or a channel count is not positive.
    """

    def __init__(
        self, in_channels: int = 1, features: Sequence[int] = (16, 32, 64, 128, 256), feature_channels: int = 128
    ) -> None:
        super().__init__()
        features = tuple(int(f) for f in features)
        if len(features) != 5 or min(features) < 1:
            raise ValueError(f"expected five positive encoder widths in features, got {features}")
        check_positive_sizes(in_channels=in_channels, feature_channels=feature_channels)
        f1, f2, f3, f4, f5 = features
        self.in_channels = in_channels
        self.features = features
        self.feature_channels = feature_channels

        self.enc1 = double_conv3d(in_channels, f1)
        self.pool = nn.MaxPool3d(kernel_size=2)
        self.enc2 = double_conv3d(f1, f2)
        self.enc3 = double_conv3d(f2, f3)
        self.enc4 = double_conv3d(f3, f4)
        self.enc5 = double_conv3d(f4, f5)

        self.up4 = nn.ConvTranspose3d(f5, f4, kernel_size=2, stride=2)
        self.dec4 = double_conv3d(2 * f4, f4)
        self.up3 = nn.ConvTranspose3d(f4, f3, kernel_size=2, stride=2)
        self.dec3 = double_conv3d(2 * f3, f3)
        self.up2 = nn.ConvTranspose3d(f3, f2, kernel_size=2, stride=2)
        self.dec2 = double_conv3d(2 * f2, f2)
        self.up1 = nn.ConvTranspose3d(f2, f1, kernel_size=2, stride=2)
        self.dec1 = double_conv3d(2 * f1, f1)

        self.final_conv = nn.Conv3d(f1, feature_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: image batch ``[B, in_channels, D, H, W]``, each spatial size divisible by 16.

        Returns:
            feature maps ``[B, feature_channels, D, H, W]``: ``final_conv`` of :meth:`narrow_features`.
        """
        return self.final_conv(self.narrow_features(x))

    def narrow_features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder-decoder up to ``dec1``, before the ``final_conv`` projection.

        Args:
            x: image batch ``[B, in_channels, D, H, W]``, each spatial size divisible by 16.

        Returns:
            ``[B, features[0], D, H, W]``.
        """
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        e4 = self.enc4(self.pool(e3))
        e5 = self.enc5(self.pool(e4))
        d4 = self.dec4(torch.cat([self.up4(e5), e4], dim=1))
        d3 = self.dec3(torch.cat([self.up3(d4), e3], dim=1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], dim=1))
        return self.dec1(torch.cat([self.up1(d2), e1], dim=1))

    def projection(self) -> torch.Tensor:
        """``final_conv`` as a matrix with its bias as the last column, ``[feature_channels, features[0] + 1]``: at
        every voxel the feature map is ``projection @ [narrow, 1]`` (``narrow`` from :meth:`narrow_features`)."""
        weight, bias = self.final_conv.weight.flatten(1), self.final_conv.bias
        bias = weight.new_zeros(weight.shape[0]) if bias is None else bias
        return torch.cat([weight, bias[:, None]], dim=1)


def compose_with_projection(weight: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """Weights of a convolution over ``[narrow, 1]`` (the narrow map with a channel of ones appended) that equals the
    convolution ``weight`` over the feature map ``f = projection @ [narrow, 1]``.

    A convolution is linear in its input, so ``conv(f; W) = conv([narrow, 1]; W o projection)``. With zero padding
    the ones channel is padded with zeros like ``f``, so ``final_conv``'s bias enters from inside the volume only,
    exactly as with the materialised map. The convolution then reads ``C_low + 1`` channels instead of ``C`` (17
    instead of 128 in the seed model) and ``f`` is never computed.

    Args:
        weight: ``[O, C, k, k, k]``, a convolution over the ``C`` feature channels (stride 1, zero padding).
        projection: ``[C, C_low + 1]`` from :meth:`Encoder.projection`.

    Returns:
        ``[O, C_low + 1, k, k, k]``; differentiable in both arguments.
    """
    return torch.einsum("oc...,cj->oj...", weight, projection)

# ----------------------------------------------------------------------------------- stage 2: anatomical attention


def apply_position_prior(
    spatial_attention: torch.Tensor, feature_responses: torch.Tensor, prior: torch.Tensor, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Weight the attention by the position prior and score how well the features agree with it.

    Args:
        spatial_attention: ``attention_conv`` output ``[B, S, D, H, W]`` in [0, 1].
        feature_responses: ``feature_matcher`` output ``[B, S, D, H, W]`` (logits).
        prior: the position prior ``[1, S, D, H, W]`` in [0, 1].
        eps: added to the attention mass in the alignment denominator.

    Returns:
        ``(attention_maps, feature_responses, alignment_scores, position_priors)``: ``[B, S, D, H, W]`` in [0, 1],
        the responses unchanged, ``[B, S]`` in [0, 1] and ``[B, S, D, H, W]`` (the prior expanded over the batch,
        a view without a copy).
    """
    attention_maps = spatial_attention * prior
    mass = attention_maps.sum(dim=(2, 3, 4))
    agreement = (attention_maps * torch.sigmoid(feature_responses)).sum(dim=(2, 3, 4))
    alignment_scores = agreement / (mass + eps)
    position_priors = prior.expand(spatial_attention.shape[0], -1, -1, -1, -1)
    return attention_maps, feature_responses, alignment_scores, position_priors


class AnatomicalAttentionModule(nn.Module):
    """Learn where each structure is expected and how well the image features agree with that expectation.

    * ``position_embeddings``: a learned parameter ``[1, S, D, H, W]``; its sigmoid is the position prior.
    * ``attention_conv``: ``Conv3d(in, hidden, k3) -> BatchNorm3d -> ReLU -> Conv3d(hidden, S, k1) -> Sigmoid``.
    * ``feature_matcher``: ``Conv3d(in, in, k3) -> BatchNorm3d -> ReLU -> Conv3d(in, S, k1)`` (logits).

    With ``f`` the features, ``P = sigmoid(position_embeddings)`` and ``R = feature_matcher(f)``::

        attention_maps   = attention_conv(f) * P                                   in [0, 1]
        alignment_scores = sum_v(attention_maps * sigmoid(R)) / (sum_v(attention_maps) + eps)

    The alignment score is the attention-weighted mean of the structure's feature response: high when the
    features look like the structure where it is expected, low when that place looks like something else
    (a resected or missing organ).

    Args:
        in_channels: channels of the incoming features.
        num_structures: number of anatomical structures ``S``.
        spatial_size: ``(D, H, W)`` of the features; the prior is tied to this field of view.
        hidden_channels: width of the hidden layer of ``attention_conv`` (64 in the seed model).
        eps: added to the attention mass in the alignment denominator.

    Raises:
        ValueError: for non-positive channel counts or a ``spatial_size`` that is not three positive sizes.
    """

    def __init__(
        self,
        in_channels: int = 128,
        num_structures: int = 5,
        spatial_size: Sequence[int] = (64, 64, 64),
        hidden_channels: int = 64,
        eps: float = 1e-6,
    ) -> None:
        super().__init__()
        spatial_size = tuple(int(s) for s in spatial_size)
        if len(spatial_size) != 3 or min(spatial_size) < 1:
            raise ValueError(f"expected spatial_size of three positive sizes (D, H, W), got {spatial_size}")
        check_positive_sizes(in_channels=in_channels, num_structures=num_structures, hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.spatial_size = spatial_size
        self.eps = eps

        # zeros: a neutral prior of 0.5 everywhere until training says where each structure lives
        self.position_embeddings = nn.Parameter(torch.zeros(1, num_structures, *spatial_size))
        self.attention_conv = nn.Sequential(
            nn.Conv3d(in_channels, hidden_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(hidden_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden_channels, num_structures, kernel_size=1),
            nn.Sigmoid(),
        )
        self.feature_matcher = nn.Sequential(
            nn.Conv3d(in_channels, in_channels, kernel_size=3, padding=1),
            nn.BatchNorm3d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(in_channels, num_structures, kernel_size=1),
        )

    def position_prior(self) -> torch.Tensor:
        """The learned prior ``sigmoid(position_embeddings)``, shape ``[1, S, D, H, W]``."""
        return torch.sigmoid(self.position_embeddings)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """
        Args:
            features: ``[B, in_channels, D, H, W]`` with ``(D, H, W) == spatial_size``.

        Returns:
            ``(attention_maps, feature_responses, alignment_scores, position_priors)``:
            ``[B, S, D, H, W]`` in [0, 1], ``[B, S, D, H, W]`` logits, ``[B, S]`` in [0, 1] and
            ``[B, S, D, H, W]`` (the prior expanded over the batch, a view without a copy).
        """
        spatial_attention = self.attention_conv(features)
        feature_responses = self.feature_matcher(features)
        return apply_position_prior(spatial_attention, feature_responses, self.position_prior(), self.eps)

# -------------------------------------------------------------------------------------- stage 3: absence detection


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

# -------------------------------------------------------------------------------------- stage 4: segmentation head


def modulate_by_attention(
    projected: torch.Tensor, attention_maps: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``a_s * (w_s . r) + b_s`` from the pointwise convolution ``projected = w . r + b`` of the refined features.

    Args:
        projected: ``[B, S, D, H, W]``, the 1x1x1 segmentation layer applied to the refined features (with bias).
        attention_maps: ``[B, S, D, H, W]``.
        bias: ``[S]`` the segmentation layer's bias, or None.

    Returns:
        ``[B, S, D, H, W]`` logits.
    """
    if bias is None:
        return attention_maps * projected
    bias = bias.view(1, -1, 1, 1, 1)
    return torch.addcmul(bias, attention_maps, projected - bias)


class SegmentationHead(nn.Module):
    """Segment every structure from refined features weighted by that structure's attention map.

    * ``feature_refine``: ``Conv3d(in, hidden, k3) -> BN -> ReLU -> Conv3d(hidden, hidden, k3) -> BN -> ReLU``.
    * ``segmentation_layer``: ``Conv3d(hidden, S, k1)`` with weights ``w`` and bias ``b``.

    The seed model multiplies the refined features ``r`` by each structure's attention map ``a_s``, stacks the
    ``S`` copies into a ``[B*S, hidden, D, H, W]`` batch, applies ``segmentation_layer`` and keeps channel ``s``
    of copy ``s`` (``memory_efficient=False``). Because the 1x1x1 convolution is linear and ``a_s`` is one
    number per voxel, channel ``s`` of ``conv(r * a_s)`` is ``a_s * (w_s . r) + b_s``: the default
    ``memory_efficient=True`` computes that directly from one ``[B, S, D, H, W]`` convolution output and
    never materialises the ``S`` copies. Both give the same logits (up to float rounding).

    Args:
        in_channels: channels of the incoming features.
        num_structures: number of anatomical structures ``S``.
        hidden_channels: width of ``feature_refine`` (64 in the seed model).
        memory_efficient: use the copy-free layout described above.

    Raises:
        ValueError: for non-positive channel counts.
    """

    def __init__(
        self, in_channels: int = 128, num_structures: int = 5, hidden_channels: int = 64, memory_efficient: bool = True
    ) -> None:
        super().__init__()
        check_positive_sizes(in_channels=in_channels, num_structures=num_structures, hidden_channels=hidden_channels)
        self.in_channels = in_channels
        self.num_structures = num_structures
        self.memory_efficient = memory_efficient
        self.feature_refine = double_conv3d(in_channels, hidden_channels)
        self.segmentation_layer = nn.Conv3d(hidden_channels, num_structures, kernel_size=1)

    def modulated_logits(self, refined: torch.Tensor, attention_maps: torch.Tensor) -> torch.Tensor:
        """Per-structure logits from refined features and attention maps.

        Args:
            refined: ``[B, hidden, D, H, W]`` output of ``feature_refine``.
            attention_maps: ``[B, S, D, H, W]``.

        Returns:
            ``[B, S, D, H, W]`` logits, channel ``s`` equal to channel ``s`` of
            ``segmentation_layer(refined * attention_maps[:, s:s+1])``.
        """
        if self.memory_efficient:
            return modulate_by_attention(self.segmentation_layer(refined), attention_maps, self.segmentation_layer.bias)
        num_structures = attention_maps.shape[1]
        batch, spatial = refined.shape[0], refined.shape[2:]
        copies = refined.unsqueeze(1) * attention_maps.unsqueeze(2)  # [B, S, hidden, D, H, W]
        stacked = self.segmentation_layer(copies.reshape(batch * num_structures, -1, *spatial))
        stacked = stacked.reshape(batch, num_structures, num_structures, *spatial)
        index = torch.arange(num_structures, device=refined.device)
        return stacked[:, index, index]

    def forward(self, features: torch.Tensor, attention_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            features: ``[B, in_channels, D, H, W]``.
            attention_maps: ``[B, S, D, H, W]`` from :class:`AnatomicalAttentionModule`.

        Returns:
            ``(segmentation_logits, segmentation_probs)``, both ``[B, S, D, H, W]``; probs = sigmoid(logits).
        """
        segmentation_logits = self.modulated_logits(self.feature_refine(features), attention_maps)
        return segmentation_logits, torch.sigmoid(segmentation_logits)
