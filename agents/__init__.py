"""Training: one file per algorithm, plus shared loops, evaluation, checkpoints and runs.

An agent offers, structurally: act(obs, deterministic=False), update(batch) -> loss terms,
state_dict() / load_state_dict(state), inference_module() -> nn.Module for export.
"""
