"""Tests for stylegan_core.presets: every paper configuration with the official train.py flags,
size variants that keep those flags, lookup errors, JSON-able configs, tiny presets that run."""

import dataclasses
import json

import pytest
import torch

from stylegan_core.discriminator import Discriminator, DiscriminatorConfig
from stylegan_core.errors import ConfigError
from stylegan_core.generator import Generator, GeneratorConfig
from stylegan_core.presets import PRESETS, get_preset

BASES = ["A", "B", "C", "D", "E", "F", "E-mix50", "trad-m0", "trad-m8",
         "style-m0", "style-m1", "style-m2", "style-m8"]
SUFFIXES = ["", "-cpu32", "-test16", "-256"]
SIZE_FIELDS = {"resolution", "fmap_base", "fmap_max", "z_dim", "w_dim", "hidden_dim"}


def test_all_names_exist():
    expected = {b + s for b in BASES for s in SUFFIXES}
    assert set(PRESETS) == expected
    for name in expected:
        assert get_preset(name).name == name


def test_unknown_name_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown preset 'G'; valid presets: A, B, C.*F-cpu32"):
        get_preset("G")


@pytest.mark.parametrize("suffix,res", [("", 1024), ("-256", 256), ("-cpu32", 32), ("-test16", 16)])
def test_resolutions(suffix, res):
    for b in BASES:
        p = get_preset(b + suffix)
        assert p.generator.synthesis.resolution == p.discriminator.resolution == res


def _flags(p):
    """Everything but the size fields, so size variants can be compared to the paper config."""
    def strip(d):
        return {k: (strip(v) if isinstance(v, dict) else v) for k, v in d.items() if k not in SIZE_FIELDS}
    return strip(p.generator.to_dict()), strip(p.discriminator.to_dict()), p.loss, p.paper


@pytest.mark.parametrize("base", BASES)
def test_size_variants_keep_every_flag_and_the_mapping_depth(base):
    ref = _flags(get_preset(base))
    for suffix in SUFFIXES[1:]:
        assert _flags(get_preset(base + suffix)) == ref


def test_traditional_flags_as_official_train_py():
    for name in ("B", "trad-m0", "trad-m8", "A"):
        g = get_preset(name).generator
        s = g.synthesis
        assert (s.use_styles, s.use_pixel_norm, s.use_instance_norm, s.const_input, s.use_noise) == (
            False, True, False, False, False)
        assert g.style_mixing_prob == 0.0
    assert get_preset("trad-m0").generator == get_preset("B").generator
    assert get_preset("trad-m8").generator.mapping.num_layers == 8
    assert get_preset("B").generator.mapping.num_layers == 0


def test_config_a_is_progressive_gan():
    p = get_preset("A")
    s, d = p.generator.synthesis, p.discriminator
    assert (s.blur, s.fused_scale, d.blur, d.fused_scale) == (False, "always", False, "always")
    assert p.loss == "wgan-gp"
    assert all(get_preset(b).loss == "logistic-r1" for b in BASES if b != "A")
    b = get_preset("B")
    assert (b.generator.synthesis.blur, b.generator.synthesis.fused_scale, b.discriminator.blur) == (
        True, "auto", True)


def test_table1_progression_c_to_f():
    c, d, e, f = (get_preset(n).generator for n in "CDEF")
    assert c.mapping.num_layers == 8 and c.synthesis.use_styles and not c.synthesis.const_input
    assert not c.synthesis.use_noise and c.style_mixing_prob == 0
    assert d.synthesis.const_input and not d.synthesis.use_noise and d.style_mixing_prob == 0
    assert e.synthesis.use_noise and e.style_mixing_prob == 0
    assert f.style_mixing_prob == 0.9 and f.mapping.lr_multiplier == 0.01
    assert dataclasses.replace(e, style_mixing_prob=0.9) == f
    assert get_preset("E-mix50").generator.style_mixing_prob == 0.5
    assert get_preset("style-m8").generator == f


@pytest.mark.parametrize("depth", [0, 1, 2, 8])
def test_style_based_mapping_depths(depth):
    g = get_preset(f"style-m{depth}").generator
    f = get_preset("F").generator
    assert g.mapping.num_layers == depth
    assert g.synthesis == f.synthesis and g.style_mixing_prob == f.style_mixing_prob


def test_paper_references():
    assert get_preset("F-cpu32").paper.key == "F"
    assert get_preset("trad-m8").paper.key == "trad-m8"
    assert "Table 4" in get_preset("style-m2").paper.rows


def test_configs_are_json_round_trippable():
    for p in PRESETS.values():
        d = json.loads(json.dumps(p.to_dict()))
        assert GeneratorConfig.from_dict(d["generator"]) == p.generator
        assert DiscriminatorConfig.from_dict(d["discriminator"]) == p.discriminator


def test_tiny_presets_run():
    for b in BASES:
        p = get_preset(b + "-test16")
        G, D = Generator(p.generator), Discriminator(p.discriminator)
        with torch.no_grad():
            img = G(torch.randn(4, G.z_dim), noise_mode="const")
            assert img.shape == (4, 3, 16, 16)
            assert D(img).shape == (4, 1)
        assert sum(x.numel() for x in G.parameters()) < 20_000


def test_cpu32_is_small():
    p = get_preset("F-cpu32")
    G = Generator(p.generator)
    assert G.z_dim == 128 and G.num_ws == 8
    assert sum(x.numel() for x in G.parameters()) < 400_000
    assert G(torch.randn(2, 128)).shape == (2, 3, 32, 32)
