"""Peer scripts that run inside their own virtual environments (see benchmarks/mbrl_peer.py)."""
