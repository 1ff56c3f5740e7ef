"""Explicit, per-sample random number generators.

Every random draw in training, sampling and the metrics comes from a `torch.Generator` derived
from a user seed plus integer keys (typically a sample index). Sample i therefore depends only on
(seed, i): results are identical for any batch size and any number of processes. No library code
touches the global RNG.
"""

import numpy as np
import torch


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


def per_sample_randn(shape: tuple[int, ...], seed: int, indices, stream: int = 0) -> torch.Tensor:
    """Standard normals of shape [len(indices), *shape] (float32, CPU); row j depends only on
    (seed, stream, indices[j]). `stream` separates independent draws for the same sample
    (e.g. 0 for z1, 1 for z2)."""
    rows = [torch.randn(shape, generator=torch_generator(seed, stream, int(i))) for i in indices]
    return torch.stack(rows) if rows else torch.empty((0, *shape))


def per_sample_rand(shape: tuple[int, ...], seed: int, indices, stream: int = 0) -> torch.Tensor:
    """Uniform [0, 1) draws, like `per_sample_randn`."""
    rows = [torch.rand(shape, generator=torch_generator(seed, stream, int(i))) for i in indices]
    return torch.stack(rows) if rows else torch.empty((0, *shape))
