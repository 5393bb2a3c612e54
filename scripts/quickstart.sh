#!/usr/bin/env bash
# The main job: train PPO on cart-pole, export it to ONNX, run the exported policy in the
# real-time runner against the simulator, and print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
train=$(kinema train ppo --env cartpole --target-return 475 --no-progress --json | tail -n 1)
run=$(printf '%s' "$train" | python -c 'import json, sys; print(json.load(sys.stdin)["run"])')
kinema export "$run" --json | tail -n 1 > "$run/export.json"
kinema run "$run/bundle" --episodes 2 --json | tail -n 1 > "$run/realtime.json"
python - "$run" <<'PY'
import json, pathlib, sys, time

import numpy as np

from deploy.runtime.policy import OnnxPolicy

run = pathlib.Path(sys.argv[1])
train = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
ev = [r for r in train if r.get("kind") == "eval"][-1]
exp = json.loads((run / "export.json").read_text())
rt = json.loads((run / "realtime.json").read_text())
# The same policy called back to back (hot caches), to set beside the in-loop figure.
policy = OnnxPolicy(run / "bundle")
obs = np.zeros(policy.obs_dim, np.float32)
hot = []
for i in range(3000):
    t0 = time.perf_counter()
    policy(obs)
    if i >= 1000:  # after a warm-up
        hot.append(time.perf_counter() - t0)
hot_p50 = float(np.percentile(hot, 50)) * 1e6
rate = policy.contract.rate_hz
print(f"run          {run}")
print(f"training     {ev['step']} env steps, {ev['train_s']:.1f} s, eval return {ev['return_mean']:.1f}")
print(f"export       {exp['bundle']} (onnx parity max error {exp['parity_max_abs_error']:.2e})")
print(f"real time    return {rt['return_mean']:.1f} over {rt['episodes']} episodes, "
      f"{rt['steps']} control steps in {rt['wall_s']:.1f} s")
print(f"inference    p50 {rt['inference_p50_us']:.0f} us, p99 {rt['inference_p99_us']:.0f} us "
      f"inside the {rate:.0f} Hz loop (onnxruntime, one thread, one observation):\n"
      f"             each call follows ~{1000 / rate:.0f} ms of sleep and finds the CPU caches "
      f"cold; the same call back to back,\n             caches hot: p50 {hot_p50:.0f} us "
      "(`kinema bench deploy` measures both)")
print(f"latency      p50 {rt['latency_p50_us']:.0f} us, p99 {rt['latency_p99_us']:.0f} us, "
      f"jitter p99 {rt['jitter_p99_us']:.0f} us, deadline misses {rt['deadline_misses']}, "
      f"stop {rt['stop_reason']}")
PY
echo
echo "To use kinema and tensorboard in this shell (the README's examples), activate the venv:"
echo "  source $PWD/.venv/bin/activate"
