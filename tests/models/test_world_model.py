"""TD-MPC2's world model: two-hot regression, SimNorm, the Q ensemble's reductions, the prior,
gradient isolation of the detached Q heads, the pixel encoder and its random shift."""

import math

import pytest
import torch

from models.two_hot import soft_ce, symexp, symlog, two_hot, two_hot_inv
from models.world_model import SimNorm, WorldModel, random_shift


def test_symlog_hand_computed_and_symexp_inverts_it():
    x = torch.tensor([-3.0, 0.0, math.e - 1.0, 100.0])
    assert symlog(x).tolist() == pytest.approx([-math.log(4.0), 0.0, 1.0, math.log(101.0)])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)


def test_two_hot_hand_computed_on_a_five_bin_support():
    # bins -2, -1, 0, 1, 2 in symlog space; symlog(e - 1) = 1 sits on bin 3
    x = torch.tensor([math.e - 1.0, 0.0, -(math.exp(0.25) - 1.0), 1e9])
    t = two_hot(x, 5, -2.0, 2.0)
    assert t[0].tolist() == pytest.approx([0, 0, 0, 1, 0])
    assert t[1].tolist() == pytest.approx([0, 0, 1, 0, 0])
    assert t[2].tolist() == pytest.approx([0, 0.25, 0.75, 0, 0])  # -0.25: a quarter on -1
    assert t[3].tolist() == pytest.approx([0, 0, 0, 0, 1])  # clamped to vmax
    assert torch.allclose(t.sum(-1), torch.ones(4))


def test_two_hot_round_trip_through_its_logits():
    x = torch.tensor([-500.0, -3.2, -0.01, 0.0, 0.4, 7.0, 2000.0])
    target = two_hot(x, 101, -10.0, 10.0)
    decoded = two_hot_inv(torch.log(target.clamp(min=1e-30)), -10.0, 10.0)
    assert torch.allclose(decoded, x, rtol=1e-4, atol=1e-5)
    # uniform logits decode to the support's middle, 0 (the zero-initialised heads' output)
    assert two_hot_inv(torch.zeros(3, 101), -10.0, 10.0).abs().max() < 1e-5


def test_soft_ce_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0), 0.0]])  # softmax 0.2, 0.6, 0.2
    x = torch.tensor([math.exp(0.5) - 1.0])  # symlog 0.5: half on bin 0, half on bin 1
    ce = soft_ce(logits, x, 0.0, 1.0 * 2)  # bins 0, 1, 2
    assert ce.item() == pytest.approx(-(0.5 * math.log(0.2) + 0.5 * math.log(0.6)), rel=1e-5)


def test_simnorm_rows_sum_to_one_per_group():
    x = torch.randn(4, 7, 32) * 5
    y = SimNorm(8)(x).reshape(4, 7, 4, 8)
    assert torch.allclose(y.sum(-1), torch.ones(4, 7, 4), atol=1e-6) and (y >= 0).all()


def _model(**kw):
    torch.manual_seed(0)
    return WorldModel((3,), 2, latent_dim=16, mlp_dim=32, enc_dim=32, **kw)


def test_latents_are_simplicial_and_shapes_follow_the_batch():
    m = _model().eval()
    z = m.encode(torch.randn(4, 5, 3))
    assert z.shape == (4, 5, 16)
    assert torch.allclose(z.reshape(4, 5, 2, 8).sum(-1), torch.ones(4, 5, 2), atol=1e-6)
    a = torch.rand(4, 5, 2) * 2 - 1
    assert m.next(z, a).shape == (4, 5, 16)
    assert m.reward(z, a).shape == (4, 5)
    assert m.Q(z, a, "all").shape == (5, 4, 5, 101)
    # zero-initialised output layers: reward and Q start at exactly 0
    assert m.reward(z, a).abs().max() < 1e-5 and m.Q(z, a, "avg").abs().max() < 1e-5


def test_q_min2_and_avg_reduce_the_two_given_members():
    m = _model().eval()
    for p in m.Qs[-1].parameters():
        torch.nn.init.normal_(p, std=0.5)  # distinct heads
    z, a = m.encode(torch.randn(6, 3)), torch.rand(6, 2)
    decoded = two_hot_inv(m.Q(z, a, "all"), m.vmin, m.vmax)  # [5, 6]
    members = torch.tensor([3, 1])
    assert torch.allclose(m.Q(z, a, "min2", members=members),
                          torch.minimum(decoded[3], decoded[1]))
    assert torch.allclose(m.Q(z, a, "avg", members=members), (decoded[3] + decoded[1]) / 2)
    # only the two members are evaluated: the other heads' weights get no gradient
    m.Q(z, a, "avg", members=members).sum().backward()
    first = m.Qs[0].weight.grad
    assert first is not None and first[[0, 2, 4]].abs().max() == 0.0
    assert first[3].abs().max() > 0.0 and first[1].abs().max() > 0.0
    with pytest.raises(ValueError, match="which must be one of min2, avg, all"):
        m.Q(z, a, "max")


def test_detached_q_passes_gradients_to_its_inputs_only():
    m = _model()
    z = m.encode(torch.randn(6, 3)).detach().requires_grad_(True)
    a = torch.rand(6, 2, requires_grad=True)
    m.Q(z, a, "avg", detach=True).sum().backward()
    assert all(p.grad is None for p in m.Qs.parameters())
    assert z.grad is not None and a.grad is not None
    m.Q(z, a, "avg").sum().backward()
    assert all(p.grad is not None for p in m.Qs.parameters())


def test_target_heads_are_a_copy_kept_in_eval_mode():
    m = _model().train()
    assert not m.Q_target.training and m.Qs.training
    assert all(torch.equal(p, q) for p, q in zip(m.Qs.parameters(), m.Q_target.parameters(),
                                                 strict=True))
    assert not any(p.requires_grad for p in m.Q_target.parameters())


def test_prior_with_zero_noise_is_its_squashed_mean_and_log_std_is_bounded():
    m = _model(log_std_min=-5.0, log_std_max=1.0)
    for p in m.pi_net[-1].parameters():
        torch.nn.init.normal_(p, std=10.0)  # push the raw log-std to both ends
    z = m.encode(torch.randn(64, 3))
    mean, log_std = m.pi_mean_log_std(z)
    assert log_std.min() >= -5.0 and log_std.max() <= 1.0
    a, logp = m.pi(z, torch.zeros(64, 2))
    assert torch.equal(a, torch.tanh(mean)) and logp.shape == (64,)
    a, _ = m.pi(z)
    assert a.abs().max() <= 1.0 and not torch.equal(a, torch.tanh(mean))


def test_random_shift_crops_the_replicate_padded_image():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 10 * 10, dtype=torch.float32).reshape(2, 3, 10, 10)
    y = random_shift(x, pad=2)
    assert y.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for n in range(2):  # each image is one integer-offset window of its padded self
        hits = [(dy, dx) for dy in range(5) for dx in range(5)
                if torch.equal(padded[n, :, dy:dy + 10, dx:dx + 10], y[n])]
        assert len(hits) == 1


def test_pixel_encoder_takes_stacked_uint8_frames():
    torch.manual_seed(0)
    m = WorldModel((64, 64, 9), 1, pixels=True, latent_dim=16, mlp_dim=16, num_channels=8)
    obs = torch.randint(0, 256, (2, 3, 64, 64, 9), dtype=torch.uint8)
    m.eval()
    z = m.encode(obs)
    assert z.shape == (2, 3, 16) and torch.equal(z, m.encode(obs))  # no shift in eval mode
    m.train()
    assert not torch.equal(m.encode(obs), z)  # the random shift while training


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match="latent_dim .* multiple of simnorm_dim"):
        WorldModel((3,), 1, latent_dim=12)
    with pytest.raises(ValueError, match="num_bins must be an integer >= 2"):
        WorldModel((3,), 1, num_bins=1)
    with pytest.raises(ValueError, match="num_q must be >= 2"):
        WorldModel((3,), 1, num_q=1)
