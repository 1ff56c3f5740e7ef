import math

import pytest
import torch
from torch import nn

from stylegan_core.loss import (
    DiscriminatorLoss,
    generator_loss,
    gradient_penalty,
    logistic_d_loss,
    logistic_g_loss,
    r1_penalty,
    wgan_d_loss,
    wgan_g_loss,
)


def softplus(v: float) -> float:
    return math.log1p(math.exp(v))


class LinearD(nn.Module):
    """D(x) = <w, x>: its input gradient is w for every sample."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x):
        return (x.flatten(1) @ self.w)[:, None]  # [N, 1]


def test_logistic_losses_match_hand_values():
    fake, real = torch.tensor([[0.0], [-1.0], [2.0]]), torch.tensor([[3.0], [0.5], [-2.0]])
    assert torch.allclose(logistic_g_loss(fake), torch.tensor([math.log(2), softplus(1.0), softplus(-2.0)]))
    expected = [softplus(0) + softplus(-3), softplus(-1) + softplus(-0.5), softplus(2) + softplus(2)]
    assert torch.allclose(logistic_d_loss(real, fake), torch.tensor(expected))
    g_mean = (math.log(2) + softplus(1.0) + softplus(-2.0)) / 3
    assert torch.allclose(generator_loss("logistic-r1", fake), torch.tensor(g_mean))
    assert torch.allclose(wgan_g_loss(fake), torch.tensor([0.0, 1.0, -2.0]))
    assert torch.allclose(wgan_d_loss(real, fake), torch.tensor([-3.0, -1.5, 4.0]))
    assert torch.allclose(generator_loss("wgan-gp", fake), torch.tensor(-1.0 / 3))
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        generator_loss("hinge", fake)


def test_r1_penalty_of_linear_d_is_squared_weight_norm():
    w = torch.tensor([1.0, -2.0, 0.5, 3.0])  # ||w||^2 = 14.25
    D = LinearD(w)
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    assert torch.allclose(r1_penalty(D(x), x), torch.full((3,), 14.25))


def test_r1_penalty_is_differentiable_in_d_weights():
    # D(x) = a/2 ||x||^2 -> grad_x = a x -> penalty = a^2 ||x||^2, d/da = 2 a ||x||^2.
    a = torch.tensor(1.5, requires_grad=True)
    x = torch.tensor([[[[1.0, 2.0], [0.0, -1.0]]]], requires_grad=True)  # ||x||^2 = 6
    penalty = r1_penalty(0.5 * a * x.square().sum(dim=(1, 2, 3)), x)
    assert torch.allclose(penalty, torch.tensor([1.5**2 * 6]))
    (grad_a,) = torch.autograd.grad(penalty.sum(), a)
    assert torch.allclose(grad_a, torch.tensor(2 * 1.5 * 6))


def test_gradient_penalty_of_linear_d():
    D = LinearD(torch.tensor([0.0, 3.0, 0.0, 4.0]))  # ||w|| = 5
    x = torch.randn(2, 1, 2, 2).requires_grad_(True)
    assert torch.allclose(gradient_penalty(D(x), x, target=1.0), torch.full((2,), 16.0))
    assert torch.allclose(gradient_penalty(D(x), x, target=5.0), torch.zeros(2))


def test_discriminator_loss_logistic_r1_value_and_gradient():
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(4, generator=gen)
    reals, fakes = torch.randn(4, 1, 2, 2, generator=gen), torch.randn(4, 1, 2, 2, generator=gen)
    module = DiscriminatorLoss(LinearD(w), "logistic-r1", r1_gamma=10.0)
    loss, stats = module(reals, fakes)
    s_r, s_f = reals.flatten(1) @ w, fakes.flatten(1) @ w
    expected = (torch.nn.functional.softplus(s_f) + torch.nn.functional.softplus(-s_r)).mean() + 5.0 * w.square().sum()
    assert torch.allclose(loss, expected)
    assert torch.allclose(stats, torch.stack([s_r.mean(), s_f.mean(), w.square().sum(), expected]))
    loss.backward()
    # d/dw: mean(sigmoid(s_f) x_f - sigmoid(-s_r) x_r) + gamma * w
    grad = (torch.sigmoid(s_f)[:, None] * fakes.flatten(1) - torch.sigmoid(-s_r)[:, None] * reals.flatten(1)).mean(0)
    assert torch.allclose(module.D.w.grad, grad + 10.0 * w, atol=1e-6)
    assert not reals.requires_grad  # the caller's tensors are untouched


def test_discriminator_loss_without_r1():
    w = torch.tensor([1.0, 0.0, 0.0, 0.0])
    x = torch.ones(2, 1, 2, 2)
    loss, stats = DiscriminatorLoss(LinearD(w), "logistic-r1", r1_gamma=0.0)(x, -x)
    assert torch.allclose(loss, torch.tensor(2 * softplus(-1.0))) and stats[2] == 0


def test_discriminator_loss_wgan_gp_value():
    w = torch.tensor([0.0, 3.0, 0.0, 4.0])  # ||w|| = 5 everywhere
    reals, fakes = torch.ones(2, 1, 2, 2), torch.zeros(2, 1, 2, 2)  # D(reals) = 7, D(fakes) = 0
    module = DiscriminatorLoss(LinearD(w), "wgan-gp", wgan_lambda=10.0, wgan_epsilon=0.001, wgan_target=1.0)
    loss, stats = module(reals, fakes, torch.full((2, 1, 1, 1), 0.25))
    assert torch.allclose(loss, torch.tensor(-7.0 + 10.0 * 16.0 + 0.001 * 49.0))
    assert torch.allclose(stats[:3], torch.tensor([7.0, 0.0, 16.0]))
    with pytest.raises(ValueError, match="wgan-gp needs interpolation factors"):
        module(reals, fakes)
    with pytest.raises(ValueError, match="unknown loss 'lsgan'"):
        DiscriminatorLoss(LinearD(w), "lsgan")
