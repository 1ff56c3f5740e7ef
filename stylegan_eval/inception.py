"""Inception-v3 pool3 features for FID: torch-fidelity's `inception-v3-compat` extractor.

That network reproduces the TensorFlow Inception graph the official StyleGAN FID used
(2015-12-05 weights, TF1-style bilinear resize to 299x299, TF's pooling quirks) and takes uint8
images [N, 3, H, W]. We construct torch-fidelity's own `FeatureExtractorInceptionV3` and let its
own code load the weights file (`torch.load` + strict `load_state_dict`); we only find the file
first (torch hub cache under TORCH_HOME, the name torch-fidelity downloads to, or an explicit
path) so that a missing file is a one-line error instead of a download attempt offline.

Without the file, and only when asked (`substitute=True`), the same architecture gets seeded
random weights (He-normal convolutions, identity batch norm). Its FIDs are not comparable with
any published number and are labelled `substitute:random-inception-seed<k>` in every record.
tests/eval/test_inception.py shows that it still puts a blurred copy of a dataset far from the
dataset itself (5x the FID between two halves, 8 images per half at 16x16). It is weak on
additive pixel noise at that size (sigma 60/255 gives only 1.8x), which the real network is not.
"""

import io
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from stylegan_core.errors import UserError
from stylegan_core.seeding import torch_generator
from stylegan_eval.fid_cache import tensors_sha256
from stylegan_eval.records import FeatureNetwork, file_sha256
from stylegan_eval.weights import MissingWeightsError, PretrainedFile, resolve

NAME = "inception-v3-compat"  # torch-fidelity's registry name for this extractor
FEATURE_LAYER = "2048"  # pool3, the FID layer (torch-fidelity's default feature_layer_fid)
FEATURE_DIM = 2048

INCEPTION_WEIGHTS = PretrainedFile(
    what="Inception-v3 for FID (torch-fidelity inception-v3-compat)",
    filename=URL_INCEPTION_V3.rsplit("/", 1)[-1],  # the name torch.hub caches it under
    url=URL_INCEPTION_V3,
)


class InceptionFeatures(torch.nn.Module):
    """uint8 images [N, 3, H, W] (any H, W) -> float32 pool3 features [N, 2048].

    `identity` is what records carry; `digest` (SHA-256 of the weights) keys caches.
    """

    def __init__(self, net: FeatureExtractorInceptionV3, identity: FeatureNetwork, digest: str):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.identity = identity
        self.digest = digest
        self.dim = FEATURE_DIM

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {list(images.shape)}")
        (features,) = self.net(images)
        return features  # [N, 2048]


def load_inception(
    device: str | torch.device = "cpu",
    weights_path: str | Path | None = None,  # explicit file; None: the torch hub cache
    substitute: bool = False,  # when the file is absent: False -> MissingWeightsError, True -> random
    substitute_seed: int = 0,  # seed of the substitute's random weights
) -> InceptionFeatures:
    """The FID feature extractor on `device`, with the real weights whenever they can be had."""
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise MissingWeightsError(f"{INCEPTION_WEIGHTS.what}: weights file {path} not found")
    else:
        try:
            path = resolve(INCEPTION_WEIGHTS)
        except MissingWeightsError:
            if not substitute:
                raise
            return substitute_inception(substitute_seed).to(device)
    try:
        with torch.random.fork_rng(devices=[]):  # construction draws initial weights from the global RNG
            net = FeatureExtractorInceptionV3(NAME, [FEATURE_LAYER], feature_extractor_weights_path=str(path))
    except Exception as e:  # corrupt file, wrong keys or shapes: all mean "this file is unusable"
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else ""
        raise UserError(
            f"{path}: not a usable {NAME} weights file ({type(e).__name__}: {first}); replace it with "
            f"{INCEPTION_WEIGHTS.url}"
        ) from None
    identity = FeatureNetwork(name=NAME, weights=str(path), substitute=False, sha256=file_sha256(path))
    return InceptionFeatures(net, identity, identity.sha256).to(device)


class _StructureOnly(FeatureExtractorInceptionV3):
    """torch-fidelity's network with its weight loading bypassed (it receives an empty state dict
    and keeps PyTorch's initial parameters), so its exact module structure is available offline."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        if state_dict:
            raise RuntimeError("_StructureOnly never loads weights")
        return None


def _empty_state_file() -> io.BytesIO:
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return buf


@torch.no_grad()
def _random_net(seed: int) -> FeatureExtractorInceptionV3:
    # Convolutions He-normal (std sqrt(2 / fan_in): activations stay O(1) through the ReLUs),
    # batch norm identity (weight 1, bias 0, running mean 0, var 1), fc N(0, 1 / fan_in).
    with torch.random.fork_rng(devices=[]):  # construction draws initial weights from the global RNG
        net = _StructureOnly(NAME, [FEATURE_LAYER], feature_extractor_weights_path=_empty_state_file())
    gen = torch_generator(seed)
    for module in net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            fan_in = module.weight[0].numel()
            gain = 2.0 if isinstance(module, torch.nn.Conv2d) else 1.0
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (gain / fan_in) ** 0.5)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, torch.nn.BatchNorm2d):
            module.reset_parameters()
    return net


def random_inception_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights with the key names and shapes of torch-fidelity's Inception: the
    substitute's weights, and what tests write as a stand-in weights file so that the real
    loading path runs on it."""
    return {k: v.clone() for k, v in _random_net(seed).state_dict().items()}


def substitute_inception(seed: int = 0) -> InceptionFeatures:
    """The clearly labelled random-weights stand-in (CPU); see random_inception_state_dict."""
    net = _random_net(seed)
    identity = FeatureNetwork(name=NAME, weights=f"substitute:random-inception-seed{seed}", substitute=True)
    return InceptionFeatures(net, identity, tensors_sha256(net.state_dict()))
