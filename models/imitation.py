"""Heads of imitation policies: the ensemble-mean action as one exportable module."""

from __future__ import annotations

from torch import Tensor, nn


class EnsembleMean(nn.Module):
    """[B, obs] -> mean over E members of the first `out_dim` outputs of `net` ([E, B, *]).

    For a Gaussian head the first act_dim outputs are the mean (the log-std follows); for a
    categorical head they are the logits, whose member average ranks actions for the argmax.
    """

    def __init__(self, net: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.net, self.out_dim = net, out_dim

    def forward(self, obs: Tensor) -> Tensor:
        return self.net(obs)[..., : self.out_dim].mean(0)
