"""The StyleGAN training loop (official NVlabs/stylegan training/training_loop.py).

Each round (official: one schedule evaluation followed by `minibatch_repeats` minibatches):
evaluate the schedule (lod, minibatch, learning rate; `stylegan_core.schedule`), reset both Adam
optimisers when a fade-in starts or ends, then per minibatch one D step (fakes from G without
gradients, reals faded to the current lod, logistic + R1 or WGAN-GP) and one G step (style mixing
regularisation, w_avg update), followed by the EMA update of G_ema (half-life `ema_kimg`).

Everything random comes from two explicit `torch.Generator`s per process ("latents" on the
training device: z, mixing, noise, WGAN-GP factors; "augment" on the CPU: mirror flips) that are
saved in every snapshot; the order of real images is a fixed permutation per epoch derived from
the seed. Resuming a snapshot therefore continues bit for bit (on the same device and process
count). Under torchrun, G and D's loss are wrapped in DistributedDataParallel; each process
draws its share of the minibatch.

Run folder: run.json (the configuration), stats.jsonl (one JSON line per tick),
snapshot-<nimg>.pt (checkpoint) and snapshot-<nimg>.png (grid of fixed seeds, G_ema, const noise).
"""

import copy
import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from stylegan_core import checkpoint as ckpt
from stylegan_core import distributed
from stylegan_core.discriminator import Discriminator, fade_images_for_lod
from stylegan_core.errors import ConfigError, DatasetError, NonFiniteError
from stylegan_core.generator import Generator
from stylegan_core.layers import downscale2d
from stylegan_core.loss import DiscriminatorLoss, generator_loss
from stylegan_core.schedule import (
    RUN_LENGTH_FIELDS,
    SchedulePoint,
    TrainingConfig,
    check_minibatches,
    lod_state,
    optimizer_reset_needed,
    schedule_at,
)
from stylegan_core.seeding import derive_seed, torch_generator

RUN_FILE, STATS_FILE = ckpt.RUN_FILE, ckpt.STATS_FILE
# What a resumed run may change: its length, how often it reports, where the data now lives.
RESUMABLE_CHANGES = tuple(f"training.{name}" for name in RUN_LENGTH_FIELDS) + ("data.path",)
# Stream keys for derive_seed, so that each use of the seed draws independent numbers.
_INIT_G, _INIT_D, _LATENTS, _AUGMENT, _DATA_ORDER = 1, 2, 3, 4, 5
_IN_MEMORY_BYTES = 2 << 30  # datasets up to this size are decoded once into one tensor


@dataclass(frozen=True)
class TrainResult:
    status: Literal["finished", "interrupted"]
    nimg: int  # images shown when training stopped
    snapshot: Path  # the snapshot written last
    signal: str | None = None  # "SIGINT" / "SIGTERM" when interrupted


class _GeneratorStep(nn.Module):
    """G's training forward (official G_style with is_training=True): mapping, w_avg update
    (averaged over all processes so they stay identical), mixing regularisation, synthesis with
    fresh noise. Wrapped in DDP for the G step; called directly (no grad) for D's fakes."""

    def __init__(self, G: Generator, rng: torch.Generator, full_resolution: bool = False):
        super().__init__()
        self.G = G
        self.rng = rng  # not a module: DDP passes it through untouched
        self.full_resolution = full_resolution  # False: images at the lod's own resolution

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        ws = self.G.training_ws(z, self.rng, update_w_avg=False)  # [N, num_ws, w_dim]
        # Mixing keeps layer 0 from the first latents, so ws[:, 0] is the official w for w_avg.
        batch_avg = distributed.all_reduce_sum(ws[:, 0].detach().float().mean(dim=0)) / distributed.world_size()
        self.G.mapping.update_w_avg(batch_avg[None])
        return self.G.synthesis(ws, noise_mode="random", generator=self.rng,
                                full_resolution=self.full_resolution)  # [N, C, r, r]


class _RealStream:
    """Real images in a fixed order: position p of the stream is image perm_{p // N}[p % N], each
    epoch's permutation derived from the seed, so the order depends only on images shown."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed, self.n = dataset, seed, len(dataset)
        size = self.n * dataset.num_channels * dataset.resolution**2
        self.images = dataset.load_all() if size <= _IN_MEMORY_BYTES else None  # uint8 [N, C, R, R]
        self._perms: dict[int, torch.Tensor] = {}

    def _index(self, pos: int) -> int:
        epoch = pos // self.n
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.n, generator=torch_generator(self.seed, _DATA_ORDER, epoch))}
        return int(self._perms[epoch][pos % self.n])

    def batch(self, positions) -> torch.Tensor:
        idx = [self._index(p) for p in positions]
        if self.images is not None:
            return self.images[idx]
        return torch.stack([self.dataset[i] for i in idx])  # uint8 [n, C, R, R]


def process_reals(images: torch.Tensor, lod: float, mirror: bool, rng: torch.Generator,
                  full_resolution: bool = True) -> torch.Tensor:
    """uint8 [N, C, R, R] -> float [-1, 1] as D sees them (official process_reals): dynamic range,
    random horizontal flips (mask drawn from `rng` on the CPU), cross-fade to the current lod.
    full_resolution=False returns [N, C, R / 2**floor(lod), ...]: the box downscale comes first
    (it commutes with the affine dynamic range and with the flips), so nothing else is done at R."""
    if full_resolution:
        x = images.float() * (2.0 / 255.0) - 1.0
    else:
        x = downscale2d(images.float(), 2 ** int(math.floor(lod))) * (2.0 / 255.0) - 1.0
        lod -= math.floor(lod)
    if mirror:
        flip = (torch.rand(x.shape[0], generator=rng) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return fade_images_for_lod(x, lod, full_resolution)


def _rng_states(gens: dict[str, torch.Generator], device: torch.device) -> dict[str, torch.Tensor]:
    """Every process's generator states, stacked [world, L] (gathered so rank 0 can save them)."""
    out = {}
    for name, gen in gens.items():
        state = gen.get_state()
        local = state.to(device) if device.type == "cuda" else state
        out[name] = distributed.gather_by_index(local[None], distributed.world_size()).cpu()
    return out


def _make_optimizer(params, config: TrainingConfig, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps)


class _StopRequest:
    """SIGINT/SIGTERM handler: ask the loop to snapshot and stop at the end of the round; a
    second SIGINT interrupts at once."""

    def __init__(self):
        self.signal: str | None = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _all_agree(flag: bool, device: torch.device) -> bool:
    """True when `flag` is set on any process (one tiny all-reduce per round)."""
    if distributed.world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if device.type == "cuda" else "cpu")
    return bool(distributed.all_reduce_sum(t).item() > 0)


def _next_multiple(nimg: int, kimg: float) -> int:
    step = max(int(round(kimg * 1000)), 1)
    return (nimg // step + 1) * step


@torch.no_grad()
def _ema_update(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """Official Gs.setup_as_moving_average_of: weights lerp(G, G_ema, beta); buffers copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


class _Tick:
    """Statistics since the last JSON line: means of the per-round values and the image rate."""

    NAMES = ("real_score", "fake_score", "penalty", "loss_D", "loss_G")

    def __init__(self, nimg: int):
        self.reset(nimg)

    def reset(self, nimg: int) -> None:
        self.start_nimg = self.nimg = nimg
        self.t0 = time.perf_counter()
        self.sum, self.rounds = torch.zeros(len(self.NAMES), dtype=torch.float64), 0

    def add(self, stats: torch.Tensor, nimg: int) -> None:
        self.sum += stats.double()
        self.rounds, self.nimg = self.rounds + 1, nimg

    def rate(self) -> float:
        return (self.nimg - self.start_nimg) / max(time.perf_counter() - self.t0, 1e-9)

    def record(self, sched: SchedulePoint, elapsed: float) -> dict:
        means = (self.sum / max(self.rounds, 1)).tolist()
        return {
            "nimg": self.nimg, "kimg": self.nimg / 1000, "resolution": sched.resolution, "lod": sched.lod,
            "phase": sched.phase, "alpha": sched.alpha, "minibatch": sched.minibatch, "lrate": sched.lrate,
            **dict(zip(self.NAMES, means)), "images_per_s": self.rate(), "time_s": elapsed,
        }


def _train_minibatch(nets: dict, opts: dict, reals: _RealStream, gens: dict, sched: SchedulePoint,
                     config: TrainingConfig, nimg: int, device: torch.device) -> torch.Tensor:
    """One D step then one G step and the EMA update; returns [real score, fake score, penalty,
    D loss, G loss] (detached, this process's minibatch)."""
    G, D, world = nets["G"], nets["D"], distributed.world_size()
    local = sched.minibatch // world
    positions = range(nimg + distributed.rank(), nimg + sched.minibatch, world)
    # At the lod's own resolution unless the generator step says otherwise (benchmarks compare).
    full = nets["g_step"].full_resolution
    x = process_reals(reals.batch(positions).to(device), sched.lod, config.mirror, gens["augment"], full)
    rng = gens["latents"]

    # D step: fakes without gradients (official: D_loss only updates D's variables).
    z = torch.randn(local, G.z_dim, generator=rng, device=device)
    with torch.no_grad():
        fakes = nets["g_step"](z)
    mix = torch.rand(local, 1, 1, 1, generator=rng, device=device) if config.loss == "wgan-gp" else None
    loss_D, d_stats = nets["d_loss_ddp"](x, fakes, mix)
    opts["D"].zero_grad(set_to_none=True)
    loss_D.backward()
    opts["D"].step()

    # G step: D's weights frozen so only G gets gradients.
    D.requires_grad_(False)
    z = torch.randn(local, G.z_dim, generator=rng, device=device)
    loss_G = generator_loss(config.loss, D(nets["g_step_ddp"](z)))
    opts["G"].zero_grad(set_to_none=True)
    loss_G.backward()
    opts["G"].step()
    D.requires_grad_(True)

    _ema_update(nets["G_ema"], G, 0.5 ** (sched.minibatch / (config.ema_kimg * 1000.0)))
    return torch.cat([d_stats, loss_G.detach()[None]])


def _save_snapshot(run_dir: Path, run_config: dict, nets: dict, opts: dict, gens: dict, nimg: int,
                   prev_lod: float | None, config: TrainingConfig, device: torch.device) -> Path:
    """Checkpoint + image grid (rank 0 writes; every process takes part in gathering RNG states)."""
    sums = []
    for name in ("G", "D"):
        total = sum(p.detach().double().sum() for p in nets[name].parameters())
        if not torch.isfinite(total):
            raise NonFiniteError(f"{name} has non-finite weights at {nimg / 1000:.1f} kimg; not saving a snapshot")
        sums.append(total)
    # Processes must hold identical weights; a difference means a bug, never a user error.
    sums = torch.stack(sums)[None].to(device if device.type == "cuda" else "cpu")
    every = distributed.gather_by_index(sums, distributed.world_size())
    if not bool((every == every[0]).all()):
        raise RuntimeError(f"processes hold different weights at {nimg} images: checksums {every.tolist()}")
    rng = _rng_states(gens, device)
    path = ckpt.snapshot_path(run_dir, nimg)
    if distributed.is_main():
        # The networks' own state (the lod of the last round trained), as load_generator returns it.
        lod = float(nets["G"].synthesis.lod)
        res, phase, alpha = lod_state(lod, nets["G"].img_resolution)
        progress = {
            "nimg": nimg, "kimg": nimg / 1000, "lod": lod, "prev_lod": prev_lod, "resolution": res,
            "phase": phase, "alpha": alpha, "world_size": distributed.world_size(),
        }
        cpu = lambda m: {k: v.detach().cpu() for k, v in m.state_dict().items()}  # noqa: E731
        ckpt.save_checkpoint(path, {
            "config": run_config, "progress": progress,
            "G": cpu(nets["G"]), "G_ema": cpu(nets["G_ema"]), "D": cpu(nets["D"]),
            "optimizers": {"G": opts["G"].state_dict(), "D": opts["D"].state_dict()}, "rng": rng,
        })
        _save_grid(nets["G_ema"], config.grid_size, path.with_suffix(".png"))
    distributed.barrier()
    return path


def _save_grid(G_ema: Generator, num: int, path: Path) -> None:
    """Images of seeds 0..num-1 (no truncation, const noise) at the current lod."""
    from stylegan_core.sampling import generate_images, save_image_grid

    device = next(G_ema.parameters()).device
    images = generate_images(G_ema, range(num), truncation_psi=1.0, truncation_cutoff=None, noise_mode="const",
                             batch_size=16, device=device)
    save_image_grid(images, path, cols=min(num, 8))


def _build(preset, config: TrainingConfig, device: torch.device, rank: int):
    G = Generator(preset.generator, seed=derive_seed(config.seed, _INIT_G)).to(device)
    D = Discriminator(preset.discriminator, seed=derive_seed(config.seed, _INIT_D)).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    gens = {
        "latents": torch_generator(config.seed, _LATENTS, rank, device=device),
        "augment": torch_generator(config.seed, _AUGMENT, rank),
    }
    return {"G": G, "D": D, "G_ema": G_ema}, gens


def _restore(path: Path, nets: dict, gens: dict, config: TrainingConfig, device: torch.device):
    """Load a snapshot into the networks and generators; returns (nimg, prev_lod, optimiser states)."""
    state = ckpt.load_checkpoint(path)
    missing = [k for k in ("G", "D", "optimizers", "rng") if k not in state]
    if missing:
        raise ConfigError(f"{path} is not a training snapshot (it has no {', '.join(missing)}); cannot resume from it")
    for name in ("G", "G_ema", "D"):
        nets[name].load_state_dict(state[name])
    nimg, prev_lod = int(state["progress"]["nimg"]), state["progress"].get("prev_lod", state["progress"].get("lod"))
    world, rank = distributed.world_size(), distributed.rank()
    if state["rng"]["latents"].shape[0] == world:
        for name, gen in gens.items():
            gen.set_state(state["rng"][name][rank].clone())
    else:
        warnings.warn(
            f"{path} was trained with {state['rng']['latents'].shape[0]} processes, now {world}: random "
            "streams are re-derived, so training continues correctly but not bit for bit"
        )
        gens["latents"].manual_seed(derive_seed(config.seed, _LATENTS, rank, nimg))
        gens["augment"].manual_seed(derive_seed(config.seed, _AUGMENT, rank, nimg))
    return nimg, prev_lod, state["optimizers"]


def train(
    run_dir: str | Path,  # run folder: run.json, stats.jsonl, snapshots
    dataset,  # stylegan_core.data.ImageDataset (or anything with its interface)
    preset,  # stylegan_core.presets.Preset: the networks and their name
    config: TrainingConfig,
    device: str | torch.device = "cpu",
    resume: bool = False,  # continue from the run folder's latest snapshot (same configuration)
    progress: bool = True,  # tqdm bar on rank 0
    data_info: dict | None = None,  # JSON-able description of the data, compared on resume
) -> TrainResult:
    """Train `preset` on `dataset` until `config.total_kimg`; see the module docstring."""
    from tqdm import tqdm

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:  # "cuda" under torchrun: this rank's GPU
        device = torch.device("cuda", distributed.local_rank())
    distributed.init(device)
    world, rank = distributed.world_size(), distributed.rank()
    run_dir = Path(run_dir)
    res, channels = preset.generator.synthesis.resolution, preset.generator.synthesis.img_channels
    if dataset.resolution != res or dataset.num_channels != channels:
        raise DatasetError(
            f"dataset {getattr(dataset, 'path', '')} has {dataset.num_channels}x{dataset.resolution}x"
            f"{dataset.resolution} images but preset {preset.name} needs {channels}x{res}x{res}; "
            "choose a matching preset or resize the images"
        )
    run_config = {
        "preset": preset.name,
        "generator": preset.generator.to_dict(), "discriminator": preset.discriminator.to_dict(),
        "training": config.to_dict(),
        "data": data_info if data_info is not None else {"num_images": len(dataset), "resolution": res},
    }
    check_minibatches(config, res, world, preset.discriminator.mbstd_group_size)
    resume_from = ckpt.check_run_folder(run_dir, run_config, resume, RESUMABLE_CHANGES)
    distributed.barrier()

    nets, gens = _build(preset, config, device, rank)
    nimg, prev_lod, opt_states = 0, None, None
    if resume_from is not None:
        nimg, prev_lod, opt_states = _restore(resume_from, nets, gens, config, device)
        if distributed.is_main():
            ckpt.trim_stats(run_dir, nimg)
    elif distributed.is_main():  # a new run, or one stopped before its first snapshot
        ckpt.write_run_file(run_dir, run_config)
        ckpt.trim_stats(run_dir, 0)
    G, D = nets["G"], nets["D"]
    nets["g_step"] = nets["g_step_ddp"] = _GeneratorStep(G, gens["latents"])
    d_loss = DiscriminatorLoss(D, config.loss, config.r1_gamma, config.wgan_lambda, config.wgan_epsilon,
                               config.wgan_target)
    nets["d_loss_ddp"] = d_loss
    if world > 1:
        # Layers above the current lod get no gradient, hence find_unused_parameters; buffers
        # (w_avg, lod) stay identical by construction, so they are not broadcast.
        ddp = dict(device_ids=[device.index] if device.type == "cuda" else None,
                   find_unused_parameters=True, forward_sync_buffers=False)
        nets["g_step_ddp"] = nn.parallel.DistributedDataParallel(nets["g_step"], **ddp)
        nets["d_loss_ddp"] = nn.parallel.DistributedDataParallel(d_loss, **ddp)

    reals = _RealStream(dataset, config.seed)
    sched = schedule_at(config, nimg, res, world)
    opts = {"G": _make_optimizer(G.parameters(), config, sched.lrate),
            "D": _make_optimizer(D.parameters(), config, sched.lrate)}
    if opt_states is not None:
        opts["G"].load_state_dict(opt_states["G"])
        opts["D"].load_state_dict(opt_states["D"])
    snapshot, t_start, tick = resume_from, time.perf_counter(), _Tick(nimg)
    next_snapshot, next_tick = _next_multiple(nimg, config.snapshot_kimg), _next_multiple(nimg, config.tick_kimg)
    total = config.total_nimg
    bar = tqdm(total=total, initial=min(nimg, total), unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not (progress and distributed.is_main()), desc="training")
    with _StopRequest() as stop, bar:
        while True:
            stop_now = _all_agree(stop.signal is not None, device)
            done = nimg >= total
            if (done or stop_now or nimg >= next_snapshot) and (snapshot is None or snapshot != ckpt.snapshot_path(run_dir, nimg)):
                t0 = time.perf_counter()
                snapshot = _save_snapshot(run_dir, run_config, nets, opts, gens, nimg, prev_lod, config, device)
                tick.t0 += time.perf_counter() - t0  # images/s counts training time only
                next_snapshot = _next_multiple(nimg, config.snapshot_kimg)
            if done or stop_now:
                break
            sched = schedule_at(config, nimg, res, world)
            if optimizer_reset_needed(prev_lod, sched.lod):  # official reset_opt_for_new_lod
                opts = {"G": _make_optimizer(G.parameters(), config, sched.lrate),
                        "D": _make_optimizer(D.parameters(), config, sched.lrate)}
            prev_lod = sched.lod
            for net in (G.synthesis, nets["G_ema"].synthesis, D):
                net.set_lod(sched.lod)
            for opt in opts.values():
                for group in opt.param_groups:
                    group["lr"] = sched.lrate
            stats = torch.zeros(5, device=device)
            for _ in range(config.minibatch_repeats):
                stats += _train_minibatch(nets, opts, reals, gens, sched, config, nimg, device)
                nimg += sched.minibatch
            stats = (distributed.all_reduce_sum(stats) / (world * config.minibatch_repeats)).cpu()
            if not torch.isfinite(stats).all():
                bad = ", ".join(n for n, v in zip(_Tick.NAMES, stats.tolist()) if not math.isfinite(v))
                raise NonFiniteError(
                    f"training diverged: non-finite {bad} at {nimg / 1000:.1f} kimg ({sched.resolution}x"
                    f"{sched.resolution}, {sched.phase}); last good snapshot: {snapshot or 'none yet'} "
                    "(resume from it with --resume, perhaps with a lower learning rate)"
                )
            tick.add(stats, nimg)
            bar.update(min(nimg, total) - bar.n)
            bar.set_postfix_str(f"{sched.resolution}px {sched.phase} alpha={sched.alpha:.2f} "
                                f"G={stats[4]:.3f} D={stats[3]:.3f} {tick.rate():.0f} img/s", refresh=False)
            if nimg >= next_tick or nimg >= total:
                if distributed.is_main():
                    with open(run_dir / STATS_FILE, "a") as f:
                        f.write(json.dumps(tick.record(sched, time.perf_counter() - t_start)) + "\n")
                tick.reset(nimg)
                next_tick = _next_multiple(nimg, config.tick_kimg)
    status = "interrupted" if stop_now and not done else "finished"
    return TrainResult(status=status, nimg=nimg, snapshot=snapshot, signal=stop.signal if status == "interrupted" else None)
