"""TD-MPC2's settings (agents/latent/tdmpc.py): names as in Hansen, Su, Wang (2024),
arXiv:2310.16828, and its code; the network sizes scaled for CPU where the paper's are named."""

from __future__ import annotations

from dataclasses import dataclass

from agents.latent.planner import LatentMPPISettings
from agents.model_free.off_policy import OffPolicyConfig
from agents.runs.config import require, require_number, require_positive


@dataclass(frozen=True)
class TDMPCConfig(OffPolicyConfig):
    """TD-MPC2's hyperparameters (names as in the paper and its code; sizes scaled for CPU)."""

    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first update (the paper's seed steps)."""
    horizon: int = 3
    """H: steps of the latent rollout in the loss and of the plans."""
    rho: float = 0.5
    """Weight rho^t of step t of the rollout in every loss."""
    consistency_coef: float = 20.0
    """Weight of the latent consistency loss."""
    reward_coef: float = 0.1
    """Weight of the reward loss."""
    value_coef: float = 0.1
    """Weight of the value loss."""
    entropy_coef: float = 1e-4
    """Weight of log p in the prior's loss (maximum entropy); log p scaled by the action
    dimension as in TD-MPC2 (models.world_model.scaled_log_prob)."""
    episodic: bool = False
    """TD-MPC2's `episodic`: a termination head D(z') trained by BCE, and plans' returns cut
    after a predicted termination (the preset turns it on for envs that can terminate)."""
    termination_coef: float = 1.0
    """Weight of the termination loss (episodic only)."""
    seed_pretrain: bool = True
    """TD-MPC2's pretraining on the seed data: when the learning_starts random (seed) steps
    end, learning_starts updates in one burst; then gradient_steps per train_freq as always."""
    tau: float = 0.01
    """Polyak weight of the online Q heads in the target update."""
    lr: float = 3e-4
    """Adam learning rate (world model and prior)."""
    enc_lr_scale: float = 0.3
    """The encoder learns at lr * enc_lr_scale."""
    grad_clip_norm: float = 20.0
    """Gradient norm clip of the world model and of the prior."""
    latent_dim: int = 64
    """Width of z (the paper's 5M model: 512); a multiple of simnorm_dim."""
    mlp_dim: int = 256
    """Hidden width of dynamics, reward, Q and prior (paper: 512)."""
    enc_dim: int = 256
    """Hidden width of the state encoder (paper: 256)."""
    num_enc_layers: int = 2
    """Layers of the state encoder (paper: 2)."""
    num_channels: int = 32
    """Channels of the pixel encoder's convolutions (paper: 32)."""
    simnorm_dim: int = 8
    """Group size of SimNorm (paper: 8)."""
    num_q: int = 5
    """Q heads in the ensemble."""
    dropout: float = 0.01
    """Dropout after the first layer of each Q head."""
    num_bins: int = 101
    """Bins of the two-hot regression of rewards and values."""
    vmin: float = -10.0
    """Lowest bin, in symlog space."""
    vmax: float = 10.0
    """Highest bin, in symlog space."""
    log_std_min: float = -10.0
    """Lower bound of the prior's log-std."""
    log_std_max: float = 2.0
    """Upper bound of the prior's log-std."""
    plan: bool = True
    """Act by planning with MPPI in latent space; False: with the policy prior alone."""
    export_planner: bool = True
    """`kinema export` ships the MPPI planner as a stateful graph (agents/latent/export.py);
    False, or `plan` False: the prior alone, a fast feed-forward bundle."""
    iterations: int = 6
    """MPPI iterations per plan."""
    num_samples: int = 512
    """K: sequences per MPPI iteration, the prior's included."""
    num_elites: int = 64
    """Best sequences the MPPI update averages."""
    num_pi_trajs: int = 24
    """Sequences of every population drawn from the policy prior."""
    min_std: float = 0.05
    """Lower bound of the MPPI std."""
    max_std: float = 2.0
    """Upper bound (and start) of the MPPI std."""
    temperature: float = 0.5
    """MPPI weights exp(temperature (J - max J))."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(not self.prioritized, "prioritized", self.prioritized,
                "False (TD-MPC samples sequences uniformly)")
        require_positive(self, "horizon", "latent_dim", "mlp_dim", "enc_dim", "num_enc_layers",
                         "num_channels", "simnorm_dim", "iterations", "num_samples",
                         "num_elites")
        require(self.num_q >= 2 and isinstance(self.num_q, int), "num_q", self.num_q,
                "an integer >= 2")
        require(self.num_bins >= 2 and isinstance(self.num_bins, int), "num_bins",
                self.num_bins, "an integer >= 2")
        require(self.latent_dim % self.simnorm_dim == 0, "latent_dim", self.latent_dim,
                f"a multiple of simnorm_dim ({self.simnorm_dim})")
        require(isinstance(self.num_pi_trajs, int) and 0 <= self.num_pi_trajs
                < self.num_samples, "num_pi_trajs", self.num_pi_trajs,
                f"an integer in [0, num_samples) = [0, {self.num_samples})")
        require(self.num_elites <= self.num_samples, "num_elites", self.num_elites,
                f"<= num_samples ({self.num_samples})")
        require_number(self, "rho", low=0.0, high=1.0, low_open=True)
        require_number(self, "consistency_coef", "reward_coef", "value_coef", "entropy_coef",
                       "termination_coef", low=0.0)
        require_number(self, "tau", "enc_lr_scale", low=0.0, high=1.0, low_open=True)
        require_number(self, "lr", "grad_clip_norm", "temperature", low=0.0, low_open=True)
        require_number(self, "dropout", low=0.0, high=1.0, high_open=True)
        require_number(self, "min_std", low=0.0)
        require_number(self, "max_std", low=self.min_std, low_open=True)
        require(self.vmin < self.vmax, "vmin", self.vmin, f"< vmax ({self.vmax})")
        require(self.log_std_min < self.log_std_max, "log_std_min", self.log_std_min,
                f"< log_std_max ({self.log_std_max})")
        require(isinstance(self.plan, bool), "plan", self.plan, "True or False")
        for name in ("episodic", "seed_pretrain"):
            require(isinstance(getattr(self, name), bool), name, getattr(self, name),
                    "True or False")
        require(isinstance(self.export_planner, bool), "export_planner", self.export_planner,
                "True or False")

    def settings(self) -> LatentMPPISettings:
        return LatentMPPISettings(
            horizon=self.horizon, iterations=self.iterations, num_samples=self.num_samples,
            num_elites=self.num_elites, num_pi_trajs=self.num_pi_trajs, min_std=self.min_std,
            max_std=self.max_std, temperature=self.temperature, gamma=self.gamma)
