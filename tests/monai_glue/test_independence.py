"""The shared glue and the sequence models stand without SADAAn: importing them never imports ``monai_sadaan``."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "modules",
    [
        "monai_glue, monai_glue.prepare_batch, monai_glue.loss_adapter, monai_glue.output_transforms, "
        "monai_glue.atomic, monai_glue.checkpoint, monai_glue.config_values, monai_glue.bundles",
        "seq_models, seq_models.workflows.gru_regression, seq_models.workflows.iam4vp, seq_models.inferers, "
        "seq_models.data, seq_models.writers.forecast_writer, seq_models.handlers.forecast_handlers",
    ],
)
def test_import_does_not_load_monai_sadaan(modules):
    code = (
        f"import sys, importlib\nfor m in {modules!r}.split(', '):\n    importlib.import_module(m)\n"
        "loaded = sorted(m for m in sys.modules if m == 'monai_sadaan' or m.startswith('monai_sadaan.'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing {modules} loaded {out.stdout.strip()}"


def test_glue_names_resolve_and_unknown_name_is_refused():
    import monai_glue

    for name in monai_glue.__all__:
        assert getattr(monai_glue, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        monai_glue.nope  # noqa: B018
