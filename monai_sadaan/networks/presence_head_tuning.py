"""Training only the presence head of a trained SADAAn network, on the frozen network's own features.

The presence classifiers read globally pooled features and one alignment score per structure. While the whole
network trains, these inputs move under them, and their useful differences can be small (an alignment score
that separates present from absent pancreas by a few hundredths): at the low learning rate that keeps the
classifiers' ReLU units alive during joint training, they would need many thousands of steps to scale such an
input up. With the body frozen the inputs stand still, so the head can take a higher learning rate. This is the
usual last stage of a two-stage recipe (train everything, then tune the classifier on frozen features).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn as nn

from monai_glue.config_values import parse_bool

__all__ = ["PresenceHeadTuning"]


class PresenceHeadTuning(nn.Module):
    """Wrap a :class:`~monai_sadaan.networks.SpatialAttentionMedicalSegmenter` so that a trainer updates only the
    named submodules (by default the whole ``absence_detector``: presence classifiers and confidence head).

    * Every other parameter gets ``requires_grad=False``.
    * :meth:`train` keeps everything but the tuned submodules in eval mode, so BatchNorm layers normalise with
      their running statistics (the features the head sees in training are the ones it will see in inference,
      and the statistics stay as trained) and the frozen part runs its faster eval graph (``fused_inference``).
    * :meth:`state_dict` / :meth:`load_state_dict` are the wrapped network's, without a prefix: checkpoints
      written through the wrapper load into the bare network, as the bundle's inference expects.

    ``forward(x)`` is the wrapped network's: ``x`` ``[B, C, D, H, W]``, returns its output dict.

    Args:
        model: the trained network.
        trainable: dotted names of the submodules to tune.
        fused_inference: run the frozen part with the network's fused eval graph (same outputs up to float
            rounding, faster). The previous setting is not restored.

    Raises:
        ValueError: a name in ``trainable`` that is not a submodule of ``model``, or one with no parameters; a
            ``fused_inference`` that is not true or false.
    """

    def __init__(
        self, model: nn.Module, trainable: Sequence[str] = ("absence_detector",), fused_inference: bool = True
    ) -> None:
        super().__init__()
        fused_inference = parse_bool(fused_inference, "fused_inference")
        names = [trainable] if isinstance(trainable, str) else list(trainable)
        modules = dict(model.named_modules())
        unknown = [n for n in names if not n or n not in modules]
        if not names or unknown:
            raise ValueError(f"expected submodule names of {type(model).__name__} to tune, got {names}")
        empty = [n for n in names if not any(True for _ in modules[n].parameters())]
        if empty:
            raise ValueError(f"expected submodules with parameters to tune, got {empty} without any")
        self.model = model
        self.trainable = tuple(names)
        # a plain list (not registered twice as submodules); train() runs every iteration, so no lookup there
        self._tuned_modules = [modules[n] for n in names]
        tuned = {id(p) for n in names for p in modules[n].parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in tuned)
        if fused_inference and hasattr(model, "fused_inference"):
            model.fused_inference = True
        self.train(True)

    def train(self, mode: bool = True) -> PresenceHeadTuning:  # type: ignore[override]
        """Eval mode for the frozen part; ``mode`` for the tuned submodules (dropout on in training)."""
        self.training = mode
        self.model.eval()
        for module in self._tuned_modules:
            module.train(mode)
        return self

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        """The parameters the trainer should update (those of the tuned submodules)."""
        return (p for p in self.model.parameters() if p.requires_grad)

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:  # type: ignore[override]
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, x: torch.Tensor) -> Any:
        return self.model(x)
