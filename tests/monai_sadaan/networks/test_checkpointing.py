"""``monai_sadaan.networks.checkpointing``: the checkpointed stages equal the plain ones for every channel grouping,
in train and eval mode; BatchNorm statistics survive a recomputation; bad groupings are refused."""

from __future__ import annotations

import pytest
import torch

from monai_sadaan.networks import SADAAN_OUTPUT_KEYS
from monai_sadaan.networks.checkpointing import batchnorm_statistics_kept, checkpoint_segment, checkpointed_stages
from monai_sadaan.networks.nets.sadaan import sadaan_outputs
from tests.monai_sadaan.networks.test_network import randomise, tiny_input, tiny_net


def _plain_and_checkpointed(train: bool, memory_efficient_head: bool = True, channel_group: int = 3):
    """Outputs and parameter gradients of the plain forward and of :func:`checkpointed_stages` on copies of one
    network, and the two networks afterwards."""
    nets = [randomise(tiny_net(memory_efficient_head=memory_efficient_head), seed=7) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    x = tiny_input(seed=7)
    results = []
    for index, net in enumerate(nets):
        net.train(train)
        torch.manual_seed(3)  # the same dropout masks
        out = net(x) if index == 0 else sadaan_outputs(x, *checkpointed_stages(net, x, channel_group=channel_group))
        loss = out["segmentation_logits"].square().mean() + out["absence_logits"].square().mean()
        loss = loss + (out["attention_maps"] * out["feature_responses"]).mean() + out["alignment_scores"].mean()
        loss = loss + out["confidence_scores"].mean()
        loss.backward()
        results.append((out, {n: p.grad.clone() for n, p in net.named_parameters()}))
    return results, nets


@pytest.mark.parametrize("channel_group", [1, 3, 4, 100])
@pytest.mark.parametrize("train", [True, False])
def test_checkpointed_stages_equal_the_plain_forward(train, channel_group):
    (out_a, grad_a), (out_b, grad_b) = _plain_and_checkpointed(train, channel_group=channel_group)[0]
    for key in SADAAN_OUTPUT_KEYS:
        torch.testing.assert_close(out_b[key], out_a[key], atol=2e-5, rtol=1e-4, msg=key)
    for name in grad_a:
        torch.testing.assert_close(grad_b[name], grad_a[name], atol=2e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("train", [True, False])
def test_checkpointed_stages_leave_batchnorm_as_the_plain_forward_does(train):
    """Training: each group updates its channels' running statistics once, the layer counts the batch once.
    Eval mode with gradients: the running statistics are read, not changed."""
    (_, (plain, ckpt)) = _plain_and_checkpointed(train, memory_efficient_head=False)
    before = randomise(tiny_net(memory_efficient_head=False), seed=7).state_dict()
    state_a, state_b = plain.state_dict(), ckpt.state_dict()
    buffers = [k for k in state_a if "running" in k or "num_batches" in k]
    assert len(buffers) == 3 * 22  # 18 BatchNorms in the encoder, 2 in the attention module, 2 in the head
    for name in buffers:
        torch.testing.assert_close(state_b[name], state_a[name], atol=1e-6, rtol=1e-5, msg=name)
        assert torch.equal(state_b[name], before[name]) is (not train), name


def test_literal_head_checkpointed_gives_the_efficient_heads_logits():
    literal = randomise(tiny_net(memory_efficient_head=False), seed=7).train()
    efficient = tiny_net(memory_efficient_head=True).train()
    efficient.load_state_dict(literal.state_dict())
    x = tiny_input(seed=7)
    logits = [checkpointed_stages(net, x, channel_group=3)[7] for net in (literal, efficient)]
    torch.testing.assert_close(logits[0], logits[1])


def test_batchnorm_statistics_kept_restores_running_statistics():
    net = randomise(tiny_net(), seed=2).train()
    before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k or "num_batches" in k}
    with batchnorm_statistics_kept(net.encoder, net.segmentation_head):
        net(tiny_input())
    after = net.state_dict()
    for name, value in before.items():
        changed = not torch.equal(after[name], value)
        assert changed is name.startswith("attention_module."), name  # only the modules given are restored


def test_checkpoint_segment_recomputes_without_a_second_statistics_update():
    net = randomise(tiny_net(), seed=4).train()
    plain = randomise(tiny_net(), seed=4).train()
    x = tiny_input(seed=4)
    out = checkpoint_segment(net.encoder, x, modules=(net.encoder,))
    ref = plain.encoder(x)
    out.square().mean().backward()  # recomputes the encoder
    ref.square().mean().backward()
    torch.testing.assert_close(out, ref)
    for (name, a), b in zip(plain.encoder.state_dict().items(), net.encoder.state_dict().values()):
        torch.testing.assert_close(b, a, msg=name)
    for (name, a), b in zip(plain.encoder.named_parameters(), net.encoder.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)


@pytest.mark.parametrize("group", [0, -2])
def test_channel_group_below_one_is_refused(group):
    net = randomise(tiny_net(), seed=1).train()
    with pytest.raises(ValueError, match=f"^expected a positive channel group, got {group}$"):
        checkpointed_stages(net, tiny_input(), channel_group=group)
