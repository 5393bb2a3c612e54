import torch

from models.normalizer import RewardScaler, RunningNorm


def test_running_norm_matches_batch_statistics():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1000, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]) + 2
    norm = RunningNorm((3,))
    for chunk in x.split(37):
        norm.update(chunk)
    assert torch.allclose(norm.mean, x.mean(0), atol=1e-6)
    assert torch.allclose(norm.var, x.var(0, unbiased=False), rtol=1e-4)
    y = norm(x.float())
    assert torch.allclose(y.mean(0), torch.zeros(3), atol=1e-3)
    assert torch.allclose(y.std(0), torch.ones(3), atol=1e-2)


def test_running_norm_clips_and_forward_does_not_update():
    norm = RunningNorm((1,), clip=5.0)
    norm.update(torch.zeros(10, 1))
    before = norm.count.clone()
    assert norm(torch.tensor([[1e6]])).item() == 5.0
    assert norm.count == before


def test_reward_scaler_divides_by_return_std_and_resets_on_episode_end():
    s = RewardScaler(num_envs=1, gamma=0.0)
    ended = torch.tensor([False])
    for r in [1.0, 3.0, 1.0, 3.0]:
        s(torch.tensor([r]), ended)
    # with gamma 0 the "return" is the reward; its std is 1 here
    assert abs(s.stats.var.item() - 1.0) < 1e-3
    s(torch.tensor([2.0]), torch.tensor([True]))
    assert s.ret.item() == 0.0
