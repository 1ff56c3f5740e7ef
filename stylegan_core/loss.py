"""StyleGAN's losses (official NVlabs/stylegan training/loss.py), as pure functions of the
discriminator's scores, plus the module that computes D's whole loss in one forward pass.

- Non-saturating logistic (config B..F): G minimises softplus(-D(G(z))); D minimises
  softplus(D(G(z))) + softplus(-D(x)) + gamma/2 * ||grad_x D(x)||^2 (R1, "simplegp", gamma 10).
- WGAN-GP (Progressive GAN baseline, config A): G minimises -D(G(z)); D minimises
  D(G(z)) - D(x) + lambda/target^2 * (||grad D(x_hat)|| - target)^2 + epsilon * D(x)^2, with
  x_hat = lerp(x, G(z), u), u ~ U(0, 1) per sample.

Per-sample terms are returned as [N] tensors; the trainer averages them over the minibatch
(official: tf.reduce_mean before the optimiser).
"""

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.schedule import LossKind


def logistic_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating G loss per sample: softplus(-D(G(z))). fake_scores: [N] or [N, 1] -> [N]."""
    return F.softplus(-fake_scores.reshape(-1))


def logistic_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Logistic D loss per sample: softplus(D(G(z))) + softplus(-D(x)). -> [N]."""
    return F.softplus(fake_scores.reshape(-1)) + F.softplus(-real_scores.reshape(-1))


def wgan_g_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN G loss per sample: -D(G(z)). -> [N]."""
    return -fake_scores.reshape(-1)


def wgan_d_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """WGAN critic loss per sample: D(G(z)) - D(x). -> [N]."""
    return fake_scores.reshape(-1) - real_scores.reshape(-1)


def input_gradients(scores: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """d(sum of scores)/d(inputs), kept in the graph so a penalty on it can be minimised.
    Each sample's score depends only on its own input when minibatch-stddev is off; with it on,
    the sum couples samples exactly as the official tf.gradients(tf.reduce_sum(scores), x)."""
    (grads,) = torch.autograd.grad(scores.sum(), inputs, create_graph=True, only_inputs=True)
    return grads  # [N, C, H, W]


def r1_penalty(real_scores: torch.Tensor, reals: torch.Tensor, upscale: int = 1) -> torch.Tensor:
    """R1: squared norm of D's gradient at the real images, per sample. -> [N]
    (`reals` must have requires_grad=True before D is applied).

    `upscale`: the images stand for their nearest upscale by this factor (training at a lower
    level of detail). D box-downscales such an input, so its gradient there is this one spread
    over upscale^2 pixels and divided by upscale^2: the squared norm is ||grad||^2 / upscale^2,
    the value the full-resolution images would give."""
    return input_gradients(real_scores, reals).square().sum(dim=(1, 2, 3)) / upscale**2


def gradient_penalty(
    mixed_scores: torch.Tensor, mixed: torch.Tensor, target: float = 1.0, upscale: int = 1
) -> torch.Tensor:
    """WGAN-GP: (||grad D(x_hat)|| - target)^2 per sample, the norm taken at full resolution as
    in `r1_penalty`. -> [N]"""
    norms = (input_gradients(mixed_scores, mixed).square().sum(dim=(1, 2, 3)) / upscale**2).sqrt()
    return (norms - target).square()


def generator_loss(kind: LossKind, fake_scores: torch.Tensor) -> torch.Tensor:
    """The G loss averaged over the minibatch (scalar)."""
    if kind == "logistic-r1":
        return logistic_g_loss(fake_scores).mean()
    if kind == "wgan-gp":
        return wgan_g_loss(fake_scores).mean()
    raise ValueError(f"unknown loss {kind!r}")


class DiscriminatorLoss(nn.Module):
    """D's full loss for one minibatch in a single forward call, so that DistributedDataParallel
    wrapping this module sees exactly one forward per backward (D is applied two or three times
    inside, and the gradient penalties need autograd.grad on its inputs).

    forward(reals [N, C, r, r], fakes [N, C, r, r], mix [N, 1, 1, 1] or None) ->
        (loss: scalar mean over the minibatch,
         stats: [4] detached = (mean real score, mean fake score, mean penalty, mean loss))
    `mix` are the WGAN-GP interpolation factors (u ~ U(0, 1) per sample), unused by logistic.
    r is D's resolution R or, in training, the current lod's R / 2**floor(lod); the penalties
    are those of the images' nearest upscale to R either way.
    """

    def __init__(
        self,
        D: nn.Module,
        kind: LossKind,  # "logistic-r1" | "wgan-gp"
        r1_gamma: float = 10.0,  # logistic: R1 weight, the penalty is multiplied by gamma / 2
        wgan_lambda: float = 10.0,  # wgan-gp: gradient penalty weight
        wgan_epsilon: float = 0.001,  # wgan-gp: drift penalty on D(x)^2
        wgan_target: float = 1.0,  # wgan-gp: target gradient norm
    ):
        super().__init__()
        if kind not in ("logistic-r1", "wgan-gp"):
            raise ValueError(f"unknown loss {kind!r}")
        self.D = D
        self.kind = kind
        self.r1_gamma, self.wgan_lambda = r1_gamma, wgan_lambda
        self.wgan_epsilon, self.wgan_target = wgan_epsilon, wgan_target

    def forward(self, reals: torch.Tensor, fakes: torch.Tensor, mix: torch.Tensor | None = None):
        fakes = fakes.detach()
        # Images at a level of detail's own resolution: penalties as at full resolution.
        upscale = getattr(self.D, "img_resolution", reals.shape[-1]) // reals.shape[-1]
        if self.kind == "logistic-r1":
            use_r1 = self.r1_gamma > 0
            reals = reals.detach().requires_grad_(use_r1)
            real_scores = self.D(reals).reshape(-1)  # [N]
            fake_scores = self.D(fakes).reshape(-1)
            per_sample = logistic_d_loss(real_scores, fake_scores)
            if use_r1:
                penalty = r1_penalty(real_scores, reals, upscale)
                per_sample = per_sample + penalty * (self.r1_gamma * 0.5)
            else:
                penalty = torch.zeros_like(per_sample)
        else:
            reals = reals.detach()
            real_scores = self.D(reals).reshape(-1)
            fake_scores = self.D(fakes).reshape(-1)
            per_sample = wgan_d_loss(real_scores, fake_scores)
            if mix is None:
                raise ValueError("wgan-gp needs interpolation factors `mix` [N, 1, 1, 1]")
            mixed = (reals + (fakes - reals) * mix.to(reals)).requires_grad_(True)
            mixed_scores = self.D(mixed).reshape(-1)
            penalty = gradient_penalty(mixed_scores, mixed, self.wgan_target, upscale)
            per_sample = per_sample + penalty * (self.wgan_lambda / self.wgan_target**2)
            per_sample = per_sample + real_scores.square() * self.wgan_epsilon
        loss = per_sample.mean()
        stats = torch.stack(
            [real_scores.mean(), fake_scores.mean(), penalty.mean(), loss]
        ).detach()
        return loss, stats
