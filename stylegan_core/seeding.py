"""Explicit, per-sample random number generators, and the named streams every sampler draws from.

Every random draw in training, sampling and the metrics comes from a `torch.Generator` derived
from a user seed plus integer keys (typically a stream and a sample index). Sample i therefore
depends only on (seed, stream, i): results are identical for any batch size and any number of
processes. No library code touches the global RNG.

The stream numbers below are part of every value measured with them: renumbering a stream
changes every metric. Streams only need to be distinct among the draws of ONE sample of ONE
sampler; the image metrics (FID, KID, precision/recall, separability) deliberately share
`LATENT` and `NOISE`, so sample i is the same image for all of them and one generator pass can
serve several metrics.
"""

from collections.abc import Iterable, Sequence

import numpy as np
import torch

# Draws of sample i of an image metric (and of an image seed in stylegan_core.sampling).
LATENT = 0  # its latent z
NOISE = 1  # its noise inputs, all layers from one generator, in layer order
# Draws of pair i of perceptual path length (its own sampler, so its numbers may overlap the above).
PATH_START = 0  # z at the start of the path
PATH_END = 1  # z at the end of the path
PATH_T = 2  # position t on the path ("full" sampling)
PATH_NOISE = 3  # noise inputs shared by both images of the pair


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed from `seed` and integer keys (NumPy's SeedSequence hashing)."""
    if seed < 0 or any(k < 0 for k in keys):
        raise ValueError(f"seeds and keys must be non-negative, got seed={seed} keys={keys}")
    state = np.random.SeedSequence([seed, *keys]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def torch_generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh `torch.Generator` on `device`, seeded from `derive_seed(seed, *keys)`."""
    gen = torch.Generator(device=device)
    gen.manual_seed(derive_seed(seed, *keys))
    return gen


def sample_generators(seed: int, stream: int, indices: Iterable[int], device: str | torch.device = "cpu") -> list[torch.Generator]:
    """One generator per sample: the draws of `stream` for sample i, keyed (seed, stream, i)."""
    return [torch_generator(seed, stream, int(i), device=device) for i in indices]


def per_sample_randn(shape: tuple[int, ...], seed: int, indices, stream: int = LATENT) -> torch.Tensor:
    """Standard normals of shape [len(indices), *shape] (float32, CPU); row j depends only on
    (seed, stream, indices[j]). `stream` separates independent draws for the same sample."""
    rows = [torch.randn(shape, generator=g) for g in sample_generators(seed, stream, indices)]
    return torch.stack(rows) if rows else torch.empty((0, *shape))


def per_sample_rand(shape: tuple[int, ...], seed: int, indices, stream: int) -> torch.Tensor:
    """Uniform [0, 1) draws, like `per_sample_randn`."""
    rows = [torch.rand(shape, generator=g) for g in sample_generators(seed, stream, indices)]
    return torch.stack(rows) if rows else torch.empty((0, *shape))


def noise_from_generators(
    shapes: Sequence[tuple[int, int]],  # (h, w) per noise input, in layer order
    generators: Sequence[torch.Generator],  # one per sample
    device: str | torch.device = "cpu",  # where the draws happen (the generators' device)
) -> list[torch.Tensor]:
    """Noise inputs for noise_mode="given": one [N, 1, h, w] tensor per layer, sample j's layers
    drawn in order from generators[j] (so a sample's noise never depends on its batch)."""
    per_sample = [[torch.randn((1, h, w), generator=g, device=device) for h, w in shapes] for g in generators]
    if not per_sample:
        return [torch.empty((0, 1, h, w), device=device) for h, w in shapes]
    return [torch.stack([s[layer] for s in per_sample]) for layer in range(len(shapes))]


def per_sample_noise(shapes, seed: int, indices, stream: int = NOISE, device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """Noise inputs of samples `indices` ([N, 1, h, w] per layer), keyed (seed, stream, i) and
    drawn on `device` (CPU and CUDA generators give different numbers for the same key)."""
    return noise_from_generators(shapes, sample_generators(seed, stream, indices, device), device)
