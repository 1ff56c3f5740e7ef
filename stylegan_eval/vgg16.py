"""VGG16 fc2 features for precision and recall: torch-fidelity's `vgg16` feature extractor.

torch-fidelity (>= 0.4) measures its `prc` metric (Kynkäänniemi et al. 2019) with torchvision's
ImageNet VGG16 (`vgg16-397923af.pth`): uint8 images resized to 224x224 with TF1-style bilinear
interpolation, ImageNet-normalised, through the convolutions and the first two fully connected
layers; the feature is fc2 after its ReLU (4096-d). We run torch-fidelity's own
`FeatureExtractorVGG16` module, so the features are its features.

torchvision's ImageNet VGG16 file is also the trunk of LPIPS (stylegan_eval.lpips_net): `VGG16_FILE`
here is its one description, shared by both, and `vgg16_shapes` its layout. Its weights are read by
`stylegan_eval.weights` only (SHA-256 checked against the hash in the official name
`vgg16-397923af.pth` when found in the torch hub cache, `$TORCH_HOME/hub/checkpoints/`;
`torch.load(weights_only=True)`; names and shapes checked), or the user's own file named by
`weights_path` or $STYLEGAN_EVAL_VGG16_WEIGHTS. torch-fidelity's constructor, which would unpickle
a file itself (`weights_only=False`), only ever sees a placeholder we serialise in memory, built on
the meta device (no allocation, no random initialisation), and the checked weights are copied in
afterwards. A missing file is one line naming where it goes; only when asked (`substitute=True`)
does a seeded random VGG16 stand in, labelled `substitute:random-vgg16-seed<k>` in every record.
A file that is present (or named) but wrong, unsafe or corrupt is an error even then.
"""

import io
import warnings
from pathlib import Path

import torch
import torchvision
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

from stylegan_core.seeding import torch_generator
from stylegan_eval.feature_extractor import FeatureExtractor
from stylegan_eval.weights import MissingWeightsError, PretrainedFile, load_pretrained

NAME = "vgg16"  # torch-fidelity's registry name for this extractor
FEATURE_LAYER = "fc2_relu"  # torch-fidelity's default layer for prc
FEATURE_DIM = 4096

# torchvision's IMAGENET1K_V1 file: the LPIPS trunk and torch-fidelity's `vgg16` weights.
VGG16_FILE = PretrainedFile(
    what="ImageNet VGG16 (torchvision)",
    filename="vgg16-397923af.pth",  # the name torch hub caches it under
    url="https://download.pytorch.org/models/vgg16-397923af.pth",
    sha256_prefix="397923af",  # the hash in the published name, checked by torchvision's own downloads too
    env_var="STYLEGAN_EVAL_VGG16_WEIGHTS",
)


def vgg16_shapes() -> dict[str, torch.Size]:
    """Key names and shapes of torchvision's VGG16 state dict (computed on the meta device)."""
    with torch.device("meta"):
        return {k: v.shape for k, v in torchvision.models.vgg16().state_dict().items()}


def _placeholder_file() -> io.BytesIO:
    # Every tensor a broadcast scalar: a few KB that torch-fidelity's constructor can load
    # strictly; its values never reach a feature (all kept weights are overwritten).
    buf = io.BytesIO()
    torch.save({k: torch.zeros(()).expand(shape) for k, shape in vgg16_shapes().items()}, buf)
    buf.seek(0)
    return buf


def _network(state: dict[str, torch.Tensor]) -> FeatureExtractorVGG16:
    """torch-fidelity's extractor with the weights of `state` (a full VGG16 state dict)."""
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(), torch.device("meta"):
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        net = FeatureExtractorVGG16(NAME, [FEATURE_LAYER], feature_extractor_weights_path=_placeholder_file())
    net.to_empty(device="cpu")
    kept = net.model.state_dict()  # its classifier ends at fc2: classifier.6 is not used
    net.model.load_state_dict({k: state[k] for k in kept}, strict=True)
    return net.eval().requires_grad_(False)


def load_vgg16(
    device: str | torch.device = "cpu",
    weights_path: str | Path | None = None,  # the user's own file; None: $STYLEGAN_EVAL_VGG16_WEIGHTS or the hub cache
    substitute: bool = False,  # when the hub cache has no file: False -> MissingWeightsError, True -> random
    substitute_seed: int = 0,  # seed of the substitute's random weights
) -> FeatureExtractor:
    """The precision/recall feature extractor on `device`, with the real weights whenever they
    can be had.

    A file that is present (or named) but not usable raises WeightsFileError, with or without
    `substitute`."""
    try:
        weights = load_pretrained(VGG16_FILE, vgg16_shapes(), weights_path)
    except MissingWeightsError:
        if not substitute:
            raise
        return substitute_vgg16(substitute_seed).to(device)
    net = _network(weights.state)
    return FeatureExtractor.pretrained(net, NAME, weights, FEATURE_DIM).to(device)


@torch.no_grad()
def random_vgg16_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """Seeded random VGG16 weights (all torchvision keys): convolutions and fully connected layers
    He-normal (std sqrt(2 / fan_in): every one feeds a ReLU, so activations stay O(1)), biases 0."""
    gen = torch_generator(seed)
    state = {}
    for k, shape in vgg16_shapes().items():
        if k.endswith("weight"):
            fan_in = shape[1:].numel()
            state[k] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        else:
            state[k] = torch.zeros(shape)
    return state


def substitute_vgg16(seed: int = 0) -> FeatureExtractor:
    """The clearly labelled random-weights stand-in (CPU); see random_vgg16_state_dict."""
    net = _network(random_vgg16_state_dict(seed))
    return FeatureExtractor.substitute(net, NAME, f"random-vgg16-seed{seed}", FEATURE_DIM)
