"""Tests for stylegan_core.mapping: z normalisation, depth 0..8, lr multiplier, w_avg tracking,
truncation formula and cutoff, config validation and JSON round trip."""

import json
import math

import pytest
import torch

from stylegan_core.errors import ConfigError
from stylegan_core.layers import init_parameters, pixel_norm
from stylegan_core.mapping import MappingConfig, MappingNetwork, truncate


def _net(num_layers=2, z_dim=8, w_dim=8, num_ws=4, **kw):
    cfg = MappingConfig(z_dim=z_dim, w_dim=w_dim, num_layers=num_layers, hidden_dim=12, **kw)
    net = MappingNetwork(cfg, num_ws=num_ws)
    init_parameters(net, 0)
    return net


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_shapes_and_broadcast(depth):
    net = _net(num_layers=depth, z_dim=6, w_dim=8)
    assert len(net.layers) == depth
    ws = net(torch.randn(5, 6))
    assert ws.shape == (5, 4, 8)
    assert torch.equal(ws[:, 0], ws[:, 3])


def test_depth_zero_is_normalised_z():
    net = _net(num_layers=0)
    z = torch.randn(3, 8) * 4
    assert torch.allclose(net(z), pixel_norm(z)[:, None].expand(3, 4, 8))
    assert sum(p.numel() for p in net.parameters()) == 0


def test_z_is_pixel_normalised_before_the_layers():
    net = _net(num_layers=2)
    z = torch.randn(3, 8)
    assert torch.allclose(net(z), net(z * 7.0), atol=1e-5)


def test_lr_multiplier_is_applied_to_weights_and_biases():
    net = _net(num_layers=1, z_dim=256, w_dim=256)
    layer = net.layers[0]
    assert layer.lr_mul == 0.01
    assert layer.weight.std().item() == pytest.approx(100.0, rel=0.02)  # N(0, 1/lr_mul^2)
    assert layer.weight_gain == pytest.approx(math.sqrt(2) / 16 * 0.01)
    with torch.no_grad():
        layer.bias.fill_(3.0)
    z = torch.randn(2, 256)
    expected = torch.nn.functional.leaky_relu(
        pixel_norm(z) @ (layer.weight * layer.weight_gain).T + 0.03, 0.2
    )
    assert torch.allclose(net(z)[:, 0], expected, atol=1e-5)


def test_wrong_z_size_is_a_clear_error():
    net = _net(z_dim=8)
    with pytest.raises(ValueError, match=r"expects z of shape \[N, 8\], got \[2, 7\]"):
        net(torch.randn(2, 7))
    with pytest.raises(ValueError, match="expects z of shape"):
        net(torch.randn(8))


def test_psi_one_is_the_identity():
    net = _net()
    net.w_avg.copy_(torch.randn(8))
    z = torch.randn(4, 8)
    assert torch.equal(net(z, truncation_psi=1.0, truncation_cutoff=2), net(z))


def test_truncation_formula_and_cutoff():
    ws = torch.randn(3, 5, 4)
    avg = torch.randn(4)
    out = truncate(ws, avg, psi=0.7, cutoff=2)
    assert torch.allclose(out[:, :2], avg + 0.7 * (ws[:, :2] - avg))
    assert torch.equal(out[:, 2:], ws[:, 2:])
    everything = truncate(ws, avg, psi=0.5, cutoff=None)
    assert torch.allclose(everything, avg + 0.5 * (ws - avg))
    assert torch.allclose(truncate(ws, avg, psi=0.0, cutoff=None), avg.expand(3, 5, 4))
    assert torch.equal(truncate(ws, avg, psi=0.3, cutoff=0), ws)
    with pytest.raises(ValueError, match="truncation_cutoff must be None or an integer >= 0"):
        truncate(ws, avg, psi=0.5, cutoff=-1)
    with pytest.raises(ValueError, match="truncation_psi must be a finite number"):
        truncate(ws, avg, psi=float("nan"), cutoff=None)


def test_mapping_forward_applies_truncation_towards_w_avg():
    net = _net()
    net.w_avg.copy_(torch.randn(8))
    z = torch.randn(2, 8)
    plain = net(z)
    trunc = net(z, truncation_psi=0.5, truncation_cutoff=3)
    assert torch.allclose(trunc[:, :3], net.w_avg + 0.5 * (plain[:, :3] - net.w_avg))
    assert torch.equal(trunc[:, 3], plain[:, 3])


def test_update_w_avg_moving_average():
    net = _net()
    assert torch.equal(net.w_avg, torch.zeros(8))
    ws = torch.randn(6, 4, 8)
    ws[:, 1:] = 100.0  # only layer 0 counts (before style mixing, as official)
    net.update_w_avg(ws)
    assert torch.allclose(net.w_avg, ws[:, 0].mean(0) * (1 - 0.995), atol=1e-6)
    prev = net.w_avg.clone()
    w = torch.randn(6, 8)
    net.update_w_avg(w)
    assert torch.allclose(net.w_avg, w.mean(0) + 0.995 * (prev - w.mean(0)), atol=1e-6)


def test_config_validation():
    with pytest.raises(ConfigError, match="num_layers must be in 0..8, got 9"):
        MappingConfig(num_layers=9)
    with pytest.raises(ConfigError, match=r"z_dim \(16\) must equal w_dim \(8\)"):
        MappingConfig(z_dim=16, w_dim=8, num_layers=0)
    with pytest.raises(ConfigError, match="lr_multiplier must be a positive number"):
        MappingConfig(lr_multiplier=0)
    with pytest.raises(ConfigError, match=r"w_avg_beta must be in \[0, 1\)"):
        MappingConfig(w_avg_beta=1.0)


def test_config_json_round_trip_and_unknown_keys():
    cfg = MappingConfig(z_dim=32, w_dim=32, num_layers=3, hidden_dim=16)
    assert MappingConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['num_layer'\]"):
        MappingConfig.from_dict({"num_layer": 3})
