"""Output transforms that pick tensors out of dict predictions and dict targets in an engine's output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monai.utils import CommonKeys

__all__ = ["PickFromDictOutput"]


class PickFromDictOutput:
    """``engine.state.output`` -> ``(output[pred][pred_key], output[label][label_key])`` for metric handlers.

    Works on the batch form of the output (``decollate=False`` in the engine). Either key may be ``None`` to pass
    the whole prediction or target through.
    """

    def __init__(self, pred_key: str | None, label_key: str | None) -> None:
        self.pred_key = pred_key
        self.label_key = label_key

    @staticmethod
    def _pick(container: Any, key: str | None, what: str) -> Any:
        if key is None:
            return container
        if not isinstance(container, Mapping) or key not in container:
            got = sorted(container) if isinstance(container, Mapping) else type(container).__name__
            raise KeyError(f"expected {what} key {key!r} in the engine output, got {got}")
        return container[key]

    def __call__(self, output: Mapping[str, Any]) -> tuple[Any, Any]:
        return (
            self._pick(output[CommonKeys.PRED], self.pred_key, "prediction"),
            self._pick(output[CommonKeys.LABEL], self.label_key, "target"),
        )
