"""Small helpers for code that receives a SADAAn network inside a wrapper: (Distributed)DataParallel, or a wrapper of
this package whose checkpoints must stay those of the bare network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn as nn

from monai_glue.checkpoint import unwrap_model

__all__ = ["StateOfWrappedModel", "check_positive_sizes", "unwrap_model"]


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


class StateOfWrappedModel(nn.Module):
    """Base of wrappers that hold a network as ``self.model`` and save / load exactly its state dict (no
    ``model.`` prefix), so a checkpoint of the wrapper and of the bare network are interchangeable."""

    model: nn.Module

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Any, strict: bool = True, assign: bool = False
    ) -> Any:
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)
