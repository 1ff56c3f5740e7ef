"""Perceptual path length (PPL), Karras et al. 2019 (arXiv 1812.04948, section 4.1), as the
official TensorFlow code measures it (NVlabs/stylegan, metrics/perceptual_path_length.py).

    l = E[ d(G(interp(a, b; t)), G(interp(a, b; t + eps))) / eps^2 ]

- space "z": slerp between two unit-normalised z, then the mapping network;
  space "w": lerp between the two mapped ws tensors (all layers at once).
- sampling "full": t ~ U(0, 1); "end": t = 0.  eps = 1e-4.  No truncation.
- Both images of a pair share their noise inputs. Crop to the face region (c = H // 8, rows
  3c..7c, columns 2c..6c), then, if the crop is larger than 256, average factor x factor blocks
  with factor = crop_size // 256 (a 1024 model's 512 crop becomes 256, as in the TF code; the
  later PyTorch port takes the factor from the full resolution and reaches 128 instead).
- d is LPIPS-VGG16 v0.1 on float images (no uint8 quantisation), in the lpips package's [-1, 1].
- Keep distances between the 1st percentile (numpy 'lower') and the 99th ('higher'); report the
  mean of those.

Pure helpers come first; `PPLSampler` computes one batch of distances; `measure_ppl` runs the
sampling loop (shardable over torch.distributed ranks) and returns a MetricResult with typed
`PPLExtras`; `compute_ppl` is the same with keyword arguments, returning a ResultRecord.

Randomness: sample i's z1, z2, t and noise come from (seed, i) alone. The official code draws
one noise set per minibatch, shared by all pairs in it; here each pair draws its own noise, shared
by its two images. Every pair's distance has the same distribution either way, and per-sample
noise makes the result independent of batch size and number of processes (up to float32
rounding: kernels may round differently for different batch shapes, and dividing by eps^2 turns
last-bit image differences into ~1e-4 relative differences of single distances).
"""

import math
import os
import time
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from stylegan_core import distributed
from stylegan_core.atomic import atomic_open
from stylegan_core.errors import ConfigError, NonFiniteError
from stylegan_core.seeding import PATH_END, PATH_NOISE, PATH_START, PATH_T, per_sample_noise, per_sample_rand, per_sample_randn
from stylegan_eval.images import area_downsample
from stylegan_eval.metrics.generation import noise_mode_of
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.provenance import MetricResult, Provenance, RecordExtras
from stylegan_eval.records import FeatureNetwork, ResultRecord

Space = Literal["z", "w"]
Sampling = Literal["full", "end"]

LPIPS_SIZE = 256  # the official code downsamples crops larger than this ("VGG was built for 224")

# ---------------------------------------------------------------------------------------------
# Pure helpers


def normalize(v: torch.Tensor) -> torch.Tensor:
    """v / ||v|| along the last axis."""
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the unit-normalised a and b, [N, D] each, t [N, 1] -> [N, D].

    As the official code: the great circle through a and b parametrised by angle t * acos(a.b);
    t outside [0, 1] continues along it. The cosine is clamped to [-1, 1] so rounding cannot
    make acos NaN (the official code does not clamp; it only matters for nearly equal vectors).
    """
    a, b = normalize(a), normalize(b)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)  # cos of the angle, [N, 1]
    p = t * torch.acos(d)  # angle travelled, [N, 1]
    c = normalize(b - d * a)  # unit vector orthogonal to a in the (a, b) plane
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a + (b - a) * t, with t broadcast (e.g. [N, 1, 1] for ws [N, num_ws, w_dim])."""
    return a + (b - a) * t


def crop_face(img: torch.Tensor) -> torch.Tensor:
    """The official face crop of [N, C, H, W]: c = H // 8, rows 3c..7c, columns 2c..6c -> [N, C, 4c, 4c]."""
    c = img.shape[2] // 8
    return img[:, :, 3 * c : 7 * c, 2 * c : 6 * c]


def downsample_factor(size: int) -> int:
    """Block size the official TF code averages an (already cropped) size x size image by:
    size // 256 when size > 256, else 1 (1024 -> crop 512 -> factor 2 -> 256)."""
    return size // LPIPS_SIZE if size > LPIPS_SIZE else 1


def measured_size(resolution: int, crop: bool) -> int:
    """Side of the image LPIPS sees for a generator of `resolution`."""
    size = 4 * (resolution // 8) if crop else resolution
    return size // downsample_factor(size)


def prepare_images(img: torch.Tensor, crop: bool = True) -> torch.Tensor:
    """Generator images [N, C, H, W] in [-1, 1] -> what the distance sees: face crop (optional),
    area downsample to 256 when larger, grey replicated to 3 channels. Stays float, stays [-1, 1]."""
    if crop:
        img = crop_face(img)
    factor = downsample_factor(img.shape[2])
    if factor > 1:
        img = area_downsample(img, img.shape[2] // factor)
    if img.shape[1] == 1:
        img = img.expand(-1, 3, -1, -1)
    return img


def filtered_mean(dists: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> float:
    """Mean of the values between the lo_pct percentile (rounded down to a sample: numpy
    method 'lower') and the hi_pct percentile (rounded up: 'higher'), both ends inclusive."""
    return float(_kept(np.asarray(dists), lo_pct, hi_pct).mean(dtype=np.float64))


def _kept(dists: np.ndarray, lo_pct: float, hi_pct: float) -> np.ndarray:
    if dists.ndim != 1 or dists.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of distances, got shape {dists.shape}")
    lo = np.percentile(dists, lo_pct, method="lower")
    hi = np.percentile(dists, hi_pct, method="higher")
    return dists[(dists >= lo) & (dists <= hi)]


@dataclass(frozen=True)
class PPLSummary:
    value: float  # mean of the kept distances: the PPL
    stderr: float  # standard error of `value` (sample std of the kept distances / sqrt(kept))
    unfiltered_mean: float  # mean of all distances
    p1: float  # 1st percentile, rounded down (the lower cut)
    p50: float  # median (linear interpolation)
    p99: float  # 99th percentile, rounded up (the upper cut)
    num_kept: int
    num_total: int


def summarize(dists: np.ndarray) -> PPLSummary:
    """The official outlier filter and mean, plus the statistics the record carries."""
    dists = np.asarray(dists, dtype=np.float64)
    kept = _kept(dists, 1.0, 99.0)
    stderr = float(kept.std(ddof=1) / math.sqrt(kept.size)) if kept.size > 1 else 0.0
    return PPLSummary(
        value=float(kept.mean()),
        stderr=stderr,
        unfiltered_mean=float(dists.mean()),
        p1=float(np.percentile(dists, 1, method="lower")),
        p50=float(np.percentile(dists, 50)),
        p99=float(np.percentile(dists, 99, method="higher")),
        num_kept=int(kept.size),
        num_total=int(dists.size),
    )


# ---------------------------------------------------------------------------------------------
# Configuration and per-batch sampler


@dataclass(frozen=True)
class PPLConfig:
    space: Space = "w"  # "z": slerp on normalised z; "w": lerp on the ws tensor
    sampling: Sampling = "end"  # "full": t ~ U(0, 1); "end": t = 0
    num_samples: int = 100_000  # pairs measured (the paper's count)
    epsilon: float = 1e-4  # step along the path; distances are divided by epsilon ** 2
    crop: bool = True  # official face crop before the distance

    def __post_init__(self):
        if self.space not in ("z", "w"):
            raise ConfigError(f"PPL space must be 'z' or 'w', got {self.space!r}")
        if self.sampling not in ("full", "end"):
            raise ConfigError(f"PPL sampling must be 'full' or 'end', got {self.sampling!r}")
        if self.num_samples < 1:
            raise ConfigError(f"PPL needs at least 1 sample, got num_samples={self.num_samples}")
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ConfigError(f"PPL epsilon must be a positive number, got {self.epsilon}")

    @property
    def metric(self) -> str:
        return f"ppl_{self.space}{self.sampling}"


@dataclass(frozen=True)
class PairInputs:
    """The random draws of a batch of samples, all from (seed, index) alone (CPU tensors)."""

    z0: torch.Tensor  # [N, z_dim] path start
    z1: torch.Tensor  # [N, z_dim] path end
    t: torch.Tensor  # [N] position on the path (0 for "end")
    noise: list[torch.Tensor]  # one [N, 1, h, w] per noise input, shared by both images of a pair


class PPLSampler:
    """Distances of one batch of pairs: one mapping forward, one synthesis forward and one
    distance forward over both endpoints of every pair."""

    def __init__(self, G: nn.Module, distance: nn.Module, config: PPLConfig, seed: int, device: torch.device):
        self.G, self.distance, self.config, self.seed, self.device = G, distance, config, seed, device
        self.noise_mode = noise_mode_of(G)
        self.noise_shapes = [tuple(s) for s in G.synthesis.noise_shapes] if self.noise_mode == "given" else []

    def inputs(self, indices) -> PairInputs:
        """z0, z1, t and noise of samples `indices`; row j depends only on (seed, indices[j])."""
        z_shape = (self.G.z_dim,)
        z0 = per_sample_randn(z_shape, self.seed, indices, PATH_START)
        z1 = per_sample_randn(z_shape, self.seed, indices, PATH_END)
        if self.config.sampling == "full":
            t = per_sample_rand((), self.seed, indices, PATH_T)
        else:
            t = torch.zeros(len(indices))
        # Drawn on the CPU (the same numbers on every device); empty without noise inputs.
        noise = per_sample_noise(self.noise_shapes, self.seed, indices, PATH_NOISE) if self.noise_mode == "given" else []
        return PairInputs(z0=z0, z1=z1, t=t, noise=noise)

    def images(self, inputs: PairInputs) -> torch.Tensor:
        """Both endpoints of every pair, [2N, C, H, W] (first N at t, last N at t + eps)."""
        dev, eps = self.device, self.config.epsilon
        z0, z1, t = inputs.z0.to(dev), inputs.z1.to(dev), inputs.t.to(dev)
        if self.config.space == "w":
            w0, w1 = self.G.mapping(torch.cat([z0, z1]), truncation_psi=1.0).chunk(2)  # [N, num_ws, w_dim]
            t3 = t[:, None, None]
            ws = torch.cat([lerp(w0, w1, t3), lerp(w0, w1, t3 + eps)])
        else:
            t2 = t[:, None]
            z = torch.cat([slerp(z0, z1, t2), slerp(z0, z1, t2 + eps)])
            ws = self.G.mapping(z, truncation_psi=1.0)
        if self.noise_mode != "given":
            return self.G.synthesis(ws, noise_mode=self.noise_mode)
        noise = [torch.cat([n, n]).to(dev) for n in inputs.noise]
        return self.G.synthesis(ws, noise_mode="given", noise=noise)

    @torch.no_grad()
    def __call__(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """(distances / eps^2 [N] float32, images finite [N] bool), both on the CPU."""
        img = self.images(self.inputs(indices))  # [2N, C, H, W]
        n = len(indices)
        finite = torch.isfinite(img).flatten(1).all(dim=1)
        finite = finite[:n] & finite[n:]
        img = prepare_images(img, self.config.crop)
        dist = self.distance(img[:n], img[n:]).reshape(n).float() / self.config.epsilon**2
        return dist.cpu(), finite.cpu()


# ---------------------------------------------------------------------------------------------
# Sampling loop


def _custom_identity(distance: nn.Module) -> FeatureNetwork:
    return FeatureNetwork(name=f"custom:{type(distance).__name__}", weights="custom", substitute=True)


def _raise_non_finite(dists: torch.Tensor, finite: torch.Tensor, indices) -> None:
    """NonFiniteError naming the culprit when any image or distance is NaN/Inf."""
    bad_img, bad_dist = ~finite, ~torch.isfinite(dists)
    if bad_img.any():
        what = f"the generator produced NaN/Inf images for {int(bad_img.sum())} pair(s)"
        first, fix = int(bad_img.nonzero()[0]), "the checkpoint is likely diverged"
    elif bad_dist.any():
        what = f"the distance produced NaN/Inf for {int(bad_dist.sum())} pair(s)"
        first, fix = int(bad_dist.nonzero()[0]), "check the distance network and epsilon"
    else:
        return
    raise NonFiniteError(f"PPL: {what} (first at sample index {list(indices)[first]}); {fix}")


def _save_array(path: str | os.PathLike, arr: np.ndarray) -> None:
    """np.save to `path` atomically (temp file in the same folder, then rename)."""
    with atomic_open(path) as f:
        np.save(f, arr)


@dataclass(frozen=True)
class PPLExtras(RecordExtras):
    """Details of a PPL measurement (the record's `extras`)."""

    unfiltered_mean: float  # mean of all distances, outliers included
    stderr: float  # standard error of the value
    percentiles: dict[str, float]  # "1" (lower cut), "50", "99" (upper cut) of the distances
    num_kept: int  # distances between the cuts
    image_size: int  # side of the image LPIPS saw
    processes: int  # torch.distributed processes that shared the samples
    dists_file: str | None = None  # every per-pair distance (.npy, index order), when saved


def check_image_size(G, config: PPLConfig, distance: nn.Module) -> int:
    """Side of the images the distance will see; ConfigError when it is too small for it."""
    identity = getattr(distance, "identity", None) or _custom_identity(distance)
    size = measured_size(G.img_resolution, config.crop)
    min_size = getattr(distance, "min_image_size", 1)
    if size < min_size:
        raise ConfigError(
            f"PPL: a {G.img_resolution}x{G.img_resolution} generator gives {size}x{size} images "
            f"{'after the face crop ' if config.crop else ''}but {identity.name} needs at least {min_size}x{min_size}"
            f"{' (use --no-crop)' if config.crop and measured_size(G.img_resolution, False) >= min_size else ''}"
        )
    return size


def measure_ppl(
    options: MetricOptions,
    config: PPLConfig,
    distance: nn.Module | None = None,  # None: LPIPS-VGG16 v0.1; else any d(img0, img1) -> [N] on [-1, 1] images
    save_dists: str | os.PathLike | None = None,  # write all distances (.npy, index order), rank 0
) -> MetricResult:
    """PPL of options.G. Under torchrun every rank measures its share of sample indices and every
    rank returns the same result (callers report on rank 0).

    Raises ConfigError for bad parameters, MissingWeightsError without LPIPS weights (unless
    `options.substitute`), NonFiniteError when the generator or distance produces NaN/Inf.
    """
    from tqdm import tqdm

    G, device, seed, batch_size, num_samples = options.G, options.device, options.seed, options.batch_size, config.num_samples
    start = time.perf_counter()
    if distance is None:
        from stylegan_eval.lpips_net import load_lpips

        # The substitute trunk has a fixed seed so substitute results stay comparable across --seed.
        distance = load_lpips(substitute=options.substitute, device=device)
    identity = getattr(distance, "identity", None) or _custom_identity(distance)
    crop = config.crop
    size = check_image_size(G, config, distance)
    G = G.to(device).eval()
    distance = distance.to(device).eval()
    sampler = PPLSampler(G, distance, config, seed, device)

    # Each rank takes a strided share of the indices; a per-batch NaN check can stop a single
    # process early, but ranks may run different batch counts, so with several the check waits
    # for the gather (a collective every rank reaches).
    mine = distributed.shard(range(num_samples))
    dists, finite = [], []
    show = options.progress and distributed.is_main()
    with tqdm(total=len(mine), desc=config.metric, unit="pair", disable=not show, leave=False) as bar:
        for b in range(0, len(mine), batch_size):
            indices = mine[b : b + batch_size]
            d, f = sampler(indices)
            if distributed.world_size() == 1:
                _raise_non_finite(d, f, indices)
            dists.append(d)
            finite.append(f)
            bar.update(len(indices))
    local = torch.stack([torch.cat(dists), torch.cat(finite).float()], dim=1) if dists else torch.zeros((0, 2))
    both = distributed.gather_by_index(local, num_samples)  # [num_samples, 2] in index order
    all_dists, all_finite = both[:, 0], both[:, 1].bool()
    _raise_non_finite(all_dists, all_finite, range(num_samples))

    arr = all_dists.numpy()
    stats = summarize(arr)
    if save_dists is not None:
        try:
            if distributed.is_main():
                _save_array(save_dists, arr)
        except OSError as e:  # a full disk must not throw away the measured value
            warnings.warn(f"could not save the distances to {save_dists} ({e.strerror or e}); the value is unaffected",
                          RuntimeWarning, stacklevel=2)
            save_dists = None
    extras = PPLExtras(
        unfiltered_mean=stats.unfiltered_mean,
        stderr=stats.stderr,
        percentiles={"1": stats.p1, "50": stats.p50, "99": stats.p99},
        num_kept=stats.num_kept,
        image_size=size,
        processes=distributed.world_size(),
        dists_file=None if save_dists is None else str(save_dists),
    )
    return MetricResult(
        metric=config.metric,
        value=stats.value,
        params={
            "space": config.space,
            "sampling": config.sampling,
            "epsilon": config.epsilon,
            "crop": crop,
            "downsample_to": LPIPS_SIZE,
            "filter_percentiles": [1, 99],
            "truncation_psi": 1.0,
        },
        num_samples=num_samples,
        seed=seed,
        feature_network=identity,
        wall_time_s=time.perf_counter() - start,
        extras=extras,
    )


def compute_ppl(
    G: nn.Module,
    space: Space = "w",  # "z" or "w"
    sampling: Sampling = "end",  # "full" or "end"
    num_samples: int = 100_000,  # pairs; the paper uses 100,000
    epsilon: float = 1e-4,  # path step; distances are divided by epsilon ** 2
    crop: bool = True,  # official face crop before the distance
    batch_size: int = 16,  # pairs per forward (the result does not depend on it)
    seed: int = 0,  # sample i depends only on (seed, i)
    device: str | torch.device = "cpu",  # where G and the distance run; G is moved there
    distance: nn.Module | None = None,  # None: LPIPS-VGG16 v0.1; else any d(img0, img1) -> [N] on [-1, 1] images
    substitute_weights: bool = False,  # allow a labelled random VGG16 trunk when the real one is missing
    label: str = "generator",  # record.model
    checkpoint: str | os.PathLike | None = None,  # recorded with its sha256 when given
    preset: str | None = None,  # recorded in params
    save_dists: str | os.PathLike | None = None,  # write all num_samples distances (.npy), rank 0
    progress: bool = True,  # tqdm bar on rank 0
) -> ResultRecord:
    """`measure_ppl` with keyword arguments, as one ResultRecord (see `measure_ppl`)."""
    config = PPLConfig(space=space, sampling=sampling, num_samples=num_samples, epsilon=epsilon, crop=crop)
    options = MetricOptions(G=G, device=torch.device(device), seed=seed, batch_size=batch_size,
                            substitute=substitute_weights, progress=progress)
    prov = Provenance.in_memory(label, preset) if checkpoint is None else Provenance.of_checkpoint(checkpoint, label, preset)
    return prov.record(measure_ppl(options, config, distance, save_dists))
