"""LPIPS-VGG16 (v0.1) as the perceptual distance of the perceptual path length.

The official StyleGAN PPL measures with `vgg16_zhang_perceptual.pkl`, the TF port of Zhang et
al.'s LPIPS (VGG16 trunk, learned linear layers v0.1), fed images in [0, 255]. Here the same
network comes from the `lpips` package, whose convention is images in [-1, 1] (`normalize=False`):
generator output goes in unscaled. Feeding [0, 1] or [0, 255] would silently change the values.

Weights:
- the VGG16 trunk is torchvision's ImageNet file `vgg16-397923af.pth`, loaded by torchvision
  (through `lpips`) from the torch hub cache, `$TORCH_HOME/hub/checkpoints/`; it is located first
  with `stylegan_eval.weights.resolve`, so a missing file is one clear line (MissingWeightsError);
- the linear layers are the v0.1 weights shipped inside the `lpips` package;
- only when the caller allows it (`substitute=True`) and the trunk file is absent, a seeded random
  VGG16 trunk stands in, labelled `substitute:random-vgg16-seed<k>` in the FeatureNetwork record.

`LPIPSDistance` computes exactly `lpips.LPIPS.forward` but pushes both images of each pair
through the trunk in one batch (one backbone forward instead of two).
"""

import contextlib
import os
import pickle
import warnings

import lpips
import torch
from torch import nn

from stylegan_core.errors import UserError
from stylegan_eval.records import FeatureNetwork, file_sha256
from stylegan_eval.weights import MissingWeightsError, PretrainedFile, resolve

NAME = "lpips-vgg16-v0.1"

VGG16_FILE = PretrainedFile(
    what="ImageNet VGG16 (torchvision) for LPIPS",
    filename="vgg16-397923af.pth",
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
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
    """Build lpips/torchvision modules without touching the global RNG (their random init is
    overwritten anyway) and without torchvision's `pretrained=` deprecation warnings, which
    lpips 0.1.4 triggers and users cannot act on."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\.models\._utils")
        yield


def _pretrained_model() -> tuple[lpips.LPIPS, FeatureNetwork]:
    path = resolve(VGG16_FILE)  # MissingWeightsError when absent and not downloadable
    try:
        with _quiet_construction():
            # torchvision finds the file in the hub cache and loads it; lpips adds its v0.1 linear layers.
            model = lpips.LPIPS(net="vgg", version="0.1", pretrained=True, pnet_rand=False, verbose=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:
        raise UserError(
            f"{path}: not a usable VGG16 weights file ({type(e).__name__}); delete it and place "
            f"{VGG16_FILE.url} there"
        ) from None
    identity = FeatureNetwork(name=NAME, weights=str(path), substitute=False, sha256=file_sha256(path))
    return model, identity


def _linear_weights_path() -> str:
    return os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "vgg.pth")


def substitute_model(seed: int = 0) -> tuple[lpips.LPIPS, FeatureNetwork]:
    """LPIPS with a random VGG16 trunk drawn from `seed` (torchvision's init: Kaiming-normal
    fan-out convs, zero biases) and the package's real v0.1 linear layers."""
    with _quiet_construction(), torch.device("meta"):
        # On the meta device nothing is allocated or initialised: no 100M-parameter classifier.
        model = lpips.LPIPS(net="vgg", version="0.1", pretrained=False, pnet_rand=True, verbose=False)
    model.to_empty(device="cpu")
    model.scaling_layer = lpips.lpips.ScalingLayer()  # its constant buffers were lost on meta
    gen = torch.Generator().manual_seed(seed)
    for module in model.net.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu", generator=gen)
            nn.init.zeros_(module.bias)
    linear = torch.load(_linear_weights_path(), map_location="cpu", weights_only=True)
    missing, unexpected = model.load_state_dict(linear, strict=False)
    # `lins.k` aliases `link`; the file holds `link` only and must fill all five.
    if unexpected or sorted(linear) != [f"lin{k}.model.1.weight" for k in range(5)]:
        raise RuntimeError(f"unexpected lpips v0.1 linear weights file: {sorted(linear)}")
    identity = FeatureNetwork(name=NAME, weights=f"substitute:random-vgg16-seed{seed}", substitute=True)
    return model.eval(), identity


def load_lpips(substitute: bool = False, substitute_seed: int = 0, device: str | torch.device = "cpu") -> LPIPSDistance:
    """The LPIPS-VGG16 v0.1 distance on `device`.

    substitute: False (default) -> the pretrained trunk or MissingWeightsError naming the file and
                where to put it; True -> the pretrained trunk when available, otherwise a seeded
                random trunk (`substitute_model(substitute_seed)`), labelled as such in `.identity`.
    """
    try:
        model, identity = _pretrained_model()
    except MissingWeightsError:
        if not substitute:
            raise
        model, identity = substitute_model(substitute_seed)
    return LPIPSDistance(model, identity).to(device)
