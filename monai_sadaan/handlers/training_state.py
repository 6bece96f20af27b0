"""Crash-safe training state: save everything a run needs to resume after each epoch, resume on start.

Saved atomically (temporary file, then rename) after every epoch: network and optimizer state, the engine's
epoch/iteration counters, every random generator that shapes the next epoch (torch, numpy, Python, and each
MONAI random transform of the data pipeline), and the history of epoch metrics. A run killed mid-epoch
(SIGKILL included) restarts from the last completed epoch and, with the same seed, reproduces the metrics an
uninterrupted run would have produced. Everything loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_glue import atomic_open, atomic_torch_save, load_checkpoint
from monai_glue.checkpoint import unwrap_model

__all__ = ["TrainingStateCheckpoint"]


def _np_state_to_tensors(state: tuple) -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = state
    return {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def _np_state_from_tensors(d: dict[str, Any]) -> tuple:
    return ("MT19937", d["keys"].numpy().astype(np.uint32), d["pos"], d["has_gauss"], d["cached"])


def _random_transforms(transform: Any) -> list[Any]:
    """Every object with a numpy RandomState ``R`` inside a (nested) MONAI Compose, in a stable order."""
    found: list[Any] = []

    def walk(t: Any) -> None:
        if hasattr(t, "R") and isinstance(getattr(t, "R"), np.random.RandomState):
            found.append(t)
        for child in getattr(t, "transforms", ()) or ():
            walk(child)
        for attr in vars(t).values() if hasattr(t, "__dict__") else ():
            if hasattr(attr, "R") and isinstance(getattr(attr, "R"), np.random.RandomState) and attr not in found:
                walk(attr)

    walk(transform)
    return found


class TrainingStateCheckpoint:
    """Trainer handler that makes training resumable.

    Args:
        save_dir: folder of ``training_state.pt`` and ``metrics_history.json``.
        network: the trained module.
        optimizer: its optimizer.
        transforms: the training data pipeline(s) whose random transforms must resume their streams.
        resume: on start, load ``training_state.pt`` when it exists and continue from its epoch.
        metric_names: engine metrics to record per epoch in the history (default: all of them).
        lr_scheduler: optional scheduler to save and restore.
    """

    STATE_FILE = "training_state.pt"
    HISTORY_FILE = "metrics_history.json"

    def __init__(
        self,
        save_dir: str | os.PathLike,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        transforms: Any | Sequence[Any] = (),
        resume: bool = True,
        metric_names: Sequence[str] | None = None,
        lr_scheduler: Any = None,
    ) -> None:
        self.save_dir = Path(save_dir)
        self.network = network
        self.optimizer = optimizer
        self.transforms = list(transforms) if isinstance(transforms, (list, tuple)) else [transforms]
        self.resume = resume
        self.metric_names = metric_names
        self.lr_scheduler = lr_scheduler
        self.history: list[dict[str, Any]] = []

    @property
    def state_path(self) -> Path:
        return self.save_dir / self.STATE_FILE

    def _rand_objects(self) -> list[Any]:
        objs: list[Any] = []
        for t in self.transforms:
            if t is not None:
                objs.extend(_random_transforms(t))
        return objs

    def attach(self, engine: Any) -> None:
        from ignite.engine import Events

        engine.add_event_handler(Events.STARTED, self.load)
        engine.add_event_handler(Events.EPOCH_COMPLETED, self.save)

    def _net(self) -> torch.nn.Module:
        return unwrap_model(self.network)

    def save(self, engine: Any) -> None:
        metrics = {k: v for k, v in engine.state.metrics.items() if self.metric_names is None or k in self.metric_names}
        self.history.append({"epoch": int(engine.state.epoch), **{k: float(v) for k, v in metrics.items() if np.isscalar(v)}})
        state = {
            "model": self._net().state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": int(engine.state.epoch),
            "iteration": int(engine.state.iteration),
            "torch_rng": torch.get_rng_state(),
            "numpy_rng": _np_state_to_tensors(np.random.get_state()),
            "python_rng": json.dumps(random.getstate()),
            "transform_rng": [_np_state_to_tensors(t.R.get_state()) for t in self._rand_objects()],
            "history": json.dumps(self.history),
        }
        if self.lr_scheduler is not None:
            state["lr_scheduler"] = self.lr_scheduler.state_dict()
        atomic_torch_save(state, self.state_path)
        with atomic_open(self.save_dir / self.HISTORY_FILE, "w") as f:
            json.dump(self.history, f, indent=2)

    def _restore_schedule_position(self, saved: dict[str, Any]) -> None:
        """Resume the learning-rate schedule where it stopped, keeping this run's schedule hyper-parameters.

        Only the position (``last_epoch``, ``_step_count``) comes from the saved state; ``T_max``, ``eta_min``
        and the like come from the configuration of the run that resumes, so that a run resumed with another
        epoch count (``--epochs 40`` after ``--epochs 20``) follows the schedule an uninterrupted run of that
        length would. Schedulers with a closed form then set the optimizer's learning rates for the position.
        """
        current = self.lr_scheduler.state_dict()
        for key in ("last_epoch", "_step_count"):
            if key in saved:
                current[key] = saved[key]
        self.lr_scheduler.load_state_dict(current)
        closed_form = getattr(self.lr_scheduler, "_get_closed_form_lr", None)
        if callable(closed_form):
            for group, lr in zip(self.optimizer.param_groups, closed_form()):
                group["lr"] = lr
            self.lr_scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def load(self, engine: Any) -> None:
        if not (self.resume and self.state_path.is_file()):
            return
        state = load_checkpoint(self.state_path)
        self._net().load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.lr_scheduler is not None and "lr_scheduler" in state:
            self._restore_schedule_position(state["lr_scheduler"])
        engine.state.epoch = int(state["epoch"])
        engine.state.iteration = int(state["iteration"])
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(_np_state_from_tensors(state["numpy_rng"]))
        py = json.loads(state["python_rng"])
        random.setstate((py[0], tuple(py[1]), py[2]))
        objs = self._rand_objects()
        if len(objs) != len(state["transform_rng"]):
            raise ValueError(
                f"expected random states for {len(objs)} transforms in {self.state_path}, got "
                f"{len(state['transform_rng'])}: the data pipeline changed since the checkpoint"
            )
        for t, s in zip(objs, state["transform_rng"]):
            t.R.set_state(_np_state_from_tensors(s))
        self.history = json.loads(state["history"])
