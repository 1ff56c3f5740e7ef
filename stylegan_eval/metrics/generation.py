"""How every metric draws sample i from a generator: its latent, its noise, its image.

The one noise rule of the metrics: the paper's metrics measure the generator WITH its stochastic
detail (the official FID and separability code generate with randomize_noise=True; PPL draws fresh
noise too, shared by the two images of a pair), so each sample gets fresh noise, drawn from
(seed, stream, i) and passed explicitly (noise_mode "given"). A generator without
noise inputs synthesises with "none"; a generator that cannot take explicit noise (its synthesis
has no `noise_shapes`, see stylegan_core.interface) uses its stored noise ("const"), the only
deterministic choice it offers.
"""

from typing import Literal

import torch

from stylegan_core.errors import DatasetError, NonFiniteError
from stylegan_core.seeding import LATENT, NOISE, per_sample_noise, per_sample_randn
from stylegan_eval.images import to_uint8

MetricNoiseMode = Literal["given", "none", "const"]


def noise_mode_of(G) -> MetricNoiseMode:
    """The noise mode metrics use for G (see the module docstring)."""
    shapes = getattr(G.synthesis, "noise_shapes", None)
    if shapes is None:
        return "const"
    return "given" if len(shapes) else "none"


def synthesize(G, ws: torch.Tensor, seed: int, indices, stream: int = NOISE, repeat: int = 1) -> torch.Tensor:
    """G.synthesis(ws) under the metric noise rule; ws [repeat * N, num_ws, w_dim] for N = len(indices).

    With repeat > 1 the N samples' noise is tiled `repeat` times (PPL: both images of a pair
    share their noise). Noise is drawn on ws.device."""
    mode = noise_mode_of(G)
    if mode != "given":
        return G.synthesis(ws, noise_mode=mode)
    noise = per_sample_noise([tuple(s) for s in G.synthesis.noise_shapes], seed, indices, stream, ws.device)
    return G.synthesis(ws, noise_mode="given", noise=[n.repeat(repeat, 1, 1, 1) for n in noise])


@torch.no_grad()
def generate_float(G, indices, seed: int, device, truncation_psi: float = 1.0, truncation_cutoff=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z [N, z_dim] on the CPU, ws [N, num_ws, w_dim], images [N, C, H, W] in ~[-1, 1]) of
    samples `indices`. z is drawn on the CPU so it is the same on every device."""
    z = per_sample_randn((G.z_dim,), seed, indices, stream=LATENT)
    ws = G.mapping(z.to(device), truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    return z, ws, synthesize(G, ws, seed, indices)


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Grayscale [N, 1, H, W] -> [N, 3, H, W] (as PIL's convert('RGB') in torch-fidelity)."""
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    if images.shape[1] != 3:
        raise DatasetError(f"feature networks need grayscale or RGB images, got {images.shape[1]} channels")
    return images


@torch.no_grad()
def generate_uint8(G, indices, seed: int, truncation_psi: float = 1.0, truncation_cutoff=None, device="cpu") -> torch.Tensor:
    """Images of samples `indices` quantised as the official code: uint8 [N, 3, H, W]."""
    indices = list(indices)
    _, _, img = generate_float(G, indices, seed, device, truncation_psi, truncation_cutoff)
    return quantize(img, indices, seed)


def quantize(img: torch.Tensor, indices, seed: int) -> torch.Tensor:
    """Generated float images -> uint8 RGB [N, 3, H, W] for feature networks; NaN/Inf is an error."""
    if not torch.isfinite(img).all():
        raise NonFiniteError(f"the generator produced NaN or Inf for samples {indices[0]}..{indices[-1]} (seed {seed})")
    return to_rgb(to_uint8(img))
