"""The paper's own attribute classifiers for linear separability: the 40 CelebA-HQ networks of
NVlabs/stylegan (celebahq-classifier-00-male.pkl ... -39-wearing-necktie.pkl), read as data.

Each file is one official Network built by D_basic (a discriminator at 256x256 with one output
logit), so it maps onto this project's `Discriminator` with every option its static_kwargs set
(see stylegan_core.formats.official_tf_networks). The official metric feeds it generator images in
[-1, 1], area-downsampled to 256, and takes softmax([logit, -logit]) (metrics/linear_separability.py).

Minibatch standard deviation: D_basic appends the standard deviation over a group of samples
(mbstd_group_size, 4 by default), so a sample's logit depends on the other samples of its group.
The official metric ran minibatches of 4 per GPU, i.e. one group = 4 consecutively generated
samples. Here every call is split into consecutive runs of `group_size` rows, each one group
(the last run may be shorter; the official layer then uses the whole, smaller minibatch). With
one process and a batch size that is a multiple of the group size, group k is always samples
4k..4k+3, so the result is independent of the batch size; `stylegan-eval ls` refuses other
batch sizes. Several processes sample strided shards, so groups (and the value, slightly) change
with the number of processes.
"""

import hashlib
import os
import re
from pathlib import Path

import torch

from stylegan_core.errors import CheckpointError
from stylegan_core.formats.official_tf import file_sha256, is_official_pickle, read_official_pickle
from stylegan_core.formats.official_tf_networks import official_discriminator

# "celebahq-classifier-07-big-nose.pkl" -> (7, "big-nose")
_NAME = re.compile(r"classifier-(\d+)-(.+)$")


def attribute_of(path: Path) -> tuple[int | None, str]:
    """(index, attribute name) from an official classifier's file name; (None, stem) otherwise."""
    m = _NAME.search(path.stem)
    return (int(m.group(1)), m.group(2)) if m else (None, path.stem)


class OfficialAttributeClassifiers(torch.nn.Module):
    """images [N, C, R, R] in [-1, 1] -> logits [N, A], one official classifier per attribute."""

    def __init__(self, nets: list[torch.nn.Module], names: list[str], source: str, sha256: str):
        super().__init__()
        self.nets = torch.nn.ModuleList(nets)
        self.names = list(names)
        first = nets[0].config
        self.group_size = max(1, max(n.config.mbstd_group_size for n in nets))
        self._resolution, self._channels = first.resolution, first.img_channels
        self.source, self.sha256 = source, sha256
        self.report: dict = {}

    @property
    def attribute_names(self) -> list[str]:
        return list(self.names)

    @property
    def resolution(self) -> int:
        return self._resolution

    @property
    def img_channels(self) -> int:
        return self._channels

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        n = img.shape[0]
        out = []
        for start in range(0, n, self.group_size):  # one minibatch-stddev group per run of rows
            chunk = img[start : start + self.group_size]
            out.append(torch.cat([net(chunk).reshape(len(chunk), 1) for net in self.nets], dim=1))
        return torch.cat(out) if out else img.new_zeros(0, len(self.nets))  # [N, A]

    def probabilities(self, img: torch.Tensor) -> torch.Tensor:
        """P(attribute present) [N, A] = softmax([logit, -logit])[0] = sigmoid(2 * logit)."""
        return torch.sigmoid(2.0 * self.forward(img).double())


def classifier_files(paths: list[str | os.PathLike]) -> list[Path]:
    """Folders expand to their *.pkl files; order: the official index, else the name."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.pkl"))
            if not found:
                raise CheckpointError(f"classifier folder {p}: holds no .pkl files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise CheckpointError(f"classifier {p}: no such file or folder")
    return sorted(dict.fromkeys(files), key=lambda f: (attribute_of(f)[0] is None, attribute_of(f)[0] or 0, f.name))


def load_official_classifiers(paths: list[str | os.PathLike], device: str | torch.device = "cpu") -> OfficialAttributeClassifiers:
    """The official attribute classifiers in `paths` (files and/or folders), named by attribute."""
    files = classifier_files(paths)
    nets, names, hashes = [], [], []
    for f in files:
        if not is_official_pickle(f):
            raise CheckpointError(f"classifier {f}: not an official StyleGAN classifier pickle")
        found = read_official_pickle(f)
        if len(found) != 1 or found[0].build_func_name != "D_basic":
            raise CheckpointError(f"classifier {f}: expected one D_basic network, found "
                                  f"{', '.join(n.build_func_name for n in found)}")
        nets.append(official_discriminator(found[0]))
        names.append(attribute_of(f)[1])
        hashes.append(file_sha256(f))
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise CheckpointError(f"classifiers: attribute name(s) {dup} given twice")
    shapes = {(n.config.resolution, n.config.img_channels) for n in nets}
    if len(shapes) != 1:
        raise CheckpointError(f"classifiers: networks differ in resolution/channels {sorted(shapes)}")
    folders = sorted({str(f.parent) for f in files})
    source = f"{len(files)} official classifiers in {', '.join(folders)}"
    combined = hashlib.sha256("".join(f"{n}:{h}\n" for n, h in zip(names, hashes)).encode()).hexdigest()
    return OfficialAttributeClassifiers(nets, names, source, combined).to(device).eval().requires_grad_(False)
