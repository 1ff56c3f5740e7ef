"""PPL throughput on CPU (pairs/s) for F-cpu32 (32x32) and F-256 (256x256, the paper's channel
counts), against a straightforward re-implementation of the official per-batch loop, and where
the time goes (per-sample seeding, generator, LPIPS).

Run: pytest benchmarks/test_bench_ppl.py --benchmark-only
     (with -s the per-part timings are also printed; all of them land in extra_info)
LPIPS is the substitute (random VGG16 trunk): same architecture and cost as the real one.

The peers run the same weights through the official op-by-op structure
(`official_structure.OfficialStructureGenerator`). `OfficialLoop` keeps the per-batch structure
of the official sampler written plainly: latents and t from one RNG per batch, one noise draw
shared by the batch, one generator forward for the images at t and another for those at t + eps,
and `lpips.LPIPS.forward`. `AdaStyleSampler` is stylegan2-ada-pytorch's structure: both endpoints
concatenated into one generator call with the stored (const) noise. `PPLSampler` (ours) pushes
both endpoints of every pair through one mapping, one synthesis and one trunk forward of the
project's generator, and draws everything per sample from (seed, i). The ratios are medians of
interleaved rounds (ours, official loop, ada-style, ours, ...), so load on a shared machine
falls on all sides alike.
"""

import statistics
import time

import pytest
import torch
from official_structure import OfficialStructureGenerator

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.lpips_net import LPIPSDistance, substitute_model
from stylegan_eval.metrics.ppl import PPLConfig, PPLSampler, lerp, prepare_images, slerp

CASES = [("F-cpu32", 16, 3), ("F-256", 2, 5)]  # (preset, pairs per batch, timing repeats)
CONFIG = PPLConfig(space="w", sampling="full")


class OfficialLoop:
    """The official per-batch loop, written plainly (see module docstring)."""

    def __init__(self, G, lpips_model, config: PPLConfig, seed: int = 0):
        self.G, self.lpips, self.config = G, lpips_model, config
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def __call__(self, n: int) -> torch.Tensor:
        G, eps = self.G, self.config.epsilon
        z0, z1 = torch.randn(2 * n, G.z_dim, generator=self.gen).chunk(2)
        t = torch.rand(n, generator=self.gen) if self.config.sampling == "full" else torch.zeros(n)
        noise = [torch.randn(1, 1, h, w, generator=self.gen).expand(n, -1, -1, -1) for h, w in G.synthesis.noise_shapes]
        if self.config.space == "w":
            w0, w1 = G.mapping(z0), G.mapping(z1)
            wa, wb = lerp(w0, w1, t[:, None, None]), lerp(w0, w1, t[:, None, None] + eps)
        else:
            wa = G.mapping(slerp(z0, z1, t[:, None]))
            wb = G.mapping(slerp(z0, z1, t[:, None] + eps))
        img_a = prepare_images(G.synthesis(wa, noise_mode="given", noise=noise), self.config.crop)
        img_b = prepare_images(G.synthesis(wb, noise_mode="given", noise=noise), self.config.crop)
        return self.lpips(img_a, img_b).reshape(n) / eps**2


class AdaStyleSampler:
    """stylegan2-ada-pytorch's sampler structure: one generator call for both endpoints."""

    def __init__(self, G, lpips_model, config: PPLConfig, seed: int = 0):
        self.G, self.lpips, self.config = G, lpips_model, config
        self.gen = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def __call__(self, n: int) -> torch.Tensor:
        G, eps = self.G, self.config.epsilon
        t = torch.rand(n, generator=self.gen)[:, None, None]
        w0, w1 = G.mapping(torch.randn(2 * n, G.z_dim, generator=self.gen)).chunk(2)
        ws = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + eps)])
        img = prepare_images(G.synthesis(ws, noise_mode="const"), self.config.crop)
        a, b = img.chunk(2)
        return self.lpips(a, b).reshape(n) / eps**2


@pytest.fixture(scope="module")
def lpips_model():
    return substitute_model(0)


_GENERATORS = {}


def generator(preset: str):
    if preset not in _GENERATORS:
        _GENERATORS[preset] = Generator(get_preset(preset).generator).eval().requires_grad_(False)
    return _GENERATORS[preset]


def seconds(fn, *args, repeat: int = 1, warmup: bool = True) -> float:
    """Best wall time of `repeat` calls (after one warm-up call)."""
    if warmup:
        fn(*args)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("preset, batch, repeats", CASES)
def test_ppl_pairs_per_s_vs_official_loop(benchmark, lpips_model, preset, batch, repeats):
    G = generator(preset)
    sampler = PPLSampler(G, LPIPSDistance(*lpips_model), CONFIG, seed=0, device=torch.device("cpu"))
    indices = range(batch)
    dists, _ = benchmark.pedantic(sampler, args=(indices,), rounds=repeats, iterations=1, warmup_rounds=1)
    assert dists.shape == (batch,) and torch.isfinite(dists).all()
    peer_lpips, _ = substitute_model(0)  # lpips's own module as it builds it (LPIPSDistance re-lays its trunk)
    peers = {"official_loop": OfficialLoop(OfficialStructureGenerator(G), peer_lpips, CONFIG),
             "ada_style": AdaStyleSampler(OfficialStructureGenerator(G), peer_lpips, CONFIG)}
    times = {"ours": [], **{name: [] for name in peers}}
    for peer in peers.values():
        peer(batch)  # warm-up
    for _ in range(repeats):  # interleaved rounds
        times["ours"].append(seconds(sampler, indices, warmup=False))
        for name, peer in peers.items():
            times[name].append(seconds(peer, batch, warmup=False))
    median = {name: statistics.median(ts) for name, ts in times.items()}
    info = {"pairs_per_s": batch / median["ours"]}
    for name in peers:
        info[f"{name}_pairs_per_s"] = batch / median[name]
        info[f"speedup_vs_{name}"] = median[name] / median["ours"]
    benchmark.extra_info.update(info)
    print(f"\n{preset} batch {batch}: " + ", ".join(f"{k} {v:.3g}" for k, v in info.items()))


@pytest.mark.parametrize("preset, batch, repeats", CASES)
def test_ppl_time_split(benchmark, lpips_model, preset, batch, repeats):
    """Seconds per batch in: per-sample RNG draws, mapping + synthesis, crop + LPIPS."""
    G = generator(preset)
    distance = LPIPSDistance(*lpips_model)
    sampler = PPLSampler(G, distance, CONFIG, seed=0, device=torch.device("cpu"))
    indices = range(batch)
    inputs = sampler.inputs(indices)

    @torch.no_grad()
    def generate():
        return sampler.images(inputs)

    images = benchmark.pedantic(generate, rounds=repeats, iterations=1, warmup_rounds=1)
    prepared = prepare_images(images, CONFIG.crop)

    @torch.no_grad()
    def measure():
        return distance(prepared[:batch], prepared[batch:])

    split = {
        "inputs_s": seconds(sampler.inputs, indices, repeat=repeats),
        "generator_s": benchmark.stats.stats.mean if benchmark.stats else seconds(generate),
        "lpips_s": seconds(measure, repeat=repeats),
    }
    total = sum(split.values())
    benchmark.extra_info.update(split)
    benchmark.extra_info.update({k.replace("_s", "_fraction"): v / total for k, v in split.items()})
    print(f"\n{preset} batch {batch}: " + ", ".join(f"{k} {v:.3g} ({v / total:.0%})" for k, v in split.items()))
