"""Data throughput: drawing the synthetic dataset, opening a dataset, sampling a grid.

Run: pytest benchmarks/test_bench_data.py --benchmark-only
The 20k-image numbers are what the README and the issue note quote (20k images at 32x32).
"""

import shutil

import pytest
import torch

from stylegan_core.data import open_dataset
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.sampling import generate_images
from stylegan_core.synthetic import synthesize, synthesize_dataset

NUM = 20_000
RES = 32


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("bench") / "synth", NUM, RES, seed=0)


def test_synthesize_dataset_20k_32px(benchmark, tmp_path):
    """Whole `data synth`: draw, encode PNGs, write labels, rename into place."""
    counter = iter(range(1_000_000))

    def run():
        out = tmp_path / f"s{next(counter)}"
        synthesize_dataset(out, NUM, RES, seed=0)
        return out

    out = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info["images_per_s"] = NUM / benchmark.stats.stats.mean if benchmark.stats else None
    assert len(list((out / "images").iterdir())) == NUM
    shutil.rmtree(out)


def test_synthesize_in_memory_2k_32px(benchmark):
    """Drawing only (parameters + vectorised rendering), no PNG encoding."""
    imgs, _ = benchmark(synthesize, 0, range(2000), RES)
    assert imgs.shape == (2000, RES, RES, 3)


def test_open_dataset_20k_with_labels(benchmark, synth_dir):
    """Scan (read, hash, decode) 20k PNGs and match the CelebA label file."""
    ds = benchmark.pedantic(open_dataset, (synth_dir,), {"attributes": synth_dir / "list_attr.txt"}, rounds=3, iterations=1)
    assert len(ds) == NUM and ds.attributes.shape == (NUM, 10)


def test_load_all_20k(benchmark, synth_dir):
    ds = open_dataset(synth_dir)
    x = benchmark(ds.load_all)
    assert x.shape == (NUM, 3, RES, RES)


def test_load_all_uncached_2k(benchmark, tmp_path):
    """The path large datasets take: decode on every access."""
    d = synthesize_dataset(tmp_path / "small", 2000, RES, seed=0)
    ds = open_dataset(d, cache_bytes=0)
    x = benchmark.pedantic(ds.load_all, rounds=3, iterations=1)
    assert x.shape == (2000, 3, RES, RES)


def test_generate_grid_64_cpu32(benchmark):
    G = Generator(get_preset("F-cpu32").generator).eval()
    torch.set_num_threads(2)
    imgs = benchmark.pedantic(generate_images, (G, range(64)), {"batch_size": 32}, rounds=3, iterations=1)
    assert imgs.shape == (64, 3, RES, RES)
