"""The mapping network f: z -> w of StyleGAN (official G_mapping in NVlabs/stylegan
training/networks_stylegan.py), plus the running average of w and the truncation trick
(official G_style).

z is pixel-normalised, then passed through `num_layers` equalised-lr dense layers with leaky
ReLU 0.2 and a learning-rate multiplier (0.01). With 0 layers, w is the normalised z (the
traditional generators of Table 4). The output is broadcast to [N, num_ws, w_dim].
"""

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from stylegan_core.errors import ConfigError
from stylegan_core.layers import (
    LRELU_GAIN,
    LRELU_SLOPE,
    EqualizedLinear,
    check_int,
    config_kwargs_from_dict,
    pixel_norm,
)

MAX_MAPPING_LAYERS = 8


@dataclass(frozen=True)
class MappingConfig:
    """The mapping network f (official G_mapping arguments)."""

    z_dim: int = 512  # latent z size (official latent_size)
    w_dim: int = 512  # intermediate latent w size (official dlatent_size)
    num_layers: int = 8  # dense layers, 0..8; 0 means w = normalised z (needs z_dim == w_dim)
    hidden_dim: int = 512  # width of the hidden dense layers (official mapping_fmaps)
    lr_multiplier: float = 0.01  # learning-rate multiplier of every mapping layer
    normalize_z: bool = True  # pixel-normalise z before the first layer
    w_avg_beta: float = 0.995  # decay of the running average of w, per training step

    def __post_init__(self):
        owner = "MappingConfig"
        check_int(owner, "z_dim", self.z_dim, 1)
        check_int(owner, "w_dim", self.w_dim, 1)
        check_int(owner, "num_layers", self.num_layers, 0, MAX_MAPPING_LAYERS)
        check_int(owner, "hidden_dim", self.hidden_dim, 1)
        if not isinstance(self.normalize_z, bool):
            raise ConfigError(f"{owner}.normalize_z must be true or false, got {self.normalize_z!r}")
        lr = self.lr_multiplier
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0 < lr <= 1e3):
            raise ConfigError(f"{owner}.lr_multiplier must be a positive number, got {lr!r}")
        beta = self.w_avg_beta
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise ConfigError(f"{owner}.w_avg_beta must be in [0, 1), got {beta!r}")
        if self.num_layers == 0 and self.z_dim != self.w_dim:
            raise ConfigError(
                f"{owner}: with 0 mapping layers w is the normalised z, so z_dim ({self.z_dim}) "
                f"must equal w_dim ({self.w_dim})"
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "MappingConfig":
        return cls(**config_kwargs_from_dict(cls, d))


def truncate(
    ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None
) -> torch.Tensor:
    """Truncation trick: w' = w_avg + psi * (w - w_avg) on layers [0, cutoff) (all layers when
    cutoff is None); psi = 1 returns ws unchanged. ws: [N, num_ws, w_dim], w_avg: [w_dim]."""
    if not isinstance(psi, (int, float)) or isinstance(psi, bool) or not math.isfinite(psi):
        raise ValueError(f"truncation_psi must be a finite number, got {psi!r}")
    if cutoff is not None and (not isinstance(cutoff, int) or isinstance(cutoff, bool) or cutoff < 0):
        raise ValueError(f"truncation_cutoff must be None or an integer >= 0, got {cutoff!r}")
    if psi == 1:
        return ws
    n_trunc = ws.shape[1] if cutoff is None else min(cutoff, ws.shape[1])
    head = w_avg + (ws[:, :n_trunc] - w_avg) * psi  # official tflib.lerp(w_avg, w, psi)
    return torch.cat([head, ws[:, n_trunc:]], dim=1)  # layers >= cutoff untouched, bit for bit


class MappingNetwork(nn.Module):
    """z [N, z_dim] -> ws [N, num_ws, w_dim]; holds the `w_avg` buffer [w_dim]."""

    def __init__(self, config: MappingConfig, num_ws: int):
        super().__init__()
        check_int("MappingNetwork", "num_ws", num_ws, 1)
        self.config, self.num_ws = config, num_ws
        self.z_dim, self.w_dim = config.z_dim, config.w_dim
        layers = []
        for i in range(config.num_layers):
            in_f = config.z_dim if i == 0 else config.hidden_dim
            out_f = config.w_dim if i == config.num_layers - 1 else config.hidden_dim
            layers.append(
                EqualizedLinear(in_f, out_f, gain=LRELU_GAIN, lr_mul=config.lr_multiplier)
            )
        self.layers = nn.ModuleList(layers)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,  # [N, z_dim]
        truncation_psi: float = 1.0,  # 1 = no truncation
        truncation_cutoff: int | None = None,  # truncate layers [0, cutoff); None = all
    ) -> torch.Tensor:
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(
                f"mapping network expects z of shape [N, {self.z_dim}], got {list(z.shape)}"
            )
        x = pixel_norm(z) if self.config.normalize_z else z
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)  # [N, num_ws, w_dim]
        return truncate(ws, self.w_avg, truncation_psi, truncation_cutoff)

    @torch.no_grad()
    def update_w_avg(self, ws: torch.Tensor) -> None:
        """Training step: w_avg <- mean_batch(w) + beta * (w_avg - mean_batch(w)) (beta = config.w_avg_beta), from ws
        [N, num_ws, w_dim] (layer 0, before style mixing, as official) or w [N, w_dim]."""
        beta = self.config.w_avg_beta
        w = ws[:, 0] if ws.ndim == 3 else ws
        batch_avg = w.detach().float().mean(dim=0)
        self.w_avg.copy_(batch_avg + (self.w_avg - batch_avg) * beta)
