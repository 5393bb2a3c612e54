"""DAgger: dataset aggregation with expert relabeling of the learner's own states.

Ross, Gordon & Bagnell (2011), "A Reduction of Imitation Learning and Structured Prediction to
No-Regret Online Learning", AISTATS; CS285 (Levine, lecture 2: DAgger):

    1. train pi_theta on D (behavioral cloning, agents/imitation/bc.py)
    2. run pi_i = beta_i pi* + (1 - beta_i) pi_theta to get observations D_pi
    3. ask the expert pi* to label D_pi with actions
    4. aggregate D <- D u D_pi, repeat

Behavioral cloning alone trains on the expert's state distribution and is tested on the
learner's, so its errors compound (O(T^2 eps) regret); DAgger trains where the learner goes
(O(T eps)). The mixture follows the paper: beta_0 = 1 (the initial demonstrations are pure
expert), beta_i = p^i after. Labels are taken online, while the learner's episode runs, which is
the same as labelling afterwards for a scripted, trained or MPC expert, and is how a person at
the keyboard corrects the learner (they see the learner drive and press what they would do).

Defaults. p = 0, i.e. beta_i = I(i = 0): the paper's parameter-free schedule, which "often
performs best in practice" (Ross et al. 2011, section 3), and one learner episode per round:
for a fixed label budget that is the most rounds N, and the paper's bound shrinks with N (the
average regret of the online learner, gamma_N, goes to 0). Both matter where the learner's
failures are few states (pendulum: a learner that spins, or pumps the wrong way from a start it
has not seen): with beta_i = 0.5 the expert rescues the learner half the time, so its own
failure states are rarely visited and labelled, and with two episodes per round a failure found
in one round is labelled a round later. Measured on pendulum (256x256, 1,000 updates per
round): with p = 0.5 and two expert then two learner episodes per round, seeds 0..3 ended at
1.00, 0.24, 0.99, 0.63 after 1,200 labels (seed 1 spins at full speed, pushing the wrong way,
in states no expert-rescued episode visited); with these defaults the first score >= 0.95 came
at 600, 1,200, 1,200, 600, 1,200 and 1,000 labels on seeds 0..5, and all ended >= 0.98 at 2,000.

The learner is the BC agent; DAggerConfig extends BCConfig, so every BC option applies. The
loop is agents/loops/dagger.py `train_dagger`; the aggregated dataset is RUN/dataset, in the
same verified Minari layout as `kinema collect` writes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from agents.imitation import bc
from agents.imitation.bc import BCConfig
from agents.loops.dagger import beta_schedule, train_dagger
from agents.runs.config import require, require_positive

__all__ = ["DAggerConfig", "beta_schedule", "preset"]


@dataclass(frozen=True)
class DAggerConfig(BCConfig):
    """DAgger options plus the learner's (BC) options; `--steps` caps the expert labels (the
    episode that reaches the cap is cut there, so a run never holds more)."""

    expert: str = "scripted"
    """Labelling expert: scripted, mpc (or mpc:horizon=30,samples=128), teleop, or a run folder."""
    initial_episodes: int = 1
    """Pure expert episodes (beta_0 = 1) recorded first when no --dataset is given."""
    episodes_per_round: int = 1
    """Learner episodes (mixed with the expert by beta_i) labelled per round."""
    beta_decay: float = 0.0
    """p of the schedule beta_i = p^i for rounds i >= 1 (0: the learner alone drives)."""
    updates_per_round: int = 2000
    """Most gradient updates per round (early stopping may end a round sooner)."""
    warm_start: bool = True
    """Continue from the previous round's weights instead of training from scratch."""

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0.0 <= self.beta_decay <= 1.0, "beta_decay", self.beta_decay, "in [0, 1]")
        require_positive(self, "initial_episodes", "episodes_per_round", "updates_per_round")


def preset(env: str) -> DAggerConfig:
    """Per-env defaults (see BENCHMARKS.md, imitation section)."""
    return DAggerConfig()


ALGORITHMS = (
    dataclasses.replace(  # BC's learner and checks, DAgger's config and loop
        bc.ALGORITHMS[0], name="dagger", config_cls=DAggerConfig, preset=preset,
        loop=train_dagger, default_steps=lambda env: 5_000,
        description="DAgger (Ross et al. 2011): BC plus expert relabeling of the learner's "
                    "states; steps are expert labels."),
)
