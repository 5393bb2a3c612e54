"""Networks only: torch nn.Modules with no optimizers, losses or configs."""

from models.actor_critic import ActorCritic, CategoricalPolicy, GaussianPolicy
from models.ensemble import EnsembleLinear, QEnsemble, ensemble_mlp
from models.mlp import mlp
from models.normalizer import RewardScaler, RunningNorm
from models.off_policy import DeterministicActor, QNetwork, SquashedGaussianActor

__all__ = [
    "ActorCritic", "CategoricalPolicy", "DeterministicActor", "EnsembleLinear", "GaussianPolicy",
    "QEnsemble", "QNetwork", "RewardScaler", "RunningNorm", "SquashedGaussianActor",
    "ensemble_mlp", "mlp",
]
