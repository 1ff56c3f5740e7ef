"""Binary attribute classifiers for linear separability: train, evaluate, save, load.

The paper labels generated images with 40 CelebA-HQ classifiers "with the same architecture as
the discriminator". Here one network answers all chosen attributes at once: the project's
`Discriminator` with `out_features` = number of attributes (one logit each) and the minibatch
standard-deviation layer disabled (`mbstd_group_size=0`), so a sample's logits never depend on
the rest of its batch.

Probabilities follow NVlabs/stylegan `metrics/linear_separability.py`: softmax([logit, -logit]),
whose first entry ("attribute present") is sigmoid(2 * logit). Training minimises the matching
two-class cross-entropy, i.e. binary cross-entropy on 2 * logit, so those probabilities are
calibrated. (Separability itself only uses the sign and the ranking of |logit|.)

Inputs are images in [-1, 1] at the classifier's resolution; larger images are area-downsampled
(reshape and mean, as the official metric) by an integer factor. Real uint8 images map to
[-1, 1] by x / 127.5 - 1.

Checkpoints hold the state dict and a JSON config only (never pickled code): written atomically,
read with `torch.load(weights_only=True)`; anything unusable is a one-line `CheckpointError`.
"""

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from stylegan_core.atomic import atomic_open
from stylegan_core.discriminator import Discriminator, DiscriminatorConfig
from stylegan_core.errors import CheckpointError, ConfigError, DatasetError
from stylegan_core.seeding import derive_seed, torch_generator
from stylegan_eval.images import area_downsample
from stylegan_eval.records import file_sha256
from stylegan_eval.weights import WeightsFileError, read_data

FORMAT = "stylegan-eval-classifier"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------
# Network


@dataclass(frozen=True)
class ClassifierConfig:
    """Which attributes, at which resolution, with which discriminator-like backbone."""

    attributes: tuple[str, ...]  # one logit per name, in this order
    discriminator: DiscriminatorConfig  # out_features == len(attributes), mbstd_group_size == 0

    def __post_init__(self):
        object.__setattr__(self, "attributes", tuple(self.attributes))
        if not self.attributes:
            raise ConfigError("a classifier needs at least one attribute")
        if len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(f"attribute names repeat: {', '.join(self.attributes)}")
        if self.discriminator.out_features != len(self.attributes):
            raise ConfigError(
                f"discriminator out_features={self.discriminator.out_features} but {len(self.attributes)} attributes"
            )
        if self.discriminator.mbstd_group_size != 0:
            raise ConfigError("classifiers need mbstd_group_size=0 so a sample's output is independent of its batch")

    @property
    def resolution(self) -> int:
        return self.discriminator.resolution

    @property
    def img_channels(self) -> int:
        return self.discriminator.img_channels

    def to_dict(self) -> dict:
        return {"attributes": list(self.attributes), "discriminator": self.discriminator.to_dict()}

    @staticmethod
    def from_dict(d: dict) -> "ClassifierConfig":
        unknown = set(d) - {"attributes", "discriminator"}
        if unknown:
            raise ConfigError(f"unknown classifier config keys {sorted(unknown)}")
        return ClassifierConfig(tuple(d["attributes"]), DiscriminatorConfig.from_dict(d["discriminator"]))


def classifier_config(
    attributes: list[str] | tuple[str, ...],  # attribute names, one logit each
    resolution: int,  # input side in pixels, a power of two
    img_channels: int = 3,
    fmap_base: int = 512,  # feature maps per stage: min(fmap_base / 2**stage, fmap_max)
    fmap_max: int = 64,  # (the paper's classifiers: the 256x256 discriminator, 8192 / 512)
) -> ClassifierConfig:
    """The discriminator at `resolution`, one logit per attribute, minibatch-stddev off."""
    if not attributes:
        raise ConfigError("a classifier needs at least one attribute")
    d = DiscriminatorConfig(
        resolution=resolution,
        img_channels=img_channels,
        fmap_base=fmap_base,
        fmap_max=fmap_max,
        mbstd_group_size=0,
        out_features=len(attributes),
    )
    return ClassifierConfig(tuple(attributes), d)


class AttributeClassifier(torch.nn.Module):
    """images [N, C, R, R] in [-1, 1] -> logits [N, A]; logit > 0 means "attribute present"."""

    def __init__(self, config: ClassifierConfig, seed: int = 0):
        super().__init__()
        self.config = config
        self.net = Discriminator(config.discriminator, seed=seed)  # weights depend only on seed
        self.source: str | None = None  # file it was loaded from (recorded in results)
        self.sha256: str | None = None
        self.report: dict = {}  # the TrainReport stored with it, as a dict ({} if none)

    @property
    def attribute_names(self) -> list[str]:
        return list(self.config.attributes)

    @property
    def resolution(self) -> int:
        return self.config.resolution

    @property
    def img_channels(self) -> int:
        return self.config.img_channels

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        n, c, h, w = img.shape
        assert (c, h, w) == (self.img_channels, self.resolution, self.resolution), (
            f"expected [N, {self.img_channels}, {self.resolution}, {self.resolution}], got {tuple(img.shape)}"
        )
        return self.net(img).reshape(n, -1)  # [N, A]

    def probabilities(self, img: torch.Tensor) -> torch.Tensor:
        """P(attribute present) [N, A] = softmax([logit, -logit])[0] = sigmoid(2 * logit)."""
        return torch.sigmoid(2.0 * self.forward(img).double())


def build_classifier(config: ClassifierConfig, seed: int) -> AttributeClassifier:
    """A freshly initialised classifier whose weights depend only on (config, seed)."""
    return AttributeClassifier(config, seed=derive_seed(seed, 2))


def to_classifier_input(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, C, R, R] in [-1, 1], area-downsampled by an integer factor."""
    x = images.float() / 127.5 - 1.0
    try:
        return area_downsample(x, resolution)
    except ValueError as e:
        raise DatasetError(f"images are {images.shape[-1]}px: {e}; choose a resolution that divides it") from None


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainConfig:
    kimg: float = 40.0  # thousands of training images shown in total
    batch_size: int = 32
    lr: float = 0.002  # Adam learning rate
    betas: tuple[float, float] = (0.9, 0.99)
    holdout: float = 0.1  # fraction of the images held out for the accuracy report (0 < holdout < 1)
    mirror: bool = False  # random horizontal flips (only if no attribute is left/right specific)
    seed: int = 0  # split, initialisation and minibatch order

    def __post_init__(self):
        if self.kimg <= 0 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"kimg, batch_size and lr must be positive, got {self.kimg}, {self.batch_size}, {self.lr}")
        if not 0 < self.holdout < 1:
            raise ConfigError(f"holdout must be a fraction between 0 and 1, got {self.holdout}")


@dataclass(frozen=True)
class TrainReport:
    attributes: tuple[str, ...]
    heldout_accuracy: tuple[float, ...]  # per attribute, on the held-out images
    train_accuracy: tuple[float, ...]  # per attribute, on the training images
    majority_baseline: tuple[float, ...]  # held-out accuracy of always answering the majority class
    num_train: int
    num_heldout: int
    images_shown: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_labels(labels: torch.Tensor, attributes: list[str] | tuple[str, ...], num_images: int) -> None:
    """labels int8 [N, A] of 1 / -1 (0 = unknown, ignored): one row per image, two classes each."""
    if labels.ndim != 2 or labels.shape[1] != len(attributes):
        raise DatasetError(f"labels must be [N, {len(attributes)}], got shape {tuple(labels.shape)}")
    if labels.shape[0] != num_images:
        raise DatasetError(f"{labels.shape[0]} label rows for {num_images} images; the attribute file does not match the images")
    for a, name in enumerate(attributes):
        col = labels[:, a]
        pos, neg = int((col > 0).sum()), int((col < 0).sum())
        if pos == 0 or neg == 0:
            only = "1 (present)" if pos else "-1 (absent)"
            raise DatasetError(
                f"attribute {name!r} has a single class ({only} for all {pos + neg} labelled images); "
                "a classifier cannot learn it: drop it from --attributes"
            )


def split_indices(num: int, holdout: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, held-out) index tensors: a permutation that depends only on (num, seed)."""
    perm = torch.randperm(num, generator=torch_generator(seed, 0))
    k = max(1, int(round(holdout * num)))
    if k >= num:
        raise DatasetError(f"{num} images are too few to hold out {k}")
    return perm[k:].sort().values, perm[:k].sort().values


@torch.no_grad()
def evaluate_accuracy(model: AttributeClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Per-attribute accuracy [A] over the labelled (non-zero) entries; images uint8 [N, C, H, W]."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros(labels.shape[1], dtype=torch.float64)
    known = (labels != 0).sum(0).double()
    for s in range(0, images.shape[0], batch_size):
        x = to_classifier_input(images[s : s + batch_size], model.resolution)
        logits = model(x.to(device)).cpu()
        y = labels[s : s + batch_size]
        correct += ((logits > 0) == (y > 0)).logical_and(y != 0).sum(0).double()
    return correct / known.clamp(min=1)


def train_classifier(
    images: torch.Tensor,  # uint8 [N, C, H, W], H a multiple of config.resolution
    labels: torch.Tensor,  # int8 [N, A] of 1 / -1 / 0 (unknown; left out of loss and accuracy)
    config: ClassifierConfig,
    train: TrainConfig = TrainConfig(),
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[AttributeClassifier, TrainReport]:
    """Train on a seeded split of the images; report per-attribute held-out accuracy."""
    check_labels(labels, config.attributes, images.shape[0])
    if images.shape[1] != config.img_channels:
        raise DatasetError(f"images have {images.shape[1]} channels, the classifier expects {config.img_channels}")
    to_classifier_input(images[:1], config.resolution)  # refuse a non-integer downsampling factor now
    device = torch.device(device)
    y = labels.to(torch.int8)
    tr, ho = split_indices(images.shape[0], train.holdout, train.seed)
    model = build_classifier(config, train.seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=train.lr, betas=train.betas)

    total = max(1, round(train.kimg * 1000))
    shown, epoch = 0, 0
    bar = tqdm(total=total, unit="img", desc="training classifier", disable=not progress)
    while shown < total:
        order = tr[torch.randperm(len(tr), generator=torch_generator(train.seed, 1, epoch))]
        for s in range(0, len(order), train.batch_size):
            if shown >= total:
                break
            idx = order[s : s + min(train.batch_size, total - shown)]  # stop at exactly kimg
            # Convert per batch: the dataset stays uint8 in memory (a quarter of float32).
            xb, yb = to_classifier_input(images[idx], config.resolution).to(device), y[idx].to(device)
            if train.mirror:
                flip = torch.rand(len(idx), generator=torch_generator(train.seed, 3, epoch, s)) < 0.5
                xb = torch.where(flip.to(device)[:, None, None, None], xb.flip(3), xb)
            model.train()
            logits = model(xb)  # [B, A]
            known = (yb != 0).float()
            # two-class cross-entropy of softmax([l, -l]) == BCE on 2 l
            loss = F.binary_cross_entropy_with_logits(2 * logits, (yb > 0).float(), weight=known, reduction="sum")
            loss = loss / known.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            shown += len(idx)
            bar.update(len(idx))
        epoch += 1
    bar.close()
    if not all(torch.isfinite(p).all() for p in model.parameters()):
        raise ConfigError(f"classifier training diverged (non-finite weights); lower the learning rate (lr={train.lr})")

    y_ho = y[ho]
    majority = torch.maximum((y_ho > 0).sum(0), (y_ho < 0).sum(0)).double() / (y_ho != 0).sum(0).clamp(min=1)
    report = TrainReport(
        attributes=config.attributes,
        heldout_accuracy=tuple(evaluate_accuracy(model, images[ho], y_ho).tolist()),
        train_accuracy=tuple(evaluate_accuracy(model, images[tr], y[tr]).tolist()),
        majority_baseline=tuple(majority.tolist()),
        num_train=len(tr),
        num_heldout=len(ho),
        images_shown=shown,
    )
    return model.eval(), report


# ---------------------------------------------------------------------------------------------
# Checkpoints


def save_classifier(path: str | os.PathLike, model: AttributeClassifier, report: TrainReport | None = None) -> Path:
    """Write weights + JSON config (+ the training report) atomically."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config_json": json.dumps(model.config.to_dict(), sort_keys=True),
        "report_json": json.dumps(report.to_dict() if report else {}, sort_keys=True),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_open(path) as f:
        torch.save(payload, f)
    return path


def load_classifier(path: str | os.PathLike, device: str | torch.device = "cpu") -> AttributeClassifier:
    """A classifier saved by `save_classifier`, in eval mode; never runs code from the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier {path}: no such file")
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(f"classifier {path}: not a classifier checkpoint (not a PyTorch zip archive)")
    try:
        payload = read_data(path)  # torch.load(weights_only=True): never runs code from the file
    except WeightsFileError as e:
        raise CheckpointError(f"classifier {path}: {e}") from None
    except OSError as e:
        raise CheckpointError(f"classifier {path}: cannot read it ({e.strerror or type(e).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"classifier {path}: not a classifier checkpoint (no '{FORMAT}' marker); is it a generator?")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"classifier {path}: format version {payload.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        config = ClassifierConfig.from_dict(json.loads(payload["config_json"]))
        model = AttributeClassifier(config)
        model.load_state_dict(payload["state_dict"], strict=True)
        model.report = json.loads(payload.get("report_json", "{}"))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        detail = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"classifier {path}: config or weights unusable ({detail})") from None
    model.source, model.sha256 = str(path), file_sha256(path)
    return model.to(device).eval().requires_grad_(False)

