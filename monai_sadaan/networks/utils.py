"""Small helpers for code that receives a SADAAn network inside a wrapper: (Distributed)DataParallel, or a wrapper of
this package whose checkpoints must stay those of the bare network."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from monai_glue.checkpoint import unwrap_model

__all__ = ["StateOfWrappedModel", "unwrap_model"]


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
