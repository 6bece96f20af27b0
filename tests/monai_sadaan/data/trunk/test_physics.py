from __future__ import annotations

import numpy as np
import pytest

from monai_sadaan.data.trunk.physics import TISSUE_INDEX, TISSUES, ImagingParameters, form_image, sample_imaging


def _params(noise: float, averaged: bool, psf: float = 0.8, recon: float = 0.7) -> ImagingParameters:
    n = len(TISSUES)
    return ImagingParameters("ct", "portal_venous", np.zeros(n, np.float32), np.zeros(n, np.float32), 2.0, 1.0,
                             "sharp", psf, noise, 0.0, recon_pixel_mm=recon, averaged_grid=averaged)


def test_output_noise_sd_by_grid():
    # cell = max(recon pixel 0.7, psf 0.8) = 0.8 mm; a 3.2 mm output voxel averages 4 x 4 cells: SD / 4
    assert _params(20.0, True).output_noise_sd((3.2, 3.2, 3.0)) == pytest.approx(5.0)
    # rectangular pixels: sqrt(0.8 / 3.2 * 0.8 / 1.6)
    assert _params(20.0, True).output_noise_sd((3.2, 1.6, 3.0)) == pytest.approx(20.0 * np.sqrt(0.25 * 0.5))
    # finer than the cell: nothing to average
    assert _params(20.0, True).output_noise_sd((0.5, 0.5, 1.0)) == pytest.approx(20.0)
    # resampled from a fine reconstruction without averaging: the noise keeps its SD
    assert _params(20.0, False).output_noise_sd((3.2, 3.2, 3.0)) == pytest.approx(20.0)


@pytest.mark.parametrize("averaged, expected", [(True, 5.0), (False, 20.0)])
def test_form_image_noise_on_a_uniform_tissue(averaged, expected):
    tissue = np.full((48, 48, 24), TISSUE_INDEX["liver"], dtype=np.uint8)
    image = form_image(tissue, (3.2, 3.2, 3.0), _params(20.0, averaged), np.random.default_rng(0))
    assert float(image.std()) == pytest.approx(expected, rel=0.1)
    assert float(image.mean()) == pytest.approx(0.0, abs=1.0)


def test_sample_imaging_draws_both_grid_kinds():
    kinds = [sample_imaging(np.random.default_rng(s), "portal_venous", "ct", 3.0, 340.0).averaged_grid
             for s in range(40)]
    assert 5 < sum(kinds) < 35
    meta = sample_imaging(np.random.default_rng(0), "arterial", "ct", 3.0, 340.0).metadata()
    assert 0.6 <= meta["recon_pixel_mm"] <= 0.9 and isinstance(meta["averaged_grid"], bool)
