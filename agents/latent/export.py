"""TD-MPC2's latent planner as a bundle's policy: encoder, MPPI and the prior in one graph.

Hansen, Su, Wang (2024), "TD-MPC2", arXiv:2310.16828, Algorithm 1: at every control step

    z_0 = h(s)
    for i in 1..iterations:                       (fixed: the loop unrolls in the graph)
        num_pi_trajs sequences from the prior p, rolled out through d
        the rest ~ N(mu, sigma^2), clipped to [-1, 1]          (mu: the warm start)
        J = sum_{t<H} gamma^t R(z_t, a_t) + gamma^H Q(z_H, p(z_H))
        mu, sigma <- MPPI over the elites
    apply mu_0 (in the robot's units); warm-start the next step with mu shifted by one step

This is the agent's own planner (agents/latent/planner.py, LatentMPPI) wrapped as ExportedMPC
wraps PETS' (agents/model_based/mpc.py), with the same two mechanisms: the warm start is
carried state (graph input `plan` [1, H, A], output `plan_out`, zeros at an episode start) and
every random draw of a planning call (`sample_noise`, `pi_noise`, `value_noise`,
`member_noise`: LatentMPPI.noise_shapes) is a graph input that the runtime draws standard
normal at each call (deploy.contract: state and noise). So on the same noise the graph returns
the action TDMPC.act(obs, deterministic=True) returns, scaled to the robot's units.

`graph_io` tells deploy.export which inputs are state and which are noise; deploy.export checks
onnxruntime against this module on chained and random states before it writes the bundle.

Both exports trace TD-MPC2's Mish as models.mish writes it (Sigmoid, Mul, Add and Div):
onnxruntime runs an ONNX Mish as Softplus, Tanh and Mul, and its CPU Softplus kernel took over
half of the exported planner's time.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from agents.latent.planner import LatentMPPI, shift_plan
from models.world_model import WorldModel


def unflatten(obs: Tensor, model: WorldModel) -> Tensor:
    """obs as exported, [batch, obs_dim] (camera frames flattened in C order: deploy.export),
    -> [batch, *obs_shape], what the encoder takes."""
    return obs.reshape(obs.shape[0], *model.obs_shape)


class ExportedLatentMPPI(nn.Module):
    """obs [1, obs_dim] (robot units; frames flattened), the warm start and the planner's
    noise in; the first
    planned action [1, A] in the robot's units and the next warm start [1, H, A] out."""

    act_mid: Tensor
    act_half: Tensor

    def __init__(self, planner: LatentMPPI, low: Tensor, high: Tensor) -> None:
        super().__init__()
        s, A = planner.s, planner.model.act_dim
        if s.num_pi_trajs < 1:  # its noise would be an empty graph input
            raise ValueError(f"num_pi_trajs is {s.num_pi_trajs}; the planner exports with at "
                             "least 1 prior trajectory (or export the prior alone: "
                             "kinema export --prior)")
        # a copy: the agent's own stays on its device
        self.planner = copy.deepcopy(planner)
        self.register_buffer("act_mid", (high + low).float() / 2)
        self.register_buffer("act_half", (high - low).float() / 2)
        shapes = self.planner.noise_shapes(1)
        self.noise_names = tuple(shapes)
        self.graph_io = {
            "state": [{"input": "plan", "output": "plan_out", "shape": [1, s.horizon, A],
                       "initial": 0.0}],
            "noise": [{"name": n, "shape": list(shape)} for n, shape in shapes.items()],
        }

    def forward(self, obs: Tensor, plan: Tensor, sample_noise: Tensor, pi_noise: Tensor,
                value_noise: Tensor, member_noise: Tensor) -> tuple[Tensor, Tensor]:
        z = self.planner.model.encode(unflatten(obs, self.planner.model))  # [1, latent]
        out = self.planner(z, plan, sample_noise, pi_noise, value_noise, member_noise)
        action = out.mean[:, 0].clamp(-1.0, 1.0)  # the mean plan's first action, [1, A]
        return self.act_mid + self.act_half * action, shift_plan(out.mean)


class PriorPolicy(nn.Module):
    """obs (robot units) -> the prior's mean action tanh(mu(h(obs))) in the robot's units."""

    low: Tensor
    high: Tensor

    def __init__(self, model: WorldModel, low: Tensor, high: Tensor) -> None:
        super().__init__()
        self.model = copy.deepcopy(model)
        self.register_buffer("low", low.float())
        self.register_buffer("high", high.float())

    def forward(self, obs: Tensor) -> Tensor:
        mean, _ = self.model.pi_mean_log_std(self.model.encode(unflatten(obs, self.model)))
        a = torch.tanh(mean).clamp(-1.0, 1.0)
        return self.low + (a + 1.0) * 0.5 * (self.high - self.low)
