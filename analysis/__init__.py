"""Many runs as data: read run folders and sweeps, aggregate returns over seeds with
rliable-style intervals (Agarwal et al. 2021), and draw learning curves.

Torch-free and agents-free by design (tests/test_import_graph.py): `kinema report` and
`kinema plot` read config.json and metrics.jsonl with the standard library and numpy, so they
run on any machine that holds the run folders. Modules: runs (find, read, group), stats (IQM,
stratified bootstrap), report (per-configuration statistics), plot (matplotlib, headless).
"""
