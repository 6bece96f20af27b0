"""Test-time normalisation: BatchNorm mixing the running statistics with each case's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from monai_sadaan.networks import (
    InputStatisticsBatchNorm3d,
    build_fast_inference,
    use_input_statistics,
    uses_input_statistics,
)
from monai_sadaan.networks.fast_inference import attach_fast_inference

from .test_network import randomise, tiny_input, tiny_net


def _bn(source_weight: float) -> InputStatisticsBatchNorm3d:
    bn = InputStatisticsBatchNorm3d(2, source_weight=source_weight)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0]))
        bn.running_var.copy_(torch.tensor([4.0, 0.25]))
        bn.weight.copy_(torch.tensor([2.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.1, -0.3]))
    return bn.eval()


def test_mixed_statistics_by_hand():
    # case 0, channel 0: values 0 and 2 -> mean 1, biased var 1; mixed with running (1, 4) at w = 0.25:
    # mean 1, var 0.25 * 4 + 0.75 * 1 = 1.75
    x = torch.zeros(2, 2, 1, 1, 2)
    x[0, 0, 0, 0] = torch.tensor([0.0, 2.0])
    x[0, 1, 0, 0] = torch.tensor([-1.0, -1.0])  # mean -1, var 0 -> mixed mean -1.25, var 0.0625
    x[1, 0, 0, 0] = torch.tensor([10.0, 14.0])  # mean 12, var 4 -> mixed mean 9.25, var 4
    x[1, 1, 0, 0] = torch.tensor([0.0, 0.0])
    bn = _bn(0.25)
    got = bn(x)
    eps = bn.eps
    want00 = (torch.tensor([0.0, 2.0]) - 1.0) / (1.75 + eps) ** 0.5 * 2.0 + 0.1
    want01 = (torch.tensor([-1.0, -1.0]) + 1.25) / (0.0625 + eps) ** 0.5 * 0.5 - 0.3
    want10 = (torch.tensor([10.0, 14.0]) - 9.25) / (4.0 + eps) ** 0.5 * 2.0 + 0.1
    torch.testing.assert_close(got[0, 0, 0, 0], want00)
    torch.testing.assert_close(got[0, 1, 0, 0], want01)
    torch.testing.assert_close(got[1, 0, 0, 0], want10)


def test_each_case_uses_its_own_statistics():
    bn = _bn(0.0)
    x = torch.randn(3, 2, 4, 4, 4, generator=torch.Generator().manual_seed(0)) * 3 + 5
    together = bn(x)
    alone = torch.cat([bn(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    # at w = 0 every case leaves with mean bias and standard deviation |weight| per channel
    torch.testing.assert_close(together.mean(dim=(2, 3, 4)), bn.bias.expand(3, 2), atol=1e-5, rtol=0)
    std = together.std(dim=(2, 3, 4), correction=0)
    torch.testing.assert_close(std, bn.weight.abs().expand(3, 2), atol=1e-3, rtol=0)


def test_source_weight_one_is_plain_batchnorm_and_training_is_unchanged():
    x = torch.randn(2, 2, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    plain = nn.BatchNorm3d(2)
    plain.load_state_dict(_bn(1.0).state_dict())
    plain.eval()
    torch.testing.assert_close(_bn(1.0)(x), plain(x))
    assert not torch.allclose(_bn(0.5)(x), plain(x))
    train_a, train_b = _bn(0.0).train(), nn.BatchNorm3d(2).train()
    train_b.load_state_dict(train_a.state_dict())
    torch.testing.assert_close(train_a(x), train_b(x))
    torch.testing.assert_close(train_a.running_mean, train_b.running_mean)


def test_training_with_input_statistics_by_hand():
    # two cases, one channel, two positions each: case 0 (0, 2) mean 1 var 1; case 1 (4, 4) mean 4 var 0.
    # batch: mean 2.5, biased var mean(1 + 2.25, 0 + 2.25) = 2.75, unbiased 2.75 * 4 / 3.
    x = torch.tensor([[0.0, 2.0], [4.0, 4.0]]).view(2, 1, 1, 1, 2).requires_grad_(True)
    bn = InputStatisticsBatchNorm3d(1, source_weight=0.5, in_training=True, momentum=0.25).train()
    got = bn(x)
    eps = bn.eps
    mean0, var0 = 0.5 * 2.5 + 0.5 * 1.0, 0.5 * 2.75 + 0.5 * 1.0
    mean1, var1 = 0.5 * 2.5 + 0.5 * 4.0, 0.5 * 2.75 + 0.5 * 0.0
    torch.testing.assert_close(got[0].flatten(), (torch.tensor([0.0, 2.0]) - mean0) / (var0 + eps) ** 0.5)
    torch.testing.assert_close(got[1].flatten(), (torch.tensor([4.0, 4.0]) - mean1) / (var1 + eps) ** 0.5)
    # running statistics move towards the batch's as BatchNorm3d moves them
    plain = nn.BatchNorm3d(1, momentum=0.25).train()
    plain(x.detach())
    torch.testing.assert_close(bn.running_mean, plain.running_mean)
    torch.testing.assert_close(bn.running_var, plain.running_var)
    torch.testing.assert_close(bn.running_mean, torch.tensor([0.25 * 2.5]))
    torch.testing.assert_close(bn.running_var, torch.tensor([0.75 + 0.25 * 2.75 * 4 / 3]))
    assert int(bn.num_batches_tracked) == 1
    got.square().sum().backward()  # the case statistics are part of the graph
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_training_with_own_statistics_alone_is_per_case():
    bn = InputStatisticsBatchNorm3d(2, source_weight=0.0, in_training=True).train()
    x = torch.randn(3, 2, 4, 4, 4, generator=torch.Generator().manual_seed(3)) * 2 + 1
    together = bn(x)
    alone = torch.cat([bn(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone)
    with pytest.raises(ValueError, match="more than 1 value"):
        bn(torch.ones(1, 2, 1, 1, 1))


def test_use_input_statistics_in_training_switch():
    net = randomise(tiny_net(), seed=4)
    x = tiny_input(seed=4)
    plain = randomise(tiny_net(), seed=4).train()
    use_input_statistics(net, source_weight=0.5, in_training="false").train()
    torch.testing.assert_close(net(x)["segmentation_logits"], plain(x)["segmentation_logits"])
    use_input_statistics(net, source_weight=0.5, in_training="true")
    assert all(m.in_training for m in net.modules() if isinstance(m, InputStatisticsBatchNorm3d))
    assert not torch.allclose(net(x)["segmentation_logits"], plain(x)["segmentation_logits"], atol=1e-4)
    with pytest.raises(ValueError, match="in_training"):
        use_input_statistics(net, 0.5, in_training="maybe")


def test_use_input_statistics_keeps_the_weights_and_changes_eval_only():
    net = randomise(tiny_net(), seed=5).eval()
    x = tiny_input(seed=5)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        want = net(x)["segmentation_logits"]
    assert not uses_input_statistics(net)
    assert use_input_statistics(net, source_weight=1.0) is net
    assert not uses_input_statistics(net)  # w = 1 is the plain network
    with torch.no_grad():
        torch.testing.assert_close(net(x)["segmentation_logits"], want)
    use_input_statistics(net, source_weight=0.0)
    assert uses_input_statistics(net)
    assert all(type(m) is InputStatisticsBatchNorm3d for m in net.modules() if isinstance(m, nn.BatchNorm3d))
    assert net.state_dict().keys() == before.keys()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    with torch.no_grad():
        got = net(x)["segmentation_logits"]
    assert got.shape == want.shape
    assert not torch.allclose(got, want, atol=1e-3)
    net.load_state_dict(before)  # a checkpoint still loads


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "half", None])
def test_bad_source_weight(bad):
    with pytest.raises(ValueError, match="source_weight"):
        use_input_statistics(tiny_net(), source_weight=bad)
    with pytest.raises(ValueError, match="source_weight"):
        InputStatisticsBatchNorm3d(2, source_weight=bad)


def test_the_switch_is_parsed_strictly():
    net = tiny_net()
    assert use_input_statistics(net, 0.0, test_time_norm="false") is net
    assert not uses_input_statistics(net)
    with pytest.raises(ValueError, match="test_time_norm"):
        use_input_statistics(net, 0.0, test_time_norm="flase")
    use_input_statistics(net, 0.0, test_time_norm="true")
    assert uses_input_statistics(net)


def test_a_network_without_batchnorm_is_refused():
    with pytest.raises(ValueError, match="BatchNorm3d"):
        use_input_statistics(nn.Sequential(nn.Conv3d(1, 1, 1)))


def test_fast_graph_is_not_built_for_input_statistics():
    from ignite.engine import Engine

    net = use_input_statistics(randomise(tiny_net(), seed=2).eval(), source_weight=0.5)
    with pytest.raises(ValueError, match="input statistics"):
        build_fast_inference(net)
    engine = Engine(lambda e, batch: None)
    engine.network = net
    attach_fast_inference(engine, fast_inference=True)
    engine.run([0], max_epochs=1)
    assert engine.network is net
