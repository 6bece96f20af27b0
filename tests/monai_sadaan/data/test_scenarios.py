"""Field-of-view cut planning of :mod:`monai_sadaan.data.scenarios`."""

from __future__ import annotations

import numpy as np


def test_fov_cut_planning_rules():
    from monai_sadaan.data.scenarios import plan_fov_cut

    extents = {
        "liver": np.array([[-10.0, 80.0], [-40.0, 40.0], [0.0, 70.0]]),
        "left_kidney": np.array([[-50.0, -25.0], [-40.0, -20.0], [-40.0, 20.0]]),
        "pancreas": np.array([[-45.0, 20.0], [-10.0, 10.0], [0.0, 25.0]]),
    }
    for seed in range(40):
        rng = np.random.default_rng(seed)
        cut = plan_fov_cut(rng, extents, list(extents), axis_probabilities=(0.0, 0.0, 1.0), absent_probability=1.0)
        low, high = extents[cut.target][2]
        # pushed out through the nearer end of the block [-40, 70]: the liver through the top, the kidney the bottom
        assert cut.side == (1 if cut.target == "liver" else -1 if cut.target == "left_kidney" else cut.side)
        assert (cut.position <= low) if cut.side > 0 else (cut.position >= high)
        lateral = plan_fov_cut(np.random.default_rng(seed), extents, list(extents), axis_probabilities=(1.0, 0.0, 0.0))
        assert lateral.axis == 0 and lateral.target in ("liver", "left_kidney")
        lo, hi = extents[lateral.target][0]
        assert lo < lateral.position < hi  # clipped, never pushed out
        assert lateral.side == (1 if lateral.target == "liver" else -1)
