"""The 3D Slicer module file: compiles, imports outside Slicer, has the four classes; the bundle keeps MONAI Label's ids."""

from __future__ import annotations

import ast
import importlib.util
import json
import py_compile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
MODULE = ROOT / "monai_sadaan" / "slicer" / "SADAAn" / "SADAAn.py"
BUNDLE = ROOT / "bundles" / "sadaan_abdominal_ct_segmentation"


def _load_module():
    spec = importlib.util.spec_from_file_location("SADAAn_outside_slicer", MODULE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_module_compiles(tmp_path):
    py_compile.compile(str(MODULE), cfile=str(tmp_path / "SADAAn.pyc"), doraise=True)


def test_module_has_the_scripted_module_classes():
    tree = ast.parse(MODULE.read_text())
    bases = {n.name: [ast.unparse(b) for b in n.bases] for n in tree.body if isinstance(n, ast.ClassDef)}
    assert bases == {
        "SADAAn": ["ScriptedLoadableModule"],
        "SADAAnWidget": ["ScriptedLoadableModuleWidget"],
        "SADAAnLogic": ["ScriptedLoadableModuleLogic"],
        "SADAAnTest": ["ScriptedLoadableModuleTest"],
    }
    widget = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "SADAAnWidget")
    assert {"setup", "onApplyButton", "showPresence"} <= {f.name for f in widget.body if isinstance(f, ast.FunctionDef)}


def test_module_imports_outside_slicer_and_finds_the_core():
    mod = _load_module()
    assert mod.IN_SLICER is False
    assert mod.repository_root() == ROOT
    assert mod.default_bundle_dir() == BUNDLE
    core = mod.import_core()
    assert core.__name__ == "monai_sadaan.slicer.core" and hasattr(core, "run_inference")


@pytest.mark.parametrize(
    "node_name, case", [("CT abdomen / 2", "CT_abdomen_2"), ("...", "volume"), ("case-1.5", "case-1.5"), ("", "volume")]
)
def test_case_name_for_node_names(node_name, case):
    mod = _load_module()
    assert mod.case_name_for(node_name) == case
    from monai_sadaan.slicer.core import _check_case_name

    _check_case_name(mod.case_name_for(node_name))  # every produced name is accepted by the core


def test_module_readme_exists():
    text = (MODULE.parent / "README.md").read_text()
    assert "Additional module paths" in text


@pytest.mark.skipif(not (BUNDLE / "configs" / "inference.json").is_file(), reason="the bundle is not written yet")
def test_bundle_inference_config_keeps_monai_label_ids():
    """MONAI Label's bundle app reads these ids; a name containing 'segmentation' makes it a segmentation model."""
    config = json.loads((BUNDLE / "configs" / "inference.json").read_text())
    missing = [k for k in ("network_def", "preprocessing", "postprocessing", "inferer", "device", "bundle_root") if k not in config]
    assert not missing, f"inference.json lacks MONAI Label ids {missing}"
    assert "segmentation" in BUNDLE.name
