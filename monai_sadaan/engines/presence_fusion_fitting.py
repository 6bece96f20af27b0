"""Fitting a SADAAn network's :class:`~monai_sadaan.networks.PresenceEvidenceFusion` on a frozen network.

The network runs once over the data in eval mode; the fusion's input (the presence evidence of every structure of
every case) and the presence targets are kept; the fusion's rule (a per-structure logistic regression, with a hidden
tanh layer when the fusion has one) is fitted to them with an L2 penalty by L-BFGS (the same data and seed give
the same weights) and installed in the fusion. Nothing else in the network changes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from monai_glue.atomic import atomic_open, atomic_torch_save
from monai_sadaan.networks.nets.presence_fusion import (
    _EDGE_INDEX,
    PRESENCE_EVIDENCE_NAMES,
    PresenceEvidenceFusion,
    presence_rule,
)
from monai_glue.checkpoint import unwrap_model

__all__ = [
    "collect_presence_evidence",
    "fit_presence_fusion",
    "fit_presence_regression",
    "fit_presence_rule",
    "save_presence_fusion_fit",
]


def _fusion_of(network: nn.Module) -> PresenceEvidenceFusion:
    net = unwrap_model(network)
    fusion = getattr(net, "presence_fusion", None)
    if not isinstance(fusion, PresenceEvidenceFusion):
        raise ValueError(
            f"expected a network built with presence_fusion=True, got {type(net).__name__} without a presence fusion"
        )
    return fusion


def collect_presence_evidence(
    network: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    device: torch.device | str | None = None,
    image_key: str = "image",
    target_key: str = "presence_targets",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ``network`` (eval mode, no gradient) over ``batches`` and keep what its presence fusion sees.

    Args:
        network: a SADAAn network with ``presence_fusion`` (or a wrapper with ``.module``).
        batches: dicts with ``image_key`` ``[B, C, D, H, W]`` and ``target_key`` ``[B, S]`` (1 = present), e.g. a
            MONAI ``DataLoader``.
        device: where to run; default the device of the network's parameters.
        image_key, target_key: keys of the batch dicts.

    Returns:
        ``(evidence [N, S, K], targets [N, S], head_logits [N, S])`` on the CPU, ``N`` cases, ``K`` evidence values
        (:data:`~monai_sadaan.networks.nets.presence_fusion.PRESENCE_EVIDENCE_NAMES`), ``head_logits`` the
        head's present-minus-absent logits before the fusion.

    Raises:
        ValueError: for a network without a presence fusion, a batch without the keys, targets whose shape does
            not match the evidence, or no cases at all.
    """
    fusion = _fusion_of(network)
    if device is None:
        device = next(network.parameters()).device
    seen: list[torch.Tensor] = []
    hook = fusion.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].detach().cpu()))
    evidence, targets = [], []
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                missing = [k for k in (image_key, target_key) if k not in batch]
                if missing:
                    raise ValueError(f"expected batches with keys {[image_key, target_key]}, got {sorted(batch)}")
                seen.clear()
                network(torch.as_tensor(batch[image_key]).to(device))
                target = torch.as_tensor(batch[target_key]).float().cpu()
                if len(seen) != 1 or tuple(target.shape) != tuple(seen[0].shape[:2]):
                    got = tuple(seen[0].shape[:2]) if seen else None
                    raise ValueError(f"expected {target_key} of shape {got} (batch, structures), got {tuple(target.shape)}")
                evidence.append(seen[0])
                targets.append(target)
    finally:
        hook.remove()
        network.train(was_training)
    if not evidence:
        raise ValueError("expected at least one case to fit the presence fusion on, got none")
    e = torch.cat(evidence)
    return e, torch.cat(targets), e[..., 0].clone()


def _accuracy(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, Any]:
    right = ((logits >= 0).float() == (targets >= 0.5).float()).float()
    return {"accuracy": float(right.mean()), "errors": int((1 - right).sum()), "per_structure": right.mean(0).tolist()}


def fit_presence_regression(
    evidence: torch.Tensor,
    targets: torch.Tensor,
    l2: float = 1e-3,
    max_iter: int = 500,
    sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The per-structure logistic regression (no hidden layer) of :func:`fit_presence_rule`.

    Returns:
        ``(weight [S, K], bias [S], mean [K], std [K])``, float32, ready for
        :meth:`~monai_sadaan.networks.PresenceEvidenceFusion.set_fit`.
    """
    fit = fit_presence_rule(evidence, targets, l2=l2, max_iter=max_iter, sample_weights=sample_weights)
    return fit["weight"], fit["bias"], fit["mean"], fit["std"]


def fit_presence_rule(
    evidence: torch.Tensor,
    targets: torch.Tensor,
    l2: float = 1e-3,
    max_iter: int = 500,
    sample_weights: torch.Tensor | None = None,
    hidden_channels: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """The rule of a :class:`~monai_sadaan.networks.PresenceEvidenceFusion`, fitted on evidence already collected.

    Minimises ``sum(v * BCE(r, target)) / sum(v) + l2 * (|weight|^2 + |hidden_weight|^2 + |output_weight|^2)``,
    ``r`` the fusion's rule on evidence standardised by its ``mean`` and ``std`` over all cases and structures
    (whatever their weights; a constant column gets std 1) and ``v`` the sample weights (default 1), by L-BFGS. The
    regression starts from the head's own call (weight 1 on ``head_logit``); with ``hidden_channels > 0`` the hidden
    layer starts from small random weights drawn from ``seed``, so that the same data and seed give the same fit.
    Without a hidden layer the problem is convex and the seed does not matter.

    Args:
        evidence: ``[N, S, K]`` (see :func:`collect_presence_evidence`).
        targets: ``[N, S]``, 1 = present.
        l2: penalty on the standardised weights (>= 0).
        max_iter: L-BFGS iterations (>= 1).
        sample_weights: optional ``[N, S]`` non-negative weights (bool allowed), not all zero.
        hidden_channels: width ``H`` of the hidden tanh layer (>= 0; 0 for the plain regression).
        seed: seed of the hidden layer's starting weights.

    Returns:
        ``{"weight": [S, K], "bias": [S], "mean": [K], "std": [K], "hidden": None or (hidden_weight [H, K + 2S],
        hidden_bias [H], output_weight [H])}``, float32, in the order
        :meth:`~monai_sadaan.networks.PresenceEvidenceFusion.set_fit` takes them.

    Raises:
        ValueError: for a negative ``l2`` or ``hidden_channels``, ``max_iter < 1``, mismatched shapes, or sample
            weights that are negative or all zero.
    """
    if l2 < 0 or max_iter < 1 or hidden_channels < 0:
        raise ValueError(
            f"expected l2 >= 0, max_iter >= 1 and hidden_channels >= 0, got {l2}, {max_iter} and {hidden_channels}"
        )
    if evidence.ndim != 3 or tuple(targets.shape) != tuple(evidence.shape[:2]):
        raise ValueError(
            f"expected evidence [N, S, K] and targets [N, S], got {tuple(evidence.shape)} and {tuple(targets.shape)}"
        )
    n, s, k = evidence.shape
    if hidden_channels and k != len(PRESENCE_EVIDENCE_NAMES):
        raise ValueError(f"expected {len(PRESENCE_EVIDENCE_NAMES)} evidence values for a hidden layer, got {k}")
    if sample_weights is None:
        v = torch.ones(n, s, dtype=torch.float64)
    else:
        if tuple(sample_weights.shape) != (n, s):
            raise ValueError(f"expected sample_weights of shape {(n, s)}, got {tuple(sample_weights.shape)}")
        v = sample_weights.detach().cpu().double()
        if bool((v < 0).any()) or float(v.sum()) <= 0:
            raise ValueError("expected non-negative sample_weights with a positive sum")
    x = evidence.detach().cpu().double()
    mean = x.reshape(-1, k).mean(0)
    std = x.reshape(-1, k).std(0, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    x = (x - mean) / std
    y = (targets.detach().cpu() >= 0.5).double()
    weight = torch.zeros(s, k, dtype=torch.float64)
    weight[:, 0] = std[0]  # start from the head's own call
    weight.requires_grad_(True)
    bias = (mean[0] * torch.ones(s, dtype=torch.float64)).requires_grad_(True)
    params = [weight, bias]
    hidden: list[torch.Tensor] = []
    if hidden_channels:
        g = torch.Generator().manual_seed(int(seed))
        fan_in = k + 2 * s  # PresenceEvidenceFusion.hidden_inputs

        def draw(*shape: int, bound: float) -> torch.Tensor:  # uniform in [-bound, bound], as torch.nn.Linear starts
            return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * bound

        hidden = [
            draw(hidden_channels, fan_in, bound=fan_in**-0.5),
            draw(hidden_channels, bound=fan_in**-0.5),
            draw(hidden_channels, bound=hidden_channels**-0.5),
        ]
        for t in hidden:
            t.requires_grad_(True)
        params += hidden
    optimiser = torch.optim.LBFGS(params, max_iter=int(max_iter), line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        z = presence_rule(x, weight, bias, (hidden[0], hidden[1], hidden[2]) if hidden else None)
        penalty = (weight * weight).sum()
        if hidden:
            penalty = penalty + (hidden[0] * hidden[0]).sum() + (hidden[2] * hidden[2]).sum()
        bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
        loss = (bce * v).sum() / v.sum() + l2 * penalty
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return {
        "weight": weight.detach().float(),
        "bias": bias.detach().float(),
        "mean": mean.float(),
        "std": std.float(),
        "hidden": tuple(t.detach().float() for t in hidden) if hidden else None,
    }


def fit_presence_fusion(
    network: nn.Module,
    batches: Iterable[Mapping[str, Any]],
    device: torch.device | str | None = None,
    validation_batches: Iterable[Mapping[str, Any]] | None = None,
    l2: float = 1e-3,
    max_iter: int = 500,
    edge_gate: float = 0.2,
    image_key: str = "image",
    target_key: str = "presence_targets",
    fit_gated_only: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Fit the network's presence fusion on ``batches`` and install it; return a report.

    Minimises ``mean BCE(z, target) + l2 * |weights|^2`` over the fusion's rule (its regression ``weight [S, K]``
    and ``bias [S]``, and its hidden layer when it has one), with the evidence standardised by its mean and
    standard deviation over all cases and structures (a constant value gets standard deviation 1; see
    :func:`fit_presence_rule`). The rule is fitted on every case and structure (or, with ``fit_gated_only``, only
    on those it will decide); the network then uses it only where a structure's segmentation lies on the volume's
    faces (``edge_fraction >= edge_gate``) and keeps the head's call elsewhere (see
    :class:`~monai_sadaan.networks.PresenceEvidenceFusion`).

    Args:
        network: a SADAAn network with ``presence_fusion``; only the fusion changes.
        batches: training batches (see :func:`collect_presence_evidence`).
        device: where to run the network.
        validation_batches: optional batches on which the report compares the head's and the fused calls.
        l2: penalty on the standardised weights (>= 0).
        max_iter: L-BFGS iterations (>= 1).
        edge_gate: share of a structure's segmentation mass on the faces above which the regression decides (in
            [0, 1]; 0 lets it decide everywhere).
        image_key, target_key: keys of the batch dicts.
        fit_gated_only: fit the regression only to the (case, structure) pairs with ``edge_fraction >= edge_gate``,
            the ones it decides, instead of to all of them.
        seed: seed of the hidden layer's starting weights (a fusion with ``hidden_channels > 0``).

    Returns:
        A JSON-ready dict: the evidence names, case counts, the fitted weights and standardisation, and for the
        training (and validation) cases the accuracy and errors of the head's calls and of the fused calls.

    Raises:
        ValueError: for a negative ``l2``, ``max_iter < 1``, an ``edge_gate`` outside [0, 1], or what
            :func:`collect_presence_evidence` raises.
    """
    if l2 < 0 or max_iter < 1:
        raise ValueError(f"expected l2 >= 0 and max_iter >= 1, got {l2} and {max_iter}")
    if not 0.0 <= edge_gate <= 1.0:
        raise ValueError(f"expected edge_gate in [0, 1], got {edge_gate}")
    fusion = _fusion_of(network)
    fusion.reset_parameters()  # the head's own logit is evidence 0 whatever was fitted before
    evidence, targets, head = collect_presence_evidence(network, batches, device, image_key, target_key)
    n = evidence.shape[0]
    weights = (evidence[..., _EDGE_INDEX] >= edge_gate) if fit_gated_only else None
    fit = fit_presence_rule(evidence, targets, l2, max_iter, weights, fusion.hidden_channels, seed)
    fusion.set_fit(fit["weight"], fit["bias"], fit["mean"], fit["std"], edge_gate, fit["hidden"])
    fused = fusion.fused_logit(evidence.to(fusion.weight.device)).cpu()
    report: dict[str, Any] = {
        "evidence": list(PRESENCE_EVIDENCE_NAMES),
        "l2": float(l2),
        "edge_gate": float(edge_gate),
        "fit_gated_only": bool(fit_gated_only),
        "hidden_channels": fusion.hidden_channels,
        "seed": int(seed),
        "training_cases": n,
        "training": {"head": _accuracy(head, targets), "fused": _accuracy(fused, targets)},
        "weight": fusion.weight.tolist(),
        "bias": fusion.bias.tolist(),
        "evidence_mean": fusion.evidence_mean.tolist(),
        "evidence_std": fusion.evidence_std.tolist(),
    }
    if fusion.hidden_channels:
        report["hidden_weight"] = fusion.hidden_weight.tolist()
        report["hidden_bias"] = fusion.hidden_bias.tolist()
        report["output_weight"] = fusion.output_weight.tolist()
    if validation_batches is not None:
        v_evidence, v_targets, v_head = collect_presence_evidence(network, validation_batches, device, image_key, target_key)
        report["validation_cases"] = int(v_evidence.shape[0])
        v_fused = fusion.fused_logit(v_evidence.to(fusion.weight.device)).cpu()
        report["validation"] = {"head": _accuracy(v_head, v_targets), "fused": _accuracy(v_fused, v_targets)}
    return report


def save_presence_fusion_fit(network: nn.Module, report: Mapping[str, Any], ckpt_dir: str | os.PathLike) -> str:
    """Write the network's state dict to ``ckpt_dir/model.pt`` and the report to ``ckpt_dir/presence_fusion.json``
    (both atomically; the directory is made if needed). Returns the checkpoint path."""
    net = unwrap_model(network)
    os.makedirs(ckpt_dir, exist_ok=True)
    path = os.path.join(os.fspath(ckpt_dir), "model.pt")
    atomic_torch_save(net.state_dict(), path)
    with atomic_open(os.path.join(os.fspath(ckpt_dir), "presence_fusion.json")) as f:
        json.dump(report, f, indent=2)
    return path
