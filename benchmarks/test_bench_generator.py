"""Generator forward throughput (images/s) on the CPU, no gradients, const noise, and the same
forward side by side with its peers on the same architecture.

Run: pytest benchmarks/test_bench_generator.py --benchmark-only -s   (add -m "not slow" to skip 1024)
- "F-cpu32" (32x32, the demo's size) and the paper's 1024x1024 "F": images/s in extra_info.
- Against the official op-by-op structure on the same weights (`official_structure`), at 256
  and 1024: speedup_vs_official_structure in extra_info.
- Against rosinality's style-based-gan-pytorch StyledGenerator (the paper's architecture, its
  own random weights: the cost does not depend on the values) when STYLEGAN_EVAL_ROSINALITY
  names a checkout of that repository (skipped otherwise; its code is never part of this one):
  git clone https://github.com/rosinality/style-based-gan-pytorch /somewhere/rosinality
  STYLEGAN_EVAL_ROSINALITY=/somewhere/rosinality pytest benchmarks/test_bench_generator.py -k rosinality -s
"""

import importlib.util
import os

import pytest
import torch
from official_structure import OfficialStructureGenerator
from side_by_side import interleaved_medians, record_ratios

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset

ROSINALITY_ENV = "STYLEGAN_EVAL_ROSINALITY"


def _generator(preset: str) -> Generator:
    return Generator(get_preset(preset).generator).eval().requires_grad_(False)


def _bench_forward(benchmark, preset: str, batch: int, rounds: int):
    G = _generator(preset)
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))

    def run():
        with torch.no_grad():
            return G(z, noise_mode="const")

    img = benchmark.pedantic(run, rounds=rounds, iterations=1, warmup_rounds=1)
    benchmark.extra_info["batch_size"] = batch
    if benchmark.stats:  # None under --benchmark-disable
        benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.mean
    assert img.shape == (batch, 3, G.img_resolution, G.img_resolution)


def test_generator_forward_f_cpu32(benchmark):
    _bench_forward(benchmark, "F-cpu32", batch=64, rounds=20)


@pytest.mark.slow
def test_generator_forward_f_1024(benchmark):
    _bench_forward(benchmark, "F", batch=2, rounds=3)


def _vs_official_structure(benchmark, preset: str, batch: int, rounds: int):
    G = _generator(preset)
    peer = OfficialStructureGenerator(G)
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    ws = G.mapping(z)

    @torch.no_grad()
    def ours():
        return G.synthesis(ws, noise_mode="const")

    @torch.no_grad()
    def official():
        return peer.synthesis(ws, noise_mode="const")

    a, b = ours(), official()
    # Same network, different computation: float32 rounding only (each side is ~1e-5 of the
    # output's scale from a float64 evaluation at 1024x1024); a wrong op would differ by O(1).
    assert (a - b).abs().max() <= 5e-5 * b.abs().max()
    benchmark.pedantic(ours, rounds=1, iterations=1)
    medians = interleaved_medians({"ours": ours, "official_structure": official}, rounds, warmup=False)
    record_ratios(benchmark, medians, label=f"{preset} synthesis, batch {batch}")


def test_generator_vs_official_structure_256(benchmark):
    _vs_official_structure(benchmark, "F-256", batch=4, rounds=3)


@pytest.mark.slow
def test_generator_vs_official_structure_1024(benchmark):
    _vs_official_structure(benchmark, "F", batch=2, rounds=3)


def _rosinality_generator():
    path = os.environ.get(ROSINALITY_ENV)
    if not path:
        pytest.skip(f"set {ROSINALITY_ENV} to a checkout of rosinality/style-based-gan-pytorch")
    spec = importlib.util.spec_from_file_location("rosinality_model", os.path.join(path, "model.py"))
    if spec is None or not os.path.isfile(os.path.join(path, "model.py")):
        pytest.fail(f"{ROSINALITY_ENV}={path}: no model.py there (expected a style-based-gan-pytorch checkout)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # the user's own checkout, named explicitly
    torch.manual_seed(0)  # its layers initialise from the global RNG
    return module.StyledGenerator(512).eval().requires_grad_(False)


@pytest.mark.parametrize("preset, batch, rounds", [("F-256", 4, 3), pytest.param("F", 2, 3, marks=pytest.mark.slow)])
def test_generator_vs_rosinality(benchmark, preset, batch, rounds):
    """Whole forward z -> image (mapping + synthesis, fresh noise) at the same resolution."""
    theirs_G = _rosinality_generator()
    G = _generator(preset)
    step = G.img_resolution.bit_length() - 3  # rosinality: resolution 4 * 2**step
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0))
    noise_gen = torch.Generator().manual_seed(1)

    @torch.no_grad()
    def ours():
        return G(z, noise_mode="random", generator=noise_gen)

    @torch.no_grad()
    def rosinality():
        return theirs_G(z, step=step)

    assert ours().shape == rosinality().shape == (batch, 3, G.img_resolution, G.img_resolution)
    benchmark.pedantic(ours, rounds=1, iterations=1)
    medians = interleaved_medians({"ours": ours, "rosinality": rosinality}, rounds, warmup=False)
    record_ratios(benchmark, medians, label=f"{preset} forward vs rosinality, batch {batch}")
