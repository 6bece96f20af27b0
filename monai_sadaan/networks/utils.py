"""Small helpers for code that receives a SADAAn network possibly wrapped by (Distributed)DataParallel."""

from __future__ import annotations

import torch.nn as nn

__all__ = ["unwrap_model"]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The network inside a wrapper that holds it as ``.module`` (DataParallel, DistributedDataParallel), else
    ``model`` itself.

    Args:
        model: a network or a wrapper of one.

    Returns:
        the wrapped network.
    """
    return model.module if isinstance(getattr(model, "module", None), nn.Module) else model
