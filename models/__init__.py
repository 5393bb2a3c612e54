"""Networks only, by role: torch nn.Modules with no optimizers, losses or configs.

    mlp           mlp, trunk, the activation table
    ensemble      EnsembleLinear, ensemble_mlp: E members as one batched computation
    normalizer    RunningNorm (observations), RewardScaler (returns), FittedNorm (model data)
    actors        ActorCritic (PPO), SquashedGaussianActor (SAC), DeterministicActor (DDPG, TD3)
    critics       QNetwork (DQN), QEnsemble (twin critics)
    dynamics      ProbabilisticEnsemble: PETS's Gaussian dynamics members (fitted by
                  agents.model_based.dynamics_fit)
    export_heads  obs -> action in robot units, as `kinema export` traces it
    world_model   WorldModel: TD-MPC2's encoder, latent dynamics, reward, Q ensemble and policy
                  prior, SimNorm (agents.latent.tdmpc); two_hot: symlog two-hot regression
"""

from models.actors import ActorCritic, DeterministicActor, SquashedGaussianActor
from models.critics import QEnsemble, QNetwork
from models.dynamics import ProbabilisticEnsemble
from models.ensemble import EnsembleLinear, ensemble_mlp
from models.export_heads import ArgmaxActionHead, EnsembleMean, ScaledActionHead
from models.mlp import mlp, trunk
from models.normalizer import FittedNorm, RewardScaler, RunningNorm

__all__ = [
    "ActorCritic", "ArgmaxActionHead", "DeterministicActor", "EnsembleLinear", "EnsembleMean",
    "FittedNorm", "ProbabilisticEnsemble", "QEnsemble", "QNetwork", "RewardScaler",
    "RunningNorm", "ScaledActionHead", "SquashedGaussianActor", "ensemble_mlp", "mlp", "trunk",
]
