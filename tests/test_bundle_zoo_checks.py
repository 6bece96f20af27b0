"""The MONAI model zoo's bundle checks, reimplemented offline for the three bundles of this repository.

Followed (Project-MONAI/model-zoo, ``dev`` branch, as of its commit 17e7879; the zoo's scripts need the network and
its own repository layout, so they are rewritten here, check by check):

- ``ci/verify_bundle.py`` ``verify(bundle, mode)``. "min" mode: ``verify_bundle_directory`` (necessary files
  ``configs/metadata.json`` and ``LICENSE``; preferred files ``models/model.pt`` and ``configs/inference.{json,yaml,
  yml}`` unless the bundle is in ``exclude_verify_preferred_files_list``), ``verify_version_changes`` (``version``
  and ``changelog`` present, the version in the changelog; the comparison with the zoo's ``model_info.json`` has no
  counterpart outside the zoo) and ``verify_metadata_format`` (``monai.bundle.verify_metadata``, here against the
  schema each bundle ships in ``configs/metadata_schema.json`` instead of the downloaded ``eval/schema.json``).
  "full" mode adds ``verify_data_shape`` (``monai.bundle.verify_net_in_out`` on ``network_def`` of the inference
  config, with the metadata's ``network_data_format``) and ``verify_torchscript`` (``monai.bundle.ckpt_export`` of
  ``network_def`` with ``models/model.pt``), each skipped for bundles in ``exclude_verify_shape_list`` /
  ``exclude_verify_torchscript_list`` of ``ci/bundle_custom_data.py``. The property check of ``supported_apps``
  does not apply (the bundles list none).
- ``verify_bundle_keys`` of the earlier ``ci/verify_bundle.py`` (what ``CONTRIBUTING.md``, "Preferred Files and
  Keys", still asks): inference config keys ``bundle_root``, ``device``, ``network_def``, ``inferer``; train config
  keys ``bundle_root``, ``device``, ``dataset_dir``; ``train#trainer``, ``train#dataset``, ``train#handlers``,
  ``train#trainer#max_epochs``, ``train#dataset#data``; ``validate#evaluator``, ``validate#dataset``,
  ``validate#handlers``, ``validate#dataset#data``; ``preprocessing``, ``postprocessing``, ``inferer``,
  ``key_metric`` named so where a trainer or evaluator uses them; ``val_interval`` as the ``ValidationHandler``'s
  interval. Added from the same section: ``output_dir`` in every config that writes files, ``dataset_dir`` in the
  inference config, and ``val_interval`` where a train config exists.
- ``ci/get_bundle_requirements.py``: ``monai_version``, ``pytorch_version``, ``numpy_version`` and every
  ``required_packages_version`` entry become ``pip install`` lines (``name==version``, or ``name<spec>`` when the
  value starts with ``<``, ``>`` or ``=``); here each must be a valid requirement within setup.cfg's floors, and
  ``SADAAN_CHECK_PYPI=1`` also asks the package index that every pinned version exists for the bundle's Pythons.
- ``.pre-commit-config.yaml`` (pre-commit-hooks v5.0.0): ``pretty-format-json --autofix --no-sort-keys --indent=4``
  (``json.dumps(json.loads(text), indent=4)`` with the default ``ensure_ascii=True`` plus one newline),
  ``end-of-file-fixer``, ``trailing-whitespace`` and ``mixed-line-ending``. ``check-added-large-files
  --maxkb=1024`` is not reproduced: the zoo keeps weights over 1 MB out of git (``large_files.yml``), this
  repository commits them.

The exclusions below are the zoo's mechanism; each bundle's ``docs/README.md`` states the reason, and the checks
that do apply to the bundle's export or serving network run instead.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BUNDLES = REPO / "bundles"
SADAAN, GRU, IAM4VP = "sadaan_abdominal_ct_segmentation", "gru_timeseries_regression", "iam4vp_cloudcasting"
NAMES = [SADAAN, GRU, IAM4VP]

# ci/bundle_custom_data.py, with the reason each README gives
EXCLUDE_VERIFY_SHAPE = {
    SADAAN: "network_def returns a dict",
    GRU: "batch-first",
    IAM4VP: "time before channels",
}
EXCLUDE_VERIFY_TORCHSCRIPT = {
    SADAAN: "not scriptable",
    GRU: "not scriptable",
    IAM4VP: "not scriptable",
}
# bundles that ship no models/model.pt (none now: IAM4VP ships small-configuration weights, configs/small.json)
EXCLUDE_VERIFY_PREFERRED_FILES: dict[str, str] = {}
#: oldest Python every pinned dependency installs on (IAM4VP: xarray and zarr releases that write its forecasts)
MIN_PYTHON = {SADAAN: "3.10", GRU: "3.10", IAM4VP: "3.11"}

NECESSARY_FILES = ["configs/metadata.json", "LICENSE"]
PREFERRED_FILES = ["models/model.pt", "configs/inference.json"]
INFER_KEYS = ["bundle_root", "device", "network_def", "inferer", "output_dir", "dataset_dir"]
TRAIN_KEYS = ["bundle_root", "device", "dataset_dir", "output_dir", "val_interval"]


def _bundle(name: str) -> Path:
    return BUNDLES / name


def _find_bundle_file(root_dir: Path, file: str, suffix=("json", "yaml", "yml")) -> str | None:
    found = None
    for ext in suffix:
        if f"{file}.{ext}" in os.listdir(root_dir):
            found = f"{file}.{ext}"
    return found


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _readme(name: str) -> str:
    return (_bundle(name) / "docs" / "README.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------- "min" mode


def test_bundle_list_is_complete():
    assert sorted(p.name for p in BUNDLES.iterdir() if (p / "configs" / "metadata.json").is_file()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_necessary_and_preferred_files(name):
    root = _bundle(name)
    for file in NECESSARY_FILES + ["docs/README.md"]:
        assert (root / file).is_file(), f"necessary file {file} is not existing in {name}"
    assert _find_bundle_file(root / "configs", "inference") is not None, "inference config file is not existing."
    for file in PREFERRED_FILES:
        if file == "models/model.pt" and name in EXCLUDE_VERIFY_PREFERRED_FILES and not (root / file).exists():
            assert "models/model.pt" in _readme(name) and EXCLUDE_VERIFY_PREFERRED_FILES[name] in _readme(name)
            continue
        assert (root / file).is_file(), f"preferred file {file} is not existing in {name}"


@pytest.mark.parametrize("name", NAMES)
def test_version_and_changelog(name):
    meta = _load(_bundle(name) / "configs" / "metadata.json")
    assert "version" in meta and "changelog" in meta
    assert meta["version"] in meta["changelog"], f"version {meta['version']} is missing in 'changelog'"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])


@pytest.mark.parametrize("name", NAMES)
def test_metadata_format_against_the_shipped_schema(name):
    from monai.bundle import verify_metadata

    root = _bundle(name)
    schema = root / "configs" / "metadata_schema.json"
    assert schema.read_text() == (_bundle(SADAAN) / "configs" / "metadata_schema.json").read_text()
    verify_metadata(meta_file=str(root / "configs" / "metadata.json"), filepath=str(schema))  # raises if invalid
    meta = _load(root / "configs" / "metadata.json")
    assert meta["name"].strip(), "the zoo shows metadata 'name' in its model browser"
    for key in ("monai_version", "pytorch_version", "numpy_version", "required_packages_version", "supported_apps"):
        assert key in meta, key


def _check_main(config: dict, section: str, key: str) -> None:
    assert key in config[section], f"'{key}' is not existing in '{section}'."


def _check_sub(config: dict, section: str, sub: str, key: str) -> None:
    assert isinstance(config[section][sub], dict), f"'{section}#{sub}' should be a component (a dict)"
    assert key in config[section][sub], f"'{key}' is not existing in '{section}#{sub}'."


def _check_optional(config: dict, section: str, sub: str, arg: str, key: str) -> None:
    if arg in config[section][sub]:
        actual = str(config[section][sub][arg]).split("#")[-1]
        assert key in config[section], f"'{section}' should have '{key}', got '{actual}'."


@pytest.mark.parametrize("name", NAMES)
def test_config_keys(name):
    configs = _bundle(name) / "configs"
    infer = _load(configs / _find_bundle_file(configs, "inference"))
    missing = [k for k in INFER_KEYS if k not in infer]
    assert not missing, f"missing key(s): {missing} in inference config of {name}"
    train_file = _find_bundle_file(configs, "train")
    if train_file is None:
        return
    train = _load(configs / train_file)
    missing = [k for k in TRAIN_KEYS if k not in train]
    assert not missing, f"missing key(s): {missing} in {train_file} of {name}"
    if "train" in train:
        for key in ("trainer", "dataset", "handlers"):
            _check_main(train, "train", key)
        _check_sub(train, "train", "trainer", "max_epochs")
        _check_sub(train, "train", "dataset", "data")
        _check_optional(train, "train", "trainer", "postprocessing", "postprocessing")
        _check_optional(train, "train", "dataset", "transform", "preprocessing")
        _check_optional(train, "train", "trainer", "key_train_metric", "key_metric")
        for handler in train["train"]["handlers"]:
            if handler.get("_target_") in ("ValidationHandler", "monai.handlers.ValidationHandler"):
                assert str(handler["interval"]).split("@")[-1] == "val_interval"
    if "validate" in train:
        for key in ("evaluator", "dataset", "handlers"):
            _check_main(train, "validate", key)
        _check_sub(train, "validate", "dataset", "data")
        _check_optional(train, "validate", "evaluator", "postprocessing", "postprocessing")
        _check_optional(train, "validate", "dataset", "transform", "preprocessing")
        _check_optional(train, "validate", "evaluator", "inferer", "inferer")
        _check_optional(train, "validate", "evaluator", "key_val_metric", "key_metric")


# ---------------------------------------------------------------- dependencies


def _setup_cfg_requirements() -> dict:
    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    reqs = {}
    for line in cfg["options"]["install_requires"].strip().splitlines():
        req = Requirement(line.strip())
        reqs[req.name.lower().replace("_", "-")] = req
    return reqs


def _pip_lines(meta: dict) -> list[str]:
    """``ci/get_bundle_requirements.py``: the lines the zoo hands to ``pip install``."""
    lines = [f"monai=={meta['monai_version']}", f"torch=={meta['pytorch_version']}", f"numpy=={meta['numpy_version']}"]
    for key in ("optional_packages_version", "required_packages_version"):
        for pkg, version in meta.get(key, {}).items():
            version = version.strip()
            lines.append(f"{pkg}{version}" if version[0] in "<>=" else f"{pkg}=={version}")
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_required_packages_are_installable_requirements(name):
    from packaging.requirements import Requirement

    meta = _load(_bundle(name) / "configs" / "metadata.json")
    floors = _setup_cfg_requirements()
    assert "monai-sadaan" not in {k.lower() for k in meta["required_packages_version"]}, (
        "monai-sadaan is not on the package index: the README says how to install it"
    )
    assert "monai-sadaan" in _readme(name) and "pip install" in _readme(name)
    for line in _pip_lines(meta):
        req = Requirement(line)  # raises on anything pip would not read
        floor = floors.get(req.name.lower().replace("_", "-"))
        pinned = [s.version for s in req.specifier if s.operator == "=="]
        if floor is not None and pinned:
            assert floor.specifier.contains(pinned[0], prereleases=True), f"{line} is below setup.cfg's {floor}"


def _index_versions(package: str, python: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", package, "--isolated", "--python-version", python,
         "--only-binary=:all:"],
        capture_output=True, text=True, timeout=180,
    ).stdout
    m = re.search(r"Available versions: (.*)", out)
    return {v.strip() for v in m.group(1).split(",")} if m else set()


@pytest.mark.skipif(os.environ.get("SADAAN_CHECK_PYPI") != "1", reason="asks the package index; SADAAN_CHECK_PYPI=1")
@pytest.mark.parametrize("name", NAMES)
def test_pinned_versions_exist_on_the_package_index(name):
    from packaging.requirements import Requirement

    meta = _load(_bundle(name) / "configs" / "metadata.json")
    pythons = [p for p in ("3.10", "3.11", "3.12", "3.13") if tuple(map(int, p.split("."))) >= tuple(
        map(int, MIN_PYTHON[name].split(".")))]
    for line in _pip_lines(meta):
        req = Requirement(line)
        for python in pythons:
            available = _index_versions(req.name, python)
            assert any(req.specifier.contains(v, prereleases=False) for v in available), f"{line} on Python {python}"


# ---------------------------------------------------------------- pre-commit formatting


def _bundle_files() -> list[Path]:
    """Files under bundles/ that a commit would hold (tracked or not ignored): generated data, outputs and local
    checkpoints (all git-ignored) are not the bundle's."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "bundles"],
                                cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
        files = [REPO / rel for rel in listed if rel]
    except (OSError, subprocess.CalledProcessError):  # not a checkout: the shipped layout
        files = [p for p in BUNDLES.rglob("*") if p.parts[len(BUNDLES.parts) + 1:][:1] in (("configs",), ("docs",))
                 or p.name == "LICENSE"]
    return sorted(p for p in files if p.is_file())


def _bundle_text_files() -> list[Path]:
    return [p for p in _bundle_files() if p.suffix not in (".pt", ".ts", ".png", ".nii", ".gz")]


def pretty_format_json(text: str) -> str:
    """pre-commit-hooks' ``pretty-format-json --no-sort-keys --indent=4`` (ensure_ascii stays True)."""
    return json.dumps(json.loads(text, object_pairs_hook=lambda pairs: dict(pairs)), indent=4, ensure_ascii=True) + "\n"


def test_every_bundle_json_is_pretty_formatted():
    files = [p for p in _bundle_files() if p.suffix == ".json"]
    assert len(files) >= 20
    bad = [str(p.relative_to(REPO)) for p in files if p.read_text(encoding="utf-8") != pretty_format_json(
        p.read_text(encoding="utf-8"))]
    assert not bad, f"not formatted as pretty-format-json --indent=4 --no-sort-keys would write them: {bad}"


def test_end_of_file_trailing_whitespace_and_line_endings():
    bad = []
    for p in _bundle_text_files():
        raw = p.read_bytes()
        if not raw:
            continue
        if b"\r" in raw:
            bad.append(f"{p}: CR line endings")
        if not raw.endswith(b"\n") or raw.endswith(b"\n\n"):
            bad.append(f"{p}: should end with exactly one newline")
        for i, line in enumerate(raw.split(b"\n"), 1):
            if line != line.rstrip(b" \t"):
                bad.append(f"{p}:{i}: trailing whitespace")
    assert not bad, bad


def test_formatter_matches_the_hook_on_samples():
    expected = '{\n    "b": 1,\n    "a": [\n        1,\n        2\n    ]\n}\n'
    assert pretty_format_json('{"b": 1, "a": [1, 2]}') == expected
    assert pretty_format_json('{"x": "\u00d7", "e": []}') == '{\n    "x": "\\u00d7",\n    "e": []\n}\n'


# ---------------------------------------------------------------- "full" mode


@pytest.mark.parametrize("name", NAMES)
def test_exclusions_are_explained_in_the_readme(name):
    readme = _readme(name)
    assert "exclude_verify_shape_list" in readme and EXCLUDE_VERIFY_SHAPE[name] in readme
    assert "exclude_verify_torchscript_list" in readme and EXCLUDE_VERIFY_TORCHSCRIPT[name] in readme


def _verify_kwargs(name: str, **extra) -> dict:
    root = _bundle(name)
    return dict(meta_file=str(root / "configs" / "metadata.json"), config_file=str(root / "configs" / "inference.json"),
                bundle_root=str(root), **extra)


@pytest.mark.parametrize("name", [n for n in NAMES if n not in EXCLUDE_VERIFY_SHAPE])
def test_verify_net_in_out_network_def(name):  # pragma: no cover - every bundle is excluded today
    from monai.bundle import verify_net_in_out

    verify_net_in_out(net_id="network_def", **_verify_kwargs(name))


@pytest.mark.parametrize("name", NAMES)
def test_the_zoo_default_network_checks_fail_as_the_exclusions_say(name, tmp_path):
    """The exclusions are needed: the zoo's default calls on ``network_def`` do fail (so the lists stay honest)."""
    from monai.bundle import ckpt_export, verify_net_in_out

    with pytest.raises(Exception):
        verify_net_in_out(net_id="network_def", **_verify_kwargs(name))
    ckpt = _bundle(name) / "models" / "model.pt"
    if ckpt.is_file():
        with pytest.raises(Exception):
            ckpt_export(net_id="network_def", filepath=str(tmp_path / "m.ts"), ckpt_file=str(ckpt),
                        **_verify_kwargs(name))


def test_sadaan_export_network_passes_shape_and_torchscript(tmp_path):
    from monai.bundle import ckpt_export, verify_net_in_out

    kw = _verify_kwargs(SADAAN)
    verify_net_in_out(net_id="export_network_def", export_outputs=["segmentation_probs"], **kw)
    ts = tmp_path / "model.ts"
    ckpt_export(net_id="export_network_def", filepath=str(ts), ckpt_file=str(_bundle(SADAAN) / "models" / "model.pt"),
                use_trace=True, input_shape=[1, 1, 48, 48, 48], **kw)
    module = torch.jit.load(str(ts))
    seg, presence, confidence = module(torch.rand(1, 1, 48, 48, 48))
    meta = _load(_bundle(SADAAN) / "configs" / "metadata.json")["network_data_format"]["outputs"]
    assert seg.shape == (1, meta["pred"]["num_channels"], *meta["pred"]["spatial_shape"])
    assert presence.shape == confidence.shape == (1, meta["presence"]["num_channels"])


def test_gru_network_def_shapes_and_single_step_export(tmp_path):
    from monai.bundle import ConfigParser, ckpt_export

    root = _bundle(GRU)
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser.read_meta(str(root / "configs" / "metadata.json"))
    parser["bundle_root"] = str(root)
    fmt = parser["_meta_"]["network_data_format"]
    net = parser.get_parsed_content("network_def").eval()
    steps = 17
    x = torch.rand(2, steps, fmt["inputs"]["image"]["num_channels"], dtype=torch.float32)
    with torch.no_grad():
        y = net(x, torch.tensor([steps, 9]))
    assert y.shape == (2, steps) and y.dtype == torch.float32 and fmt["outputs"]["pred"]["num_channels"] == 1
    assert bool((y[1, 9:] == 0).all())  # padded steps
    ts = tmp_path / "single_step.ts"
    ckpt_export(net_id="single_step_def", filepath=str(ts), ckpt_file=str(root / "models" / "model.pt"),
                **_verify_kwargs(GRU))
    step = torch.jit.load(str(ts))
    out, h = step(torch.rand(1, fmt["inputs"]["image"]["num_channels"]), step.init_hidden(1))
    assert out.shape == (1, 1) and h.shape[1] == 1


def test_iam4vp_network_def_shapes_and_traced_export(tmp_path):
    from monai.bundle import ConfigParser, ckpt_export

    root = _bundle(IAM4VP)
    small = {"history_steps": 4, "forecast_steps": 2, "frame_height": 32, "frame_width": 32, "latent_channels": 8,
             "num_convolutions_time": 2}
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser.read_meta(str(root / "configs" / "metadata.json"))
    parser.update({"bundle_root": str(root), **small})
    fmt = parser["_meta_"]["network_data_format"]
    channels = fmt["inputs"]["history"]["num_channels"]
    assert fmt["outputs"]["pred"]["num_channels"] == channels
    assert fmt["inputs"]["history"]["spatial_shape"][0] == 12 and fmt["outputs"]["pred"]["spatial_shape"][0] == 6
    net = parser.get_parsed_content("network_def").eval()
    forecaster = parser.get_parsed_content("inferer")
    history = torch.rand(1, 4, channels, 32, 32)
    with torch.no_grad():
        assert net(history).shape == (1, channels, 32, 32)  # one frame per call
        assert forecaster(history, net).shape == (1, 2, channels, 32, 32)  # the forecast the metadata describes
    ckpt = tmp_path / "init.pt"
    torch.save(net.state_dict(), ckpt)
    ts = tmp_path / "iam4vp.ts"
    ckpt_export(net_id="network_def", filepath=str(ts), ckpt_file=str(ckpt), use_trace=True,
                input_shape=[1, 4, channels, 32, 32], **_verify_kwargs(IAM4VP, **small))
    traced = torch.jit.load(str(ts))
    with torch.no_grad():
        assert torch.allclose(traced(history), net(history), atol=1e-5)
