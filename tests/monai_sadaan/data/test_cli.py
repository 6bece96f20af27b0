"""The phantom data set command (``python -m monai_sadaan.data``): cases and datalist written, bad arguments refused."""

from __future__ import annotations

import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

from monai_sadaan.data.cli import main


def test_cli_writes_n_cases_and_valid_json(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(
        ["--output_dir", str(out), "--num_cases", "4", "--seed", "1", "--scenarios", "normal", "nephrectomy_bilateral",
         "--shape", "28", "26", "24", "--image_dtype", "int16", "--no_progress"]
    )
    assert rc == 0
    data = json.loads((out / "dataset.json").read_text())
    entries = data["training"] + data["validation"] + data["test"]
    assert len(entries) == 4 and len(list((out / "labelsTr").iterdir())) == 4
    assert Counter(e["scenario"] for e in entries) == {"normal": 2, "nephrectomy_bilateral": 2}
    for e in entries:
        assert e["present"]["left_kidney"] is (e["scenario"] == "normal")
    assert "wrote 4 cases" in capsys.readouterr().out
    assert (out / "preview.png").stat().st_size > 10_000  # default --preview 4
    # int16 images hold the rounded HU of the case the entry names
    from monai_sadaan.data import generate_phantom

    e = entries[0]
    img = nib.load(str(out / e["image"]))
    assert img.get_data_dtype() == np.int16
    expected = generate_phantom(e["scenario"], e["seed"], shape=(28, 26, 24), orientation=e["orientation"])
    assert expected.orientation == e["orientation"]
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.rint(expected.image).astype(np.int16))


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num_cases", "3"], "--output_dir"),
        (["--output_dir", "X", "--num_cases", "0"], "expected a positive integer, got 0"),
        (["--output_dir", "X", "--num_cases", "three"], "expected a positive integer, got 'three'"),
        (["--output_dir", "X", "--num_cases", "2", "--seed", "-1"], "expected a non-negative integer, got -1"),
        (["--output_dir", "X", "--num_cases", "2", "--seed", "1.5"], "expected a non-negative integer, got '1.5'"),
        (["--output_dir", "X", "--num_cases", "2", "--scenarios", "lobectomy"], "invalid choice: 'lobectomy'"),
        (["--output_dir", "X", "--num_cases", "2", "--scenarios", "normal", "--weights", "1", "2"], "one weight per scenario"),
        (["--output_dir", "X", "--num_cases", "2", "--structures", "heart"], "expected names from"),
        (["--output_dir", "X", "--num_cases", "2", "--orientation", "RLS"], "one letter per patient axis"),
        (["--output_dir", "X", "--num_cases", "2", "--splits", "1", "-1", "0"], "non-negative weights"),
    ],
)
def test_cli_bad_arguments_exit_nonzero(tmp_path, capsys, argv, message):
    argv = [str(tmp_path / a) if a == "X" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--no_progress"])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_trunk_generator(tmp_path, capsys):
    from monai_sadaan.data.cli import main

    assert main(["--output_dir", str(tmp_path), "--num_cases", "2", "--generator", "trunk", "--scenarios", "normal",
                 "pancreatectomy", "--fov_weights", "abdomen=1", "--shape", "32", "32", "32", "--preview", "0",
                 "--no_progress", "--phase", "arterial"]) == 0
    data = json.loads((tmp_path / "dataset.json").read_text())
    entries = [e for split in ("training", "validation", "test") for e in data[split]]
    assert sorted(e["scenario"] for e in entries) == ["normal", "pancreatectomy"]
    assert {e["field_of_view"] for e in entries} == {"abdomen"} and {e["phase"] for e in entries} == {"arterial"}
    assert all(e["shape"] == [32, 32, 32] for e in entries)
    with pytest.raises(SystemExit):
        main(["--output_dir", str(tmp_path / "x"), "--num_cases", "1", "--scenarios", "pancreatectomy"])
    assert "with --generator abdomen" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--output_dir", str(tmp_path / "y"), "--num_cases", "1", "--generator", "trunk", "--fov_weights",
              "abdomen"])
    assert "NAME=WEIGHT" in capsys.readouterr().err


def test_cli_trunk_generator_refuses_a_spacing(tmp_path, capsys):
    """The trunk grid follows the field of view: ``--spacing`` goes with the abdominal generator only."""
    from monai_sadaan.data.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--output_dir", str(tmp_path), "--num_cases", "1", "--generator", "trunk", "--scenarios", "normal",
              "--spacing", "1.5", "1.5", "1.5", "--no_progress"])  # fmt: skip
    assert exc.value.code == 2
    assert "--spacing: expected only with --generator abdomen" in capsys.readouterr().err
    assert not (tmp_path / "dataset.json").exists()
