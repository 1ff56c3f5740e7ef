import json
import math
import os
import signal

import pytest
import torch

from stylegan_core import checkpoint as ck
from stylegan_core import training
from stylegan_core.errors import ConfigError, DatasetError, NonFiniteError
from stylegan_core.layers import upscale2d
from stylegan_core.loss import DiscriminatorLoss, generator_loss
from stylegan_core.presets import get_preset
from stylegan_core.schedule import training_config


class MemDataset:
    """The open_dataset interface over an in-memory uint8 tensor."""

    def __init__(self, n=48, res=16, seed=0):
        gen = torch.Generator().manual_seed(seed)
        base = torch.rand(n, 3, 1, 1, generator=gen) * 200
        ramp = torch.linspace(0, 50, res)[None, None, None, :]
        self.images = (base + ramp + 5 * torch.rand(n, 3, res, res, generator=gen)).clamp(0, 255).to(torch.uint8)
        self.resolution, self.num_channels, self.path = res, 3, "memory"

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def load_all(self):
        return self.images.clone()


# 8x8 for 32 images, fade in 16x16 over 96 images, then 16x16; 32 images per round.
TINY = dict(lod_training_kimg=0.032, lod_transition_kimg=0.096, minibatch_base=8, minibatch_repeats=4,
            snapshot_kimg=1.0, tick_kimg=0.064, grid_size=4, ema_kimg=0.1)


def _cfg(total_kimg, **kw):
    return training_config("cpu", total_kimg=total_kimg, **{**TINY, **kw})


def _train(run_dir, total_kimg, resume=False, preset="F-test16", dataset=None, **kw):
    cfg = _cfg(total_kimg, **kw)
    return training.train(run_dir, dataset or MemDataset(), get_preset(preset), cfg, resume=resume, progress=False)


def _tensors_equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_tensors_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_tensors_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.slow
def test_resume_continues_bit_for_bit(tmp_path):
    straight = _train(tmp_path / "straight", 0.192)
    assert straight.status == "finished" and straight.nimg == 192
    half = _train(tmp_path / "split", 0.096)  # stops mid fade-in
    assert half.nimg == 96 and half.snapshot.name == "snapshot-0000000096.pt"
    assert ck.checkpoint_info(half.snapshot)["progress"]["phase"] == "fade-in"
    resumed = _train(tmp_path / "split", 0.192, resume=True)
    a, b = ck.load_checkpoint(straight.snapshot), ck.load_checkpoint(resumed.snapshot)
    for key in ("G", "G_ema", "D", "optimizers", "rng"):
        assert _tensors_equal(a[key], b[key]), key
    assert a["progress"] == b["progress"]
    # Statistics: one line per tick (64 images) and one at the end of each run; the last tick
    # after the resume point is the one the straight run logged.
    def losses(run):
        lines = (tmp_path / run / "stats.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k not in ("time_s", "images_per_s")} for line in lines]
    assert [s["nimg"] for s in losses("straight")] == [64, 128, 192]
    assert [s["nimg"] for s in losses("split")] == [64, 96, 128, 192]
    assert losses("split")[0] == losses("straight")[0] and losses("split")[-1] == losses("straight")[-1]
    # Training changed the weights, and the grid was written.
    assert not torch.equal(a["G"]["synthesis.const"], torch.ones_like(a["G"]["synthesis.const"]))
    assert (tmp_path / "straight" / "snapshot-0000000192.png").stat().st_size > 0


def test_wgan_gp_preset_trains_with_mirror_augmentation(tmp_path):
    result = _train(tmp_path / "a", 0.064, preset="A-test16", loss="wgan-gp", mirror=True)
    state = ck.load_checkpoint(result.snapshot)
    assert state["config"]["training"]["loss"] == "wgan-gp" and state["config"]["preset"] == "A-test16"
    stats = [json.loads(line) for line in (tmp_path / "a" / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["nimg"] == 64 and all(torch.isfinite(torch.tensor(s["loss_D"])) for s in stats)


def test_process_reals_fades_and_mirrors():
    x = torch.arange(16, dtype=torch.uint8).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1) * 10
    gen = torch.Generator().manual_seed(0)
    flips = torch.rand(2, generator=torch.Generator().manual_seed(0)) < 0.5
    out = training.process_reals(x, 0.0, True, gen)
    f = x.float() * (2 / 255) - 1
    for i in range(2):
        assert torch.equal(out[i], f[i].flip(2) if flips[i] else f[i])
    # lod 1: 2x2 box average, nearest upscale; lod 0.5: halfway between full and that.
    low = training.process_reals(x, 1.0, False, gen)
    assert torch.allclose(low[0, 0, :2, :2], f[0, 0, :2, :2].mean().expand(2, 2))
    mid = training.process_reals(x, 0.5, False, gen)
    assert torch.allclose(mid, (f + low) / 2, atol=1e-6)


def test_process_reals_at_the_lods_resolution_is_the_full_one_downscaled():
    x = MemDataset(n=4).images
    for lod in (0.0, 1.0, 1.5, 2.0):
        full = training.process_reals(x, lod, True, torch.Generator().manual_seed(3))
        own = training.process_reals(x, lod, True, torch.Generator().manual_seed(3), full_resolution=False)
        k = 2 ** math.floor(lod)
        assert own.shape == (4, 3, 16 // k, 16 // k)
        assert torch.allclose(upscale2d(own, k), full, atol=1e-6)


@pytest.mark.parametrize("lod", [1.0, 1.5, 0.25])
@pytest.mark.parametrize("preset", ["F-test16", "A-test16"])  # logistic + R1, WGAN-GP
def test_training_at_the_lods_resolution_equals_full_resolution(preset, lod):
    """D's loss, the penalty, D's and G's gradients: the same whether the images travel at the
    level of detail's own resolution or nearest-upscaled to the full one."""
    p, cfg = get_preset(preset), _cfg(1)
    nets, _ = training._build(p, cfg, torch.device("cpu"), rank=0)
    G, D = nets["G"], nets["D"]
    G.synthesis.set_lod(lod), D.set_lod(lod)
    d_loss = DiscriminatorLoss(D, p.loss, cfg.r1_gamma)
    ws = G.mapping(torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(1)))
    mix = torch.rand(8, 1, 1, 1, generator=torch.Generator().manual_seed(2))
    out = {}
    for full in (True, False):
        reals = training.process_reals(MemDataset(n=8).images, lod, True, torch.Generator().manual_seed(4), full)
        loss, stats = d_loss(reals, G.synthesis(ws.detach(), noise_mode="const", full_resolution=full), mix)
        d_grads = torch.autograd.grad(loss, list(D.parameters()), allow_unused=True)
        g_loss = generator_loss(p.loss, D(G.synthesis(ws.detach(), noise_mode="const", full_resolution=full)))
        g_params = list(G.synthesis.parameters())
        g_grads = torch.autograd.grad(g_loss, g_params, allow_unused=True)
        out[full] = (stats, d_grads, g_loss.detach(), g_grads)
    (s_full, d_full, g_full, gg_full), (s_own, d_own, g_own, gg_own) = out[True], out[False]
    assert s_full[2] > 0  # the penalty is measured
    assert torch.allclose(s_own, s_full, rtol=1e-5, atol=1e-6)
    assert torch.allclose(g_own, g_full, rtol=1e-5, atol=1e-6)
    for a, b in zip(d_own + gg_own, d_full + gg_full):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max() + 1e-12)


def test_ema_update_follows_half_life():
    G, G_ema = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        G.weight.fill_(1.0), G_ema.weight.fill_(0.0)
    training._ema_update(G_ema, G, 0.5 ** (5_000 / 10_000))  # half of a half-life
    assert torch.allclose(G_ema.weight, torch.full((1, 2), 1 - 0.5**0.5))


def test_signal_saves_snapshot_and_resume_matches(tmp_path, monkeypatch):
    real = training._train_minibatch
    calls = {"n": 0}

    def signalled(*a, **k):
        calls["n"] += 1
        if calls["n"] == 6:  # during the second round
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(training, "_train_minibatch", signalled)
    result = _train(tmp_path / "run", 0.128)
    assert result.status == "interrupted" and result.signal == "SIGTERM" and result.nimg == 64
    assert result.snapshot == ck.snapshot_path(tmp_path / "run", 64)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    monkeypatch.setattr(training, "_train_minibatch", real)
    resumed = _train(tmp_path / "run", 0.128, resume=True)
    straight = _train(tmp_path / "straight", 0.128)
    assert resumed.status == "finished"
    assert _tensors_equal(ck.load_checkpoint(resumed.snapshot)["G"], ck.load_checkpoint(straight.snapshot)["G"])


def test_non_finite_loss_stops_and_keeps_last_snapshot(tmp_path, monkeypatch):
    real = training.generator_loss
    calls = {"n": 0}

    def poisoned(kind, scores):
        calls["n"] += 1
        loss = real(kind, scores)
        return loss * float("nan") if calls["n"] > 8 else loss  # rounds 1-2 fine, round 3 diverges

    monkeypatch.setattr(training, "generator_loss", poisoned)
    with pytest.raises(NonFiniteError, match=r"training diverged: non-finite .*loss_G at 0\.1 kimg \(16x16, fade-in\).*last good snapshot: .*snapshot-0000000064\.pt"):
        _train(tmp_path / "run", 0.192, snapshot_kimg=0.064)
    assert [p.name for p in ck.list_snapshots(tmp_path / "run")] == ["snapshot-0000000064.pt"]
    assert ck.load_generator(tmp_path / "run") is not None


def test_run_folder_is_never_overwritten(tmp_path):
    run = tmp_path / "run"
    _train(run, 0.032)
    before = ck.latest_snapshot(run).read_bytes()
    with pytest.raises(ConfigError, match=r"already holds a run \(run\.json, stats\.jsonl, snapshot-0000000032\.pt\); pass --resume"):
        _train(run, 0.032)
    with pytest.raises(ConfigError, match=r"different configuration \(training\.r1_gamma: 10\.0 -> 5\.0\)"):
        _train(run, 0.064, resume=True, r1_gamma=5.0)
    with pytest.raises(ConfigError, match=r"different configuration \(preset: 'F-test16' -> 'E-test16'; generator\.style_mixing_prob: 0\.9 -> 0\.0\)"):
        _train(run, 0.064, resume=True, preset="E-test16")
    assert ck.latest_snapshot(run).read_bytes() == before
    with pytest.raises(ConfigError, match=r"nothing to resume in .*empty: no run\.json or snapshot"):
        _train(tmp_path / "empty", 0.032, resume=True)
    # A longer run and another snapshot interval are a continuation, not a different run.
    assert _train(run, 0.064, resume=True, snapshot_kimg=0.5).nimg == 64


def test_input_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"has 3x32x32 images but preset F-test16 needs 3x16x16"):
        _train(tmp_path / "r", 0.032, dataset=MemDataset(res=32))
    with pytest.raises(ConfigError, match=r"minibatch 6 at 8x8 gives 6 images per process, not a multiple of .* group size 4"):
        _train(tmp_path / "r", 0.032, minibatch_base=6)
    assert not (tmp_path / "r").exists()


# --- schedule (stylegan_core/schedule.py) -----------------------------------------------------

from stylegan_core.schedule import (  # noqa: E402
    SCHEDULES,
    TrainingConfig,
    optimizer_reset_needed,
    schedule_at,
)


@pytest.mark.parametrize(
    "nimg, lod, res, phase, alpha, minibatch, lrate",
    [
        (0, 7.0, 8, "stabilise", 1.0, 256, 0.001),
        (599_999, 7.0, 8, "stabilise", 1.0, 256, 0.001),
        (900_000, 6.5, 16, "fade-in", 0.5, 128, 0.001),
        (1_200_000, 6.0, 16, "stabilise", 1.0, 128, 0.001),
        (2_100_000, 5.5, 32, "fade-in", 0.5, 64, 0.001),
        (4_800_000, 3.0, 128, "stabilise", 1.0, 32, 0.0015),
        (8_100_000, 0.5, 1024, "fade-in", 0.5, 32, 0.003),
        (25_000_000, 0.0, 1024, "stabilise", 1.0, 32, 0.003),
    ],
)
def test_official_schedule_positions(nimg, lod, res, phase, alpha, minibatch, lrate):
    p = schedule_at(SCHEDULES["official"], nimg, 1024)
    assert (p.lod, p.resolution, p.phase, p.minibatch, p.lrate) == (pytest.approx(lod), res, phase, minibatch, lrate)
    assert p.alpha == pytest.approx(alpha)


def test_schedule_variants():
    one_gpu = SCHEDULES["official-1gpu"]
    assert schedule_at(one_gpu, 7_000_000, 1024).minibatch == 4  # 512x512 fading in
    assert schedule_at(one_gpu, 7_200_000, 1024).resolution == 512
    assert schedule_at(SCHEDULES["official"], 0, 1024, num_processes=3).minibatch == 255
    cpu = SCHEDULES["cpu"]
    assert [schedule_at(cpu, n, 32).resolution for n in (0, 10_000, 10_001, 20_000, 30_000, 30_001)] == [8, 8, 16, 16, 16, 32]
    assert schedule_at(cpu, 35_000, 32).alpha == pytest.approx(0.5)
    # An initial resolution at or above the final one trains at full resolution from the start.
    assert schedule_at(TrainingConfig(lod_initial_resolution=64), 0, 32).lod == 0.0
    with pytest.raises(ConfigError, match=r"minibatch 2 at 8x8 is smaller than the number of processes \(4\)"):
        schedule_at(TrainingConfig(minibatch_base=2, minibatch_dict={}), 0, 16, num_processes=4)


def test_optimizer_reset_when_fade_starts_and_ends():
    assert not optimizer_reset_needed(None, 3.0)
    assert not optimizer_reset_needed(3.0, 3.0)
    assert optimizer_reset_needed(3.0, 2.9)  # fade-in starts
    assert not optimizer_reset_needed(2.9, 2.5)
    assert optimizer_reset_needed(2.1, 2.0)  # fade-in ends: stabilisation
    assert not optimizer_reset_needed(0.0, 0.0)


def test_training_config_json_round_trip_and_errors():
    cfg = SCHEDULES["official"]
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["minibatch_dict"]["4"] == 512 and TrainingConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['r1'\]"):
        TrainingConfig.from_dict({**d, "r1": 1})
    with pytest.raises(ConfigError, match="lod_initial_resolution must be a power of two >= 4, got 6"):
        TrainingConfig(lod_initial_resolution=6)
    with pytest.raises(ConfigError, match=r"minibatch_dict: key 12 is not a power-of-two resolution"):
        TrainingConfig(minibatch_dict={12: 4})
    with pytest.raises(ConfigError, match=r"lrate_dict\[64\] must be a finite number > 0"):
        TrainingConfig(lrate_dict={64: 0.0})
    with pytest.raises(ConfigError, match=r"loss must be one of \['logistic-r1', 'wgan-gp'\], got 'hinge'"):
        TrainingConfig(loss="hinge")
    with pytest.raises(ConfigError, match="ema_kimg must be a finite number > 0"):
        TrainingConfig(ema_kimg=float("nan"))
    with pytest.raises(ConfigError, match=r"unknown training schedule 'gpu'; choose one of"):
        training_config("gpu")
    with pytest.raises(ConfigError, match=r"TrainingConfig has no field\(s\) \['gamma'\]"):
        training_config("cpu", gamma=1.0)


# --- several processes ------------------------------------------------------------------------

DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, sys.argv[2])
torch.set_num_threads(1)
from stylegan_core import distributed, training
from stylegan_core.presets import get_preset
from stylegan_core.schedule import training_config
from test_training import MemDataset, TINY

real_save = training._save_snapshot
def spy(run_dir, run_config, nets, opts, gens, nimg, *a, **k):
    held = {name: {k: v.clone() for k, v in nets[name].state_dict().items()} for name in ("G", "D", "G_ema")}
    torch.save(held, f"{run_dir}/rank{distributed.rank()}-{nimg}.pt")
    return real_save(run_dir, run_config, nets, opts, gens, nimg, *a, **k)
training._save_snapshot = spy
cfg = training_config("cpu", total_kimg=0.064, **TINY)
result = training.train(sys.argv[1], MemDataset(), get_preset("F-test16"), cfg, progress=False)
assert distributed.world_size() == 2 and result.status == "finished" and result.nimg == 64, result
"""


@pytest.mark.slow
def test_two_processes_stay_in_sync(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    run = tmp_path / "run"
    run.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(run), os.path.dirname(__file__)]
    # A session of its own, so that a hang is cleaned up with every worker on timeout.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    r0, r1 = torch.load(run / "rank0-64.pt"), torch.load(run / "rank1-64.pt")
    assert _tensors_equal(r0, r1)
    saved = ck.load_checkpoint(run / "snapshot-0000000064.pt")
    assert _tensors_equal(saved["G"], r0["G"]) and _tensors_equal(saved["G_ema"], r0["G_ema"])
    assert saved["progress"]["world_size"] == 2
    rng = saved["rng"]["latents"]
    assert rng.shape[0] == 2 and not torch.equal(rng[0], rng[1])  # independent streams per process
    # Training moved the weights away from their initial values.
    init = training._build(get_preset("F-test16"), _cfg(0.064), torch.device("cpu"), 0)[0]["G"]
    assert not torch.equal(init.state_dict()["mapping.layers.0.weight"], r0["G"]["mapping.layers.0.weight"])


def test_resume_a_run_stopped_before_its_first_snapshot(tmp_path, monkeypatch):
    real = training.generator_loss
    monkeypatch.setattr(training, "generator_loss", lambda kind, scores: real(kind, scores) * float("inf"))
    with pytest.raises(NonFiniteError, match="last good snapshot: none yet"):
        _train(tmp_path / "run", 0.064, tick_kimg=0.032)
    assert (tmp_path / "run" / "run.json").exists() and ck.list_snapshots(tmp_path / "run") == []
    monkeypatch.setattr(training, "generator_loss", real)
    assert _train(tmp_path / "run", 0.064, resume=True, tick_kimg=0.032).nimg == 64
    lines = [json.loads(x) for x in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    assert [s["nimg"] for s in lines] == [32, 64] and all(math.isfinite(s["loss_G"]) for s in lines)
