"""Training configuration and the progressive-growing schedule of StyleGAN.

`TrainingConfig` holds every training hyper-parameter (official values of NVlabs/stylegan
train.py and training/training_loop.py as defaults). `schedule_at(config, nimg, resolution)`
is the official `training_schedule`: where training stands after `nimg` real images — level of
detail (lod), resolution, fade-in alpha, minibatch size and learning rate.

Phases, from `lod_initial_resolution` (8): stabilise for `lod_training_kimg` (600k images),
then fade in the next resolution over `lod_transition_kimg` (600k), stabilise it, and so on up
to the final resolution, which then trains until `total_kimg`. lod counts halvings below the
final resolution; during a fade-in lod is fractional and `resolution` is already the new, larger
one (as in the official code).

Named schedules (`SCHEDULES`): "official" (8-GPU minibatch totals), "official-1gpu" (the
official single-GPU minibatches) and "cpu" (short phases and small minibatches so a 32x32 preset
shows recognisable images after minutes on a laptop CPU; not the paper's procedure).
"""

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from stylegan_core.errors import ConfigError

LossKind = Literal["logistic-r1", "wgan-gp"]
LOSS_KINDS = ("logistic-r1", "wgan-gp")
Phase = Literal["stabilise", "fade-in"]

# Official (NVlabs/stylegan train.py) schedules, keyed by resolution.
OFFICIAL_MINIBATCH = {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}  # 8 GPUs; minibatch_base 32 above
OFFICIAL_1GPU_MINIBATCH = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}  # base 4
OFFICIAL_LRATE = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}  # lrate_base 0.001 below 128
# Fields that only say how long to run and how often to report: a resumed run may change them.
RUN_LENGTH_FIELDS = ("total_kimg", "snapshot_kimg", "tick_kimg")


def _is_pow2(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1 and (v & (v - 1)) == 0


def _check_number(name: str, value, lo: float, lo_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lo or (lo_open and value == lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise ConfigError(f"TrainingConfig.{name} must be a finite number {bound}, got {value!r}")


def _check_res_dict(name: str, d, kind: type) -> None:
    if not isinstance(d, dict):
        raise ConfigError(f"TrainingConfig.{name} must be a dict {{resolution: value}}, got {d!r}")
    for res, v in d.items():
        if not _is_pow2(res) or res < 4:
            raise ConfigError(f"TrainingConfig.{name}: key {res!r} is not a power-of-two resolution >= 4")
        if kind is int:
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"TrainingConfig.{name}[{res}] must be a positive integer, got {v!r}")
        else:
            _check_number(f"{name}[{res}]", v, 0.0, lo_open=True)


@dataclass(frozen=True)
class TrainingConfig:
    """Every training hyper-parameter; defaults are the official StyleGAN (FFHQ, config F) ones."""

    schedule: str = "official"  # name of the schedule the defaults came from (a label)
    total_kimg: float = 25000.0  # run length in thousands of real images shown to D
    # Progressive growing (official lod_* arguments).
    lod_initial_resolution: int = 8  # first resolution trained
    lod_training_kimg: float = 600.0  # stabilisation phase per resolution, thousands of images
    lod_transition_kimg: float = 600.0  # fade-in phase per resolution; 0 = switch abruptly
    # Minibatch (total over all processes) and learning rate per resolution; other resolutions
    # use the *_base value.
    minibatch_base: int = 32
    minibatch_dict: dict = field(default_factory=lambda: dict(OFFICIAL_MINIBATCH))
    lrate_base: float = 0.001  # G and D learning rate (official uses the same for both)
    lrate_dict: dict = field(default_factory=lambda: dict(OFFICIAL_LRATE))
    minibatch_repeats: int = 4  # minibatches between re-evaluations of the schedule (official 4)
    adam_beta1: float = 0.0
    adam_beta2: float = 0.99
    adam_eps: float = 1e-8
    # Loss (official loss.py): "logistic-r1" = G_logistic_nonsaturating + D_logistic_simplegp;
    # "wgan-gp" = G_wgan + D_wgan_gp (the Progressive GAN baseline).
    loss: LossKind = "logistic-r1"
    r1_gamma: float = 10.0  # R1 weight (penalty * gamma / 2); 0 disables
    wgan_lambda: float = 10.0  # gradient-penalty weight
    wgan_epsilon: float = 0.001  # drift penalty on real scores
    wgan_target: float = 1.0  # target gradient norm
    ema_kimg: float = 10.0  # half-life of the generator weight average, thousands of images
    mirror: bool = False  # random horizontal flips of real images (official: on for FFHQ)
    seed: int = 0  # network initialisation, latents, noise, data order, augmentation
    # Reporting (may change on resume).
    snapshot_kimg: float = 1000.0  # checkpoint + image grid every this many thousand images
    tick_kimg: float = 160.0  # one JSON line of statistics every this many thousand images
    grid_size: int = 32  # images in the snapshot grid (seeds 0 .. grid_size-1)

    def __post_init__(self):
        if not isinstance(self.schedule, str) or not self.schedule:
            raise ConfigError(f"TrainingConfig.schedule must be a name, got {self.schedule!r}")
        _check_number("total_kimg", self.total_kimg, 0.0)
        if not _is_pow2(self.lod_initial_resolution) or self.lod_initial_resolution < 4:
            raise ConfigError(
                f"TrainingConfig.lod_initial_resolution must be a power of two >= 4, got {self.lod_initial_resolution!r}"
            )
        _check_number("lod_training_kimg", self.lod_training_kimg, 0.0)
        _check_number("lod_transition_kimg", self.lod_transition_kimg, 0.0)
        for name in ("minibatch_base", "minibatch_repeats", "grid_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"TrainingConfig.{name} must be a positive integer, got {v!r}")
        _check_res_dict("minibatch_dict", self.minibatch_dict, int)
        _check_res_dict("lrate_dict", self.lrate_dict, float)
        _check_number("lrate_base", self.lrate_base, 0.0, lo_open=True)
        _check_number("adam_beta1", self.adam_beta1, 0.0)
        _check_number("adam_beta2", self.adam_beta2, 0.0)
        if self.adam_beta1 >= 1 or self.adam_beta2 >= 1:
            raise ConfigError("TrainingConfig.adam_beta1 and adam_beta2 must be < 1")
        _check_number("adam_eps", self.adam_eps, 0.0, lo_open=True)
        if self.loss not in LOSS_KINDS:
            raise ConfigError(f"TrainingConfig.loss must be one of {list(LOSS_KINDS)}, got {self.loss!r}")
        for name in ("r1_gamma", "wgan_lambda", "wgan_epsilon"):
            _check_number(name, getattr(self, name), 0.0)
        _check_number("wgan_target", self.wgan_target, 0.0, lo_open=True)
        _check_number("ema_kimg", self.ema_kimg, 0.0, lo_open=True)
        _check_number("snapshot_kimg", self.snapshot_kimg, 0.0, lo_open=True)
        _check_number("tick_kimg", self.tick_kimg, 0.0, lo_open=True)
        if not isinstance(self.mirror, bool):
            raise ConfigError(f"TrainingConfig.mirror must be true or false, got {self.mirror!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"TrainingConfig.seed must be a non-negative integer, got {self.seed!r}")

    @property
    def total_nimg(self) -> int:
        return int(round(self.total_kimg * 1000))

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        # JSON object keys are strings.
        d["minibatch_dict"] = {str(k): v for k, v in sorted(self.minibatch_dict.items())}
        d["lrate_dict"] = {str(k): v for k, v in sorted(self.lrate_dict.items())}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainingConfig":
        if not isinstance(d, dict):
            raise ConfigError(f"TrainingConfig: expected a dict, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"TrainingConfig: unknown key(s) {unknown}; valid keys are {sorted(names)}")
        kw = dict(d)
        for key in ("minibatch_dict", "lrate_dict"):
            if key in kw:
                try:
                    kw[key] = {int(k): v for k, v in kw[key].items()}
                except (AttributeError, ValueError):
                    raise ConfigError(f"TrainingConfig.{key} must map resolutions to values, got {kw[key]!r}") from None
        return cls(**kw)


SCHEDULES: dict[str, TrainingConfig] = {
    "official": TrainingConfig(),
    "official-1gpu": TrainingConfig(
        schedule="official-1gpu", minibatch_base=4, minibatch_dict=dict(OFFICIAL_1GPU_MINIBATCH)
    ),
    # Scaled down for the 32x32 CPU presets: 10k-image phases (8x8 -> 32x32 in 50k images),
    # minibatch 32, a higher learning rate and a 1k-image EMA half-life (the official 10k is
    # tuned for 25M images). Not the paper's procedure; for demos and smoke tests.
    "cpu": TrainingConfig(
        schedule="cpu",
        total_kimg=60.0,
        lod_training_kimg=10.0,
        lod_transition_kimg=10.0,
        minibatch_base=32,
        minibatch_dict={},
        lrate_base=0.002,
        lrate_dict={},
        ema_kimg=1.0,
        snapshot_kimg=10.0,
        tick_kimg=2.0,
    ),
}


def training_config(schedule: str = "official", **overrides) -> TrainingConfig:
    """A named schedule with some fields replaced (unknown fields are an error)."""
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown training schedule {schedule!r}; choose one of {sorted(SCHEDULES)}")
    names = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ConfigError(f"TrainingConfig has no field(s) {unknown}")
    return dataclasses.replace(SCHEDULES[schedule], **overrides)


@dataclass(frozen=True)
class SchedulePoint:
    """Where training stands after `nimg` images (official training_schedule output)."""

    nimg: int
    lod: float  # 0 = final resolution; fractional while fading in
    resolution: int  # resolution being trained (the new, larger one during a fade-in)
    phase: Phase  # "stabilise" | "fade-in"
    alpha: float  # weight of the newest resolution: fade-in progress in [0, 1), 1 when stabilising
    minibatch: int  # total over all processes (a multiple of the process count)
    lrate: float

    @property
    def kimg(self) -> float:
        return self.nimg / 1000.0


def schedule_at(config: TrainingConfig, nimg: int, resolution: int, num_processes: int = 1) -> SchedulePoint:
    """The official training schedule after `nimg` images for a network of final `resolution`."""
    res_log2 = int(math.log2(resolution))
    training = config.lod_training_kimg * 1000.0
    transition = config.lod_transition_kimg * 1000.0
    phase_dur = training + transition
    phase_idx = int(nimg // phase_dur) if phase_dur > 0 else 0
    phase_nimg = nimg - phase_idx * phase_dur
    lod = float(res_log2 - int(math.log2(config.lod_initial_resolution)) - phase_idx)
    if transition > 0:
        lod -= max(phase_nimg - training, 0.0) / transition
    lod = max(lod, 0.0)
    res, phase, alpha = lod_state(lod, resolution)
    minibatch = config.minibatch_dict.get(res, config.minibatch_base)
    minibatch -= minibatch % num_processes
    if minibatch < num_processes:
        raise ConfigError(
            f"minibatch {config.minibatch_dict.get(res, config.minibatch_base)} at {res}x{res} is smaller "
            f"than the number of processes ({num_processes})"
        )
    return SchedulePoint(
        nimg=int(nimg),
        lod=lod,
        resolution=res,
        phase=phase,
        alpha=alpha,
        minibatch=minibatch,
        lrate=float(config.lrate_dict.get(res, config.lrate_base)),
    )


def lod_state(lod: float, resolution: int) -> tuple[int, Phase, float]:
    """(resolution trained, phase, alpha of the newest resolution) of a network of final
    `resolution` at level of detail `lod`."""
    frac = lod - math.floor(lod)
    res = 2 ** (int(math.log2(resolution)) - int(math.floor(lod)))
    return res, ("fade-in" if frac > 0 else "stabilise"), (1.0 - frac if frac > 0 else 1.0)


def optimizer_reset_needed(prev_lod: float | None, lod: float) -> bool:
    """Official reset_opt_for_new_lod: a new optimiser whenever floor(lod) or ceil(lod) changes,
    i.e. when a fade-in starts and when it ends."""
    if prev_lod is None:
        return False
    return math.floor(lod) != math.floor(prev_lod) or math.ceil(lod) != math.ceil(prev_lod)


def check_minibatches(config: TrainingConfig, res: int, world: int, group: int) -> None:
    """Every per-process minibatch of the schedule must suit the minibatch-stddev groups."""
    lo = int(math.log2(min(config.lod_initial_resolution, res)))
    for r in (2**k for k in range(lo, int(math.log2(res)) + 1)):
        total = config.minibatch_dict.get(r, config.minibatch_base)
        local = (total - total % world) // world
        if local < 1:
            raise ConfigError(f"minibatch {total} at {r}x{r} is smaller than the number of processes ({world})")
        if group > 1 and local > group and local % group:
            raise ConfigError(
                f"minibatch {total} at {r}x{r} gives {local} images per process, not a multiple of the "
                f"discriminator's minibatch-stddev group size {group}; choose another minibatch size"
            )
