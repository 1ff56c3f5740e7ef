"""Tests for stylegan_core.layers: equalised learning rate, resampling, normalisations, noise,
style modulation and minibatch stddev, against closed forms of the official ops."""

import math

import pytest
import torch
import torch.nn.functional as F

from stylegan_core.errors import ConfigError
from stylegan_core.layers import (
    EqualizedConv2d,
    EqualizedLinear,
    NoiseInput,
    StyleMod,
    blur2d,
    blur2d_,
    check_resolution,
    downscale2d,
    init_parameters,
    instance_norm,
    is_channels_last,
    instance_norm_modulate,
    minibatch_stddev,
    nf,
    pixel_norm,
    upscale2d,
    upscale_conv3x3,
    use_fused,
)


def _init(module, seed=0):
    init_parameters(module, seed)
    return module


@pytest.mark.parametrize("lr_mul", [1.0, 0.01])
def test_equalized_linear_runtime_scaling(lr_mul):
    layer = _init(EqualizedLinear(256, 300, gain=math.sqrt(2), lr_mul=lr_mul, bias_init=0.5))
    # Stored weights have std 1/lr_mul (official init_std), so the effective std is He's.
    assert layer.weight.std().item() == pytest.approx(1.0 / lr_mul, rel=0.02)
    expected = layer.weight * (math.sqrt(2) / math.sqrt(256) * lr_mul)
    assert torch.equal(layer.effective_weight(), expected)
    assert layer.effective_weight().std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    # Effective bias = stored * lr_mul = bias_init.
    assert torch.allclose(layer.bias * lr_mul, torch.full((300,), 0.5))
    x = torch.randn(4, 256)
    assert torch.allclose(layer(x), x @ expected.T + 0.5, atol=1e-5)


def test_equalized_conv_runtime_scaling():
    conv = _init(EqualizedConv2d(16, 8, 3, gain=1.0))
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.1)
    assert torch.allclose(conv.effective_weight(), conv.weight / math.sqrt(16 * 9))
    with torch.no_grad():
        conv.bias.fill_(0.25)
    x = torch.randn(2, 16, 5, 5)
    ref = F.conv2d(x, conv.weight / 12.0, padding=1) + 0.25
    assert torch.allclose(conv(x), ref, atol=1e-5)


def test_one_by_one_conv_is_a_per_image_matrix_product():
    conv = _init(EqualizedConv2d(6, 3, 1, gain=1.0))
    with torch.no_grad():
        conv.bias.uniform_()
    x = torch.randn(8, 6, 5, 5, generator=torch.Generator().manual_seed(4))
    ref = F.conv2d(x, conv.effective_weight()) + conv.bias.reshape(1, -1, 1, 1)
    out = conv(x)
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.equal(torch.cat([conv(x[:3]), conv(x[3:])]), out)  # independent of the batch


@pytest.mark.parametrize("fused", [True, False])
def test_downscale_conv_equals_conv_then_box_downscale(fused):
    # Both variants compute the stride-2 4x4 conv; the plain definition is conv then 2x2 mean.
    conv = _init(EqualizedConv2d(3, 5, 3, resample="down", fused=fused, bias=False))
    x = torch.randn(2, 3, 8, 8)
    ref = downscale2d(F.conv2d(x, conv.effective_weight(), padding=1))
    assert conv(x).shape == (2, 5, 4, 4)
    assert torch.allclose(conv(x), ref, atol=1e-5)


def test_fused_upscale_conv_is_transposed_conv_of_the_summed_kernel():
    # The official fused op (a stride-2 transposed conv of the 4x4 summed kernel) equals nearest
    # upscale followed by the spatially flipped 3x3 kernel.
    fused = _init(EqualizedConv2d(3, 5, 3, resample="up", fused=True, bias=False))
    x = torch.randn(2, 3, 6, 6)
    ref = F.conv2d(upscale2d(x), fused.effective_weight().flip(2, 3), padding=1)
    w4 = F.pad(fused.effective_weight(), (1, 1, 1, 1))
    w4 = w4[:, :, 1:, 1:] + w4[:, :, :-1, 1:] + w4[:, :, 1:, :-1] + w4[:, :, :-1, :-1]
    official = F.conv_transpose2d(x, w4.transpose(0, 1), stride=2, padding=1)
    assert fused(x).shape == (2, 5, 12, 12)
    assert torch.allclose(official, ref, atol=1e-5)
    assert torch.allclose(fused(x), official, atol=1e-5)
    plain = EqualizedConv2d(3, 5, 3, resample="up", fused=False, bias=False)
    plain.load_state_dict(fused.state_dict())
    assert torch.allclose(plain(x), F.conv2d(upscale2d(x), plain.effective_weight(), padding=1), atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7, 1), (1, 16, 8, 8, 8), (3, 4, 1, 1, 2)])
def test_upscale_conv3x3_equals_upscale_then_conv(shape):
    n, c_in, h, w, c_out = shape
    g = torch.Generator().manual_seed(3)
    x, weight = torch.randn(n, c_in, h, w, generator=g), torch.randn(c_out, c_in, 3, 3, generator=g)
    ref = F.conv2d(upscale2d(x), weight, padding=1)
    out = upscale_conv3x3(x, weight)
    assert out.shape == ref.shape and out.is_contiguous()
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    # Gradients flow through the phase kernels to x and the 3x3 weight.
    x.requires_grad_(True), weight.requires_grad_(True)
    gx, gw = torch.autograd.grad((upscale_conv3x3(x, weight) * ref).sum(), (x, weight))
    rx, rw = torch.autograd.grad((F.conv2d(upscale2d(x), weight, padding=1) * ref).sum(), (x, weight))
    assert torch.allclose(gx, rx, atol=1e-5 * rx.abs().max()) and torch.allclose(gw, rw, atol=1e-5 * rw.abs().max())


def test_channels_last_paths_equal_nchw():
    """upscale_conv3x3, the 1x1 conv and instance_norm_modulate on channels_last storage give
    the NCHW results (the 1x1 conv returns NCHW storage again)."""
    g = torch.Generator().manual_seed(9)
    x, weight = torch.randn(2, 6, 5, 7, generator=g), torch.randn(4, 6, 3, 3, generator=g)
    xc = x.contiguous(memory_format=torch.channels_last)
    assert is_channels_last(xc) and not is_channels_last(x)
    up = upscale_conv3x3(xc, weight)
    assert is_channels_last(up)
    torch.testing.assert_close(up, upscale_conv3x3(x, weight), rtol=1e-5, atol=1e-5)
    rgb = _init(EqualizedConv2d(6, 3, 1, gain=1.0))
    out = rgb(xc)
    assert out.is_contiguous()
    torch.testing.assert_close(out, rgb(x), rtol=1e-5, atol=1e-6)
    scale, shift = torch.randn(2, 6, generator=g), torch.randn(2, 6, generator=g)
    ref = instance_norm(x * 3 + 1) * scale[:, :, None, None] + shift[:, :, None, None]
    y = (xc * 3 + 1).contiguous(memory_format=torch.channels_last)
    assert instance_norm_modulate(y, scale, shift, inplace=True) is y
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_use_fused_auto_threshold_is_128():
    assert not use_fused("auto", 64) and use_fused("auto", 128) and use_fused("auto", 1024)
    assert use_fused("always", 8) and not use_fused("never", 1024)


def test_blur_is_normalised_binomial():
    x = torch.zeros(1, 2, 7, 7)
    x[0, :, 3, 3] = 1.0
    y = blur2d(x)
    f = torch.tensor([1.0, 2.0, 1.0])
    expected = (f[:, None] * f[None, :]) / 16
    assert torch.allclose(y[0, 0, 2:5, 2:5], expected)
    assert torch.allclose(y[0, 1], y[0, 0])
    assert y.sum().item() == pytest.approx(2.0)
    const = torch.full((1, 1, 6, 6), 3.0)
    assert torch.allclose(blur2d(const)[0, 0, 1:-1, 1:-1], torch.full((4, 4), 3.0))


@pytest.mark.parametrize("shape", [(1, 2, 7, 7), (2, 3, 1, 5), (1, 1, 4, 2)])
def test_blur_in_place_equals_depthwise_blur(shape):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    ref = blur2d(x)
    out = blur2d_(x)
    assert out is x
    assert torch.allclose(out, ref, atol=1e-6)


def test_upscale_and_downscale():
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    up = upscale2d(x)
    assert torch.equal(up[0, 0], torch.tensor([[0.0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]))
    assert torch.equal(downscale2d(up), x)
    assert torch.equal(upscale2d(x, 4), upscale2d(upscale2d(x)))
    assert downscale2d(torch.arange(16.0).reshape(1, 1, 4, 4))[0, 0, 0, 0].item() == 2.5


def test_pixel_norm_and_instance_norm():
    x = torch.randn(3, 8, 4, 4) * 5 + 2
    p = pixel_norm(x)
    assert torch.allclose(p.square().mean(dim=1), torch.ones(3, 4, 4), atol=1e-5)
    i = instance_norm(x)
    assert torch.allclose(i.mean(dim=(2, 3)), torch.zeros(3, 8), atol=1e-5)
    assert torch.allclose(i.square().mean(dim=(2, 3)), torch.ones(3, 8), atol=1e-4)


@pytest.mark.parametrize("styled", [True, False])
def test_instance_norm_modulate_equals_norm_then_style(styled):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 8, 5, 5, generator=g) * 3 + 1.5
    scale, shift = (torch.randn(3, 8, generator=g), torch.randn(3, 8, generator=g)) if styled else (None, None)
    ref = instance_norm(x)
    if styled:
        ref = ref * scale[:, :, None, None] + shift[:, :, None, None]
    out = instance_norm_modulate(x, scale, shift)
    assert torch.allclose(out, ref, atol=1e-5) and not torch.equal(x, out)
    y = x.clone()
    assert instance_norm_modulate(y, scale, shift, inplace=True) is y
    assert torch.allclose(y, ref, atol=1e-5)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_modulate_is_accurate_on_large_planes(layout):
    # A 1024x1024 plane: a single float32 accumulator over 1M squares drifts by ~2e-5.
    x = F.leaky_relu(torch.randn(1, 2, 1024, 1024, generator=torch.Generator().manual_seed(5)) + 0.3, 0.2)
    x = x.contiguous(memory_format=layout)
    exact = instance_norm(x.double())
    assert torch.allclose(instance_norm_modulate(x, None, None).double(), exact, rtol=0, atol=1e-6)


def test_noise_input_starts_as_identity_and_scales_per_channel():
    layer = NoiseInput(3)
    x, noise = torch.randn(2, 3, 4, 4), torch.randn(2, 1, 4, 4)
    assert torch.equal(layer(x, noise), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.0, 1.0, 2.0]))
    y = layer(x, noise)
    assert torch.allclose(y[:, 2], x[:, 2] + 2 * noise[:, 0])


def test_style_mod_scale_bias_starts_at_one():
    mod = _init(StyleMod(w_dim=6, channels=4))
    assert torch.equal(mod.affine.bias[:4], torch.ones(4))
    assert torch.equal(mod.affine.bias[4:], torch.zeros(4))
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(mod(x, torch.zeros(2, 6)), x)  # w = 0 -> y_s = 1, y_b = 0
    w = torch.randn(2, 6)
    style = mod.affine(w)
    assert torch.allclose(mod(x, w), x * style[:, :4, None, None] + style[:, 4:, None, None])


def test_minibatch_stddev_closed_form_and_strided_groups():
    x = torch.randn(8, 3, 2, 2)
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (8, 4, 2, 2)
    assert torch.equal(y[:, :3], x)
    # Groups are strided: sample i belongs to group i % (N / G) = i % 2.
    for m in range(2):
        members = x[m::2]  # [4, 3, 2, 2]
        std = torch.sqrt(members.var(dim=0, unbiased=False) + 1e-8).mean()
        assert torch.allclose(y[m::2, 3], std.expand(4, 2, 2), atol=1e-6)
    # A group size larger than the batch uses the whole batch.
    y3 = minibatch_stddev(x[:3], group_size=4)
    std = torch.sqrt(x[:3].var(dim=0, unbiased=False) + 1e-8).mean()
    assert torch.allclose(y3[:, 3], std.expand(3, 2, 2), atol=1e-6)


def test_minibatch_stddev_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="batch size 6 must be a multiple of the group size 4"):
        minibatch_stddev(torch.randn(6, 3, 2, 2), group_size=4)


def test_init_parameters_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = _init(EqualizedLinear(5, 5), seed=7), _init(EqualizedLinear(5, 5), seed=7)
    c = _init(EqualizedLinear(5, 5), seed=8)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert torch.equal(torch.random.get_rng_state(), before)


def test_nf_and_resolution_checks():
    assert [nf(s, 8192, 512) for s in (1, 4, 5, 9)] == [512, 512, 256, 16]
    assert check_resolution("X", 1024) == 10 and check_resolution("X", 4) == 2
    for bad in (3, 48, 2, 2048, 16.0, True):
        with pytest.raises(ConfigError, match="X.resolution must be a power of two between 4 and 1024"):
            check_resolution("X", bad)
