"""StyleSpace S of the original StyleGAN: the per-channel style scales the affine layers A produce.

Wu, Lischinski and Shechtman (CVPR 2021, "StyleSpace Analysis") define S as the outputs of the
affine layers A(w) of every synthesis layer, concatenated. In StyleGAN1 each layer's affine maps
w to 2C numbers, the AdaIN scale y_s and bias y_b (official `style_mod` in NVlabs/stylegan
training/networks_stylegan.py: x * (y_s + 1) + y_b, where our y_s already includes the +1 as its
bias initialisation). Here S is the concatenation over layers 0 .. num_layers-1 of the SCALES
y_s = A_i(w_i)[:, :C_i] only: the scale is the channel's multiplicative control, the quantity the
StyleSpace paper manipulates; the biases are an additive shift of the same channels and would
double the size without a new axis of control.

Exactly which tensor: for layer i, `StyleMod.affine(ws[:, i])[:, :channels]` (float, the
equalised-lr linear layer with its bias), in layer order 4x4 (input, conv), 8x8 (up-conv, conv),
..., R x R. Its size is 2 * sum over resolutions 4..R of nf(stage) channels:

    preset (size)          layers   dims of S
    C, D, E, F at 1024 px    18       5088   (512 x 8 layers at 4-32 px, then 256, 256, 128, 128,
                                              64, 64, 32, 32, 16, 16)
    F-256                    14       4992
    F-cpu32                   8        176   (32, 32, 32, 32, 16, 16, 8, 8)
    F-test16                  6         80

(The StyleSpace paper's 9088 for StyleGAN2 at 1024 px also counts the toRGB styles, which
StyleGAN1 does not have.) Traditional generators (use_styles=False: presets A, B, trad-*) have no
affine layers and therefore no StyleSpace.

The styles are computed from ws by reading the synthesis network's style modules as attributes
(`input_epi`, `conv4_epi`, `blocks[k].epi0/epi1`); the synthesis forward is not changed or hooked.
"""

import torch
from torch import nn

from stylegan_core.errors import ConfigError


def style_modules(synthesis: nn.Module) -> list[nn.Module]:
    """The StyleMod of every synthesis layer, in layer order (layer i reads ws[:, i])."""
    if not getattr(getattr(synthesis, "config", None), "use_styles", False):
        raise ConfigError(
            "this generator has no style modulation (a traditional generator: presets A, B, trad-*), "
            "so it has no StyleSpace; measure its z or w space instead"
        )
    epilogues = [synthesis.input_epi, synthesis.conv4_epi]
    for block in synthesis.blocks:
        epilogues += [block.epi0, block.epi1]
    mods = [epi.style for epi in epilogues]
    if len(mods) != synthesis.num_layers:
        raise RuntimeError(f"found {len(mods)} style modules for {synthesis.num_layers} synthesis layers")
    return mods


def stylespace_channels(synthesis: nn.Module) -> list[int]:
    """Channels C_i of each layer's style scale; sum(...) is the dimension of S."""
    return [m.channels for m in style_modules(synthesis)]


def stylespace_dim(synthesis: nn.Module) -> int:
    return sum(stylespace_channels(synthesis))


def style_scales(synthesis: nn.Module, ws: torch.Tensor) -> torch.Tensor:
    """S for ws [N, num_ws, w_dim] (or w [N, w_dim], the same w at every layer): the concatenated
    style scales y_s of every layer, [N, stylespace_dim]."""
    mods = style_modules(synthesis)
    if ws.ndim == 2:
        ws = ws[:, None].expand(-1, len(mods), -1)
    if ws.ndim != 3 or ws.shape[1] != len(mods):
        raise ValueError(f"ws must be [N, {len(mods)}, w_dim] or [N, w_dim], got {list(ws.shape)}")
    return torch.cat([m.affine(ws[:, i])[:, : m.channels] for i, m in enumerate(mods)], dim=1)
