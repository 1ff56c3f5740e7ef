"""Generator forward throughput (images/s) on the CPU, no gradients, const noise.

Run: pytest benchmarks/test_bench_generator.py --benchmark-only
"F-cpu32" (32x32, the demo's size) and the paper's 1024x1024 "F" at a batch size a CPU handles;
the images/s of each lands in the benchmark's extra_info (and the JSON with --benchmark-json).
"""

import pytest
import torch

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset


def _bench_forward(benchmark, preset: str, batch: int, rounds: int):
    G = Generator(get_preset(preset).generator).eval()
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
