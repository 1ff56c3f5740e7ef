"""Inception-v3 pool3 features for FID: torch-fidelity's `inception-v3-compat` extractor.

That network reproduces the TensorFlow Inception graph the official StyleGAN FID used
(2015-12-05 weights, TF1-style bilinear resize to 299x299, TF's pooling quirks) and takes uint8
images [N, 3, H, W]. We construct torch-fidelity's own `FeatureExtractorInceptionV3`, but its
weights are read by `stylegan_eval.weights` (the official file's SHA-256 checked against the hash
in its name, `torch.load(weights_only=True)`, names and shapes checked) and handed over as a state
dict: torch-fidelity's loader never opens a user's file. The file is the torch hub cache's (under
TORCH_HOME, the name torch-fidelity downloads to), or an explicit path (`weights_path`,
$STYLEGAN_EVAL_INCEPTION_WEIGHTS), so that a missing file is a one-line error instead of a
download attempt offline.

Without the file, and only when asked (`substitute=True`), the same architecture gets seeded
random weights (He-normal convolutions, identity batch norm). Its FIDs are not comparable with
any published number and are labelled `substitute:random-inception-seed<k>` in every record. A
file that is present but wrong, unsafe or corrupt is an error even then.
tests/eval/test_inception.py shows that the substitute still puts a blurred copy of a dataset far
from the dataset itself (5x the FID between two halves, 8 images per half at 16x16). It is weak on
additive pixel noise at that size (sigma 60/255 gives only 1.8x), which the real network is not.
"""

import io
from pathlib import Path

import torch
from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3, FeatureExtractorInceptionV3

from stylegan_core.seeding import torch_generator
from stylegan_eval.feature_extractor import FeatureExtractor
from stylegan_eval.weights import MissingWeightsError, PretrainedFile, load_pretrained

NAME = "inception-v3-compat"  # torch-fidelity's registry name for this extractor
FEATURE_LAYER = "2048"  # pool3, the FID layer (torch-fidelity's default feature_layer_fid)
FEATURE_DIM = 2048

INCEPTION_WEIGHTS = PretrainedFile(
    what="Inception-v3 for FID (torch-fidelity inception-v3-compat)",
    filename=URL_INCEPTION_V3.rsplit("/", 1)[-1],  # the name torch.hub caches it under
    url=URL_INCEPTION_V3,
    sha256_prefix="6726825d",  # the hash in the published name (torch hub's convention: SHA-256 prefix)
    env_var="STYLEGAN_EVAL_INCEPTION_WEIGHTS",
)


def load_inception(
    device: str | torch.device = "cpu",
    weights_path: str | Path | None = None,  # the user's own file; None: $STYLEGAN_EVAL_INCEPTION_WEIGHTS or the hub cache
    substitute: bool = False,  # when the hub cache has no file: False -> MissingWeightsError, True -> random
    substitute_seed: int = 0,  # seed of the substitute's random weights
) -> FeatureExtractor:
    """The FID feature extractor on `device`, with the real weights whenever they can be had.

    A file that is present (or named) but not usable raises WeightsFileError, with or without
    `substitute`."""
    net = _structure()
    expected = {k: v.shape for k, v in net.state_dict().items()}
    try:
        weights = load_pretrained(INCEPTION_WEIGHTS, expected, weights_path)
    except MissingWeightsError:
        if not substitute:
            raise
        return substitute_inception(substitute_seed).to(device)
    net.load_weights(weights.state)
    return FeatureExtractor.pretrained(net, NAME, weights, FEATURE_DIM).to(device)


class _StructureOnly(FeatureExtractorInceptionV3):
    """torch-fidelity's network with its own weight loading bypassed (it receives an empty state
    dict and keeps PyTorch's initial parameters): its exact module structure, offline, with no
    file opened. `load_weights` then loads a state dict that `check_layout` has checked."""

    def load_state_dict(self, state_dict, strict=True, assign=False):
        if state_dict:
            raise RuntimeError("_StructureOnly loads weights with load_weights only")
        return None

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            super().load_state_dict(state, strict=True)


def _empty_state_file() -> io.BytesIO:
    buf = io.BytesIO()
    torch.save({}, buf)
    buf.seek(0)
    return buf


def _structure() -> _StructureOnly:
    with torch.random.fork_rng(devices=[]):  # construction draws initial weights from the global RNG
        return _StructureOnly(NAME, [FEATURE_LAYER], feature_extractor_weights_path=_empty_state_file())


@torch.no_grad()
def _random_net(seed: int) -> _StructureOnly:
    # Convolutions He-normal (std sqrt(2 / fan_in): activations stay O(1) through the ReLUs),
    # batch norm identity (weight 1, bias 0, running mean 0, var 1), fc N(0, 1 / fan_in).
    net = _structure()
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


def substitute_inception(seed: int = 0) -> FeatureExtractor:
    """The clearly labelled random-weights stand-in (CPU); see random_inception_state_dict."""
    net = _random_net(seed)
    return FeatureExtractor.substitute(net, NAME, f"random-inception-seed{seed}", FEATURE_DIM)
