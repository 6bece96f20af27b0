"""Package attributes imported on first use (PEP 562), so importing a package stays cheap."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_names", "names_by_module"]


def lazy_names(package: str, table: Mapping[str, str]) -> Callable[[str], Any]:
    """Module-level ``__getattr__`` for ``package`` that imports each name of ``table`` from its module on first
    access and keeps it in the package's namespace.

    No ``__dir__`` lists the names before they are imported: MONAI's bundle parser scans the members of every loaded
    ``monai*`` module to resolve short ``_target_`` names, and a ``dir()`` listing them would import them all (the
    whole package for one inference). ``__all__`` still names them.

    Args:
        package: the package's ``__name__``.
        table: public name -> dotted module that defines it.

    Returns:
        ``__getattr__`` to assign at the package's top level.

    Example::

        __getattr__ = lazy_names(__name__, {"parse_bool": "monai_glue.config_values"})
    """

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__


def names_by_module(groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The ``table`` of :func:`lazy_names` written module by module.

    Args:
        groups: dotted module -> the public names it defines.

    Returns:
        public name -> dotted module, in the order given.

    Raises:
        ValueError: a name given for two modules.

    Example::

        _LAZY = names_by_module({"monai_glue.config_values": ("parse_bool", "parse_device")})
    """
    counts = Counter(name for names in groups.values() for name in names)
    twice = [name for name, count in counts.items() if count > 1]
    if twice:
        owners = [module for module, names in groups.items() for name in names if name == twice[0]]
        raise ValueError(f"expected each name under one module, got {twice[0]!r} under {owners[0]!r} and {owners[1]!r}")
    return {name: module for module, names in groups.items() for name in names}
