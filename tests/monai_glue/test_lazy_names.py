"""``monai_glue.lazy_names``: the one lazy ``__getattr__`` of the packages, and their tables written module by module."""

from __future__ import annotations

import importlib

import pytest

from monai_glue.lazy_names import names_by_module


def test_names_by_module_maps_each_name_to_its_module_in_order():
    table = names_by_module({"pkg.a": ("X", "y"), "pkg.b": ("Z",)})
    assert table == {"X": "pkg.a", "y": "pkg.a", "Z": "pkg.b"} and list(table) == ["X", "y", "Z"]


def test_names_by_module_refuses_a_name_under_two_modules():
    with pytest.raises(ValueError, match="expected each name under one module, got 'X' under 'pkg.a' and 'pkg.b'"):
        names_by_module({"pkg.a": ("X",), "pkg.b": ("Z", "X")})
    with pytest.raises(ValueError, match="got 'X' under 'pkg.a' and 'pkg.a'"):
        names_by_module({"pkg.a": ("X", "X")})


@pytest.mark.parametrize(
    "package",
    [
        "monai_glue", "monai_sadaan", "monai_sadaan.data", "monai_sadaan.inferers", "monai_sadaan.io",
        "monai_sadaan.networks", "monai_sadaan.networks.nets", "monai_sadaan.transforms", "seq_models",
    ],
)  # fmt: skip
def test_every_lazy_name_of_a_package_is_in_all_and_defined_by_its_module(package):
    module = importlib.import_module(package)
    assert module.__all__ == sorted(module._LAZY)
    for name, source in module._LAZY.items():
        assert hasattr(importlib.import_module(source), name), f"{package}.{name}: not in {source}"
