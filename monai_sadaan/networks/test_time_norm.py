"""Test-time normalisation: BatchNorm that, at inference, also uses the statistics of the case it is given.

A network trained on generated phantoms meets real CT with feature statistics its BatchNorm layers never saw: the
running means and variances are the phantoms'. Re-estimating them on the test input (prediction-time BatchNorm,
AdaBN; Schneider et al. 2020 mix them with the training statistics) is a standard, label-free correction for such
covariate shift. Here every case is normalised by its own statistics, so a result never depends on what else is in
the batch:

    mean = w * running_mean + (1 - w) * mean_b        var = w * running_var + (1 - w) * var_b

per channel, where ``mean_b`` and ``var_b`` are case ``b``'s mean and (biased) variance over its spatial positions,
and ``w`` is ``source_weight`` (1: plain eval-mode BatchNorm, 0: the case's own statistics alone). Its parameters,
buffers and state-dict keys are those of a ``BatchNorm3d``, so checkpoints load either way.

In training mode the layer is an ordinary ``BatchNorm3d``, unless ``in_training`` is set: then the batch's statistics
stand where the running ones stand at inference (``mean = w * mean_batch + (1 - w) * mean_b``, the same for the
variance), so a network is trained with the normalisation it will be run with. The running statistics are updated
from the batch's, as ``BatchNorm3d`` updates them.

:func:`use_input_statistics` switches a trained network's ``BatchNorm3d`` layers in place. The fast graph
(:mod:`monai_sadaan.networks.fast_inference`) folds fixed statistics into the convolutions, so it is not built for a
network that uses input statistics (:func:`uses_input_statistics`).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from monai_glue.checkpoint import unwrap_model
from monai_glue.config_values import parse_bool

__all__ = ["InputStatisticsBatchNorm3d", "use_input_statistics", "uses_input_statistics"]


def _check_source_weight(source_weight: float) -> float:
    try:
        w = float(source_weight)
    except (TypeError, ValueError):
        raise ValueError(f"expected source_weight a number in [0, 1], got {source_weight!r}") from None
    if not (math.isfinite(w) and 0.0 <= w <= 1.0):
        raise ValueError(f"expected source_weight a number in [0, 1], got {source_weight!r}")
    return w


class InputStatisticsBatchNorm3d(nn.BatchNorm3d):
    """``BatchNorm3d`` whose eval-mode statistics mix the running ones with each case's own (see the module).

    Build it with :func:`use_input_statistics` from a trained network, or directly like a ``BatchNorm3d`` with an
    extra ``source_weight``.

    Args:
        num_features: channels ``C``.
        source_weight: ``w`` in [0, 1], the weight of the running (training) statistics.
        in_training: mix the batch's statistics with each case's own in training mode too (default: plain
            ``BatchNorm3d`` in training).
        kwargs: the rest of ``BatchNorm3d``'s arguments (``track_running_stats`` must stay true).
    """

    def __init__(
        self, num_features: int, source_weight: float = 0.5, in_training: bool = False, **kwargs: object
    ) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        if not self.track_running_stats:
            raise ValueError("expected track_running_stats=True: the running statistics are the source statistics")
        self.source_weight = _check_source_weight(source_weight)
        self.in_training = bool(in_training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, source_weight={self.source_weight}, in_training={self.in_training}"

    def _batch_statistics(self, var_b: torch.Tensor, mean_b: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's mean and biased variance ``[C]`` from the cases' ``[B, C]`` (``n`` positions per case), and
        the running statistics updated from them as ``BatchNorm3d`` updates its own."""
        mean = mean_b.mean(0)
        var = (var_b + (mean_b - mean) ** 2).mean(0)  # every case has the same number of positions
        count = n * mean_b.shape[0]
        if count < 2:
            raise ValueError(f"expected more than 1 value per channel when training, got input of {count}")
        with torch.no_grad():
            self.num_batches_tracked.add_(1)  # type: ignore[union-attr]
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.mul_(1.0 - factor).add_(mean.detach(), alpha=factor)  # type: ignore[union-attr]
            unbiased = var.detach() * (count / (count - 1))
            self.running_var.mul_(1.0 - factor).add_(unbiased, alpha=factor)  # type: ignore[union-attr]
        return mean, var

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Args:
            x: ``[B, C, D, H, W]``.

        Returns:
            ``[B, C, D, H, W]``: each case normalised by its mixed statistics (the running ones mixed in at eval, the
            batch's in training with ``in_training``), then scaled and shifted by the layer's affine parameters;
            plain ``BatchNorm3d`` in training mode without ``in_training``, and at ``w = 1``.
        """
        w = self.source_weight
        if (self.training and not self.in_training) or w == 1.0:
            return super().forward(x)  # plain BatchNorm: batch statistics in training, running ones at w = 1
        self._check_input_dim(x)
        dims = tuple(range(2, x.dim()))
        var_b, mean_b = torch.var_mean(x.float(), dim=dims, correction=0)  # [B, C] each
        if self.training:
            source_mean, source_var = self._batch_statistics(var_b, mean_b, x[0, 0].numel())
        else:
            source_mean, source_var = self.running_mean, self.running_var
        mean = w * source_mean + (1.0 - w) * mean_b  # type: ignore[operator]
        var = w * source_var + (1.0 - w) * var_b  # type: ignore[operator]
        scale = torch.rsqrt(var + self.eps)
        shift = -mean * scale
        if self.affine:
            scale = scale * self.weight
            shift = shift * self.weight + self.bias
        view = (*scale.shape, *([1] * len(dims)))
        return x * scale.view(view).to(x.dtype) + shift.view(view).to(x.dtype)


def use_input_statistics(
    model: nn.Module, source_weight: float = 0.5, test_time_norm: bool | str = True, in_training: bool | str = False
) -> nn.Module:
    """Switch every ``BatchNorm3d`` of ``model`` to :class:`InputStatisticsBatchNorm3d`, in place.

    Parameters and buffers are kept (the same tensors), so the state dict and a later checkpoint load are unchanged;
    only the eval-mode forward differs (and the training-mode one with ``in_training``). Call it again to change
    ``source_weight``. The bundle's ``network`` calls it with its ``test_time_norm`` switch and
    ``test_time_norm_source_weight`` (``train.json`` with ``in_training``, so the weights are trained as they are run).

    Args:
        model: a network (or a wrapper holding one as ``.module``) with ``BatchNorm3d`` layers.
        source_weight: ``w`` in [0, 1] (see the module); 1 gives the plain eval-mode result.
        test_time_norm: the switch (``"false"`` from a command line is false); ``model`` is returned untouched when
            false.
        in_training: also mix each case's statistics (with the batch's) in training mode.

    Returns:
        ``model`` itself.

    Raises:
        ValueError: a ``test_time_norm`` or ``in_training`` that is not true or false; ``source_weight`` outside
            [0, 1]; a model without a ``BatchNorm3d`` (nothing would change); a layer that does not track running
            statistics.
    """
    train_too = parse_bool(in_training, "in_training")
    if not parse_bool(test_time_norm, "test_time_norm"):
        return model
    w = _check_source_weight(source_weight)
    layers = [m for m in unwrap_model(model).modules() if isinstance(m, nn.BatchNorm3d)]
    if not layers:
        raise ValueError(f"expected a network with BatchNorm3d layers, got {type(model).__name__} without any")
    for m in layers:
        if not m.track_running_stats:
            raise ValueError("expected BatchNorm3d layers that track running statistics, got one that does not")
        m.__class__ = InputStatisticsBatchNorm3d
        m.source_weight = w  # type: ignore[assignment]
        m.in_training = train_too  # type: ignore[assignment]
    return model


def uses_input_statistics(model: nn.Module) -> bool:
    """Whether any layer of ``model`` normalises by input statistics at eval time (``source_weight < 1``)."""
    return any(
        isinstance(m, InputStatisticsBatchNorm3d) and m.source_weight < 1.0 for m in unwrap_model(model).modules()
    )
