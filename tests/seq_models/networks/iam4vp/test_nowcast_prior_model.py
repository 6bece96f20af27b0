"""IAM4VP with a nowcast prior (``prior_steps``): an untrained model returns the prior frames exactly, a trained
readout adds its correction to them, the value travels in the state dict, and misuse is refused."""

from __future__ import annotations

import pytest
import torch

from seq_models.networks.iam4vp import IAM4VP


def _prior_model(prior_steps: int = 2) -> IAM4VP:
    torch.manual_seed(0)
    return IAM4VP((3 + prior_steps, 2, 16, 24), latent_channels=4, num_convolutions_time=1, time_dim=8,
                  prior_steps=prior_steps).eval()


def test_an_untrained_prior_model_returns_the_prior_frame_of_each_step():
    model = _prior_model(2)
    x = torch.rand(2, 5, 2, 16, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        first = model(x)
        second = model(x, [first])
    torch.testing.assert_close(first, x[:, 3], rtol=0, atol=0)  # zero readout: exactly the nowcast
    torch.testing.assert_close(second, x[:, 4], rtol=0, atol=0)
    assert (model.num_prior_steps, model.num_history_steps) == (2, 3)


def test_a_trained_readout_adds_its_output_to_the_prior_frame():
    model = _prior_model(2)
    plain = IAM4VP((5, 2, 16, 24), latent_channels=4, num_convolutions_time=1, time_dim=8).eval()
    with torch.no_grad():
        model.attn.conv.weight.normal_(std=0.1)
        model.attn.conv.bias.fill_(0.05)
    state = {k: v for k, v in model.state_dict().items() if k != "prior_steps"}
    plain.load_state_dict(state, strict=True)
    x = torch.rand(1, 5, 2, 16, 24, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        residual = plain(x)
        torch.testing.assert_close(model(x), x[:, 3] + residual)
        torch.testing.assert_close(model(x, [residual]), x[:, 4] + plain(x, [residual]))


def test_prior_steps_is_in_the_state_dict_and_a_plain_model_refuses_it():
    state = _prior_model(2).state_dict()
    assert int(state["prior_steps"]) == 2
    plain = IAM4VP((5, 2, 16, 24), latent_channels=4, num_convolutions_time=1, time_dim=8)
    assert "prior_steps" not in plain.state_dict() and plain.num_prior_steps == 0
    with pytest.raises(RuntimeError, match="prior_steps"):
        plain.load_state_dict(state, strict=True)
    with pytest.raises(RuntimeError, match="prior_steps"):
        _prior_model(2).load_state_dict(plain.state_dict(), strict=True)
    assert _prior_model(2).for_frame_size(32, 48).num_prior_steps == 2


def test_misuse_is_refused():
    with pytest.raises(ValueError, match=r"0 <= prior_steps < T = 3.*got 3"):
        IAM4VP((3, 1, 16, 16), latent_channels=4, num_convolutions_time=1, prior_steps=3)
    model = _prior_model(2)
    x = torch.rand(1, 5, 2, 16, 24)
    with pytest.raises(ValueError, match="fewer than 2 previous predictions.*got 2"):
        model(x, [x[:, 0], x[:, 1]])


def test_a_prior_method_other_than_optical_flow_travels_in_the_state_dict_and_guards_loading():
    def model(method: str) -> IAM4VP:
        return IAM4VP((5, 2, 16, 24), latent_channels=4, num_convolutions_time=1, time_dim=8, prior_steps=2,
                      prior_method=method)

    sprog, flow = model("sprog"), model("farneback")
    assert (sprog.prior_method_name, flow.prior_method_name) == ("sprog", "farneback")
    assert int(sprog.state_dict()["prior_method"]) == 1
    assert "prior_method" not in flow.state_dict()  # optical-flow prior weights of bundle 0.4.0 still load
    with pytest.raises(RuntimeError, match="prior_method"):
        flow.load_state_dict(sprog.state_dict(), strict=True)
    with pytest.raises(RuntimeError, match="prior_method"):
        sprog.load_state_dict(flow.state_dict(), strict=True)
    assert sprog.for_frame_size(32, 48).prior_method_name == "sprog"
    plain = IAM4VP((5, 2, 16, 24), latent_channels=4, num_convolutions_time=1, time_dim=8)
    assert plain.prior_method_name == "farneback" and "prior_method" not in plain.state_dict()
    with pytest.raises(ValueError, match=r"prior_method in \('farneback', 'sprog'\).*got 'sprog' with prior_steps 0"):
        IAM4VP((5, 2, 16, 24), latent_channels=4, num_convolutions_time=1, prior_method="sprog")
    with pytest.raises(ValueError, match=r"prior_method in.*got 'lk' with prior_steps 2"):
        model("lk")
