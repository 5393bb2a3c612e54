"""Latent world models planned in latent space: TD-MPC2 (agents.latent.tdmpc)."""
