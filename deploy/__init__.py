"""Deployment: ONNX export bundles and the real-time runner that plays them.

Kept empty on purpose: `deploy.export` needs torch, `deploy.runtime` must not, and anything
imported here would be imported by both.
"""
