from __future__ import annotations

import pytest

from monai_glue import parse_bool, parse_device


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), (1, True), (0, False), ("true", True), ("False", False), (" yes ", True),
     ("no", False), ("ON", True), ("off", False), ("1", True), ("0", False)],
)
def test_parse_bool_accepts_clear_values(value, expected):
    assert parse_bool(value) is expected


@pytest.mark.parametrize("value", ["flase", "", "2", 2, -1, 0.0, 1.0, None, [], "true false"])
def test_parse_bool_refuses_anything_else_naming_the_setting(value):
    with pytest.raises(ValueError, match=r"expected write_segmentation to be true or false .* got"):
        parse_bool(value, "write_segmentation")


@pytest.mark.parametrize("value, expected", [("cpu", "cpu"), ("CUDA", "cuda"), ("cuda:0", "cuda:0"), (" cuda:12 ", "cuda:12"), ("mps", "mps")])
def test_parse_device_accepts_device_names(value, expected):
    assert parse_device(value) == expected


@pytest.mark.parametrize(
    "value",
    ["cuda') if __import__('os').system('touch /tmp/INJ') else torch.device('cpu", "cuda:", "cuda:x", "gpu", "cpu;", None, 0],
)
def test_parse_device_refuses_anything_else(value):
    with pytest.raises(ValueError, match=r"expected device 'cpu', 'mps', 'cuda' or 'cuda:N', got"):
        parse_device(value)
