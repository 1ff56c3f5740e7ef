"""StyleSpace S: the concatenated AdaIN style scales, exactly the tensors synthesis multiplies by."""

import pytest
import torch

from stylegan_core.errors import ConfigError
from stylegan_core.generator import Generator
from stylegan_core.layers import StyleMod
from stylegan_core.presets import get_preset
from stylegan_core.stylespace import style_modules, style_scales, stylespace_channels, stylespace_dim
from stylegan_core.synthesis import SynthesisNetwork


@pytest.mark.parametrize(
    "preset, dims, layers",
    [("F", 5088, 18), ("E", 5088, 18), ("F-256", 4992, 14), ("F-cpu32", 176, 8), ("F-test16", 80, 6)],
)
def test_documented_sizes(preset, dims, layers):
    syn = SynthesisNetwork(get_preset(preset).generator.synthesis)
    assert stylespace_dim(syn) == dims and len(stylespace_channels(syn)) == layers


def test_scales_are_what_the_synthesis_forward_multiplies_by():
    G = Generator(get_preset("F-test16").generator, seed=3)
    seen = []  # the y_s half of each affine output, in call order, as the forward computes it
    hooks = [
        m.affine.register_forward_hook(lambda mod, inp, out, c=m.channels: seen.append(out[:, :c].detach()))
        for m in G.synthesis.modules()
        if isinstance(m, StyleMod)
    ]
    ws = torch.randn(5, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0))  # a different w per layer
    with torch.no_grad():
        G.synthesis(ws, noise_mode="none")
        for h in hooks:
            h.remove()
        s = style_scales(G.synthesis, ws)
    assert len(seen) == G.num_ws and s.shape == (5, 80)
    torch.testing.assert_close(s, torch.cat(seen, dim=1), rtol=0, atol=0)


def test_layer_order_and_single_w():
    G = Generator(get_preset("F-test16").generator, seed=1)
    w = torch.randn(3, G.w_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        s = style_scales(G.synthesis, w)
        assert torch.equal(s, style_scales(G.synthesis, w[:, None].repeat(1, G.num_ws, 1)))
        # layer 0 is the 4x4 input layer's style, the last block is the 16x16 conv layer's
        first = G.synthesis.input_epi.style.affine(w)[:, :16]
        last = G.synthesis.blocks[-1].epi1.style.affine(w)[:, :8]
    assert style_modules(G.synthesis)[0] is G.synthesis.input_epi.style
    torch.testing.assert_close(s[:, :16], first, rtol=0, atol=0)
    torch.testing.assert_close(s[:, -8:], last, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"ws must be \[N, 6, w_dim\]"):
        style_scales(G.synthesis, torch.zeros(2, 3, 16))


def test_traditional_generator_has_no_stylespace():
    syn = SynthesisNetwork(get_preset("B-test16").generator.synthesis)
    with pytest.raises(ConfigError, match="no style modulation .* measure its z or w space instead"):
        stylespace_dim(syn)
