"""The PNG overview is rendered from written case files and refuses a label map on another grid."""

from __future__ import annotations

import matplotlib.image as mpimg
import numpy as np
import pytest

from monai_sadaan.data import generate_phantom, save_volume
from monai_sadaan.io import SADAAnCaseWriter
from monai_sadaan.io.overview import _best_slice, main, render_case_overview


def test_best_slice_prefers_the_most_structures():
    lm = np.zeros((4, 5, 6), np.uint8)
    lm[1, :, :] = 1  # a large single structure on slice x=1
    lm[3, 0, 0], lm[3, 1, 1] = 1, 2  # two structures on slice x=3
    assert _best_slice(lm, 0) == 3
    assert _best_slice(np.zeros((4, 5, 6), np.uint8), 2) == 3  # nothing labelled: the middle


def test_overview_renders_a_written_phantom_case(tmp_path):
    phantom = generate_phantom("splenectomy", seed=1, shape=40)
    image = save_volume(phantom.image, phantom.affine, tmp_path / "ct.nii.gz")
    names = list(phantom.structures)
    presence = {
        "presence_probability": [0.9 if phantom.present[n] else 0.1 for n in names],
        "confidence": [0.8] * len(names),
    }
    files = SADAAnCaseWriter(tmp_path / "out", structures=phantom.structures)("ct", phantom.label, phantom.affine, presence)
    png = render_case_overview(image, tmp_path / "out" / "ct", tmp_path / "ct.png")
    pixels = mpimg.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 300 and pixels.shape[1] > 600
    assert [p.name for p in tmp_path.glob("*.png")] == ["ct.png"]
    # a label map on another grid is refused and no PNG is written
    other = save_volume(phantom.image[:-1], phantom.affine, tmp_path / "cropped.nii.gz")
    with pytest.raises(ValueError, match="on the image's grid"):
        render_case_overview(other, files["label_map"].rsplit("/", 1)[0], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_overview_cli_requires_an_input(tmp_path):
    with pytest.raises(SystemExit):
        main(["--output", str(tmp_path / "x.png")])


def test_overview_of_an_image_that_is_not_ct_shows_withheld_calls(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    phantom = generate_phantom("normal", seed=2, shape=40)
    image = save_volume(phantom.image, phantom.affine, tmp_path / "ct.nii.gz")
    names = list(phantom.structures)
    presence = {"presence_probability": [0.9] * len(names), "confidence": [0.8] * len(names)}
    flags = [{"code": "byte_range", "message": "values 0..255"}]
    writer = SADAAnCaseWriter(tmp_path / "out", structures=phantom.structures)
    writer("ct", phantom.label, phantom.affine, presence, input_flags=flags)
    tables = []
    original = Axes.table

    def capture(self, *args, **kwargs):
        tables.append(kwargs.get("cellText"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "table", capture)
    render_case_overview(image, tmp_path / "out" / "ct", tmp_path / "ct.png")
    assert [row[1] for row in tables[0]] == ["withheld: not CT"] * len(names)
    assert [row[4] for row in tables[0]] == ["0.0"] * len(names)  # nothing painted
