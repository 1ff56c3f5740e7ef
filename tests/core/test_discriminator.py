"""Tests for stylegan_core.discriminator: shapes, out_features, minibatch stddev on/off,
lod semantics mirroring the generator, fade of real images, config validation."""

import json

import pytest
import torch
import torch.nn.functional as F

from stylegan_core.discriminator import Discriminator, DiscriminatorConfig, fade_images_for_lod
from stylegan_core.errors import ConfigError
from stylegan_core.layers import downscale2d, lerp, minibatch_stddev, upscale2d
from stylegan_core.presets import get_preset

TINY = dict(fmap_base=64, fmap_max=16)


def _img(n=4, res=16, seed=0):
    return torch.randn(n, 3, res, res, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("resolution", [4, 8, 32])
def test_shapes(resolution):
    D = Discriminator(DiscriminatorConfig(resolution=resolution, **TINY))
    assert D(_img(4, resolution)).shape == (4, 1)
    assert len(D.fromrgb) == len(D.blocks) + 1


def test_out_features_and_shape_check():
    D = Discriminator(DiscriminatorConfig(resolution=16, out_features=5, mbstd_group_size=0, **TINY))
    assert D(_img(3)).shape == (3, 5)
    with pytest.raises(ValueError, match=r"expects images of shape \[N, 3, 16, 16\], got \[3, 3, 8, 8\]"):
        D(_img(3, 8))


def test_mbstd_disabled_makes_samples_independent():
    D = Discriminator(DiscriminatorConfig(resolution=16, mbstd_group_size=0, **TINY))
    x = _img(4)
    assert torch.allclose(D(x)[1:2], D(x[1:2]), atol=1e-5)
    D4 = Discriminator(DiscriminatorConfig(resolution=16, mbstd_group_size=4, **TINY))
    y = x.clone()
    y[3] = 0
    assert not torch.allclose(D4(x)[0], D4(y)[0])  # sample 0 sees the group's stddev
    with pytest.raises(ValueError, match="must be a multiple of the group size"):
        D4(_img(6))


def test_final_block_closed_form():
    D = Discriminator(DiscriminatorConfig(resolution=4, **TINY))
    x = _img(4, 4)
    h = F.leaky_relu(D.fromrgb[0](x), 0.2)
    h = F.leaky_relu(D.conv4(minibatch_stddev(h, 4, 1)), 0.2)
    h = F.leaky_relu(D.dense0(h.flatten(1)), 0.2)
    assert torch.allclose(D(x), D.dense1(h), atol=1e-6)
    assert D.conv4.weight.shape[1] == 16 + 1  # mbstd adds one feature map


def _grown_and_smaller():
    big = Discriminator(DiscriminatorConfig(resolution=16, **TINY))
    small = Discriminator(DiscriminatorConfig(resolution=8, **TINY), seed=5)
    # fromrgb / blocks are indexed from 4x4 upwards, so the smaller net's keys are a subset.
    small.load_state_dict({k: v for k, v in big.state_dict().items() if k in small.state_dict()})
    return big, small


def test_lod_integer_equals_the_smaller_network_on_downscaled_images():
    big, small = _grown_and_smaller()
    x = _img(4)
    full = big(x)
    big.set_lod(1.0)
    assert torch.allclose(big(x), small(downscale2d(x)), atol=1e-6)
    big.set_lod(0.0)
    assert torch.equal(big(x), full)


def test_lod_fraction_blends_features_linearly():
    big, small = _grown_and_smaller()
    x = _img(4)
    big.set_lod(0.25)
    new = big.blocks[1](F.leaky_relu(big.fromrgb[2](x), 0.2))  # 16x16 path, at 8x8 features
    old = F.leaky_relu(big.fromrgb[1](downscale2d(x)), 0.2)  # 8x8 fromRGB of the downscaled image
    h = big.blocks[0](lerp(new, old, 0.25))
    h = F.leaky_relu(big.conv4(minibatch_stddev(h, 4, 1)), 0.2)
    expected = big.dense1(F.leaky_relu(big.dense0(h.flatten(1)), 0.2))
    assert torch.allclose(big(x), expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"lod must be in \[0, 2\]"):
        big.set_lod(3)


def test_fade_images_for_lod():
    x = _img(2)
    assert torch.equal(fade_images_for_lod(x, 0.0), x)
    low = upscale2d(downscale2d(x))
    assert torch.allclose(fade_images_for_lod(x, 1.0), low)
    assert torch.allclose(fade_images_for_lod(x, 0.5), lerp(x, low, 0.5))
    assert torch.allclose(fade_images_for_lod(x, 2.0), upscale2d(downscale2d(x, 4), 4))


@pytest.mark.parametrize("lod", [0.0, 1.0, 1.5, 2.0])
def test_images_at_the_lods_resolution_score_as_their_upscale(lod):
    d = Discriminator(get_preset("F-test16").discriminator)
    d.set_lod(lod)
    k = 2 ** int(lod)
    assert d.lod_resolution() == 16 // k
    x = _img(4, res=16 // k)
    assert torch.allclose(d(x), d(upscale2d(x, k)), atol=1e-5)
    if k > 1:
        with pytest.raises(ValueError, match=rf"\[N, 3, 16, 16\] or \[N, 3, {16 // k}, {16 // k}\]"):
            d(_img(4, res=16 // (2 * k)))


def test_blur_and_fused_flags():
    a = Discriminator(get_preset("A-test16").discriminator)
    assert all(b.conv1.fused and not b.blur for b in a.blocks)
    d = Discriminator(DiscriminatorConfig(resolution=128, fmap_base=16, fmap_max=4))
    assert [b.conv1.fused for b in d.blocks] == [False, False, False, False, True]
    assert all(b.blur for b in d.blocks)


def test_config_errors_and_round_trip():
    for bad in (12, 2048, 1):
        with pytest.raises(ConfigError, match="resolution must be a power of two between 4 and 1024"):
            DiscriminatorConfig(resolution=bad)
    with pytest.raises(ConfigError, match="out_features must be >= 1"):
        DiscriminatorConfig(out_features=0)
    with pytest.raises(ConfigError, match="mbstd_group_size must be >= 0"):
        DiscriminatorConfig(mbstd_group_size=-1)
    cfg = DiscriminatorConfig(resolution=256, out_features=40, mbstd_group_size=0)
    assert DiscriminatorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['mbstd'\]"):
        DiscriminatorConfig.from_dict({"mbstd": 0})


def test_parameter_count_1024():
    D = Discriminator(get_preset("F").discriminator)
    n = sum(p.numel() for p in D.parameters())
    print(f"\nparameters: D 1024 = {n:,}")
    assert n == 23_087_249  # regression guard: D_basic structure at 1024, fromRGB per resolution
