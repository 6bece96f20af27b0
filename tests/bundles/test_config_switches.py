"""Issue 22 item 8: every switch a bundle config takes is parsed strictly (``"false"`` is false, a typo refused).

``python -m monai.bundle run --flag false`` hands the config the string ``"false"``, which Python treats as true.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from monai.bundle import ConfigParser

from monai_sadaan.engines.model_setup import load_pretrained_encoder
from monai_sadaan.networks import SpatialAttentionMedicalSegmenter
from seq_models.handlers import ForecastWriterHandler
from seq_models.inferers import AutoregressiveForecaster, TiledForecaster
from seq_models.inferers.sliding_window import TimeSlidingWindowInferer
from seq_models.inferers.streaming import GRUStreamingInferer
from seq_models.networks.gru_regression import PaddedGRURegressor

BUNDLES = Path(__file__).resolve().parents[2] / "bundles"
SADAAN = BUNDLES / "sadaan_abdominal_ct_segmentation" / "configs"
TINY = {"spatial_size": (16, 16, 16), "features": (2, 4, 4, 4, 4), "feature_channels": 4}

#: component arguments that receive a switch as ``"@switch"`` and parse it themselves (each has a unit test)
PARSED_ARGUMENTS = {
    ("SpatialAttentionMedicalSegmenter", "presence_fusion"),
    ("SpatialAttentionMedicalSegmenter", "use_checkpoint"),
    ("SpatialAttentionMedicalSegmenter", "memory_efficient_head"),
    ("SaveSADAAnOutputsd", "write_segmentation"),  # monai_sadaan.io (the case writer parses its own switches)
    ("SaveSADAAnOutputsd", "write_probabilities"),
}
#: function keyword arguments in expressions that parse the switch they receive
PARSED_KEYWORDS = {
    "freeze_encoder": "load_pretrained_encoder(",
    "fast_inference": "attach_fast_inference(",
    "test_time_norm": "use_input_statistics(",
}


# ---------------------------------------------------------------- components


SWITCH_STATE = {
    "presence_fusion": lambda net: net.presence_fusion is not None,
    "use_checkpoint": lambda net: net.use_checkpoint,
    "memory_efficient_head": lambda net: net.segmentation_head.memory_efficient,
}


@pytest.mark.parametrize("switch", sorted(SWITCH_STATE))
def test_network_switches(switch):
    state = SWITCH_STATE[switch]
    assert state(SpatialAttentionMedicalSegmenter(**TINY, **{switch: "false"})) is False
    assert state(SpatialAttentionMedicalSegmenter(**TINY, **{switch: "no"})) is False
    assert state(SpatialAttentionMedicalSegmenter(**TINY, **{switch: "true"})) is True
    with pytest.raises(ValueError, match=rf"expected {switch} to be true or false .*got 'flase'"):
        SpatialAttentionMedicalSegmenter(**TINY, **{switch: "flase"})


def test_load_pretrained_encoder_freeze_encoder(tmp_path):
    torch.save({"model": SpatialAttentionMedicalSegmenter(**TINY).state_dict()}, tmp_path / "m.pt")
    net = load_pretrained_encoder(SpatialAttentionMedicalSegmenter(**TINY), tmp_path / "m.pt", freeze_encoder="false")
    assert all(p.requires_grad for p in net.encoder.parameters())  # "false" used to freeze the encoder
    net = load_pretrained_encoder(SpatialAttentionMedicalSegmenter(**TINY), tmp_path / "m.pt", freeze_encoder="True")
    assert not any(p.requires_grad for p in net.encoder.parameters())
    with pytest.raises(ValueError, match="expected freeze_encoder to be true or false .*got 'off!'"):
        load_pretrained_encoder(SpatialAttentionMedicalSegmenter(**TINY), tmp_path / "m.pt", freeze_encoder="off!")


@pytest.mark.parametrize(
    "make, attribute, name",
    [
        (lambda v: AutoregressiveForecaster(clamp_output=v), "clamp_output", "clamp_output"),
        (lambda v: TiledForecaster(progress=v), "progress", "progress"),
        (lambda v: TimeSlidingWindowInferer(8, 2, progress=v), "progress", "progress"),
        (lambda v: ForecastWriterHandler("unused", write_png=v), "write_png", "write_png"),
        (lambda v: GRUStreamingInferer(PaddedGRURegressor(3, 4, 1), check_inputs=v), "check_inputs", "check_inputs"),
    ],
)
def test_switches_of_seq_models_components_are_parsed_strictly(make, attribute, name):
    assert getattr(make("false"), attribute) is False
    assert getattr(make("True"), attribute) is True
    assert getattr(make(False), attribute) is False
    with pytest.raises(ValueError, match=rf"expected {name} to be true or false .*got 'flase'"):
        make("flase")


# ---------------------------------------------------------------- config expressions


def _component_id(config: Any, target_suffix: str, prefix: str = "") -> str:
    """The config id of the first component whose ``_target_`` ends with ``target_suffix``."""
    for key, value, _ in _walk(config, prefix):
        if isinstance(value, dict) and str(value.get("_target_", "")).endswith(target_suffix):
            return key
    raise KeyError(target_suffix)


def _walk(config: Any, prefix: str = "", parent: Any = None) -> Iterator[tuple[str, Any, Any]]:
    """``(id, value, parent)`` for every value in a config, depth first."""
    items = config.items() if isinstance(config, dict) else enumerate(config) if isinstance(config, list) else ()
    for k, v in items:
        key = f"{prefix}#{k}" if prefix else str(k)
        yield key, v, config
        yield from _walk(v, key, config)


@pytest.mark.parametrize(
    "config, switch, target, argument, off, on",
    [
        (["inference.json"], "write_probabilities", "SaveSADAAnOutputsd", "probability_key", None, "pred"),
        (["train.json"], "resume", "TrainingStateCheckpoint", "resume", False, True),
    ],
)
def test_sadaan_config_expressions_parse_their_switch(config, switch, target, argument, off, on):
    parser = ConfigParser()
    parser.read_config([str(SADAAN / c) for c in config])
    item = f"{_component_id(parser.get(), target)}#{argument}"
    for value, expected in (("false", off), ("no", off), (False, off), ("true", on), (True, on)):
        parser[switch] = value
        assert parser.get_parsed_content(item, instantiate=False, lazy=False) == expected, value
    parser[switch] = "flase"
    with pytest.raises(RuntimeError) as info:
        parser.get_parsed_content(item, lazy=False)
    assert f"expected {switch} to be true or false" in str(info.value.__cause__)


# ---------------------------------------------------------------- every switch in every bundle


def _switch_uses() -> list[tuple[str, str, str, str, Any]]:
    """``(config file, id, switch, value, parent)`` for every config string that reads a top-level switch."""
    uses = []
    for bundle in sorted(p for p in BUNDLES.iterdir() if (p / "configs").is_dir()):
        configs = {p: json.loads(p.read_text()) for p in sorted((bundle / "configs").glob("*.json"))}
        switches = {k for c in configs.values() for k, v in c.items() if isinstance(v, bool) and "#" not in k}
        for path, config in configs.items():
            for key, value, parent in _walk(config):
                if not isinstance(value, str):
                    continue
                for switch in switches:
                    if re.search(rf"@{switch}(?![\w#:])", value):
                        uses.append((f"{bundle.name}/{path.name}", key, switch, value, parent))
    return uses


def test_every_switch_in_the_bundles_is_parsed_strictly():
    """A switch reaches Python only through ``parse_bool`` in the expression, or a component that parses it."""
    uses = _switch_uses()
    found = {use[2] for use in uses}
    assert {"with_truth", "write_segmentation", "write_probabilities", "resume", "freeze_encoder",
            "fusion_fit_gated_only", "presence_fusion", "fast_inference", "use_checkpoint",
            "test_time_norm"} <= found  # fmt: skip
    unparsed = []
    for config, key, switch, value, parent in uses:
        if value == f"@{switch}":
            argument = key.rsplit("#", 1)[-1]
            target = str(parent.get("_target_", "")).rsplit(".", 1)[-1] if isinstance(parent, dict) else ""
            if (target, argument) not in PARSED_ARGUMENTS:
                unparsed.append((config, key, value))
            continue
        reads = len(re.findall(rf"@{switch}(?![\w#:])", value))
        parsed = value.count(f"parse_bool(@{switch}, '{switch}')")
        keyword = PARSED_KEYWORDS.get(switch)
        if keyword is not None and keyword in value:
            parsed += value.count(f"{switch}=@{switch}")
        if parsed != reads:
            unparsed.append((config, key, value))
    assert not unparsed, f"switches read without strict parsing: {unparsed}"
