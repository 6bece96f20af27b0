"""Helpers shared by the SADAAn blocks: activation checkpointing that leaves BatchNorm statistics untouched."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint

__all__ = ["preserve_batchnorm_stats", "checkpoint_call"]


@contextmanager
def preserve_batchnorm_stats(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Restore the running statistics of every BatchNorm inside ``modules`` on exit.

    Activation checkpointing runs a segment's forward a second time during backward. A BatchNorm in training
    mode would fold the batch statistics into ``running_mean``/``running_var`` (and count
    ``num_batches_tracked``) twice. Wrapping the recomputation in this context keeps exactly one update, the
    one made by the original forward pass. The recomputed outputs are unaffected: in training mode BatchNorm
    normalises with the batch statistics, not the running ones.

    Args:
        modules: modules whose BatchNorm descendants are protected.
    """
    saved: list[tuple[_BatchNorm, dict[str, torch.Tensor]]] = []
    for module in modules:
        for bn in module.modules():
            if isinstance(bn, _BatchNorm) and bn.track_running_stats:
                buffers = {
                    name: buf.detach().clone()
                    for name, buf in (
                        ("running_mean", bn.running_mean),
                        ("running_var", bn.running_var),
                        ("num_batches_tracked", bn.num_batches_tracked),
                    )
                    if buf is not None
                }
                saved.append((bn, buffers))
    try:
        yield
    finally:
        with torch.no_grad():
            for bn, buffers in saved:
                for name, value in buffers.items():
                    getattr(bn, name).copy_(value)


def checkpoint_call(function: Callable[..., Any], *args: Any, modules: Sequence[nn.Module]) -> Any:
    """Run ``function(*args)`` under non-reentrant activation checkpointing.

    Only the inputs are kept for backward; the segment is recomputed when its gradients are needed. The
    recomputation restores the BatchNorm running statistics of ``modules`` afterwards (see
    :func:`preserve_batchnorm_stats`), so a checkpointed training step updates them exactly as an ordinary one.

    Args:
        function: the segment to run, e.g. a ``nn.Sequential`` or a closure over several modules.
        args: tensors passed to ``function``.
        modules: the modules ``function`` uses (their BatchNorm statistics are protected on recompute).

    Returns:
        whatever ``function`` returns.
    """
    return checkpoint(
        function,
        *args,
        use_reentrant=False,
        context_fn=lambda: (nullcontext(), preserve_batchnorm_stats(modules)),
    )
