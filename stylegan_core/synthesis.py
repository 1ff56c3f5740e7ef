"""The synthesis network g: ws -> image of StyleGAN (official G_synthesis in NVlabs/stylegan
training/networks_stylegan.py, 'linear' structure), which also covers the traditional
generators (Progressive GAN style latent input, pixel norm, no styles) of Table 1 and Table 4.

Layer i (0 .. 2*log2(R)-3) works at 2**(i//2 + 2) pixels. Every layer ends with the official
epilogue: noise (learned per-channel strength) -> bias -> leaky ReLU 0.2 -> pixel norm ->
instance norm -> AdaIN style modulation with ws[:, i] (each step only where the config enables
it). Layer 0 is the learned 4x4 constant (init 1) or, traditionally, a dense layer on ws[:, 0]
with gain sqrt(2)/4. Each higher resolution: x2 upscale + 3x3 conv (fused transposed conv at
>= 128 under fused_scale='auto'), binomial blur, epilogue; 3x3 conv, epilogue. toRGB is a 1x1
conv per resolution.

Progressive growing: the `lod` buffer (0 = full resolution, log2(R)-2 = only 4x4). The image
is the official linear blend: at each resolution with level of detail l, img = lerp(toRGB(x),
upscale(img_lower), clip(lod - l, 0, 1)); the result is nearest-upscaled to R x R. Layers that
cannot affect the output at the current lod are skipped (same output, like the official
'recursive' structure), so their toRGB layers get no gradient. With full_resolution=False the
image stays at the level of detail's own resolution R / 2**floor(lod) (what training feeds the
discriminator), without materialising the upscaled R x R tensor.
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import ConfigError
from stylegan_core.layers import (
    FUSED_SCALE_VALUES,
    LRELU_GAIN,
    LRELU_SLOPE,
    Bias,
    EqualizedConv2d,
    EqualizedLinear,
    FusedScale,
    NoiseInput,
    StyleMod,
    blur2d,
    blur2d_,
    check_int,
    check_resolution,
    config_kwargs_from_dict,
    instance_norm,
    instance_norm_modulate,
    lerp,
    nf,
    pixel_norm,
    upscale2d,
    use_fused,
)

NoiseMode = Literal["random", "const", "none", "given"]
NOISE_MODES = ("random", "const", "none", "given")
# Inference on CPU runs the blocks from 64x64 up channels_last: there the convolutions of
# 64-512 channels at 64-1024 px are 1.2-1.5x faster in that layout, and below it they are not.
# Training (autograd) keeps NCHW, which is what its speed was measured in.
CHANNELS_LAST_MIN_RES_LOG2 = 6


@dataclass(frozen=True)
class SynthesisConfig:
    """The synthesis network g (official G_synthesis arguments)."""

    resolution: int = 1024  # output R x R, a power of two in 4..1024
    img_channels: int = 3  # output colour channels
    w_dim: int = 512  # size of each style vector w
    fmap_base: int = 8192  # feature maps nf(stage) = min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = 512
    const_input: bool = True  # learned 4x4 constant input; False = dense layer on ws[:, 0]
    use_styles: bool = True  # AdaIN per layer; False = traditional (reads ws[:, 0] only)
    use_noise: bool = True  # per-layer noise inputs
    use_pixel_norm: bool = False  # pixel norm after each activation (traditional: True)
    use_instance_norm: bool = True  # instance norm before each style modulation
    blur: bool = True  # binomial [1,2,1] filter after each upscale (config A: False)
    fused_scale: FusedScale = "auto"  # fused upscale+conv: 'auto' (>= 128), 'always', 'never'

    def __post_init__(self):
        owner = "SynthesisConfig"
        check_resolution(owner, self.resolution)
        check_int(owner, "img_channels", self.img_channels, 1)
        check_int(owner, "w_dim", self.w_dim, 1)
        check_int(owner, "fmap_base", self.fmap_base, 1)
        check_int(owner, "fmap_max", self.fmap_max, 1)
        for name in ("const_input", "use_styles", "use_noise", "use_pixel_norm",
                     "use_instance_norm", "blur"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{owner}.{name} must be true or false, got {getattr(self, name)!r}")
        if self.fused_scale not in FUSED_SCALE_VALUES:
            raise ConfigError(
                f"{owner}.fused_scale must be one of {list(FUSED_SCALE_VALUES)}, got {self.fused_scale!r}"
            )

    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_layers(self) -> int:
        """Conv layers (and noise inputs): two per resolution 4..R."""
        return 2 * self.resolution_log2 - 2

    @property
    def num_ws(self) -> int:
        """Style inputs: one per layer, or 1 for a traditional generator (official num_styles)."""
        return self.num_layers if self.use_styles else 1

    def channels(self, stage: int) -> int:
        return nf(stage, self.fmap_base, self.fmap_max)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SynthesisConfig":
        return cls(**config_kwargs_from_dict(cls, d))


class LayerEpilogue(nn.Module):
    """noise -> bias -> lrelu -> pixel norm -> instance norm -> style modulation."""

    def __init__(self, cfg: SynthesisConfig, channels: int):
        super().__init__()
        self.cfg = cfg
        self.noise = NoiseInput(channels) if cfg.use_noise else None
        self.bias = Bias(channels)
        self.style = StyleMod(cfg.w_dim, channels) if cfg.use_styles else None

    def forward(
        self,
        x: torch.Tensor,  # [N, C, H, W]
        w: torch.Tensor,  # [N, w_dim] this layer's style input
        noise: torch.Tensor | None,  # [N or 1, 1, H, W], or None for no noise
        inplace: bool = False,  # x is a temporary the caller gives up (a conv output)
    ) -> torch.Tensor:
        """With inplace=False every step returns a new tensor (the plain definition). With
        inplace=True the epilogue overwrites x: noise, bias and leaky ReLU always (their
        backward needs neither x nor, for the ReLU, anything but its output), and when
        nothing needs gradients also the normalisations and the modulation, fused into one
        reduction and three passes. Above glibc's mmap threshold (32 MB) every fresh
        full-size tensor is mapped, zero-filled page by page and unmapped again, so the
        allocations, not the arithmetic, dominate the epilogue's cost."""
        if not inplace:
            return self._reference(x, w, noise)
        if self.noise is not None and noise is not None:
            x = self.noise(x, noise, inplace=True)
        x = F.leaky_relu(self.bias(x, inplace=True), LRELU_SLOPE, inplace=True)
        track = torch.is_grad_enabled() and (
            x.requires_grad or w.requires_grad or any(p.requires_grad for p in self.parameters())
        )
        if self.cfg.use_pixel_norm:
            x = pixel_norm(x) if track else x.mul_(torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8))
        y_s, y_b = self.style.styles(w) if self.style is not None else (None, None)
        if self.cfg.use_instance_norm:
            return instance_norm_modulate(x, y_s, y_b, inplace=not track)
        if y_s is None:
            return x
        if track:
            return x * y_s[:, :, None, None] + y_b[:, :, None, None]
        return x.mul_(y_s[:, :, None, None]).add_(y_b[:, :, None, None])

    def _reference(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.noise is not None and noise is not None:
            x = self.noise(x, noise)
        x = F.leaky_relu(self.bias(x), LRELU_SLOPE)
        if self.cfg.use_pixel_norm:
            x = pixel_norm(x)
        if self.cfg.use_instance_norm:
            x = instance_norm(x)
        if self.style is not None:
            x = self.style(x, w)
        return x


class SynthesisBlock(nn.Module):
    """One resolution 2**res (res >= 3): up-conv (+blur) and conv, each with its epilogue."""

    def __init__(self, cfg: SynthesisConfig, res: int):
        super().__init__()
        in_ch, out_ch = cfg.channels(res - 2), cfg.channels(res - 1)
        fused = use_fused(cfg.fused_scale, 2**res)  # output resolution, as official
        self.conv0 = EqualizedConv2d(in_ch, out_ch, 3, resample="up", fused=fused, bias=False)
        self.epi0 = LayerEpilogue(cfg, out_ch)
        self.conv1 = EqualizedConv2d(out_ch, out_ch, 3, bias=False)
        self.epi1 = LayerEpilogue(cfg, out_ch)
        self.blur = cfg.blur

    def forward(self, x, w0, w1, n0, n1):
        x = self.conv0(x)
        if self.blur:
            x = blur2d(x) if torch.is_grad_enabled() and x.requires_grad else blur2d_(x)
        x = self.epi0(x, w0, n0, inplace=True)  # x is this block's own temporary
        return self.epi1(self.conv1(x), w1, n1, inplace=True)


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R] (nominally in [-1, 1])."""

    def __init__(self, config: SynthesisConfig):
        super().__init__()
        cfg = self.config = config
        self.resolution_log2 = cfg.resolution_log2
        self.num_ws, self.num_layers, self.w_dim = cfg.num_ws, cfg.num_layers, cfg.w_dim
        self.img_resolution, self.img_channels = cfg.resolution, cfg.img_channels
        c4 = cfg.channels(1)
        if cfg.const_input:
            self.const = nn.Parameter(torch.ones(1, c4, 4, 4))
            self.input_dense = None
        else:
            self.const = None
            # Official: gain/4 "to match the official implementation of Progressive GAN".
            self.input_dense = EqualizedLinear(cfg.w_dim, c4 * 16, gain=LRELU_GAIN / 4, bias=False)
        self.input_epi = LayerEpilogue(cfg, c4)
        self.conv4 = EqualizedConv2d(c4, c4, 3, bias=False)
        self.conv4_epi = LayerEpilogue(cfg, c4)
        self.blocks = nn.ModuleList(
            SynthesisBlock(cfg, res) for res in range(3, self.resolution_log2 + 1)
        )
        self.torgb = nn.ModuleList(
            EqualizedConv2d(cfg.channels(res - 1), cfg.img_channels, 1, gain=1.0)
            for res in range(2, self.resolution_log2 + 1)
        )
        for i, (h, w) in enumerate(self.noise_shapes):
            self.register_buffer(f"noise_{i}", torch.zeros(1, 1, h, w))  # filled by init_from
        self.register_buffer("lod", torch.zeros(()))

    @property
    def noise_shapes(self) -> list[tuple[int, int]]:
        """(h, w) of each noise input, one per layer; empty when the config has no noise."""
        if not self.config.use_noise:
            return []
        return [(2 ** (i // 2 + 2),) * 2 for i in range(self.num_layers)]

    @property
    def max_lod(self) -> int:
        return self.resolution_log2 - 2

    def init_from(self, gen: torch.Generator) -> None:
        """Stored noise maps for noise_mode='const' ~ N(0, 1) from `gen`; constant input = 1."""
        with torch.no_grad():
            if self.const is not None:
                self.const.fill_(1.0)
            for i, (h, w) in enumerate(self.noise_shapes):
                getattr(self, f"noise_{i}").copy_(torch.randn(1, 1, h, w, generator=gen))

    @torch.no_grad()
    def set_lod(self, lod: float) -> None:
        """Set the level of detail: 0 = full resolution, max_lod = 4x4 only."""
        if not (0.0 <= float(lod) <= self.max_lod):
            raise ValueError(f"lod must be in [0, {self.max_lod}] for {self.img_resolution}x"
                             f"{self.img_resolution}, got {lod}")
        self.lod.fill_(float(lod))

    def _noises(self, n, mode, noise, generator, device, dtype) -> list[torch.Tensor | None]:
        shapes = self.noise_shapes
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {list(NOISE_MODES)}, got {mode!r}")
        if mode != "given" and noise is not None:
            raise ValueError(f"noise was passed with noise_mode={mode!r}; use noise_mode='given'")
        if mode == "given":
            if noise is None or len(noise) != len(shapes):
                got = None if noise is None else f"{len(noise)} tensors"
                raise ValueError(f"noise_mode='given' needs a list of {len(shapes)} tensors "
                                 f"shaped [N, 1, h, w] for noise_shapes {shapes}, got {got}")
            for i, (t, (h, w)) in enumerate(zip(noise, shapes)):
                if t.ndim != 4 or t.shape[1:] != (1, h, w) or t.shape[0] not in (1, n):
                    raise ValueError(f"noise[{i}] must have shape [{n}, 1, {h}, {w}], "
                                     f"got {list(t.shape)}")
            # A generator without noise inputs (traditional) takes an empty list: no noise anywhere.
            return [t.to(device=device, dtype=dtype) for t in noise] or [None] * self.num_layers
        if mode == "none" or not shapes:
            return [None] * self.num_layers
        if mode == "const":
            return [getattr(self, f"noise_{i}") for i in range(len(shapes))]
        return [torch.randn(n, 1, h, w, generator=generator, device=device, dtype=dtype)
                for (h, w) in shapes]

    def forward(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim]
        noise_mode: NoiseMode = "random",  # "random" | "const" | "none" | "given"
        noise: list[torch.Tensor] | None = None,  # noise_mode="given": [N, 1, h, w] per layer
        generator: torch.Generator | None = None,  # RNG for noise_mode="random" (torch default if None)
        full_resolution: bool = True,  # False: [N, C, R/2**floor(lod), ...] without the final upscale
    ) -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"synthesis network expects ws of shape [N, {self.num_ws}, "
                             f"{self.w_dim}], got {list(ws.shape)}")
        n = ws.shape[0]
        noises = self._noises(n, noise_mode, noise, generator, ws.device, ws.dtype)
        style = (lambda i: ws[:, i]) if self.config.use_styles else (lambda i: ws[:, 0])
        lod = float(self.lod)
        k = min(max(int(math.floor(lod)), 0), self.max_lod)  # highest resolution: R / 2**k
        t_top = lod - k  # blend weight of the lower resolution at the top level, in [0, 1)
        top = self.resolution_log2 - k

        # 4x4: constant or dense input (layer 0), then a 3x3 conv (layer 1).
        if self.const is not None:
            x = self.const.expand(n, -1, -1, -1)
        else:
            x = self.input_dense(ws[:, 0]).reshape(n, -1, 4, 4)
        # The constant is a parameter (expanded, not copied): its epilogue must not write to it.
        x = self.input_epi(x, style(0), noises[0], inplace=self.const is None)
        x = self.conv4_epi(self.conv4(x), style(1), noises[1], inplace=True)

        lower = None  # [N, C, h, w] output of the level below the top, when it is blended in
        for res in range(3, top + 1):
            if res == top and t_top > 0:
                lower = self.torgb[res - 3](x)
            i = 2 * res - 4
            if res == CHANNELS_LAST_MIN_RES_LOG2 and x.device.type == "cpu" and not torch.is_grad_enabled():
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.blocks[res - 3](x, style(i), style(i + 1), noises[i], noises[i + 1])
        img = self.torgb[top - 2](x)
        if lower is not None:
            img = lerp(img, upscale2d(lower), t_top)  # official lerp_clip(new, old, lod - l)
        # Training passes full_resolution=False: the nearest upscale to R x R adds nothing a
        # discriminator at the same lod reads (it box-downscales right back).
        return upscale2d(img, 2 ** k) if full_resolution else img  # [N, C, R, R]
