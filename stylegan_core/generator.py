"""The StyleGAN generator: mapping network + synthesis network (official G_style in
NVlabs/stylegan training/networks_stylegan.py), with the truncation trick, the running average
of w, inference-time style mixing and the training-time mixing regularisation.

Honours stylegan_core.GeneratorInterface: G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels, G.w_avg;
ws = G.mapping(z, truncation_psi, truncation_cutoff) -> [N, num_ws, w_dim];
img = G.synthesis(ws, noise_mode, noise) -> [N, C, R, R]; img = G(z, ...).
"""

from dataclasses import dataclass, field

import torch
from torch import nn

from stylegan_core.errors import ConfigError
from stylegan_core.layers import config_kwargs_from_dict, init_parameters
from stylegan_core.mapping import MappingConfig, MappingNetwork
from stylegan_core.synthesis import NoiseMode, SynthesisConfig, SynthesisNetwork


@dataclass(frozen=True)
class GeneratorConfig:
    """A whole generator: its mapping and synthesis networks and the mixing probability."""

    mapping: MappingConfig = field(default_factory=MappingConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    style_mixing_prob: float = 0.9  # training only: chance a minibatch mixes two latents; 0 = off

    def __post_init__(self):
        if not isinstance(self.mapping, MappingConfig):
            raise ConfigError(f"GeneratorConfig.mapping must be a MappingConfig, got {self.mapping!r}")
        if not isinstance(self.synthesis, SynthesisConfig):
            raise ConfigError(
                f"GeneratorConfig.synthesis must be a SynthesisConfig, got {self.synthesis!r}"
            )
        p = self.style_mixing_prob
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ConfigError(f"GeneratorConfig.style_mixing_prob must be in [0, 1], got {p!r}")
        if self.mapping.w_dim != self.synthesis.w_dim:
            raise ConfigError(
                f"GeneratorConfig: mapping.w_dim ({self.mapping.w_dim}) must equal "
                f"synthesis.w_dim ({self.synthesis.w_dim})"
            )
        if p > 0 and not self.synthesis.use_styles:
            raise ConfigError(
                "GeneratorConfig: style mixing needs use_styles=True; a traditional generator "
                "has one style input, so set style_mixing_prob=0"
            )

    def to_dict(self) -> dict:
        return {
            "mapping": self.mapping.to_dict(),
            "synthesis": self.synthesis.to_dict(),
            "style_mixing_prob": self.style_mixing_prob,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        kw = config_kwargs_from_dict(cls, d)
        if "mapping" in kw:
            kw["mapping"] = MappingConfig.from_dict(kw["mapping"])
        if "synthesis" in kw:
            kw["synthesis"] = SynthesisConfig.from_dict(kw["synthesis"])
        return cls(**kw)


def style_mix(ws_a: torch.Tensor, ws_b: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Inference-time style mixing: ws_a with layers [start, stop) taken from ws_b.
    ws_a, ws_b: [N, num_ws, w_dim] (ws_b may have N = 1 to broadcast)."""
    num_ws = ws_a.shape[1]
    if ws_b.ndim != 3 or ws_b.shape[1:] != ws_a.shape[1:] or ws_b.shape[0] not in (1, ws_a.shape[0]):
        raise ValueError(f"style_mix: ws_b of shape {list(ws_b.shape)} does not match ws_a "
                         f"{list(ws_a.shape)}")
    if not 0 <= start <= stop <= num_ws:
        raise ValueError(f"style_mix: need 0 <= start <= stop <= num_ws ({num_ws}), "
                         f"got start={start}, stop={stop}")
    out = ws_a.clone()
    out[:, start:stop] = ws_b[:, start:stop]
    return out


def mixing_regularization(
    ws1: torch.Tensor,  # [N, num_ws, w_dim] from the minibatch's latents
    ws2: torch.Tensor,  # [N, num_ws, w_dim] from a second set of latents
    prob: float,  # probability that this minibatch mixes (official style_mixing_prob)
    num_active_ws: int,  # style inputs in use at the current lod (Generator.num_active_ws)
    generator: torch.Generator,  # explicit RNG for the coin flip and the crossover
) -> torch.Tensor:
    """Official style mixing regularisation: with probability `prob` the whole minibatch
    switches from ws1 to ws2 at a crossover drawn uniformly from [1, num_active_ws); layers
    from the crossover on come from ws2."""
    if num_active_ws <= 1 or prob <= 0:
        return ws1
    dev = generator.device
    if float(torch.rand((), generator=generator, device=dev)) >= prob:
        return ws1
    cutoff = int(torch.randint(1, num_active_ws, (), generator=generator, device=dev))
    return style_mix(ws1, ws2, cutoff, ws1.shape[1])


class Generator(nn.Module):
    """z [N, z_dim] -> images [N, img_channels, R, R]."""

    def __init__(self, config: GeneratorConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.synthesis = SynthesisNetwork(config.synthesis)
        self.mapping = MappingNetwork(config.mapping, num_ws=self.synthesis.num_ws)
        self.z_dim, self.w_dim = config.mapping.z_dim, config.mapping.w_dim
        self.num_ws = self.synthesis.num_ws
        self.img_resolution = self.synthesis.img_resolution
        self.img_channels = self.synthesis.img_channels
        init_parameters(self, seed)  # seed = initial weights and stored noise; no global RNG

    @property
    def w_avg(self) -> torch.Tensor:
        """Running average of w, [w_dim] (a buffer of the mapping network)."""
        return self.mapping.w_avg

    def num_active_ws(self) -> int:
        """Style inputs used at the current lod (official cur_layers = num_layers - 2*int(lod))."""
        if not self.config.synthesis.use_styles:
            return 1
        return self.num_ws - 2 * int(float(self.synthesis.lod))

    def forward(
        self,
        z: torch.Tensor,  # [N, z_dim]
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: NoiseMode = "random",
        noise: list[torch.Tensor] | None = None,
        generator: torch.Generator | None = None,  # RNG for noise_mode="random"
    ) -> torch.Tensor:
        ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, noise=noise, generator=generator)

    def training_ws(
        self, z: torch.Tensor, generator: torch.Generator, update_w_avg: bool = True
    ) -> torch.Tensor:
        """What official G_style does to ws in training: map z, update w_avg from the batch,
        then mixing regularisation with a second z drawn from `generator`. No truncation."""
        ws = self.mapping(z)
        if update_w_avg:
            self.mapping.update_w_avg(ws)
        prob = self.config.style_mixing_prob
        if prob <= 0 or self.num_active_ws() <= 1:
            return ws
        z2 = torch.randn(z.shape, generator=generator, device=generator.device).to(z)
        ws2 = self.mapping(z2)
        return mixing_regularization(ws, ws2, prob, self.num_active_ws(), generator)
