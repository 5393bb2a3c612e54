"""Model-based RL: learn a model of the dynamics, then plan through it.

    planners       CEM and MPPI over action sequences for any objective (sim MPC, PETS)
    rewards        the envs' reward and termination functions, batched in torch
    dynamics_fit   fitting models.dynamics.ProbabilisticEnsemble: NLL, bootstrap, early stopping
    mpc            the MPC controller over a learned ensemble (trajectory sampling), exportable
    pets           PETS (Chua et al. 2018) and the CS285 MBRL versions 0.5, 1.0, 1.5
"""
