"""Safe checkpoint loading: ``torch.load(..., weights_only=True)`` with errors that say what went wrong."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = [
    "CheckpointError",
    "SafeCheckpointLoader",
    "StateOfWrappedModel",
    "load_checkpoint",
    "load_state_dict_checked",
    "unwrap_model",
]


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe, or made for another configuration."""


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu", key: str | None = None) -> Any:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers only, never arbitrary code.

    Args:
        path: ``.pt`` / ``.pth`` file written by ``torch.save``.
        map_location: device to map storages to.
        key: when given and the loaded object is a dict holding ``key`` (for example ``"model"`` in MONAI's
            CheckpointSaver output), return that entry.

    Raises:
        CheckpointError: the file is missing, empty, truncated or corrupt, or holds objects other than weights.
    """
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"expected a checkpoint file, got a missing path: {p}")
    if p.stat().st_size == 0:
        raise CheckpointError(f"expected a torch checkpoint, got an empty file: {p}")
    try:
        obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {p}: it holds objects other than tensors and plain containers "
            f"(weights_only=True). Detail: {str(e).splitlines()[0]}"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"expected a torch checkpoint, got a truncated or corrupt file: {p} ({e})") from e
    if key is not None and isinstance(obj, Mapping) and key in obj:
        obj = obj[key]
    return obj


def load_state_dict_checked(module: torch.nn.Module, state: Mapping[str, Any], source: str = "checkpoint") -> None:
    """``module.load_state_dict(state, strict=True)`` with a message listing what differs.

    A submodule with ``optional_in_checkpoint = True`` (the presence fusion) may be missing from the checkpoint
    as a whole; it then loads as its initial state.

    Raises:
        CheckpointError: names the missing / unexpected keys and the first shape mismatches, which is what a
            checkpoint made for another configuration (other structure set, channels, spatial_size) looks like.
    """
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a state dict (a mapping of names to tensors) in {source}, got {type(state).__name__}")
    own = module.state_dict()
    # older layouts a submodule knows how to read (the presence fusion before bundle 0.8.0), brought up to date
    upgrades = [
        (name + "." if name else "", sub) for name, sub in module.named_modules() if hasattr(sub, "upgrade_state_dict")
    ]
    if upgrades:
        state = dict(state)
        for prefix, sub in upgrades:
            if any(k.startswith(prefix) for k in state):
                sub.upgrade_state_dict(state, prefix)
    # submodules that load as their initial state from a checkpoint made before they existed (presence fusion)
    optional = [
        name + "." if name else ""
        for name, sub in module.named_modules()
        if getattr(sub, "optional_in_checkpoint", False)
    ]
    absent = [p for p in optional if not any(k.startswith(p) for k in state)]
    missing = [k for k in own if k not in state and not any(k.startswith(p) for p in absent)]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k}: expected {tuple(own[k].shape)}, got {tuple(state[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(own[k].shape) != tuple(state[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if mismatched:
            parts.append("shape mismatches: " + "; ".join(mismatched[:5]) + (" ..." if len(mismatched) > 5 else ""))
        if missing:
            parts.append(f"missing keys: {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        if unexpected:
            parts.append(f"unexpected keys: {unexpected[:5]}" + (" ..." if len(unexpected) > 5 else ""))
        raise CheckpointError(
            f"{source} was made for another configuration of {type(module).__name__}: " + ", ".join(parts)
        )
    module.load_state_dict(state, strict=True)


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The network inside a wrapper that holds it as ``.module`` (DataParallel, DistributedDataParallel), else
    ``model`` itself.

    Args:
        model: a network or a wrapper of one.

    Returns:
        the wrapped network.
    """
    return model.module if isinstance(getattr(model, "module", None), torch.nn.Module) else model


class StateOfWrappedModel(torch.nn.Module):
    """Base of wrappers that hold a network as ``self.model`` and save / load exactly its state dict (no
    ``model.`` prefix), so a checkpoint of the wrapper and of the bare network are interchangeable."""

    model: torch.nn.Module

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Any, strict: bool = True, assign: bool = False
    ) -> Any:
        return self.model.load_state_dict(state_dict, strict=strict, assign=assign)


class SafeCheckpointLoader:
    """Like MONAI's ``CheckpointLoader`` for one network, with ``weights_only=True`` and errors that say which
    configuration the checkpoint does not match (other structure set, channels, spatial_size).

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
        net = unwrap_model(self.network)
        load_state_dict_checked(net, state, source=f"checkpoint {self.load_path}")
