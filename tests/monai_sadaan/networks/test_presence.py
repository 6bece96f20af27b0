"""The one reading of a presence call, and every consumer agreeing with it."""

from __future__ import annotations

import numpy as np
import torch

from monai_sadaan.networks.presence import call_presence, gate_by_presence, is_called_present
from monai_sadaan.transforms import PresenceAwareLabelMapd


def test_a_call_is_present_only_above_one_half():
    calls = [0.0, 0.5, 0.51, 1.0]
    assert is_called_present(calls).tolist() == [False, False, True, True]
    assert is_called_present(np.array(calls, dtype=np.float32)).tolist() == [False, False, True, True]
    # probabilities use the threshold inclusively; explicit calls take precedence
    assert call_presence(torch.tensor([0.5, 0.49])).tolist() == [1.0, 0.0]
    assert call_presence(torch.tensor([0.9, 0.9]), calls=[0.5, 1.0]).tolist() == [0.0, 1.0]


def test_gating_and_label_map_read_calls_alike():
    probs = torch.full((3, 2, 2, 2), 0.9)
    probs[1] = 0.95  # the most probable structure everywhere, but its call is exactly 0.5: absent
    calls = torch.tensor([0.0, 0.5, 1.0])
    gated = gate_by_presence(probs, calls)
    assert gated[0].max() == 0 and gated[1].max() == 0 and torch.equal(gated[2], probs[2])
    out = PresenceAwareLabelMapd(
        keys="probs", presence_key="present", label_values=[1, 2, 3], output_key="labels", mask_key=None
    )({"probs": probs, "present": calls})
    assert torch.as_tensor(out["labels"]).unique().tolist() == [3]
