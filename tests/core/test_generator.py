"""Tests for stylegan_core.generator: the interface of DESIGN.md, seeding, style mixing at
inference and training time, configs, parameter counts against the paper and official code."""

import json

import pytest
import torch

from stylegan_core.errors import ConfigError
from stylegan_core.generator import Generator, GeneratorConfig, mixing_regularization, style_mix
from stylegan_core.layers import NoiseInput
from stylegan_core.mapping import MappingConfig
from stylegan_core.presets import get_preset
from stylegan_core.synthesis import SynthesisConfig


def _z(G, n=2, seed=0):
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


def test_interface_attributes(G):
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (16, 16, 6, 16, 3)
    assert G.w_avg.shape == (16,) and "mapping.w_avg" in dict(G.named_buffers())
    ws = G.mapping(_z(G, 3))
    assert ws.shape == (3, 6, 16)
    assert G.synthesis(ws, noise_mode="const").shape == (3, 3, 16, 16)
    assert G(_z(G, 3)).shape == (3, 3, 16, 16)


def test_forward_is_mapping_then_synthesis(G):
    z = _z(G, 2)
    G.w_avg.copy_(torch.randn(16))
    try:
        ws = G.mapping(z, truncation_psi=0.7, truncation_cutoff=4)
        expected = G.synthesis(ws, noise_mode="const")
        got = G(z, truncation_psi=0.7, truncation_cutoff=4, noise_mode="const")
        assert torch.equal(got, expected)
        assert not torch.allclose(got, G(z, noise_mode="const"))
    finally:
        G.w_avg.zero_()


def test_traditional_generator_interface():
    T = Generator(get_preset("B-test16").generator)
    assert T.num_ws == 1 and len(T.mapping.layers) == 0
    img = T(_z(T, 2), noise_mode="const")
    assert img.shape == (2, 3, 16, 16) and torch.isfinite(img).all()


def test_wrong_z_size_is_a_clear_error(G):
    with pytest.raises(ValueError, match=r"expects z of shape \[N, 16\], got \[2, 15\]"):
        G(torch.randn(2, 15))


def test_seed_determines_initialisation():
    cfg = get_preset("F-test16").generator
    a, b, c = Generator(cfg, seed=3), Generator(cfg, seed=3), Generator(cfg, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["synthesis.blocks.0.conv0.weight"], sc["synthesis.blocks.0.conv0.weight"])
    assert not torch.equal(sa["synthesis.noise_3"], sc["synthesis.noise_3"])


def test_output_range_sanity():
    for name in ("F-test16", "B-test16", "A-test16"):
        G = Generator(get_preset(name).generator)
        img = G(_z(G, 8), noise_mode="const")
        assert torch.isfinite(img).all()
        assert 0.05 < img.std().item() < 5.0, name  # unit-scale images, as official at init


def test_style_mix_takes_layers_from_second_ws():
    a, b = torch.zeros(2, 6, 4), torch.ones(2, 6, 4)
    m = style_mix(a, b, 2, 4)
    assert torch.equal(m[:, 2:4], b[:, 2:4]) and torch.equal(m[:, :2], a[:, :2])
    assert torch.equal(m[:, 4:], a[:, 4:])
    with pytest.raises(ValueError, match=r"need 0 <= start <= stop <= num_ws \(6\)"):
        style_mix(a, b, 4, 7)


def test_style_mixing_crossover_early_layers_depend_only_on_first_w(G):
    for m in G.modules():  # make noise matter but keep it fixed
        if isinstance(m, NoiseInput):
            m.weight.data.fill_(0.3)
    captured = []
    hook = G.synthesis.blocks[0].epi1.register_forward_hook(lambda m, i, o: captured.append(o))
    try:
        ws1 = G.mapping(_z(G, 2, seed=1))
        ws2, ws3 = G.mapping(_z(G, 2, seed=2)), G.mapping(_z(G, 2, seed=3))
        crossover = 4  # layers 0..3 (4x4 and 8x8) from ws1, the rest from ws2 / ws3
        img2 = G.synthesis(style_mix(ws1, ws2, crossover, G.num_ws), noise_mode="const")
        img3 = G.synthesis(style_mix(ws1, ws3, crossover, G.num_ws), noise_mode="const")
        assert torch.equal(captured[0], captured[1])  # 8x8 features: ws1 only
        assert not torch.allclose(img2, img3)  # later layers do use the second w
    finally:
        hook.remove()
        for m in G.modules():
            if isinstance(m, NoiseInput):
                m.weight.data.zero_()


def test_mixing_regularization_official_crossover():
    ws1, ws2 = torch.zeros(3, 6, 2), torch.ones(3, 6, 2)
    seen = set()
    for seed in range(60):
        g = torch.Generator().manual_seed(seed)
        out = mixing_regularization(ws1, ws2, prob=1.0, num_active_ws=4, generator=g)
        layer_src = out[0, :, 0]
        c = int((layer_src == 0).sum())
        assert torch.equal(layer_src, (torch.arange(6) >= c).float())  # one switch, ws1 first
        assert torch.equal(out[0], out[2])  # one crossover per minibatch
        seen.add(c)
    assert seen == {1, 2, 3}  # crossover uniform in [1, num_active_ws)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(mixing_regularization(ws1, ws2, 0.5, 6, g1), mixing_regularization(ws1, ws2, 0.5, 6, g2))
    assert mixing_regularization(ws1, ws2, 0.0, 6, g1) is ws1
    assert mixing_regularization(ws1, ws2, 1.0, 1, g1) is ws1


def test_mixing_probability_is_respected():
    ws1, ws2 = torch.zeros(1, 6, 1), torch.ones(1, 6, 1)
    g = torch.Generator().manual_seed(0)
    mixed = sum(bool(mixing_regularization(ws1, ws2, 0.5, 6, g).any()) for _ in range(400))
    assert 160 < mixed < 240


def test_num_active_ws_follows_lod():
    G = Generator(get_preset("F-test16").generator)
    assert G.num_active_ws() == 6
    G.synthesis.set_lod(1.5)
    assert G.num_active_ws() == 4  # official: num_layers - 2 * int(lod)
    assert Generator(get_preset("B-test16").generator).num_active_ws() == 1


def test_training_ws_updates_w_avg_and_mixes():
    G = Generator(get_preset("F-test16").generator)
    z = _z(G, 4)
    ws = G.training_ws(z, torch.Generator().manual_seed(0))
    assert ws.shape == (4, 6, 16)
    plain = G.mapping(z)
    assert torch.allclose(G.w_avg, plain[:, 0].mean(0) * 0.005, atol=1e-6)
    assert torch.equal(ws[:, 0], plain[:, 0])  # crossover >= 1: layer 0 always from z


def test_config_round_trip_and_validation():
    cfg = get_preset("E-mix50-cpu32").generator
    assert GeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mixing'\]"):
        GeneratorConfig.from_dict({"mixing": 0.5})
    with pytest.raises(ConfigError, match=r"MappingConfig: unknown key\(s\) \['depth'\]"):
        GeneratorConfig.from_dict({"mapping": {"depth": 2}})
    with pytest.raises(ConfigError, match=r"mapping.w_dim \(512\) must equal synthesis.w_dim \(8\)"):
        GeneratorConfig(synthesis=SynthesisConfig(w_dim=8))
    with pytest.raises(ConfigError, match="style mixing needs use_styles=True"):
        GeneratorConfig(synthesis=SynthesisConfig(use_styles=False), style_mixing_prob=0.9)
    with pytest.raises(ConfigError, match=r"style_mixing_prob must be in \[0, 1\]"):
        GeneratorConfig(style_mixing_prob=1.5)
    with pytest.raises(ConfigError, match="resolution must be a power of two"):
        GeneratorConfig(synthesis=SynthesisConfig(resolution=100))
    assert GeneratorConfig(mapping=MappingConfig(num_layers=0)).mapping.num_layers == 0


def _count(G):
    return sum(p.numel() for p in G.parameters() if p.requires_grad)


def test_parameter_counts_match_paper():
    f = _count(Generator(get_preset("F").generator))
    trad = _count(Generator(get_preset("trad-m0").generator))
    print(f"\nparameters: F 1024 = {f:,}, traditional (B / trad-m0) 1024 = {trad:,}")
    assert f == 26_219_627  # the official G_style's trainable parameter count
    assert abs(f - 26.2e6) / 26.2e6 < 0.01
    assert abs(trad - 23.1e6) / 23.1e6 < 0.01
    assert _count(Generator(get_preset("B").generator)) == trad
