"""Strict parsing of values that arrive from bundle configs and command lines.

``python -m monai.bundle run --flag false`` hands the config the *string* ``"false"``, which Python treats as true.
Every component that takes a switch from a config parses it with :func:`parse_bool`; every device string goes
through :func:`parse_device`, so that nothing a user types is pasted into a config expression.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["parse_bool", "parse_device"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_DEVICE = re.compile(r"^(cpu|mps|cuda(:[0-9]{1,3})?)$")


def parse_bool(value: Any, name: str = "value") -> bool:
    """``value`` as a bool, refusing anything that is not clearly true or false.

    Args:
        value: a bool, the integers 0 / 1, or one of the strings ``true / false, yes / no, on / off, 1 / 0``
            (any case, surrounding spaces ignored).
        name: what the value is, for the error message (for example ``"write_segmentation"``).

    Raises:
        ValueError: any other value, naming ``name``, what was expected and what came.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected {name} to be true or false (true/false, yes/no, on/off, 1/0), got {value!r}")


def parse_device(value: Any, name: str = "device") -> str:
    """A device string checked against ``cpu``, ``mps``, ``cuda`` or ``cuda:N``; returned lower-cased.

    Raises:
        ValueError: anything else (the value is never evaluated or pasted into an expression).
    """
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not _DEVICE.match(text):
        raise ValueError(f"expected {name} 'cpu', 'mps', 'cuda' or 'cuda:N', got {value!r}")
    return text
