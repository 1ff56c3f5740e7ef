"""The Progressive-GAN discriminator used by StyleGAN (official D_basic in NVlabs/stylegan
training/networks_stylegan.py, 'linear' structure; D_paper of networks_progan.py for config A).

fromRGB (1x1 conv) per resolution; per resolution R..8: 3x3 conv, then blur + 3x3 conv + 2x2
downscale (fused into a strided conv at >= 128 under fused_scale='auto'); final 4x4 block:
minibatch standard deviation (group 4, 1 feature), 3x3 conv, dense, dense to `out_features`.
Leaky ReLU 0.2 and equalised learning rate everywhere.

Progressive growing mirrors the generator: the `lod` buffer (0 = full resolution); at the level
of detail l the features are lerp(block(x), fromRGB(downscaled image), clip(lod - l, 0, 1)).
Blocks that cannot affect the output at the current lod are skipped (same output as the linear
structure, like the official 'recursive' one). Images may come at the lod's own resolution
R / 2**floor(lod) instead of R (training does this; the result is the same).
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import ConfigError
from stylegan_core.layers import (
    FUSED_SCALE_VALUES,
    LRELU_SLOPE,
    EqualizedConv2d,
    EqualizedLinear,
    FusedScale,
    blur2d,
    check_int,
    check_resolution,
    config_kwargs_from_dict,
    downscale2d,
    init_parameters,
    lerp,
    minibatch_stddev,
    nf,
    upscale2d,
    use_fused,
)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """The discriminator (official D_basic arguments)."""

    resolution: int = 1024  # input R x R, a power of two in 4..1024
    img_channels: int = 3
    fmap_base: int = 8192  # feature maps nf(stage) = min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = 512
    mbstd_group_size: int = 4  # minibatch stddev group; 0 (or 1) disables it (classifiers)
    mbstd_num_features: int = 1
    blur: bool = True  # binomial [1,2,1] filter before each downscale (config A: False)
    fused_scale: FusedScale = "auto"  # fused conv+downscale: 'auto' (>= 128), 'always', 'never'
    out_features: int = 1  # 1 logit for the GAN; >1 for the attribute classifier

    def __post_init__(self):
        owner = "DiscriminatorConfig"
        check_resolution(owner, self.resolution)
        check_int(owner, "img_channels", self.img_channels, 1)
        check_int(owner, "fmap_base", self.fmap_base, 1)
        check_int(owner, "fmap_max", self.fmap_max, 1)
        check_int(owner, "mbstd_group_size", self.mbstd_group_size, 0)
        check_int(owner, "mbstd_num_features", self.mbstd_num_features, 1)
        check_int(owner, "out_features", self.out_features, 1)
        if not isinstance(self.blur, bool):
            raise ConfigError(f"{owner}.blur must be true or false, got {self.blur!r}")
        if self.fused_scale not in FUSED_SCALE_VALUES:
            raise ConfigError(
                f"{owner}.fused_scale must be one of {list(FUSED_SCALE_VALUES)}, got {self.fused_scale!r}"
            )
        if self.mbstd_group_size > 1 and nf(1, self.fmap_base, self.fmap_max) % self.mbstd_num_features:
            raise ConfigError(f"{owner}: mbstd_num_features must divide the 4x4 channel count")

    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.resolution))

    def channels(self, stage: int) -> int:
        return nf(stage, self.fmap_base, self.fmap_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiscriminatorConfig":
        return cls(**config_kwargs_from_dict(cls, d))


class DiscriminatorBlock(nn.Module):
    """Resolution 2**res (res >= 3): conv, then blur + conv + downscale."""

    def __init__(self, cfg: DiscriminatorConfig, res: int):
        super().__init__()
        fused = use_fused(cfg.fused_scale, 2**res)  # input resolution, as official
        self.conv0 = EqualizedConv2d(cfg.channels(res - 1), cfg.channels(res - 1), 3)
        self.conv1 = EqualizedConv2d(
            cfg.channels(res - 1), cfg.channels(res - 2), 3, resample="down", fused=fused
        )
        self.blur = cfg.blur

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LRELU_SLOPE)
        if self.blur:
            x = blur2d(x)
        return F.leaky_relu(self.conv1(x), LRELU_SLOPE)


class Discriminator(nn.Module):
    """images [N, img_channels, R, R] -> scores [N, out_features]."""

    def __init__(self, config: DiscriminatorConfig, seed: int = 0):
        super().__init__()
        cfg = self.config = config
        self.resolution_log2 = cfg.resolution_log2
        self.img_resolution, self.img_channels = cfg.resolution, cfg.img_channels
        self.out_features = cfg.out_features
        # fromrgb[i] and blocks[i] serve resolution 2**(i + 2); blocks[0] is unused (the 4x4
        # block is separate) but keeping the indexing aligned keeps the code obvious.
        self.fromrgb = nn.ModuleList(
            EqualizedConv2d(cfg.img_channels, cfg.channels(res - 1), 1)
            for res in range(2, self.resolution_log2 + 1)
        )
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(cfg, res) for res in range(3, self.resolution_log2 + 1)
        )
        c4 = cfg.channels(1)
        self.use_mbstd = cfg.mbstd_group_size > 1
        extra = cfg.mbstd_num_features if self.use_mbstd else 0
        self.conv4 = EqualizedConv2d(c4 + extra, c4, 3)
        self.dense0 = EqualizedLinear(c4 * 16, cfg.channels(0))
        self.dense1 = EqualizedLinear(cfg.channels(0), cfg.out_features, gain=1.0)
        self.register_buffer("lod", torch.zeros(()))
        init_parameters(self, seed)

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    @torch.no_grad()
    def set_lod(self, lod: float) -> None:
        """Set the level of detail: 0 = full resolution, max_lod = 4x4 only."""
        if not (0.0 <= float(lod) <= self.max_lod):
            raise ValueError(f"lod must be in [0, {self.max_lod}] for {self.img_resolution}x"
                             f"{self.img_resolution}, got {lod}")
        self.lod.fill_(float(lod))

    def _fromrgb(self, img: torch.Tensor, res: int) -> torch.Tensor:
        return F.leaky_relu(self.fromrgb[res - 2](img), LRELU_SLOPE)

    def lod_resolution(self) -> int:
        """R / 2**floor(lod): the resolution the current level of detail reads."""
        return self.img_resolution >> min(max(int(math.floor(float(self.lod))), 0), self.max_lod)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """img: [N, C, R, R], or [N, C, r, r] at r = lod_resolution() (what training feeds,
        equal to passing its nearest upscale to R: the full-resolution input is box-downscaled
        to r first)."""
        r, c, r_lod = self.img_resolution, self.img_channels, self.lod_resolution()
        if img.ndim != 4 or img.shape[1] != c or img.shape[2] != img.shape[3] or img.shape[2] not in (r, r_lod):
            lod_shape = f" or [N, {c}, {r_lod}, {r_lod}] (the current lod's resolution)" if r_lod != r else ""
            raise ValueError(f"discriminator expects images of shape [N, {c}, {r}, {r}]{lod_shape}, "
                             f"got {list(img.shape)}")
        lod = float(self.lod)
        k = min(max(int(math.floor(lod)), 0), self.max_lod)  # input used at R / 2**k
        t = lod - k  # weight of the next-lower resolution's fromRGB at the top level
        top = self.resolution_log2 - k
        img = downscale2d(img, img.shape[2] // r_lod)
        x = self._fromrgb(img, top)
        for res in range(top, 2, -1):
            x = self.blocks[res - 3](x)
            if res == top and t > 0:  # official lerp_clip(x, fromrgb(downscale(img)), lod - l)
                x = lerp(x, self._fromrgb(downscale2d(img), res - 1), t)
        if self.use_mbstd:
            x = minibatch_stddev(x, self.config.mbstd_group_size, self.config.mbstd_num_features)
        x = F.leaky_relu(self.conv4(x), LRELU_SLOPE)
        x = F.leaky_relu(self.dense0(x.flatten(1)), LRELU_SLOPE)
        return self.dense1(x)  # [N, out_features]


def fade_images_for_lod(images: torch.Tensor, lod: float, full_resolution: bool = True) -> torch.Tensor:
    """Real images as the discriminator sees them at a fractional lod (official training loop's
    process_reals): box-downscale to R / 2**floor(lod), cross-fade with the next-lower
    resolution by frac(lod), nearest-upscale back to R. images: [N, C, R, R] -> same shape, or
    with full_resolution=False [N, C, R / 2**floor(lod), ...] (no upscale)."""
    k = int(math.floor(lod))
    x = downscale2d(images, 2**k)
    frac = lod - k
    if frac > 0:
        x = lerp(x, upscale2d(downscale2d(x)), frac)
    return upscale2d(x, 2**k) if full_resolution else x
