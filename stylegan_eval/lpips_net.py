"""LPIPS-VGG16 (v0.1) as the perceptual distance of the perceptual path length.

The official StyleGAN PPL measures with `vgg16_zhang_perceptual.pkl`, the TF port of Zhang et
al.'s LPIPS (VGG16 trunk, learned linear layers v0.1), fed images in [0, 255]. Here the same
network comes from the `lpips` package, whose convention is images in [-1, 1] (`normalize=False`):
generator output goes in unscaled. Feeding [0, 1] or [0, 255] would silently change the values.

Weights, all read by `stylegan_eval.weights` (SHA-256 checked, `weights_only=True`), never by
lpips or torchvision, whose loader would unpickle whatever the hub cache holds:
- the VGG16 trunk is torchvision's ImageNet file `vgg16-397923af.pth` (`stylegan_eval.vgg16.VGG16_FILE`,
  shared with the precision/recall features) from the torch hub cache, `$TORCH_HOME/hub/checkpoints/`,
  or the user's own file named by `weights_path` or $STYLEGAN_EVAL_VGG16_WEIGHTS; a missing file is
  one clear line (MissingWeightsError);
- the linear layers are the v0.1 weights shipped inside the `lpips` package (pinned SHA-256);
- only when the caller allows it (`substitute=True`) and the trunk file is absent, a seeded random
  VGG16 trunk stands in, labelled `substitute:random-vgg16-seed<k>` in the FeatureNetwork record.
  A trunk file that is present but wrong, unsafe or corrupt is an error even then.
The network is built empty (`lpips.LPIPS(pretrained=False)` on the meta device) and receives
those state dicts, so its values are exactly those of `lpips.LPIPS(net="vgg", version="0.1")`.

`LPIPSDistance` computes `lpips.LPIPS.forward` (equal up to float32 rounding) but pushes both
images of each pair through the trunk in one batch (one backbone forward instead of two), in the
channels_last layout.
"""

import contextlib
import os
import warnings
from pathlib import Path

import lpips
import torch
from torch import nn

from stylegan_eval.records import FeatureNetwork
from stylegan_eval.vgg16 import VGG16_FILE, vgg16_shapes
from stylegan_eval.weights import (
    MissingWeightsError,
    PretrainedFile,
    WeightsFile,
    check_layout,
    load_pretrained,
    load_state_dict,
)

NAME = "lpips-vgg16-v0.1"

LINEAR_V01_FILE = PretrainedFile(
    what="LPIPS v0.1 linear layers (shipped in the lpips package)",
    filename="vgg.pth",
    url="https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
    # The file as shipped by lpips 0.1.4; the v0.1 weights have not changed since their release.
    sha256_prefix="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
)

# Five max-pools inside the trunk's slices: smaller inputs shrink to zero before relu5_3.
MIN_IMAGE_SIZE = 16


class LPIPSDistance(nn.Module):
    """LPIPS distance between two image batches, [N, 3, H, W] each in [-1, 1] -> [N].

    Same value as `lpips.LPIPS(net="vgg", version="0.1")(img0, img1)` (normalize=False), with
    both batches sharing one trunk forward. `identity` says which weights it measures with.
    """

    min_image_size = MIN_IMAGE_SIZE

    def __init__(self, model: lpips.LPIPS, identity: FeatureNetwork):
        super().__init__()
        if model.pnet_type not in ("vgg", "vgg16") or model.version != "0.1" or not model.lpips:
            raise ValueError("LPIPSDistance expects lpips.LPIPS(net='vgg', version='0.1', lpips=True)")
        self.model = model.eval().requires_grad_(False)
        # The trunk's weights channels_last: its convolutions then run in that layout, about
        # 1.2x faster on CPU for the same values up to float32 rounding.
        self.model.net.to(memory_format=torch.channels_last)
        self.identity = identity

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if img0.shape != img1.shape or img0.ndim != 4 or img0.shape[1] != 3:
            raise ValueError(f"expected two [N, 3, H, W] batches, got {tuple(img0.shape)} and {tuple(img1.shape)}")
        n = img0.shape[0]
        x = self.model.scaling_layer(torch.cat([img0, img1]))  # [2N, 3, H, W], ImageNet-normalised
        total = torch.zeros(n, device=img0.device, dtype=img0.dtype)
        for lin, feat in zip(self.model.lins, self.model.net(x)):
            feat = lpips.normalize_tensor(feat)  # unit length along channels
            diff = (feat[:n] - feat[n:]).square()  # [N, C_k, h_k, w_k]
            total = total + lin(diff).mean(dim=(1, 2, 3))  # lin -> [N, 1, h_k, w_k]; spatial average
        return total


@contextlib.contextmanager
def _quiet_construction():
    """Build lpips/torchvision modules without touching the global RNG and without
    torchvision's `pretrained=` deprecation warnings, which lpips 0.1.4 triggers and users
    cannot act on."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\.models\._utils")
        yield


def _linear_weights_path() -> str:
    return os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")


def _structure() -> lpips.LPIPS:
    """lpips.LPIPS(net='vgg', version='0.1') with every parameter uninitialised except the input
    scaling constants: the caller must load the trunk, and this loads the v0.1 linear layers."""
    with _quiet_construction(), torch.device("meta"):
        # On the meta device nothing is allocated, initialised or read: no 138M-parameter
        # classifier, and no weights file handed to torchvision.
        model = lpips.LPIPS(net="vgg", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    model.to_empty(device="cpu")
    model.scaling_layer = lpips.lpips.ScalingLayer()  # its constant buffers were lost on meta
    file = WeightsFile(Path(_linear_weights_path()), LINEAR_V01_FILE, official=True)
    linear = load_state_dict(file)
    names = [f"lin{k}.model.1.weight" for k in range(5)]  # `lins.k` aliases `link`: five tensors fill both
    own = model.state_dict()
    check_layout(linear, file, {k: own[k].shape for k in names})
    model.load_state_dict(linear.state, strict=False)
    return model


def _load_trunk(model: lpips.LPIPS, state: dict[str, torch.Tensor]) -> None:
    """torchvision's `features.<i>.*` into lpips's `slice<k>.<i>.*` (lpips keeps the index i)."""
    mapped = {name: state["features." + name.split(".", 1)[1]] for name in model.net.state_dict()}
    model.net.load_state_dict(mapped, strict=True)


def _pretrained_model(weights_path: str | os.PathLike | None = None) -> tuple[lpips.LPIPS, FeatureNetwork]:
    weights = load_pretrained(VGG16_FILE, vgg16_shapes(), weights_path)  # Missing/WeightsFileError
    model = _structure()
    _load_trunk(model, weights.state)
    identity = FeatureNetwork(name=NAME, weights=str(weights.path), substitute=False, sha256=weights.sha256)
    return model.eval(), identity


def substitute_model(seed: int = 0) -> tuple[lpips.LPIPS, FeatureNetwork]:
    """LPIPS with a random VGG16 trunk drawn from `seed` (torchvision's init: Kaiming-normal
    fan-out convs, zero biases) and the package's real v0.1 linear layers."""
    model = _structure()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(module.bias)
    identity = FeatureNetwork(name=NAME, weights=f"substitute:random-vgg16-seed{seed}", substitute=True)
    return model.eval(), identity


def load_lpips(
    substitute: bool = False,  # when the trunk file is absent: False -> MissingWeightsError, True -> random
    substitute_seed: int = 0,  # seed of the substitute's random trunk
    device: str | torch.device = "cpu",
    weights_path: str | os.PathLike | None = None,  # the user's own VGG16 file; None: $STYLEGAN_EVAL_VGG16_WEIGHTS or the hub cache
) -> LPIPSDistance:
    """The LPIPS-VGG16 v0.1 distance on `device`, with the pretrained trunk whenever it can be had.

    A trunk file that is present but not usable (hash mismatch, pickled objects, truncated, wrong
    names or shapes) raises WeightsFileError, with or without `substitute`.
    """
    try:
        model, identity = _pretrained_model(weights_path)
    except MissingWeightsError:
        if not substitute:
            raise
        model, identity = substitute_model(substitute_seed)
    return LPIPSDistance(model, identity).to(device)
