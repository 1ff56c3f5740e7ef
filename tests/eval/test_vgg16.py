"""stylegan_eval.vgg16: the real loading path on a stand-in weights file (features equal to
torch-fidelity's own extractor loading the same file), one-line errors, and the labelled substitute."""

import numpy as np
import pytest
import torch
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

from stylegan_core.errors import UserError
from stylegan_eval import vgg16
from stylegan_eval.records import file_sha256
from stylegan_eval.vgg16 import VGG16_WEIGHTS, load_vgg16, vgg16_shapes
from stylegan_eval.weights import MissingWeightsError


def standin_vgg16_state(seed=0):
    """Random VGG16 weights with torchvision's keys and shapes, each weight a strided view of a
    short random vector (entry [i, j, ...] = v[i + j + ...], scaled He-normal), so the file is a
    few hundred KB instead of 528 MB and every output unit still sees different weights."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, shape in vgg16_shapes().items():
        if k.endswith("weight"):
            v = torch.randn(sum(shape) - len(shape) + 1, generator=gen) * (2.0 / shape[1:].numel()) ** 0.5
            state[k] = v.as_strided(shape, [1] * len(shape))
        else:
            state[k] = torch.randn(shape, generator=gen) * 0.01
    return state


def install_standin_vgg16(torch_home, seed=0):
    """The stand-in where torch hub (torchvision, torch-fidelity, LPIPS) caches the real file."""
    path = torch_home / "hub" / "checkpoints" / VGG16_WEIGHTS.filename
    torch.save(standin_vgg16_state(seed), path)
    return path


def images(n, size=20, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


def test_hub_cache_file_name_is_torchvisions():
    assert VGG16_WEIGHTS.filename == "vgg16-397923af.pth" and VGG16_WEIGHTS.url.endswith("/vgg16-397923af.pth")


def test_real_loading_path_gives_torch_fidelitys_features(torch_home):
    path = install_standin_vgg16(torch_home)
    assert path.stat().st_size < 2_000_000
    before = torch.get_rng_state()
    net = load_vgg16()
    assert torch.equal(torch.get_rng_state(), before)
    assert net.identity.name == "vgg16" and not net.identity.substitute and net.dim == 4096
    assert net.identity.weights == str(path) and net.identity.sha256 == file_sha256(path) == net.digest
    theirs = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(path))
    x = images(2)
    ours = net(x)
    assert ours.shape == (2, 4096) and ours.dtype == torch.float32
    assert torch.equal(ours, theirs(x)[0])
    assert (ours > 0).float().mean() > 0.1 and (ours[0] - ours[1]).abs().max() > 0  # not degenerate
    assert load_vgg16(weights_path=path).digest == net.digest  # an explicit path: the same loader


def test_missing_weights_is_one_line_naming_the_file(torch_home):
    with pytest.raises(MissingWeightsError, match=r"not found at .*hub/checkpoints/vgg16-397923af\.pth.*--substitute-weights") as e:
        load_vgg16()
    assert "\n" not in str(e.value)
    with pytest.raises(MissingWeightsError, match=r"weights file .*nowhere\.pth not found"):
        load_vgg16(weights_path=torch_home / "nowhere.pth", substitute=True)


def test_unusable_files_are_one_line(torch_home):
    path = torch_home / "hub" / "checkpoints" / VGG16_WEIGHTS.filename
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"vgg16-397923af\.pth: not a usable VGG16 weights file .*replace it with https://download\.pytorch\.org/models/vgg16-397923af\.pth"):
        load_vgg16()
    state = standin_vgg16_state()
    del state["classifier.0.bias"]
    torch.save(state, path)
    with pytest.raises(UserError, match=r"not a torchvision VGG16 weights file \(missing \['classifier\.0\.bias'\]"):
        load_vgg16()


def test_a_file_that_would_run_code_is_refused(torch_home):
    path = torch_home / "hub" / "checkpoints" / VGG16_WEIGHTS.filename
    torch.save({"payload": print}, path)  # a pickled callable: weights_only loading must refuse it
    with pytest.raises(UserError, match="not a usable VGG16 weights file"):
        load_vgg16()


def test_substitute_only_when_asked_and_labelled(torch_home, monkeypatch):
    monkeypatch.setattr(vgg16, "random_vgg16_state_dict", lambda seed: standin_vgg16_state(seed))  # small & fast
    net = load_vgg16(substitute=True, substitute_seed=3)
    assert net.identity.substitute and net.identity.weights == "substitute:random-vgg16-seed3"
    want, got = standin_vgg16_state(3), net.net.model.state_dict()  # the seed reaches the weights
    assert all(torch.equal(got[k], want[k]) for k in ("features.0.weight", "classifier.3.weight"))
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, 3, H, W\]"):
        net(images(1).float())


def test_random_weights_are_he_normal_and_seeded(monkeypatch):
    # The substitute's weights, on two of VGG16's layers (the full set is 138M numbers).
    shapes = {k: v for k, v in vgg16_shapes().items() if k.startswith("features.28.")}
    monkeypatch.setattr(vgg16, "vgg16_shapes", lambda: shapes)
    a, b, c = (vgg16.random_vgg16_state_dict(s) for s in (0, 0, 1))
    assert set(a) == {"features.28.weight", "features.28.bias"} and a["features.28.weight"].shape == (512, 512, 3, 3)
    assert a["features.28.weight"].std().item() == pytest.approx((2.0 / (512 * 9)) ** 0.5, rel=0.01)
    assert not a["features.28.bias"].any()
    assert torch.equal(a["features.28.weight"], b["features.28.weight"])
    assert not torch.equal(a["features.28.weight"], c["features.28.weight"])
