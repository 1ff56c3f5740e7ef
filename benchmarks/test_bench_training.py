"""Training throughput: real images per second through the full training step (D step with R1,
G step with style mixing, EMA update) for the 32x32 CPU preset at its final resolution (lod 0),
the 16x16 fade-in stage of the CPU schedule, and the traditional B-cpu32 generator.

Run: pytest benchmarks/test_bench_training.py --benchmark-only -s
Each round is `STEPS` minibatches of 32 (the cpu schedule's minibatch); images/s is in extra_info.

Side by side (slow): the paper's 1024x1024 configuration F at its 32x32 level of detail (lod 5),
minibatch 16, one training step with the images kept at 32x32 (ours) against the same step with
fakes and reals carried at 1024x1024 as the linear-structure loop does (`full_resolution=True`:
G's output nearest-upscaled, reals faded and upscaled, D box-downscaling both, R1 taken at
1024); speedup_vs_full_resolution in extra_info.
"""

import dataclasses

import pytest
import torch
from side_by_side import interleaved_medians, record_ratios

from stylegan_core import training
from stylegan_core.loss import DiscriminatorLoss
from stylegan_core.presets import get_preset
from stylegan_core.schedule import schedule_at, training_config

STEPS = 2


class _Random32:
    """An in-memory stand-in for a dataset (the step does not depend on content)."""

    resolution, num_channels, path = 32, 3, "memory"

    def __init__(self, n=512, resolution=32):
        self.resolution = resolution
        self.images = torch.randint(0, 256, (n, 3, resolution, resolution), dtype=torch.uint8,
                                    generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]

    def load_all(self):
        return self.images.clone()


def _trainer(preset_name: str, nimg: int):
    preset, config = get_preset(preset_name), training_config("cpu")
    device = torch.device("cpu")
    nets, gens = training._build(preset, config, device, rank=0)
    G, D = nets["G"], nets["D"]
    nets["g_step"] = nets["g_step_ddp"] = training._GeneratorStep(G, gens["latents"])
    nets["d_loss_ddp"] = DiscriminatorLoss(D, preset.loss, config.r1_gamma)
    sched = schedule_at(config, nimg, preset.generator.synthesis.resolution)
    for net in (G.synthesis, nets["G_ema"].synthesis, D):
        net.set_lod(sched.lod)
    opts = {"G": training._make_optimizer(G.parameters(), config, sched.lrate),
            "D": training._make_optimizer(D.parameters(), config, sched.lrate)}
    reals = training._RealStream(_Random32(), config.seed)
    position = iter(range(0, 10**9, sched.minibatch))

    def run():
        for _ in range(STEPS):
            stats = training._train_minibatch(nets, opts, reals, gens, sched, config, next(position), device)
        return stats

    return run, sched


@pytest.mark.parametrize(
    "preset, nimg",
    [("F-cpu32", 60_000), ("F-cpu32", 15_000), ("B-cpu32", 60_000)],
    ids=["F-cpu32-32px", "F-cpu32-fade16", "B-cpu32-32px"],
)
def test_training_images_per_s(benchmark, preset, nimg):
    run, sched = _trainer(preset, nimg)
    run()  # warm-up (allocator, first-call overheads)
    stats = benchmark.pedantic(run, rounds=3, iterations=1)
    assert torch.isfinite(stats).all()
    if benchmark.stats:
        benchmark.extra_info["images_per_s"] = STEPS * sched.minibatch / benchmark.stats.stats.mean
    benchmark.extra_info.update(resolution=sched.resolution, lod=sched.lod, minibatch=sched.minibatch)


def _paper_step_at_32px(full_resolution: bool, batch: int = 16):
    """One training step of configuration F (1024x1024) at lod 5 (32x32), minibatch `batch`."""
    preset, config = get_preset("F"), training_config("cpu")
    device = torch.device("cpu")
    nets, gens = training._build(preset, config, device, rank=0)
    G, D = nets["G"], nets["D"]
    nets["g_step"] = nets["g_step_ddp"] = training._GeneratorStep(G, gens["latents"], full_resolution)
    nets["d_loss_ddp"] = DiscriminatorLoss(D, preset.loss, config.r1_gamma)
    sched = dataclasses.replace(schedule_at(config, 0, 1024), lod=5.0, resolution=32, minibatch=batch)
    for net in (G.synthesis, nets["G_ema"].synthesis, D):
        net.set_lod(sched.lod)
    opts = {"G": training._make_optimizer(G.parameters(), config, sched.lrate),
            "D": training._make_optimizer(D.parameters(), config, sched.lrate)}
    reals = training._RealStream(_Random32(n=2 * batch, resolution=1024), config.seed)
    position = iter(range(0, 10**9, batch))
    return lambda: training._train_minibatch(nets, opts, reals, gens, sched, config, next(position), device)


@pytest.mark.slow
def test_training_step_paper_network_at_32px_vs_full_resolution(benchmark):
    ours, full = _paper_step_at_32px(False), _paper_step_at_32px(True)
    stats = benchmark.pedantic(ours, rounds=1, iterations=1, warmup_rounds=1)
    assert torch.isfinite(stats).all()
    medians = interleaved_medians({"ours": ours, "full_resolution": full}, rounds=3)
    record_ratios(benchmark, medians, label="F at 32x32 (lod 5), minibatch 16")
