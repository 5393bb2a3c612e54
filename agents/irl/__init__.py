"""Inverse RL: MaxEnt IRL (tabular and deep), GAIL and AIRL."""
