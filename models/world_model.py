"""TD-MPC2's implicit world model: encoder, latent dynamics, reward, Q ensemble, policy prior.

Hansen, Su, Wang (2024), "TD-MPC2: Scalable, Robust World Models for Continuous Control",
arXiv:2310.16828, section 3 and appendix A; TD-MPC (Hansen, Wang, Su 2022, "Temporal
Difference Learning for Model Predictive Control", arXiv:2203.04955). Five components, all MLPs
of linear -> LayerNorm -> Mish layers:

    encoder     z   = h(s)            SimNorm output (an MLP for states, a CNN for pixels)
    dynamics    z'  = d(z, a)         SimNorm output
    reward      r^  = R(z, a)         logits over two-hot bins (models.two_hot)
    values      q^_i = Q_i(z, a)      an ensemble of num_q heads, dropout in the first layer
    prior       a^  ~ p(z)            tanh-squashed Gaussian, log-std bounded
    termination d^  = D(z')           a logit of "z' ends the episode" (only when `episodic`)

SimNorm (Lavoie et al. 2022, "Simplicial Embeddings in Self-Supervised Learning", arXiv:
2204.00616) splits a latent into groups of `simnorm_dim` and takes a softmax in each, so
latents live on a product of simplices and cannot blow up over a rollout. The Q heads are one
batched ensemble (models.ensemble.EnsembleLinear); their Polyak target is kept here as
`Q_target` (the agent updates it). Rewards and Q-values are regressed as two-hot distributions
in symlog space and decoded to scalars.

The API planning and export use: `encode(obs)`, `next(z, a)`, `reward(z, a)` (decoded),
`Q(z, a, which)`, `pi(z, noise)` and `terminated(z)`; every random draw (the prior's noise,
the two Q members) may be passed in, so a traced graph takes its randomness as inputs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from models.actors import tanh_gaussian_log_prob
from models.ensemble import EnsembleLinear
from models.mish import Mish
from models.mlp import check_sizes
from models.two_hot import check_bins, two_hot_inv

WHICH = ("min2", "avg", "all")


class SimNorm(nn.Module):
    """Simplicial normalization: a softmax within each group of `dim` features."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        return F.softmax(x.reshape(*shape[:-1], -1, self.dim), dim=-1).reshape(shape)


class NormedLinear(nn.Sequential):
    """linear -> (dropout) -> LayerNorm -> activation (Mish unless given: models.mish), TD-MPC2's
    block."""

    def __init__(self, in_dim: int, out_dim: int, *, act: nn.Module | None = None,
                 dropout: float = 0.0) -> None:
        layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
        if dropout:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers, nn.LayerNorm(out_dim), act if act is not None else Mish())


def normed_mlp(in_dim: int, hidden: Sequence[int], out_dim: int, *,
               out_act: nn.Module | None = None) -> nn.Sequential:
    """in -> hidden... -> out of NormedLinear blocks; the last layer plain linear, or a
    NormedLinear with `out_act` (SimNorm for latents)."""
    check_sizes(in_dim=in_dim, hidden=hidden, out_dim=out_dim)
    dims = [in_dim, *hidden]
    layers: list[nn.Module] = [NormedLinear(a, b) for a, b in zip(dims[:-1], dims[1:],
                                                                  strict=True)]
    last = dims[-1]
    layers.append(nn.Linear(last, out_dim) if out_act is None
                  else NormedLinear(last, out_dim, act=out_act))
    return nn.Sequential(*layers)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dim of [E, B, d], with its own affine weights per member."""

    def __init__(self, ensemble_size: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.ones(ensemble_size, 1, dim))
        self.bias = nn.Parameter(torch.zeros(ensemble_size, 1, dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, (self.dim,)) * self.weight + self.bias


def q_ensemble(num_q: int, in_dim: int, hidden: Sequence[int], out_dim: int,
               dropout: float) -> nn.Sequential:
    """num_q Q heads as one batched ensemble [B, in] -> [E, B, out]: NormedLinear blocks
    (dropout after the first linear, as in the paper) and a linear output."""
    check_sizes(num_q=num_q, in_dim=in_dim, hidden=hidden, out_dim=out_dim)
    dims = [in_dim, *hidden]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(EnsembleLinear(num_q, a, b))
        if i == 0 and dropout:
            layers.append(nn.Dropout(dropout))
        layers += [EnsembleLayerNorm(num_q, b), Mish()]
    layers.append(EnsembleLinear(num_q, dims[-1], out_dim))
    return nn.Sequential(*layers)


def random_shift(x: Tensor, pad: int = 4) -> Tensor:
    """DrQ's random-shift augmentation (Yarats, Kostrikov, Fergus 2021, arXiv:2004.13649):
    images [N, C, H, W] padded by `pad` (replicating the border) and cropped back to H x W at a
    random integer offset per image, from torch's global generator."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, n, 1), device=x.device)).unbind(0)
    rows = dy + torch.arange(h, device=x.device)  # [N, H]
    cols = dx + torch.arange(w, device=x.device)  # [N, W]
    out = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None],
                 cols[:, None, :]]  # [N, H, W, C]
    return out.permute(0, 3, 1, 2)


class PixelEncoder(nn.Module):
    """uint8 images [N, H, W, C] (C: stacked RGB frames) -> latent [N, latent_dim]: scaled to
    [-0.5, 0.5], randomly shifted while training, four convolutions (TD-MPC2's 7/2, 5/2, 3/2,
    3/1 with ReLU), a linear layer to latent_dim, and SimNorm."""

    def __init__(self, obs_shape: tuple[int, ...], latent_dim: int, num_channels: int,
                 simnorm_dim: int) -> None:
        super().__init__()
        h, w, c = obs_shape
        k = num_channels
        self.convs = nn.Sequential(
            nn.Conv2d(c, k, 7, stride=2), nn.ReLU(), nn.Conv2d(k, k, 5, stride=2), nn.ReLU(),
            nn.Conv2d(k, k, 3, stride=2), nn.ReLU(), nn.Conv2d(k, k, 3, stride=1), nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, c, h, w)).shape[-1]
        self.head = NormedLinear(flat, latent_dim, act=SimNorm(simnorm_dim))

    def forward(self, obs: Tensor) -> Tensor:
        x = obs.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        if self.training:
            x = random_shift(x)
        return self.head(self.convs(x))


class WorldModel(nn.Module):
    """h, d, R, Q_1..Q_num_q (+ target), p of TD-MPC2 for one task."""

    def __init__(self, obs_shape: tuple[int, ...], act_dim: int, *, pixels: bool = False,
                 latent_dim: int = 128, mlp_dim: int = 256, enc_dim: int = 256,
                 num_enc_layers: int = 2, num_q: int = 5, dropout: float = 0.01,
                 simnorm_dim: int = 8, num_bins: int = 101, vmin: float = -10.0,
                 vmax: float = 10.0, log_std_min: float = -10.0, log_std_max: float = 2.0,
                 num_channels: int = 32, episodic: bool = False) -> None:
        super().__init__()
        check_sizes(act_dim=act_dim, latent_dim=latent_dim, mlp_dim=mlp_dim, enc_dim=enc_dim,
                    num_enc_layers=num_enc_layers, num_q=num_q, simnorm_dim=simnorm_dim)
        check_bins(num_bins, vmin, vmax)
        if latent_dim % simnorm_dim:
            raise ValueError(f"latent_dim ({latent_dim}) must be a multiple of simnorm_dim "
                             f"({simnorm_dim})")
        if num_q < 2:
            raise ValueError(f"num_q must be >= 2 (targets take the min of two), got {num_q}")
        self.obs_shape, self.act_dim, self.latent_dim = tuple(obs_shape), act_dim, latent_dim
        self.num_q, self.vmin, self.vmax = num_q, vmin, vmax
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        za, hidden = latent_dim + act_dim, (mlp_dim, mlp_dim)
        self.encoder: nn.Module = (
            PixelEncoder(self.obs_shape, latent_dim, num_channels, simnorm_dim) if pixels
            else normed_mlp(math.prod(self.obs_shape), [enc_dim] * max(num_enc_layers - 1, 1),
                            latent_dim, out_act=SimNorm(simnorm_dim)))
        self.dynamics = normed_mlp(za, hidden, latent_dim, out_act=SimNorm(simnorm_dim))
        self.reward_net = normed_mlp(za, hidden, num_bins)
        self.pi_net = normed_mlp(latent_dim, hidden, 2 * act_dim)
        self.Qs = q_ensemble(num_q, za, hidden, num_bins, dropout)
        # TD-MPC2's `episodic` option: a termination classifier D(z') on the next latent.
        # Built last and only when asked, so a non-episodic model draws the same weights.
        self.termination_net = normed_mlp(latent_dim, hidden, 1) if episodic else None
        self.apply(_weight_init)
        # Zero output layers: the first predictions are uniform over the bins, decoded as 0.
        for head in (self.reward_net[-1], self.Qs[-1]):
            assert isinstance(head, nn.Linear | EnsembleLinear)
            nn.init.zeros_(head.weight)
        self.Q_target = copy.deepcopy(self.Qs).requires_grad_(False)

    def train(self, mode: bool = True) -> WorldModel:
        """As nn.Module.train, but the target Q heads stay in eval mode (no dropout)."""
        super().train(mode)
        self.Q_target.train(False)
        return self

    def world_parameters(self) -> list[nn.Parameter]:
        """Everything but the prior's: what the joint world-model loss trains (encoder first)."""
        heads = [] if self.termination_net is None else list(self.termination_net.parameters())
        return [*self.encoder.parameters(), *self.dynamics.parameters(),
                *self.reward_net.parameters(), *self.Qs.parameters(), *heads]

    @property
    def episodic(self) -> bool:
        """Whether the model predicts terminations (TD-MPC2's `episodic`)."""
        return self.termination_net is not None

    # -- the API of planning and export ------------------------------------------------------
    def encode(self, obs: Tensor) -> Tensor:
        """obs [*batch, *obs_shape] -> z [*batch, latent_dim]."""
        batch = obs.shape[: obs.dim() - len(self.obs_shape)]
        flat = obs.reshape(-1, *self.obs_shape)
        if not isinstance(self.encoder, PixelEncoder):
            flat = flat.reshape(flat.shape[0], -1).float()
        return self.encoder(flat).reshape(*batch, self.latent_dim)

    def next(self, z: Tensor, a: Tensor) -> Tensor:
        """d(z, a): the next latent [*batch, latent_dim]."""
        return self.dynamics(torch.cat([z, a], -1))

    def reward_logits(self, z: Tensor, a: Tensor) -> Tensor:
        """R(z, a) as logits over the bins [*batch, num_bins]."""
        return self.reward_net(torch.cat([z, a], -1))

    def reward(self, z: Tensor, a: Tensor) -> Tensor:
        """R(z, a) decoded to a scalar [*batch]."""
        return two_hot_inv(self.reward_logits(z, a), self.vmin, self.vmax)

    def termination_logits(self, z: Tensor) -> Tensor:
        """D(z): the logit that reaching latent z ends the episode [*batch] (episodic only)."""
        if self.termination_net is None:
            raise ValueError("this world model has no termination head (episodic is False)")
        return self.termination_net(z).squeeze(-1)

    def terminated(self, z: Tensor) -> Tensor:
        """D(z) > 0.5 as a float 0/1 [*batch]: TD-MPC2's predicted termination in planning
        (the logit's sign, the same test without rounding a sigmoid; all 0 when not
        episodic)."""
        if self.termination_net is None:
            return torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        return (self.termination_logits(z) > 0).to(z.dtype)

    def Q(self, z: Tensor, a: Tensor, which: str = "min2", *, target: bool = False,
          detach: bool = False, members: Tensor | None = None) -> Tensor:
        """Q(z, a) of the ensemble (`target`: the Polyak target; `detach`: the online heads'
        weights as constants, so gradients reach only z and a).

        which: 'all' the logits of every head [num_q, *batch, num_bins]; 'min2' the min and
        'avg' the mean of two heads' decoded values [*batch]. The two heads are `members`
        (int64 [2]) or, when None, two distinct ones drawn from torch's generator; only
        their weights are evaluated (a functional call on the two members' slices).
        """
        if which not in WHICH:
            raise ValueError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
        za = torch.cat([z, a], -1)
        batch = za.shape[:-1]
        flat = za.reshape(-1, za.shape[-1])
        net = self.Q_target if target else self.Qs
        params = None
        if which != "all":  # only the two heads' weights: 2 of num_q members evaluated
            if members is None:
                members = torch.randperm(self.num_q, device=flat.device)[:2]
            params = {k: v.index_select(0, members) for k, v in net.named_parameters()}
        if detach and not target:
            params = {k: v.detach() for k, v in (params or dict(net.named_parameters())).items()}
        out = net(flat) if params is None else functional_call(net, params, (flat,))
        out = out.reshape(out.shape[0], *batch, out.shape[-1])
        if which == "all":
            return out
        q = two_hot_inv(out, self.vmin, self.vmax)  # [2, *batch]
        return q.min(0).values if which == "min2" else q.mean(0)

    def pi_mean_log_std(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """The prior's Gaussian before squashing: mean and log-std, the latter squashed into
        [log_std_min, log_std_max] by tanh as in TD-MPC2."""
        mean, raw = self.pi_net(z).chunk(2, dim=-1)
        span = self.log_std_max - self.log_std_min
        return mean, self.log_std_min + 0.5 * span * (torch.tanh(raw) + 1.0)

    def pi(self, z: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """a = tanh(mu(z) + sigma(z) eps) [*batch, act_dim] and log p(a|z) [*batch].

        eps is `noise` (standard normal, the shape of a) or, when None, drawn from torch's
        generator; zero noise gives the prior's mean action tanh(mu(z)).
        """
        mean, log_std = self.pi_mean_log_std(z)
        eps = torch.randn_like(mean) if noise is None else noise
        u = mean + log_std.exp() * eps
        return torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)

    def pi_scaled(self, z: Tensor, noise: Tensor | None = None
                  ) -> tuple[Tensor, Tensor, Tensor]:
        """As `pi`, with TD-MPC2's action-dimension-scaled log-prob as a third output
        (`scaled_log_prob`), the one its prior's entropy bonus uses."""
        mean, log_std = self.pi_mean_log_std(z)
        eps = torch.randn_like(mean) if noise is None else noise
        u = mean + log_std.exp() * eps
        return (torch.tanh(u), tanh_gaussian_log_prob(u, mean, log_std),
                scaled_log_prob(u, mean, log_std))


def scaled_log_prob(u: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """TD-MPC2's log-prob of a = tanh(u), scaled by the action dimension A [...]:

        A log N(u; mean, std) - sum_i log(1 - tanh(u_i)^2)

    The Gaussian term (a sum over A dims) times A, the tanh correction as is (Hansen, Su,
    Wang 2024, arXiv:2310.16828, and its released code's `gaussian_logprob(..., size=A)`), so
    the entropy bonus keeps its weight against the value as the action space grows. A = 1: the
    plain log-prob (models.actors.tanh_gaussian_log_prob).
    """
    A = u.shape[-1]
    log_p = tanh_gaussian_log_prob(u, mean, log_std)
    z = (u - mean) * torch.exp(-log_std)
    log_normal = (-0.5 * z.square() - log_std).sum(-1) - 0.5 * math.log(2.0 * math.pi) * A
    return log_p + (A - 1) * log_normal


def _weight_init(m: nn.Module) -> None:
    """TD-MPC2's init: truncated normal (std 0.02) weights and zero biases for linear layers
    (ensemble layers included); convolutions keep PyTorch's."""
    if isinstance(m, nn.Linear | EnsembleLinear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
