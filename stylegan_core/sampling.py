"""Sampling a generator: images for seeds, grids, and the paper's figures.

- Seeds: image `seed` uses z = np.random.RandomState(seed).randn(z_dim), the convention of the
  official generate scripts (NVlabs/stylegan pretrained_example.py, stylegan2-ada-pytorch
  generate.py), so seed k names the same latent as there. With noise_mode="random" the noise
  inputs are drawn per seed too (torch_generator(seed, stylegan_core.seeding.NOISE)), so an image never depends
  on the batch it was drawn in (up to float rounding of batched convolutions, ~1e-5).
- Truncation (sampling only, never in metrics): psi = 0.7 on the first 8 style inputs by default,
  as in the paper's figures.
- Style mixing figure (paper Fig. 3): source A images along the top, source B images down the
  left; cell (B, A) uses A's styles except for one crossover range taken from B. Ranges are the
  paper's coarse (4^2-8^2: layers 0-3 of 18), middle (16^2-32^2: layers 4-7) and fine
  (64^2-1024^2: layers 8-17), scaled to the generator's num_ws.
- Truncation sweep (paper Fig. 8): one row per seed, one column per psi.
- Interpolation strips: slerp in Z (on the unit sphere, norm interpolated linearly), lerp in W.
"""

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from stylegan_core.atomic import atomic_open
from stylegan_core.errors import ConfigError
from stylegan_core.seeding import NOISE, noise_from_generators, torch_generator

DEFAULT_TRUNCATION_PSI = 0.7
DEFAULT_TRUNCATION_CUTOFF = 8
MixRange = Literal["coarse", "middle", "fine"]
MIX_RANGES: tuple[str, ...] = ("coarse", "middle", "fine")
_PAPER_NUM_WS = 18  # 1024x1024: the paper's coarse/middle/fine split is 0-3 / 4-7 / 8-17


def z_from_seeds(seeds, z_dim: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """One latent per seed, [N, z_dim] float32: np.random.RandomState(seed).randn(z_dim)."""
    rows = []
    for s in seeds:
        s = int(s)
        if not 0 <= s < 2**32:
            raise ConfigError(f"seeds must be in [0, 2**32), got {s}")
        rows.append(np.random.RandomState(s).randn(z_dim))
    z = np.stack(rows) if rows else np.zeros((0, z_dim))
    return torch.from_numpy(z.astype(np.float32)).to(device)


def noise_from_seeds(G, seeds, device: str | torch.device = "cpu") -> list[torch.Tensor]:
    """Per-seed noise inputs for noise_mode="given": one [N, 1, h, w] tensor per noise input."""
    gens = [torch_generator(int(s), NOISE) for s in seeds]  # the image seed is the sample's identity
    return [n.to(device) for n in noise_from_generators(G.synthesis.noise_shapes, gens)]


def _synthesize(G, ws: torch.Tensor, noise_seeds, noise_mode: str, device) -> torch.Tensor:
    """G.synthesis on ws [N, num_ws, w_dim]; "random" noise comes from the noise seeds."""
    if noise_mode == "random" and hasattr(G.synthesis, "noise_shapes"):
        if not G.synthesis.noise_shapes:
            return G.synthesis(ws, noise_mode="none")
        return G.synthesis(ws, noise_mode="given", noise=noise_from_seeds(G, noise_seeds, device))
    return G.synthesis(ws, noise_mode=noise_mode)


def _batches(n: int, batch_size: int):
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    return (range(i, min(n, i + batch_size)) for i in range(0, n, batch_size))


@torch.no_grad()
def generate_ws(G, seeds, truncation_psi=DEFAULT_TRUNCATION_PSI, truncation_cutoff=DEFAULT_TRUNCATION_CUTOFF,
                batch_size: int = 32, device: str | torch.device = "cpu") -> torch.Tensor:
    """Mapped (and truncated) styles for seeds: [N, num_ws, w_dim] on the CPU."""
    seeds = list(seeds)
    out = [G.mapping(z_from_seeds(seeds[b.start:b.stop], G.z_dim, device), truncation_psi=truncation_psi,
                     truncation_cutoff=truncation_cutoff).cpu() for b in _batches(len(seeds), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, G.num_ws, G.w_dim)


@torch.no_grad()
def synthesize_ws(G, ws: torch.Tensor, noise_seeds, noise_mode: str = "const", batch_size: int = 32,
                  device: str | torch.device = "cpu") -> torch.Tensor:
    """Images for given styles ws [N, num_ws, w_dim]: float [N, C, R, R] on the CPU, about [-1, 1].
    noise_seeds: N seeds for noise_mode="random" (ignored otherwise)."""
    noise_seeds = list(noise_seeds)
    if len(noise_seeds) != len(ws):
        raise ValueError(f"need one noise seed per ws row: {len(noise_seeds)} seeds for {len(ws)} rows")
    out = [_synthesize(G, ws[b.start:b.stop].to(device), noise_seeds[b.start:b.stop], noise_mode, device).float().cpu()
           for b in _batches(len(ws), batch_size)]
    return torch.cat(out)


def generate_images(
    G,  # a generator honouring stylegan_core.GeneratorInterface
    seeds,  # iterable of ints in [0, 2**32); image k is a function of seeds[k] only
    truncation_psi: float = DEFAULT_TRUNCATION_PSI,  # 1 = no truncation (what metrics use)
    truncation_cutoff: int | None = DEFAULT_TRUNCATION_CUTOFF,  # truncate layers [0, cutoff); None = all
    noise_mode: str = "const",  # "const" (stored noise) | "random" (per-seed noise) | "none"
    batch_size: int = 32,  # images per forward pass; does not change the images
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Images for seeds: float [N, C, R, R] on the CPU, about [-1, 1]."""
    seeds = list(seeds)
    ws = generate_ws(G, seeds, truncation_psi, truncation_cutoff, batch_size, device)
    return synthesize_ws(G, ws, seeds, noise_mode, batch_size, device)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 as the official code (x * 127.5 + 128, clamp, truncate); uint8 passes."""
    if images.dtype == torch.uint8:
        return images
    return (images.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def image_grid(images: torch.Tensor, cols: int | None = None, pad: int = 0, pad_value: int = 255) -> np.ndarray:
    """Tile images [N, C, H, W] (float in [-1, 1] or uint8) row by row into uint8 [rows*H, cols*W, C]
    (with `pad` pixels between cells). cols None: ceil(sqrt(N)). Empty cells get pad_value."""
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"image_grid expects [N, C, H, W] with N >= 1, got {list(images.shape)}")
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), pad_value, np.uint8)
    pixels = to_uint8(images.detach().cpu()).permute(0, 2, 3, 1).numpy()  # [N, H, W, C]
    for k in range(n):
        r, q = divmod(k, cols)
        grid[r * (h + pad): r * (h + pad) + h, q * (w + pad): q * (w + pad) + w] = pixels[k]
    return grid


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, cols: int | None = None, pad: int = 0) -> Path:
    """Write image_grid(images, cols) as a PNG, atomically (temporary file, then rename)."""
    path = Path(path)
    grid = image_grid(images, cols, pad)
    with atomic_open(path) as f:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(f, format="PNG")
    return path


def crossover_layers(name: MixRange, num_ws: int) -> tuple[int, int]:
    """[start, stop) of the style inputs of a paper range, scaled from the 18 of a 1024 model:
    coarse = [0, 4), middle = [4, 8), fine = [8, 18) at 18; e.g. [0, 2), [2, 4), [4, 8) at 8."""
    if name not in MIX_RANGES:
        raise ConfigError(f"crossover range must be one of {', '.join(MIX_RANGES)} or START-STOP, got {name!r}")
    b1 = min(max(1, round(4 * num_ws / _PAPER_NUM_WS)), num_ws - 1)
    b2 = min(max(b1 + 1, round(8 * num_ws / _PAPER_NUM_WS)), num_ws)
    return {"coarse": (0, b1), "middle": (b1, b2), "fine": (b2, num_ws)}[name]


def parse_crossover(spec: str, num_ws: int) -> tuple[int, int]:
    """'coarse' | 'middle' | 'fine' | 'A-B' (inclusive layer indices) -> [start, stop)."""
    if spec in MIX_RANGES:
        return crossover_layers(spec, num_ws)
    try:
        a, b = (int(v) for v in spec.split("-"))
    except ValueError:
        raise ConfigError(f"crossover range must be one of {', '.join(MIX_RANGES)} or START-STOP, got {spec!r}") from None
    if not 0 <= a <= b < num_ws:
        raise ConfigError(f"crossover range {spec!r} is outside the generator's style inputs 0-{num_ws - 1}")
    return a, b + 1


@dataclass(frozen=True)
class MixingFigure:
    """The style-mixing figure: images [rows + 1, cols + 1, C, H, W]; row 0 holds the column
    sources (A), column 0 the row sources (B), cell [0, 0] is blank (white)."""

    images: torch.Tensor
    row_seeds: tuple[int, ...]  # sources B (their styles are copied in)
    col_seeds: tuple[int, ...]  # sources A (the rest of the styles)
    ranges: tuple[tuple[int, int], ...]  # per row: [start, stop) of the layers copied from B

    def flat(self) -> torch.Tensor:
        """[(rows + 1) * (cols + 1), C, H, W] in reading order, for save_image_grid(cols=cols + 1)."""
        return self.images.flatten(0, 1)


@torch.no_grad()
def style_mixing_figure(
    G,
    row_seeds,  # sources B, one per row
    col_seeds,  # sources A, one per column
    ranges,  # per row: "coarse" | "middle" | "fine" | (start, stop); or one of these for every row
    truncation_psi: float = DEFAULT_TRUNCATION_PSI,
    truncation_cutoff: int | None = DEFAULT_TRUNCATION_CUTOFF,
    noise_mode: str = "const",  # "random": a mixed cell uses its column source's noise
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> MixingFigure:
    """Paper Fig. 3: cell (B, A) = synthesis(A's ws with layers [start, stop) from B's ws)."""
    row_seeds, col_seeds = [int(s) for s in row_seeds], [int(s) for s in col_seeds]
    if G.num_ws < 2:
        raise ConfigError("style mixing needs a style-based generator (this one has a single style input)")
    if isinstance(ranges, (str, tuple)):
        ranges = [ranges] * len(row_seeds)
    if len(ranges) != len(row_seeds):
        raise ConfigError(f"need one crossover range per row: {len(ranges)} ranges for {len(row_seeds)} rows")
    spans = tuple(parse_crossover(r, G.num_ws) if isinstance(r, str) else tuple(r) for r in ranges)
    ws_b = generate_ws(G, row_seeds, truncation_psi, truncation_cutoff, batch_size, device)  # [rows, L, D]
    ws_a = generate_ws(G, col_seeds, truncation_psi, truncation_cutoff, batch_size, device)  # [cols, L, D]
    mixed = ws_a[None].repeat(len(row_seeds), 1, 1, 1)  # [rows, cols, L, D]
    for r, (start, stop) in enumerate(spans):
        mixed[r, :, start:stop] = ws_b[r, start:stop]
    all_ws = torch.cat([ws_a, ws_b, mixed.flatten(0, 1)])
    noise_seeds = col_seeds + row_seeds + col_seeds * len(row_seeds)
    imgs = synthesize_ws(G, all_ws, noise_seeds, noise_mode, batch_size, device)
    na, nb = len(col_seeds), len(row_seeds)
    c, h, w = imgs.shape[1:]
    fig = torch.ones(nb + 1, na + 1, c, h, w)
    fig[0, 1:] = imgs[:na]
    fig[1:, 0] = imgs[na:na + nb]
    fig[1:, 1:] = imgs[na + nb:].reshape(nb, na, c, h, w)
    return MixingFigure(fig, tuple(row_seeds), tuple(col_seeds), spans)


@torch.no_grad()
def truncation_sweep(G, seeds, psis, truncation_cutoff: int | None = DEFAULT_TRUNCATION_CUTOFF,
                     noise_mode: str = "const", batch_size: int = 32, device="cpu") -> torch.Tensor:
    """Paper Fig. 8: images [len(seeds), len(psis), C, H, W]; row = seed, column = psi."""
    seeds, psis = [int(s) for s in seeds], [float(p) for p in psis]
    if not seeds or not psis:
        raise ConfigError("a truncation sweep needs at least one seed and one psi")
    cols = [generate_ws(G, seeds, psi, truncation_cutoff, batch_size, device) for psi in psis]  # P x [S, L, D]
    all_ws = torch.stack(cols, 1).flatten(0, 1)  # [S * P, L, D], seed-major
    imgs = synthesize_ws(G, all_ws, [s for s in seeds for _ in psis], noise_mode, batch_size, device)
    return imgs.reshape(len(seeds), len(psis), *imgs.shape[1:])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of unit vectors a, b [N, D] at t [N] (as in the PPL code)."""
    dot = (a * b).sum(-1, keepdim=True).clamp(-1, 1)
    omega = torch.acos(dot)
    d = b - dot * a
    d = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return a * torch.cos(omega * t[:, None]) + d * torch.sin(omega * t[:, None])


@torch.no_grad()
def interpolation_strip(
    G,
    seed_a: int,
    seed_b: int,
    steps: int,  # images in the strip, both ends included
    space: Literal["z", "w"] = "w",  # "z": slerp between latents; "w": lerp between styles
    truncation_psi: float = DEFAULT_TRUNCATION_PSI,
    truncation_cutoff: int | None = DEFAULT_TRUNCATION_CUTOFF,
    noise_mode: str = "const",  # "random": seed_a's noise along the whole strip
    batch_size: int = 32,
    device="cpu",
) -> torch.Tensor:
    """Images [steps, C, H, W] from seed_a to seed_b, t = 0 .. 1 evenly spaced."""
    if steps < 2:
        raise ConfigError(f"an interpolation needs at least 2 steps, got {steps}")
    if space not in ("z", "w"):
        raise ConfigError(f"interpolation space must be 'z' or 'w', got {space!r}")
    t = torch.linspace(0, 1, steps)
    if space == "z":
        za, zb = z_from_seeds([seed_a, seed_b], G.z_dim)
        na, nb = za.norm(), zb.norm()
        u = slerp((za / na).expand(steps, -1), (zb / nb).expand(steps, -1), t)
        z = u * (na + (nb - na) * t)[:, None]  # [steps, z_dim]
        ws = torch.cat([G.mapping(z[b.start:b.stop].to(device), truncation_psi=truncation_psi,
                                  truncation_cutoff=truncation_cutoff).cpu() for b in _batches(steps, batch_size)])
    else:
        wa, wb = generate_ws(G, [seed_a, seed_b], truncation_psi, truncation_cutoff, batch_size, device)
        ws = wa + (wb - wa) * t[:, None, None]  # [steps, L, D]
    return synthesize_ws(G, ws, [seed_a] * steps, noise_mode, batch_size, device)
