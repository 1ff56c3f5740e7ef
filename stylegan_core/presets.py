"""Named network configurations: every generator of the StyleGAN paper (Karras et al. 2019) as
the official NVlabs/stylegan train.py flags define it, at 1024x1024, plus size variants.

Paper configurations (Table 1, Table 2/3 mixing, Table 4 mapping depth):
  A        Progressive GAN baseline (networks_progan G_paper/D_paper: traditional latent input,
           pixel norm, no blur, fused resampling at every resolution), WGAN-GP loss
  B        + tuning: bilinear (blurred) up/down-sampling; traditional generator, no mapping
  C        + mapping network (8 layers) and AdaIN styles
  D        + learned constant input instead of the traditional latent input
  E        + per-layer noise inputs
  F        + mixing regularisation (90%): the final StyleGAN
  E-mix50  E with 50% mixing regularisation (Table 3)
  trad-m0, trad-m8                      traditional generator with 0 / 8 mapping layers
  style-m0, style-m1, style-m2, style-m8  configuration F with 0 / 1 / 2 / 8 mapping layers

Size variants keep the mapping depth and every flag of their paper configuration:
  "<name>-cpu32"  32x32, few channels, 128-d latents: trains on 2 CPU cores (the demo)
  "<name>-test16" 16x16, tiny: a forward pass takes milliseconds (unit tests)
  "<name>-256"    256x256 with the paper's channel counts (benchmarks)
"""

import dataclasses
from dataclasses import dataclass
from typing import Literal

from stylegan_core.discriminator import DiscriminatorConfig
from stylegan_core.errors import ConfigError
from stylegan_core.generator import GeneratorConfig
from stylegan_core.mapping import MappingConfig
from stylegan_core.synthesis import SynthesisConfig

LossName = Literal["wgan-gp", "logistic-r1"]


@dataclass(frozen=True)
class PaperRef:
    """Which paper configuration a preset reproduces."""

    key: str  # key of its published numbers (stylegan_eval.published): the base preset name
    rows: str  # the paper's tables and rows, e.g. "Table 1 F; Table 3 F; Table 4 style-based 8"


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    generator: GeneratorConfig
    discriminator: DiscriminatorConfig
    paper: PaperRef | None  # the paper configuration (same key for every size variant)
    loss: LossName  # "wgan-gp" (config A, as Progressive GAN) or "logistic-r1" (the rest)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "generator": self.generator.to_dict(),
            "discriminator": self.discriminator.to_dict(),
            "paper": None if self.paper is None else dataclasses.asdict(self.paper),
            "loss": self.loss,
        }


@dataclass(frozen=True)
class _Size:
    """What a size variant changes: resolution, channels and latent sizes."""

    suffix: str
    resolution: int
    fmap_base: int
    fmap_max: int
    latent: int  # z_dim = w_dim = mapping hidden width
    note: str


_SIZES = (
    _Size("", 1024, 8192, 512, 512, "1024x1024, paper size"),
    _Size("-256", 256, 8192, 512, 512, "256x256 with the paper's channel counts (benchmarks)"),
    _Size("-cpu32", 32, 128, 32, 128, "32x32, 8-32 channels, 128-d latents (CPU training)"),
    _Size("-test16", 16, 64, 16, 16, "16x16, 8-16 channels, 16-d latents (unit tests)"),
)

# Official train.py flags for the traditional generator (Table 1 B, Table 4 traditional).
_TRADITIONAL = dict(
    use_styles=False, use_pixel_norm=True, use_instance_norm=False, const_input=False, use_noise=False
)

# name: (description, mapping layers, synthesis flags, style mixing prob, D flags, loss, paper rows)
_BASE = {
    "A": ("Table 1 A: Progressive GAN baseline", 0,
          dict(_TRADITIONAL, blur=False, fused_scale="always"), 0.0,
          dict(blur=False, fused_scale="always"), "wgan-gp", "Table 1 A"),
    "B": ("Table 1 B: tuned traditional generator (blurred resampling)", 0,
          _TRADITIONAL, 0.0, {}, "logistic-r1", "Table 1 B; Table 3 B; Table 4 traditional 0"),
    "C": ("Table 1 C: + mapping network and styles", 8,
          dict(const_input=False, use_noise=False), 0.0, {}, "logistic-r1", "Table 1 C"),
    "D": ("Table 1 D: + learned constant input", 8,
          dict(use_noise=False), 0.0, {}, "logistic-r1", "Table 1 D; Table 3 D"),
    "E": ("Table 1 E: + noise inputs", 8, {}, 0.0, {}, "logistic-r1", "Table 1 E; Table 3 E"),
    "F": ("Table 1 F: + mixing regularisation 90% (final StyleGAN)", 8, {}, 0.9, {},
          "logistic-r1", "Table 1 F; Table 3 F; Table 4 style-based 8"),
    "E-mix50": ("Table 3: E + mixing regularisation 50%", 8, {}, 0.5, {}, "logistic-r1",
                "Table 3 + mixing 50%"),
    "trad-m0": ("Table 4: traditional generator, 0 mapping layers (= B)", 0, _TRADITIONAL, 0.0,
                {}, "logistic-r1", "Table 4 traditional 0"),
    "trad-m8": ("Table 4: traditional generator, 8 mapping layers", 8, _TRADITIONAL, 0.0, {},
                "logistic-r1", "Table 4 traditional 8"),
    "style-m0": ("Table 4: style-based (F), 0 mapping layers", 0, {}, 0.9, {}, "logistic-r1",
                 "Table 4 style-based 0"),
    "style-m1": ("Table 4: style-based (F), 1 mapping layer", 1, {}, 0.9, {}, "logistic-r1",
                 "Table 4 style-based 1"),
    "style-m2": ("Table 4: style-based (F), 2 mapping layers", 2, {}, 0.9, {}, "logistic-r1",
                 "Table 4 style-based 2"),
    "style-m8": ("Table 4: style-based (F), 8 mapping layers (= F)", 8, {}, 0.9, {},
                 "logistic-r1", "Table 1 F; Table 3 F; Table 4 style-based 8"),
}


def _make(base: str, size: _Size) -> Preset:
    desc, depth, syn_flags, mix, d_flags, loss, rows = _BASE[base]
    mapping = MappingConfig(
        z_dim=size.latent, w_dim=size.latent, num_layers=depth, hidden_dim=size.latent
    )
    synthesis = SynthesisConfig(
        resolution=size.resolution, w_dim=size.latent, fmap_base=size.fmap_base,
        fmap_max=size.fmap_max, **syn_flags,
    )
    disc = DiscriminatorConfig(
        resolution=size.resolution, fmap_base=size.fmap_base, fmap_max=size.fmap_max, **d_flags
    )
    return Preset(
        name=base + size.suffix,
        description=f"{desc}; {size.note}",
        generator=GeneratorConfig(mapping=mapping, synthesis=synthesis, style_mixing_prob=mix),
        discriminator=disc,
        paper=PaperRef(key=base, rows=rows),
        loss=loss,
    )


PRESETS: dict[str, Preset] = {
    base + size.suffix: _make(base, size) for size in _SIZES for base in _BASE
}


def get_preset(name: str) -> Preset:
    """The preset called `name`; ConfigError listing the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}"
        ) from None
