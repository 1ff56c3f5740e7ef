"""Tests for stylegan_core.synthesis: shapes and num_ws, noise modes, traditional input,
progressive-growing (lod) semantics, config validation."""

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from stylegan_core.errors import ConfigError
from stylegan_core.layers import (
    NoiseInput,
    blur2d,
    init_parameters,
    instance_norm,
    is_channels_last,
    lerp,
    pixel_norm,
    upscale2d,
)
from stylegan_core.synthesis import SynthesisConfig, SynthesisNetwork

TINY = dict(w_dim=8, fmap_base=64, fmap_max=16)


def _net(resolution=16, seed=0, **kw):
    net = SynthesisNetwork(SynthesisConfig(resolution=resolution, **{**TINY, **kw}))
    init_parameters(net, seed)
    # Noise strengths start at 0 (no effect); make them matter so noise tests can fail.
    g = torch.Generator().manual_seed(seed + 1)
    for m in net.modules():
        if isinstance(m, NoiseInput):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
    return net


def _ws(net, n=2, seed=0):
    return torch.randn(n, net.num_ws, net.w_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("resolution,num_ws", [(4, 2), (8, 4), (16, 6), (32, 8)])
def test_shapes_and_num_ws(resolution, num_ws):
    net = _net(resolution)
    assert net.num_ws == num_ws == net.config.num_layers
    assert net.noise_shapes == [(2 ** (i // 2 + 2),) * 2 for i in range(num_ws)]
    img = net(_ws(net, 3), noise_mode="const")
    assert img.shape == (3, 3, resolution, resolution)


def test_num_ws_at_1024_and_channel_counts():
    cfg = SynthesisConfig(resolution=1024)
    assert cfg.num_ws == 18 and cfg.num_layers == 18
    assert [cfg.channels(s) for s in range(1, 10)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]


def test_traditional_network_reads_ws0_only():
    net = _net(16, const_input=False, use_styles=False, use_noise=False,
               use_pixel_norm=True, use_instance_norm=False)
    assert net.num_ws == 1 and net.noise_shapes == [] and net.const is None
    ws = _ws(net, 2)
    img = net(ws, noise_mode="random")
    assert torch.equal(img, net(ws, noise_mode="none"))  # no noise inputs at all
    assert not torch.allclose(img, net(_ws(net, 2, seed=1)))
    assert not any(isinstance(m, NoiseInput) for m in net.modules())
    # The input layer is a dense layer with gain sqrt(2)/4 (official Progressive GAN tweak).
    assert net.input_dense.weight_gain == pytest.approx(2**0.5 / 4 / 8**0.5)


def test_const_noise_is_deterministic_and_random_noise_is_not():
    net = _net()
    ws = _ws(net)
    a, b = net(ws, noise_mode="const"), net(ws, noise_mode="const")
    assert torch.equal(a, b)
    r1, r2 = net(ws, noise_mode="random"), net(ws, noise_mode="random")
    assert not torch.allclose(r1, r2)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(net(ws, generator=g1), net(ws, generator=g2))
    assert not torch.allclose(net(ws, noise_mode="none"), a)


def test_given_noise_reproduces_exactly_and_is_per_sample():
    net = _net()
    ws = _ws(net, 2)
    stored = [getattr(net, f"noise_{i}") for i in range(net.num_layers)]
    assert torch.equal(net(ws, noise_mode="given", noise=stored), net(ws, noise_mode="const"))
    noise = [torch.randn(2, 1, h, w) for h, w in net.noise_shapes]
    both = net(ws, noise_mode="given", noise=noise)
    assert torch.equal(both, net(ws, noise_mode="given", noise=[n.clone() for n in noise]))
    one = net(ws[1:], noise_mode="given", noise=[n[1:] for n in noise])
    assert torch.allclose(both[1:], one, atol=1e-5)  # sample 1 does not depend on sample 0
    zero = net(ws, noise_mode="given", noise=[torch.zeros(1, 1, h, w) for h, w in net.noise_shapes])
    assert torch.allclose(zero, net(ws, noise_mode="none"))


def test_noise_argument_errors():
    net = _net()
    ws = _ws(net, 2)
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        net(ws, noise_mode="fixed")
    with pytest.raises(ValueError, match="needs a list of 6 tensors"):
        net(ws, noise_mode="given")
    with pytest.raises(ValueError, match=r"noise\[2\] must have shape \[2, 1, 8, 8\]"):
        bad = [torch.zeros(2, 1, h, w) for h, w in net.noise_shapes]
        bad[2] = torch.zeros(2, 1, 4, 4)
        net(ws, noise_mode="given", noise=bad)
    with pytest.raises(ValueError, match="use noise_mode='given'"):
        net(ws, noise_mode="const", noise=[])


def test_ws_shape_is_checked_at_entry():
    net = _net()
    with pytest.raises(ValueError, match=r"expects ws of shape \[N, 6, 8\], got \[2, 5, 8\]"):
        net(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="expects ws of shape"):
        net(torch.randn(2, 8))


def _grown_and_smaller():
    """A 16x16 network and an 8x8 network holding the same weights for 4x4 and 8x8."""
    big, small = _net(16), _net(8, seed=99)
    small.load_state_dict({k: v for k, v in big.state_dict().items() if k in small.state_dict()})
    return big, small


def test_lod_integer_equals_the_smaller_network_upscaled():
    big, small = _grown_and_smaller()
    ws = _ws(big, 2)
    full = big(ws, noise_mode="const")
    big.set_lod(1.0)  # alpha = 0 for the new 16x16 layers: the grown 8x8 network
    low = small(ws[:, :4], noise_mode="const")
    assert torch.allclose(big(ws, noise_mode="const"), upscale2d(low), atol=1e-6)
    big.set_lod(2.0)
    assert big(ws, noise_mode="const").shape == (2, 3, 16, 16)
    big.set_lod(0.0)  # alpha = 1: the fully grown network again
    assert torch.equal(big(ws, noise_mode="const"), full)


def test_lod_fraction_blends_linearly():
    big, small = _grown_and_smaller()
    ws = _ws(big, 2)
    full = big(ws, noise_mode="const")
    low = upscale2d(small(ws[:, :4], noise_mode="const"))
    big.set_lod(0.25)  # 75% new 16x16 output, 25% upscaled 8x8 output
    assert torch.allclose(big(ws, noise_mode="const"), lerp(full, low, 0.25), atol=1e-5)


def test_lod_setter_validates():
    net = _net(16)
    with pytest.raises(ValueError, match=r"lod must be in \[0, 2\]"):
        net.set_lod(2.5)
    with pytest.raises(ValueError, match=r"lod must be in \[0, 2\]"):
        net.set_lod(-0.1)


def test_blur_and_fused_flags():
    net = SynthesisNetwork(SynthesisConfig(resolution=128, w_dim=4, fmap_base=16, fmap_max=4))
    assert [b.conv0.fused for b in net.blocks] == [False, False, False, False, True]
    assert all(b.blur for b in net.blocks)
    net_a = SynthesisNetwork(SynthesisConfig(resolution=8, blur=False, fused_scale="always", **TINY))
    assert net_a.blocks[0].conv0.fused and not net_a.blocks[0].blur


def test_config_errors_and_round_trip():
    for bad in (48, 2, 2048):
        with pytest.raises(ConfigError, match="resolution must be a power of two between 4 and 1024"):
            SynthesisConfig(resolution=bad)
    with pytest.raises(ConfigError, match="fused_scale must be one of"):
        SynthesisConfig(fused_scale="yes")
    with pytest.raises(ConfigError, match="use_noise must be true or false"):
        SynthesisConfig(use_noise=1)
    cfg = SynthesisConfig(resolution=64, use_noise=False, fmap_base=128)
    assert SynthesisConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['use_blur'\]"):
        SynthesisConfig.from_dict({"use_blur": True})


def _plain_synthesis(net, ws, noise):
    """The synthesis network written out with the plain ops of its definition (every step a new
    tensor: upscale then conv, depthwise blur, instance norm then AdaIN), at lod 0."""

    def epilogue(epi, x, i):
        if epi.noise is not None:
            x = x + noise[i] * epi.noise.weight.reshape(1, -1, 1, 1)
        x = F.leaky_relu(x + epi.bias.bias.reshape(1, -1, 1, 1), 0.2)
        if net.config.use_pixel_norm:
            x = pixel_norm(x)
        if net.config.use_instance_norm:
            x = instance_norm(x)
        if epi.style is not None:
            style = F.linear(ws[:, i], epi.style.affine.effective_weight(), epi.style.affine.bias)
            y_s, y_b = style.chunk(2, dim=1)
            x = x * y_s[:, :, None, None] + y_b[:, :, None, None]
        return x

    n = ws.shape[0]
    if net.const is not None:
        x = net.const.expand(n, -1, -1, -1)
    else:
        x = F.linear(ws[:, 0], net.input_dense.effective_weight()).reshape(n, -1, 4, 4)
    x = epilogue(net.input_epi, x, 0)
    x = epilogue(net.conv4_epi, F.conv2d(x, net.conv4.effective_weight(), padding=1), 1)
    for j, block in enumerate(net.blocks):
        w0 = block.conv0.effective_weight()
        x = F.conv2d(upscale2d(x), w0.flip(2, 3) if block.conv0.fused else w0, padding=1)
        x = epilogue(block.epi0, blur2d(x) if block.blur else x, 2 * j + 2)
        x = epilogue(block.epi1, F.conv2d(x, block.conv1.effective_weight(), padding=1), 2 * j + 3)
    rgb = net.torgb[-1]
    return F.conv2d(x, rgb.effective_weight()) + rgb.bias.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("kw", [dict(fused_scale="never"), dict(fused_scale="always"),
                                dict(const_input=False, use_styles=False, use_noise=False,
                                     use_pixel_norm=True, use_instance_norm=False)],
                         ids=["F", "F-fused", "traditional"])
def test_fast_paths_equal_the_plain_definition(kw):
    """The allocation-lean forward (in-place epilogue without gradients, the tracked epilogue
    with them) equals the plain definition: outputs and every parameter's gradient."""
    net = _net(32, **kw)
    ws = _ws(net, 3)
    noise = [torch.randn(3, 1, h, w, generator=torch.Generator().manual_seed(i))
             for i, (h, w) in enumerate(net.noise_shapes)]
    ref = _plain_synthesis(net, ws, noise)
    with torch.no_grad():  # the plain definition in float64: the exact value to compare with
        exact = _plain_synthesis(copy.deepcopy(net).double(), ws.double(), [t.double() for t in noise])
    # Within 1e-6 of the output's scale, or (for the badly conditioned traditional network)
    # no further from the exact value than the plain float32 computation is.
    tol = max(1e-6 * exact.abs().max(), 2 * (ref.double() - exact).abs().max())
    with torch.no_grad():
        fast = net(ws, noise_mode="given", noise=noise)
    assert (fast.double() - exact).abs().max() <= tol
    tracked = net(ws, noise_mode="given", noise=noise)
    assert (tracked.double() - exact).abs().max() <= tol
    g = torch.randn(ref.shape, generator=torch.Generator().manual_seed(7))
    params = [p for p in net.parameters()]
    ref_grads = torch.autograd.grad((ref * g).sum(), params, allow_unused=True)
    grads = torch.autograd.grad((tracked * g).sum(), params, allow_unused=True)
    for (name, _), a, b in zip(net.named_parameters(), grads, ref_grads):
        assert (a is None) == (b is None), name
        if a is not None:
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max()), name
    # The constant input is read, never written.
    if net.const is not None:
        assert torch.equal(net.const, torch.ones_like(net.const))


@pytest.mark.parametrize("lod", [0.0, 0.5, 1.0])
def test_inference_runs_channels_last_from_64px_with_the_same_images(lod):
    net = _net(128, fmap_base=512)  # 8 channels at 128 px (with one, both layouts coincide)
    net.set_lod(lod)
    ws = _ws(net, 2)
    noise = [torch.randn(2, 1, h, w, generator=torch.Generator().manual_seed(i))
             for i, (h, w) in enumerate(net.noise_shapes)]
    layouts = {}

    def record(module, args, out):
        layouts[out.shape[-1]] = is_channels_last(out)

    for block in net.blocks:
        block.register_forward_hook(record)
    with torch.no_grad():
        fast = net(ws, noise_mode="given", noise=noise)
        if lod == 0:  # against the plain definition in float64
            exact = _plain_synthesis(copy.deepcopy(net).double(), ws.double(), [t.double() for t in noise])
            assert (fast.double() - exact).abs().max() <= 1e-6 * exact.abs().max()
    assert 64 in layouts and layouts == {r: r >= 64 for r in layouts}
    assert fast.is_contiguous()
    layouts.clear()
    tracked = net(ws, noise_mode="given", noise=noise)  # autograd: NCHW throughout
    assert not any(layouts.values())
    torch.testing.assert_close(fast, tracked.detach(), rtol=0, atol=1e-5 * tracked.abs().max().item())


def test_batch_size_does_not_change_images():
    net = _net(32)
    ws = _ws(net, 4)
    noise = [torch.randn(4, 1, h, w, generator=torch.Generator().manual_seed(i))
             for i, (h, w) in enumerate(net.noise_shapes)]
    with torch.no_grad():
        whole = net(ws, noise_mode="given", noise=noise)
        parts = torch.cat([net(ws[i:i + 1], noise_mode="given", noise=[t[i:i + 1] for t in noise])
                           for i in range(4)])
    assert torch.allclose(whole, parts, atol=1e-6 * whole.abs().max())


@pytest.mark.parametrize("lod", [0.0, 1.0, 0.5, 1.75])
def test_images_at_the_lods_resolution_are_the_full_ones_before_upscaling(lod):
    net = _net(16)
    net.set_lod(lod)
    ws = _ws(net, 2)
    full = net(ws, noise_mode="const")
    own = net(ws, noise_mode="const", full_resolution=False)
    k = 2 ** int(lod)
    assert own.shape == (2, 3, 16 // k, 16 // k)
    assert torch.equal(upscale2d(own, k), full)
