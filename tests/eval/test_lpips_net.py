import dataclasses

import lpips
import pytest
import torch
import torchvision

from stylegan_eval import lpips_net
from stylegan_eval.lpips_net import load_lpips, substitute_model
from stylegan_eval.records import file_sha256
from stylegan_eval.vgg16 import vgg16_shapes
from stylegan_eval.weights import MissingWeightsError, WeightsFileError


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


def install_standin_vgg16(torch_home, monkeypatch, seed=0):
    """Write the stand-in under a name of its own and name it with $STYLEGAN_EVAL_VGG16_WEIGHTS,
    the documented way to use one's own VGG16 file (under the official name in the hub cache it
    is refused: its hash cannot match)."""
    path = torch_home / "standin-vgg16.pth"
    torch.save(standin_vgg16_state(seed), path)
    monkeypatch.setenv(lpips_net.VGG16_FILE.env_var, str(path))
    return path


def images(n, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


def reference_lpips(state):
    """What `lpips.LPIPS(net='vgg', version='0.1')` builds when torchvision hands it a VGG16 with
    `state` (the package's own construction path, trusted here because the test wrote the file)."""
    tv = torchvision.models.vgg16()
    tv.load_state_dict(state)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lpips.pretrained_networks.tv, "vgg16", lambda **kw: tv)
        return lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()


def test_real_loading_path_matches_the_lpips_package_exactly(torch_home, monkeypatch):
    path, state = install_standin_vgg16(torch_home, monkeypatch), standin_vgg16_state()
    dist = load_lpips()
    assert dist.identity.name == "lpips-vgg16-v0.1" and not dist.identity.substitute
    assert dist.identity.weights == str(path) and dist.identity.sha256 == file_sha256(path)
    trunk = dict(dist.model.net.named_parameters())
    assert torch.equal(trunk["slice1.0.weight"], state["features.0.weight"])
    assert torch.equal(trunk["slice5.28.bias"], state["features.28.bias"])
    # The linear layers are the package's v0.1 weights, not random (nor uninitialised memory).
    shipped = torch.load(lpips_net._linear_weights_path(), map_location="cpu", weights_only=True)
    for k in range(5):
        assert torch.equal(dist.model.lins[k].model[1].weight, shipped[f"lin{k}.model.1.weight"])
    # Every tensor equals what the lpips package itself builds from the same trunk weights, and one
    # batched trunk pass, laid out channels_last, gives its forward up to float32 rounding
    # (inputs in [-1, 1]).
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) and m.weight.stride()[1] == 1
               for m in dist.model.net.modules() if isinstance(m, torch.nn.Conv2d))
    ref = reference_lpips(state)
    ours, theirs = dist.model.state_dict(), ref.state_dict()
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    a, b = images(3, seed=1), images(3, seed=2)
    assert torch.allclose(dist(a, b), ref(a, b, normalize=False).reshape(3), rtol=1e-5, atol=1e-7)
    assert torch.allclose(dist(a, a), torch.zeros(3), atol=1e-7)
    # The same file through the function argument.
    monkeypatch.delenv(lpips_net.VGG16_FILE.env_var)
    assert load_lpips(weights_path=path).identity.sha256 == dist.identity.sha256


def test_hub_cache_file_with_the_published_hash_is_used(torch_home, monkeypatch):
    """The hub-cache path: a file whose SHA-256 has the spec's prefix is accepted (the spec's
    prefix is set to the stand-in's own, which no real VGG16 file can be made to match)."""
    path = torch_home / "hub" / "checkpoints" / lpips_net.VGG16_FILE.filename
    torch.save(standin_vgg16_state(), path)
    monkeypatch.setattr(lpips_net, "VGG16_FILE", dataclasses.replace(lpips_net.VGG16_FILE, sha256_prefix=file_sha256(path)[:8]))
    dist = load_lpips()
    assert dist.identity.weights == str(path) and not dist.identity.substitute


def test_missing_weights_is_one_line_naming_the_file(torch_home):
    with pytest.raises(MissingWeightsError, match=r"not found at .*hub/checkpoints/vgg16-397923af\.pth.*STYLEGAN_EVAL_VGG16_WEIGHTS.*--substitute-weights") as e:
        load_lpips()
    assert "\n" not in str(e.value)


def test_named_file_that_does_not_exist_is_never_substituted(torch_home, monkeypatch):
    monkeypatch.setenv("STYLEGAN_EVAL_VGG16_WEIGHTS", str(torch_home / "nowhere.pth"))
    with pytest.raises(WeightsFileError, match=r"weights file .*nowhere\.pth \(STYLEGAN_EVAL_VGG16_WEIGHTS\) not found"):
        load_lpips(substitute=True)


def test_corrupt_weights_file_is_a_user_error_even_with_substitute(torch_home):
    (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match=r"vgg16-397923af\.pth: not the official ImageNet VGG16"):
        load_lpips(substitute=True)


def test_wrong_keys_or_shapes_are_one_line(torch_home, monkeypatch):
    path, state = install_standin_vgg16(torch_home, monkeypatch), standin_vgg16_state()
    state["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    del state["classifier.6.bias"]
    torch.save(state, path)
    with pytest.raises(WeightsFileError, match=r"standin-vgg16\.pth: not a usable .* wrong tensor names or shapes \(1 missing \(e\.g\. classifier\.6\.bias\), 1 of the wrong shape \(e\.g\. features\.0\.weight: \[64, 3, 5, 5\], expected \[64, 3, 3, 3\]\)\)") as e:
        load_lpips(substitute=True)
    assert "\n" not in str(e.value)


def test_substitute_is_labelled_seeded_and_uses_shipped_linear_layers(torch_home):
    dist = load_lpips(substitute=True)
    assert dist.identity.substitute and dist.identity.weights == "substitute:random-vgg16-seed0"
    assert dist.identity.sha256 is None
    again, _ = substitute_model(0)
    other, other_id = substitute_model(1)
    def conv(model):
        return dict(model.net.named_parameters())["slice3.10.weight"]

    assert torch.equal(conv(dist.model), conv(again)) and not torch.equal(conv(dist.model), conv(other))
    assert other_id.weights == "substitute:random-vgg16-seed1"
    shipped = torch.load(lpips_net._linear_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(dist.model.lin4.model[1].weight, shipped["lin4.model.1.weight"])
    # The ImageNet input scaling constants survived the meta-device construction.
    assert torch.equal(dist.model.scaling_layer.scale, lpips.lpips.ScalingLayer().scale)
    a, b = images(2, seed=3), images(2, seed=4)
    assert torch.allclose(dist(a, b), dist.model(a, b).reshape(2), rtol=1e-5)
    assert (dist(a, b) > 0).all()


def test_substitute_does_not_touch_global_rng(torch_home):
    state = torch.random.get_rng_state()
    substitute_model(0)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_rejects_mismatched_inputs(torch_home):
    dist = load_lpips(substitute=True)
    with pytest.raises(ValueError, match=r"two \[N, 3, H, W\] batches"):
        dist(images(2), images(3))
