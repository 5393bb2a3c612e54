"""Random network distillation for PPO: the bonus, its normalization, the combined advantage,
checkpoint/resume, export, and exploration on mountain car."""

import copy
import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import sim
from agents.model_free.ppo import PPO, PPOConfig, preset
from agents.model_free.rnd import RND, combined_advantage, predictor_loss
from agents.runs.train import TrainConfig, load_agent, resume, train
from deploy.export import export_bundle
from models.normalizer import RunningNorm

CPU = torch.device("cpu")


def _rnd(**kw) -> RND:
    return RND(2, 3, **({"int_gamma": 0.99, "update_proportion": 1.0, "lr": 1e-3} | kw))


def test_predictor_loss_falls_on_a_repeated_batch_and_the_target_stays_fixed():
    torch.manual_seed(0)
    rnd = _rnd()
    x = rnd.inputs(torch.randn(64, 2))
    target = copy.deepcopy(rnd.target.state_dict())
    first = float(rnd.step(x))
    for _ in range(200):
        last = float(rnd.step(x))
    assert last < 0.05 * first
    assert all(torch.equal(v, target[k]) for k, v in rnd.target.state_dict().items())


def test_predictor_loss_counts_only_the_masked_samples():
    pred, target = torch.tensor([[1.0, 1.0], [3.0, 0.0]]), torch.zeros(2, 2)
    assert predictor_loss(pred, target, torch.tensor([True, False])).item() == 1.0
    assert predictor_loss(pred, target, torch.tensor([False, True])).item() == 4.5
    assert predictor_loss(pred, target, torch.tensor([False, False])).item() == 0.0


def test_intrinsic_reward_is_higher_for_novel_than_for_seen_observations():
    torch.manual_seed(1)
    rnd = _rnd(lr=3e-3)
    seen = torch.rand(16, 3, 2) * 0.5  # one corner of the observation space
    rnd.rewards(seen)  # the statistics come from the seen states
    for _ in range(300):
        rnd.step(rnd.inputs(seen.reshape(-1, 2)))
    novel = torch.rand(48, 2) * 0.5 + torch.tensor([0.5, -0.5])
    assert rnd.novelty(novel).mean() > 10 * rnd.novelty(seen.reshape(-1, 2)).mean()


def test_rewards_are_divided_by_the_std_of_the_non_episodic_intrinsic_return():
    torch.manual_seed(2)
    rnd = _rnd(int_gamma=0.5)
    obs = torch.randn(2, 3, 2)
    r1, raw1 = rnd.rewards(obs)
    returns = torch.stack([raw1[0], 0.5 * raw1[0] + raw1[1]]).double()
    stats = RunningNorm(())
    stats.update(returns.reshape(-1))
    torch.testing.assert_close(r1, raw1 / (stats.var + stats.eps).sqrt().float())
    # the return is carried into the next rollout, never reset
    _, raw2 = rnd.rewards(obs)
    torch.testing.assert_close(rnd.int_return, (0.25 * returns[1] + 0.5 * raw2[0].double()
                                                + raw2[1].double()))


def test_combined_advantage_of_ppo_against_a_hand_computation():
    torch.manual_seed(3)
    cfg = PPOConfig(num_envs=1, num_steps=2, num_minibatches=1, lam=0.5, rnd=0.5,
                    rnd_int_gamma=0.9, rnd_ext_coef=2.0, rnd_int_coef=3.0, norm_obs=False)
    agent = PPO(cfg, sim.spec("mountaincar").info, CPU)
    b = agent.buffer
    b.obs[:] = torch.tensor([[[-0.5, 0.0]], [[-0.4, 0.01]]])
    b.ended[0] = True  # an episode end cuts the extrinsic recursion, not the intrinsic one
    agent.raw_next_obs[:] = torch.tensor([[[-0.4, 0.01]], [[-0.3, 0.02]]])
    adv_ext = torch.tensor([[1.0], [-1.0]])
    bonus = copy.deepcopy(agent.rnd)
    r, _ = bonus.rewards(agent.raw_next_obs.clone())
    with torch.no_grad():
        v = agent.int_critic(torch.cat([b.obs, agent.raw_next_obs[-1:]])).reshape(3)
    d0, d1 = r[0, 0] + 0.9 * v[1] - v[0], r[1, 0] + 0.9 * v[2] - v[1]
    a_int = torch.stack([d0 + 0.9 * 0.5 * d1, d1])
    adv, extra = agent.intrinsic(adv_ext)
    torch.testing.assert_close(adv.reshape(2), 2.0 * adv_ext.reshape(2) + 1.5 * a_int)
    torch.testing.assert_close(extra["int_returns"].reshape(2), a_int + v[:2])
    assert torch.isnan(agent.raw_next_obs).all()  # consumed: a loop that does not refill fails
    with pytest.raises(RuntimeError, match="raw_next_obs"):
        agent.intrinsic(adv_ext)
    assert combined_advantage(torch.ones(2), torch.full((2,), 4.0), 2.0, 0.25).tolist() == [3, 3]


def test_rnd_off_builds_nothing_and_bad_settings_are_refused():
    agent = PPO(PPOConfig(), sim.spec("mountaincar").info, CPU)
    assert agent.rnd is None and not hasattr(agent, "raw_next_obs")
    assert set(agent.state_dict()) == {"net", "reward_scaler", "optim"}
    for bad in ({"rnd": -1.0}, {"rnd_update_proportion": 0.0}, {"rnd_int_gamma": 1.5},
                {"rnd_hidden": ()}, {"rnd_features": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PPOConfig(**bad)


class Crash(Exception):
    pass


def _weights(run):
    latest = (run / "LATEST").read_text().strip()
    folder = run / latest if (run / latest).is_dir() else run / "checkpoints" / latest
    return (load_file(str(folder / "model.safetensors")),
            load_file(str(folder / "optim.safetensors")))


def test_ppo_rnd_resumes_bit_exactly_logs_its_terms_and_exports_the_actor(tmp_path):
    n = 1024  # one rollout of the mountaincar preset
    algo = dataclasses.replace(preset("mountaincar"), rnd=1.0)
    base = dict(algo="ppo", env="mountaincar", steps=2 * n, eval_every=n, checkpoint_every=n,
                seed=3, eval_episodes=1)
    straight = train(TrainConfig(**base, runs_dir=str(tmp_path / "a")), algo)

    def crash(p):
        if p.step >= n:
            raise Crash

    with pytest.raises(Crash):
        train(TrainConfig(**base, runs_dir=str(tmp_path / "b")), algo, on_progress=crash)
    (crashed,) = (tmp_path / "b").iterdir()
    resumed = resume(crashed)
    (model_a, optim_a), (model_b, optim_b) = _weights(straight.run), _weights(resumed.run)
    assert {"agent/rnd/modules/target.net.0.weight", "agent/rnd/modules/predictor.net.0.weight",
            "agent/rnd/int_return", "agent/int_critic/0.weight"} <= model_a.keys()
    assert any(k.startswith("optim/rnd/") for k in optim_a)
    assert model_a.keys() == model_b.keys() and optim_a.keys() == optim_b.keys()
    for k in model_a:
        assert torch.equal(model_a[k], model_b[k]), k
    for k in optim_a:
        assert torch.equal(optim_a[k], optim_b[k]), k
    rows = [json.loads(x) for x in (straight.run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert all(r["int_reward"] > 0 and r["rnd_loss"] > 0 and r["int_value_loss"] >= 0
               for r in train_rows)
    # export: the actor alone, the same bundle path as PPO without RND
    agent, run = load_agent(straight.run)
    module = agent.inference_module()
    assert not any(p is q for p in module.parameters() for q in agent.rnd.predictor.parameters())
    obs = np.random.default_rng(0).uniform([-1.2, -0.07], [0.6, 0.07], (64, 2)).astype(np.float32)
    contract = export_bundle(module, env="mountaincar", out_dir=tmp_path / "bundle",
                             source_run=run.path.name, rollout_obs=obs)
    assert contract.parity_max_abs_error == 0.0  # discrete: the same argmax action


def _max_position(seed: int, rnd: float, steps: int, root, monkeypatch) -> float:
    """The highest car position the training rollouts reach (the real final observation of an
    ended episode included); the evaluation's envs (made without a seed) are not counted."""
    make_vec, best = sim.make_vec, [-np.inf]

    def recording(*a, **k):
        envs = make_vec(*a, **k)
        if "seed" not in k:
            return envs
        step = envs.step

        def record(action):
            out = step(action)
            finals = [f[0] for f in out[4].get("final_obs", []) if f is not None]
            best[0] = max(best[0], float(out[0][:, 0].max()), *map(float, finals))
            return out

        envs.step = record
        return envs

    with monkeypatch.context() as m:
        m.setattr(sim, "make_vec", recording)
        algo = dataclasses.replace(preset("mountaincar"), rnd=rnd)
        train(TrainConfig(algo="ppo", env="mountaincar", steps=steps, seed=seed,
                          eval_every=steps, eval_episodes=1, runs_dir=str(root / f"{seed}-{rnd}")),
              algo)
    return best[0]


@pytest.mark.parametrize("seed", [1, 2])
def test_rnd_drives_ppo_further_up_the_mountain_within_a_small_budget(seed, tmp_path, monkeypatch):
    """PPO's mountaincar preset for 12,288 env steps (12 rollouts), --rnd 1 vs --rnd 0.

    Measured highest training position (goal at 0.5) on seeds 0-4, without -> with RND:
    0.519 -> 0.527, 0.230 -> 0.528, 0.193 -> 0.468, 0.530 -> 0.515, 0.369 -> 0.536 (medians
    0.369 -> 0.527; the goal reached by 2/5 runs without RND, 4/5 with). Seeds 1 and 2 are
    two where PPO alone stays far below the goal at this budget; the margin asked (0.2) is
    two thirds of the measured ones (0.30, 0.28).
    """
    without = _max_position(seed, 0.0, 12_288, tmp_path, monkeypatch)
    with_rnd = _max_position(seed, 1.0, 12_288, tmp_path, monkeypatch)
    assert with_rnd >= 0.45 and with_rnd > without + 0.2, (without, with_rnd)


def test_kinema_train_takes_rnd_and_refuses_a_bad_value_in_one_line(tmp_path, capsys):
    from kinema.cli import main

    common = ["train", "ppo", "--env", "mountaincar", "--steps", "1024", "--eval-episodes", "1",
              "--runs-dir", str(tmp_path), "--no-progress"]
    assert main([*common, "--rnd", "0.5", "--rnd-update-proportion", "0.5", "--json"]) == 0
    (run,) = tmp_path.iterdir()
    algo = json.loads((run / "config.json").read_text())["config"]["algo_config"]
    assert (algo["rnd"], algo["rnd_update_proportion"], algo["rnd_ext_coef"]) == (0.5, 0.5, 2.0)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert "int_reward" in next(r for r in rows if r["kind"] == "train")
    capsys.readouterr()
    assert main([*common, "--rnd", "-1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "rnd must be a finite number >= 0, got -1.0" in line
