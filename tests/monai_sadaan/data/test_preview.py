"""The phantom preview: the RAS view of any orientation and the PNG overview."""

from __future__ import annotations

import numpy as np
import pytest

from monai_sadaan.data import generate_phantom

SMALL = (40, 36, 32)


def test_preview_png_and_ras_view(tmp_path):
    import matplotlib.image as mpimg

    from monai_sadaan.data.preview import plot_phantom_overview, to_ras

    pli = generate_phantom("splenectomy", 3, shape=(30, 28, 26), orientation="PLI")
    ras = generate_phantom("splenectomy", 3, shape=(28, 30, 26), orientation="RAS")  # PLI's axes 0, 1 are y, x
    image, spacing = to_ras(pli.image, pli.affine)
    np.testing.assert_array_equal(image, ras.image)
    np.testing.assert_allclose(spacing, ras.spacing)
    path = plot_phantom_overview([pli, generate_phantom("normal", 0, shape=SMALL)], tmp_path / "overview.png")
    png = mpimg.imread(str(path))
    assert png.ndim == 3 and png.shape[0] > png.shape[1] * 0.5  # two rows of three panels
    assert png[..., :3].std() > 0.1  # not blank
    with pytest.raises(ValueError, match="at least one phantom"):
        plot_phantom_overview([], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
