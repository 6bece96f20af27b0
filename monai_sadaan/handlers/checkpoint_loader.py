"""Load network weights into an engine's network when it starts, safely and with clear errors."""

from __future__ import annotations

import os
from typing import Any

import torch

from monai_sadaan.utils import load_checkpoint, load_state_dict_checked

__all__ = ["SafeCheckpointLoader"]


class SafeCheckpointLoader:
    """Like MONAI's ``CheckpointLoader`` for one network, with ``weights_only=True`` and errors that say which
    configuration the checkpoint does not match (other structure set, channels, spatial_dims).

    Args:
        load_path: checkpoint file: a plain state dict, or a dict holding it under ``key``.
        network: the module to load into (unwrapped from DistributedDataParallel automatically).
        key: entry of a nested checkpoint (MONAI CheckpointSaver writes ``{"model": ...}`` with several objects).
        map_location: device for the loaded tensors.
    """

    def __init__(
        self, load_path: str | os.PathLike, network: torch.nn.Module, key: str | None = "model", map_location: Any = "cpu"
    ) -> None:
        self.load_path = load_path
        self.network = network
        self.key = key
        self.map_location = map_location

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine: Any = None) -> None:
        state = load_checkpoint(self.load_path, map_location=self.map_location, key=self.key)
        net = self.network.module if hasattr(self.network, "module") else self.network
        load_state_dict_checked(net, state, source=f"checkpoint {self.load_path}")
