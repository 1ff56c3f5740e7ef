"""Building blocks of the StyleGAN generator and discriminator, as in NVlabs/stylegan
(training/networks_stylegan.py and networks_progan.py), written for PyTorch.

- Equalised learning rate: parameters are stored with unit variance (N(0, 1/lr_mul)) and scaled
  at run time by He's constant gain/sqrt(fan_in) times the learning-rate multiplier, so Adam sees
  the same dynamic range in every layer (official `get_weight(use_wscale=True, lrmul)`).
- Resampling: nearest x2 upscale, 2x2 box downscale, the separable binomial [1,2,1] low-pass
  filter, and the "fused" variants (transposed conv / strided conv with a 4x4 kernel built from
  the 3x3 one) that the official code selects automatically at >= 128x128. Both variants of
  each are computed the cheapest exact way: upscale + conv as four 2x2 phase kernels on the
  small input (one stride-2 transposed conv on channels_last storage), conv + downscale as the
  stride-2 4x4 conv (equal up to float rounding).
- Normalisations (pixel norm, instance norm, eps 1e-8), noise inputs with learned per-channel
  strength (init 0), AdaIN style modulation (y_s bias init 1), minibatch standard deviation.

Parameters are created empty and filled by `init_parameters(module, seed)`, which draws every
random initial value from one explicit `torch.Generator` (never the global RNG), so the same
config and seed always give the same network.
"""

import dataclasses
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import ConfigError

LRELU_GAIN = math.sqrt(2.0)  # He gain of leaky ReLU (official uses sqrt(2) for slope 0.2 too)
LRELU_SLOPE = 0.2

FusedScale = Literal["auto", "always", "never"]
FUSED_SCALE_VALUES = ("auto", "always", "never")
FUSED_AUTO_MIN_RES = 128  # official 'auto': fuse when the larger of the two resolutions >= 128


# ---------------------------------------------------------------------------------------------
# Config helpers shared by all network configs.


def config_kwargs_from_dict(cls, d: dict) -> dict:
    """Keyword arguments for dataclass `cls` from a JSON dict; unknown keys are refused so a
    misspelt key never silently falls back to a default."""
    if not isinstance(d, dict):
        raise ConfigError(f"{cls.__name__}: expected a dict, got {type(d).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(
            f"{cls.__name__}: unknown key(s) {unknown}; valid keys are {sorted(names)}"
        )
    return dict(d)


def check_int(owner: str, name: str, value, lo: int, hi: int | None = None) -> None:
    """Raise ConfigError unless `value` is an int (not bool) in [lo, hi]."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{owner}.{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ConfigError(f"{owner}.{name} must be {rng}, got {value}")


def check_resolution(owner: str, value) -> int:
    """Raise ConfigError unless `value` is a power of two in 4..1024; returns log2(value)."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or value < 4
        or value > 1024
        or value & (value - 1)
    ):
        raise ConfigError(
            f"{owner}.resolution must be a power of two between 4 and 1024 "
            f"(4, 8, 16, ..., 1024), got {value!r}"
        )
    return int(math.log2(value))


def nf(stage: int, fmap_base: int, fmap_max: int) -> int:
    """Feature maps at a stage: min(fmap_base / 2**stage, fmap_max) (official nf, decay 1)."""
    return max(1, min(int(fmap_base / (2.0**stage)), fmap_max))


def use_fused(fused_scale: FusedScale, larger_res: int) -> bool:
    """Whether to fuse resampling into the conv (official 'auto': at >= 128x128)."""
    if fused_scale == "auto":
        return larger_res >= FUSED_AUTO_MIN_RES
    return fused_scale == "always"


# ---------------------------------------------------------------------------------------------
# Parameter-free ops on [N, C, H, W] tensors.


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalise each feature vector (dim 1) to unit root mean square."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per sample and channel: zero mean, unit RMS over the pixels. x: [N, C, H, W]."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


def instance_norm_modulate(
    x: torch.Tensor,  # [N, C, H, W]
    scale: torch.Tensor | None,  # [N, C] style scale y_s, or None for instance norm alone
    shift: torch.Tensor | None,  # [N, C] style bias y_b, or None
    eps: float = 1e-8,
    inplace: bool = False,  # overwrite x (only where autograd does not need it: no grad)
) -> torch.Tensor:
    """Instance norm followed by AdaIN, `(x - mean) * rsqrt(mean((x - mean)^2) + eps) * y_s
    + y_b` (the official two-pass variance), with the per-channel factors folded first so the
    full-size tensor is touched by two reductions and three elementwise passes and, in place,
    never copied. Equal to `instance_norm(x) * y_s + y_b` up to float rounding. On NCHW storage
    the sum of squares comes from `vector_norm`, which reduces without a squared temporary (and
    runs ~30x faster than `var_mean` on CPU); per row first, then summed, because its float32
    accumulator over a whole 1024x1024 plane drifts by 2e-5 relative (per row: 1e-7). On
    channels_last storage it is squared in cache-sized blocks (`_channel_sums_of_squares`)."""
    mean = x.mean(dim=(2, 3), keepdim=True)  # [N, C, 1, 1]
    x = x.sub_(mean) if inplace else x - mean
    if is_channels_last(x):
        sq = _channel_sums_of_squares(x.permute(0, 2, 3, 1))  # [N, C]
    else:
        sq = torch.linalg.vector_norm(x, dim=3).square().sum(dim=2)  # per row [N, C, H], then [N, C]
    ms = sq[:, :, None, None] / (x.shape[2] * x.shape[3])
    factor = torch.rsqrt(ms + eps)
    if scale is not None:
        factor = factor * scale[:, :, None, None]
    if inplace:
        x = x.mul_(factor)
        return x if shift is None else x.add_(shift[:, :, None, None])
    x = x * factor
    return x if shift is None else x + shift[:, :, None, None]


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether [N, C, H, W] x is stored as [N, H, W, C] (and not also plain NCHW, as when C or
    H * W is 1)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _channel_sums_of_squares(p: torch.Tensor, block_elements: int = 1 << 18) -> torch.Tensor:
    """Sum over H and W of p**2 for channels_last storage viewed as p [N, H, W, C] -> [N, C].
    Squared in blocks of rows of ~1 MB, which stay in cache: 3-7x faster than vector_norm
    reducing across the strided middle dimensions, and as accurate (the sums are cascaded)."""
    n, _, w, c = p.shape
    rows = max(1, block_elements // (n * w * c))
    return sum((b * b).sum(dim=(1, 2)) for b in p.split(rows, dim=1))


def _binomial_kernel(channels: int, dtype, device) -> torch.Tensor:
    f = torch.tensor([1.0, 2.0, 1.0], dtype=dtype, device=device)
    f = f[:, None] * f[None, :]
    f = f / f.sum()  # [3, 3], sums to 1
    return f.expand(channels, 1, 3, 3)  # depthwise: one filter per channel


def blur2d(x: torch.Tensor) -> torch.Tensor:
    """Separable binomial [1,2,1] x [1,2,1] / 16 low-pass filter, zero padding ('SAME').
    The kernel is symmetric, so correlation and convolution agree."""
    c = x.shape[1]
    return F.conv2d(x, _binomial_kernel(c, x.dtype, x.device), padding=1, groups=c)


def blur2d_(x: torch.Tensor) -> torch.Tensor:
    """blur2d computed in place on x (one temporary of x's size instead of the depthwise conv's
    output and its slow per-channel kernel): [1,2,1]/4 along W, then along H, zero padding.
    For tensors autograd does not track; returns x."""
    h = torch.mul(x, 0.5)
    h[..., 1:].add_(x[..., :-1], alpha=0.25)
    h[..., :-1].add_(x[..., 1:], alpha=0.25)
    torch.mul(h, 0.5, out=x)
    x[..., 1:, :].add_(h[..., :-1, :], alpha=0.25)
    x[..., :-1, :].add_(h[..., 1:, :], alpha=0.25)
    return x


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upscale by an integer factor: [N, C, H, W] -> [N, C, fH, fW]."""
    if factor == 1:
        return x
    return F.interpolate(x, scale_factor=factor, mode="nearest")  # exact for integer factors


# Nearest x2 upscale then a 3x3 conv ('SAME'), split by output phase: output row 2i takes input
# rows (i-1, i) with kernel rows (w0, w1 + w2), row 2i+1 takes (i, i+1) with (w0 + w1, w2); the
# same for columns. [phase, tap, kernel row]:
_UP_PHASE_TAPS = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])


def box_summed_kernel(weight: torch.Tensor) -> torch.Tensor:
    """[O, I, k, k] -> [O, I, k+1, k+1]: the sum of the four copies of the kernel shifted by
    0/1 pixel in each direction (official upscale2d_conv2d / conv2d_downscale2d), the kernel
    of the stride-2 (transposed) conv that fuses a 2x resampling into the conv."""
    w = F.pad(weight, (1, 1, 1, 1))  # [O, I, k+2, k+2]
    return w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]


def upscale_conv3x3(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """conv2d(upscale2d(x), weight, padding=1) without the upscaled tensor: one conv of the
    four 2x2 phase kernels on x, interleaved. 4 instead of 9 multiply-adds per output pixel
    and channel pair, equal up to float rounding. x: [N, I, H, W], weight: [O, I, 3, 3] ->
    [N, O, 2H, 2W]."""
    if is_channels_last(x):
        # The same operator is the stride-2 transposed conv of the box-summed 4x4 kernel,
        # flipped (the official fused op uses it unflipped). On channels_last storage oneDNN
        # writes that straight into the interleaved output, 1.1-1.4x faster than the phase
        # convolution plus interleave; on NCHW storage it is 1.2-2x slower.
        return F.conv_transpose2d(x, box_summed_kernel(weight).flip(2, 3).transpose(0, 1), stride=2, padding=1)
    n, _, h, w_ = x.shape
    out_ch = weight.shape[0]
    taps = _UP_PHASE_TAPS.to(device=weight.device, dtype=weight.dtype)
    # k[a, b, o, i, p, q] = sum_yx taps[a, p, y] taps[b, q, x] weight[o, i, y, x]
    k = torch.einsum("apy,bqx,oiyx->aboipq", taps, taps, weight).reshape(4 * out_ch, -1, 2, 2)
    # Padding 1 gives (H+1) x (W+1) outputs; phase (a, b) is the window starting at (a, b).
    y = F.conv2d(x, k, padding=1).reshape(n, 2, 2, out_ch, h + 1, w_ + 1)
    out = x.new_empty(n, out_ch, h, 2, w_, 2)
    for a in (0, 1):
        for b in (0, 1):
            out[:, :, :, a, :, b] = y[:, a, b, :, a : a + h, b : b + w_]
    return out.reshape(n, out_ch, 2 * h, 2 * w_)


def downscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Box (average) downscale by an integer factor: [N, C, H, W] -> [N, C, H/f, W/f]."""
    if factor == 1:
        return x
    return F.avg_pool2d(x, kernel_size=factor, stride=factor)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """a + (b - a) * t (official tflib.lerp)."""
    return a + (b - a) * t


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append `num_features` channels holding the mean standard deviation over groups of samples
    (official minibatch_stddev_layer). Group g holds samples g, g+M, g+2M, ... (M = N / G).
    x: [N, C, H, W] -> [N, C + num_features, H, W]."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g != 0:
        raise ValueError(
            f"minibatch stddev: batch size {n} must be a multiple of the group size {g} "
            "(or smaller than it); use a batch size divisible by mbstd_group_size"
        )
    if c % num_features != 0:
        raise ValueError(f"minibatch stddev: {c} channels not divisible by {num_features}")
    y = x.reshape(g, -1, num_features, c // num_features, h, w)  # [G, M, n, c, H, W]
    y = y.float()
    y = y - y.mean(dim=0, keepdim=True)
    y = y.square().mean(dim=0)  # [M, n, c, H, W] variance over the group
    y = torch.sqrt(y + 1e-8)
    y = y.mean(dim=(2, 3, 4))  # [M, n]
    y = y.to(x.dtype).reshape(-1, num_features, 1, 1)
    y = y.repeat(g, 1, h, w)  # [N, n, H, W]
    return torch.cat([x, y], dim=1)


# ---------------------------------------------------------------------------------------------
# Layers with parameters.


class EqualizedLinear(nn.Module):
    """Dense layer with equalised learning rate: y = x @ (W * gain/sqrt(fan_in) * lr_mul)^T
    + b * lr_mul. Stored W ~ N(0, 1/lr_mul^2), stored b = bias_init / lr_mul."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = LRELU_GAIN,  # He gain; 1 for linear outputs (toRGB, logits, styles)
        lr_mul: float = 1.0,  # learning-rate multiplier (0.01 in the mapping network)
        bias: bool = True,
        bias_init: float | torch.Tensor = 0.0,  # effective initial bias (scalar or [out])
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.lr_mul = lr_mul
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.weight_gain = gain / math.sqrt(in_features) * lr_mul
        self.bias_init = bias_init

    def init_from(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=gen) / self.lr_mul)
            if self.bias is not None:
                self.bias.copy_(torch.as_tensor(self.bias_init, dtype=torch.float32) / self.lr_mul)

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.weight_gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.effective_weight(), b)


class EqualizedConv2d(nn.Module):
    """k x k convolution with equalised learning rate, 'SAME' padding, optional x2 resampling.

    resample="up": nearest upscale then conv, or (fused) a stride-2 transposed conv whose 4x4
    kernel is the sum of the four shifted copies of the 3x3 kernel (official
    upscale2d_conv2d). resample="down": conv then 2x2 box downscale, or (fused) a stride-2 conv
    with the same 4x4 kernel / 4, which is exactly equal (official conv2d_downscale2d).
    Blur is applied by the caller (after "up", before "down", as in the official code).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: int,
        gain: float = LRELU_GAIN,
        resample: Literal["none", "up", "down"] = "none",
        fused: bool = False,  # fuse the resampling into the conv (official fused_scale)
        bias: bool = True,  # False where the caller adds the bias later (G's layer epilogue)
    ):
        super().__init__()
        if kernel < 1 or kernel % 2 != 1:
            raise ValueError(f"kernel must be odd and >= 1, got {kernel}")
        self.resample, self.fused, self.kernel = resample, fused and resample != "none", kernel
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel * kernel)

    def init_from(self, gen: torch.Generator) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.randn(self.weight.shape, generator=gen))
            if self.bias is not None:
                self.bias.zero_()

    def effective_weight(self) -> torch.Tensor:
        return self.weight * self.weight_gain  # [out, in, k, k]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.effective_weight()
        pad = self.kernel // 2
        if self.resample == "up" and self.kernel == 3:
            # The official transposed conv correlates with the flipped kernel.
            x = upscale_conv3x3(x, w.flip(2, 3) if self.fused else w)
        elif self.resample == "down" or self.fused:
            # Conv then 2x2 box downscale is exactly a stride-2 conv with the 4x4 kernel / 4 (the
            # official fused op): 16 instead of 36 multiply-adds per output pixel, whichever
            # variant the config names, so both compute it this way.
            w = box_summed_kernel(w)
            if self.resample == "up":  # [out, in, k+1, k+1] -> transposed-conv layout [in, out]
                x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2, padding=pad)
            else:
                x = F.conv2d(x, w * 0.25, stride=2, padding=pad)
        elif self.kernel == 1 and self.resample == "none":
            # toRGB / fromRGB: one matrix product per image. The conv kernels' blocking follows
            # the batch size, which made images depend (by rounding) on their batch companions.
            n, c, h, w_ = x.shape
            if is_channels_last(x):  # per image [H, W, C] @ [C, O], back to NCHW storage
                wt = w.reshape(w.shape[0], c).t()
                return torch.stack([torch.matmul(xi.permute(1, 2, 0), wt) for xi in x]).permute(0, 3, 1, 2).contiguous()
            x = torch.matmul(w.reshape(w.shape[0], c), x.reshape(n, c, h * w_)).reshape(n, -1, h, w_)
        else:
            if self.resample == "up":
                x = upscale2d(x)
            x = F.conv2d(x, w, padding=pad)
        if self.bias is not None:
            x = x + self.bias.reshape(1, -1, 1, 1)
        return x


class Bias(nn.Module):
    """Learned per-channel bias (init 0), for [N, C] or [N, C, H, W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        b = self.bias.reshape(1, -1, *([1] * (x.ndim - 2)))
        return x.add_(b) if inplace else x + b  # in place: add's backward needs neither operand


class NoiseInput(nn.Module):
    """Adds a single-channel noise image scaled by a learned per-channel strength B (init 0):
    x + noise * B. x: [N, C, H, W], noise: [N or 1, 1, H, W]."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, noise: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        strength = self.weight.reshape(1, -1, 1, 1)
        if inplace:  # one fused pass, no full-size temporary; autograd keeps noise and strength
            return x.addcmul_(noise, strength)
        return x + noise * strength


class StyleMod(nn.Module):
    """AdaIN modulation: a learned affine A maps w to (y_s, y_b) per channel and returns
    y_s * x + y_b. y_s's bias starts at 1 so the layer starts as the identity on x."""

    def __init__(self, w_dim: int, channels: int):
        super().__init__()
        self.channels = channels
        bias_init = torch.cat([torch.ones(channels), torch.zeros(channels)])
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0, bias_init=bias_init)

    def styles(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_s, y_b), each [N, C], from w [N, w_dim]."""
        style = self.affine(w)  # [N, 2C]
        return style[:, : self.channels], style[:, self.channels :]

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y_s, y_b = self.styles(w)
        return x * y_s[:, :, None, None] + y_b[:, :, None, None]


def init_parameters(module: nn.Module, seed: int) -> None:
    """Fill every equalised layer's parameters of `module` from one generator seeded by `seed`
    (in module order), so initialisation never touches the global RNG."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if hasattr(m, "init_from"):
            m.init_from(gen)
