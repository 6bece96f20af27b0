"""``monai_sadaan.transforms.intensity``: the CT window."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_sadaan.transforms import CTWindow, CTWindowd, CTWindowD


# ---------------------------------------------------------------- CTWindow


def test_ct_window_values_by_hand():
    hu = np.array([[[[-1000.0, -175.0, 37.5, 250.0, 1000.0]]]], np.float32)
    out = CTWindow()(hu)
    np.testing.assert_allclose(np.asarray(out).ravel(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    out = CTWindow(a_min=-1000, a_max=1000, b_min=-1, b_max=1, clip=False)(torch.as_tensor(hu))
    np.testing.assert_allclose(np.asarray(out).ravel(), [-1.0, -0.175, 0.0375, 0.25, 1.0], atol=1e-6)
    d = CTWindowd("image")({"image": hu, "label": 5})
    np.testing.assert_allclose(np.asarray(d["image"]).ravel(), [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    assert d["label"] == 5 and CTWindowD is CTWindowd


def test_ct_window_rejects_empty_window():
    with pytest.raises(ValueError, match="a_min < a_max.*a_min=250, a_max=-175"):
        CTWindow(a_min=250, a_max=-175)
    with pytest.raises(ValueError, match="a_min < a_max"):
        CTWindowd("image", a_min=10, a_max=10)
