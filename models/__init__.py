"""Networks only: torch nn.Modules with no optimizers, losses or configs."""

from models.actor_critic import ActorCritic, CategoricalPolicy, GaussianPolicy
from models.mlp import mlp
from models.normalizer import RewardScaler, RunningNorm

__all__ = ["ActorCritic", "CategoricalPolicy", "GaussianPolicy", "RewardScaler", "RunningNorm", "mlp"]
