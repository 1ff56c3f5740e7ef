import lpips
import pytest
import torch
import torchvision

from stylegan_core.errors import UserError
from stylegan_eval import lpips_net
from stylegan_eval.lpips_net import load_lpips, substitute_model
from stylegan_eval.records import file_sha256
from stylegan_eval.weights import MissingWeightsError


def write_standin_vgg16(torch_home, seed=0):
    """A small stand-in for torchvision's `vgg16-397923af.pth` with the real keys and shapes.

    Conv weights are random per (out, in) channel pair and constant over the 3x3 kernel, biases
    random; the unused classifier is stored as expanded (stride-0) zeros, so the file holds a
    few million numbers instead of 138M and is quick to write.
    """
    with torch.device("meta"):
        keys = torchvision.models.vgg16().state_dict()
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in keys.items():
        if k.startswith("features") and k.endswith("weight"):
            state[k] = (torch.randn(*v.shape[:2], 1, 1, generator=gen) / v.shape[1] ** 0.5).expand(v.shape)
        elif k.startswith("features"):
            state[k] = torch.randn(v.shape, generator=gen) * 0.1
        else:
            state[k] = torch.zeros(1).expand(v.shape)
    path = torch_home / "hub" / "checkpoints" / lpips_net.VGG16_FILE.filename
    torch.save(state, path)
    return path, state


def images(n, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


def test_real_loading_path_reads_torchvision_file_from_hub_cache(torch_home):
    path, state = write_standin_vgg16(torch_home)
    dist = load_lpips()
    assert dist.identity.name == "lpips-vgg16-v0.1" and not dist.identity.substitute
    assert dist.identity.weights == str(path) and dist.identity.sha256 == file_sha256(path)
    trunk = dict(dist.model.net.named_parameters())
    assert torch.equal(trunk["slice1.0.weight"], state["features.0.weight"])
    assert torch.equal(trunk["slice5.28.bias"], state["features.28.bias"])
    # The linear layers are the package's v0.1 weights, not random.
    shipped = torch.load(lpips_net._linear_weights_path(), map_location="cpu", weights_only=True)
    assert torch.equal(dist.model.lin2.model[1].weight, shipped["lin2.model.1.weight"])
    # One batched trunk pass gives exactly lpips.LPIPS.forward (inputs in [-1, 1]).
    a, b = images(3, seed=1), images(3, seed=2)
    ref = dist.model(a, b, normalize=False).reshape(3)
    assert torch.allclose(dist(a, b), ref, rtol=1e-5, atol=1e-7)
    assert torch.allclose(dist(a, a), torch.zeros(3), atol=1e-7)


def test_missing_weights_is_one_line_naming_the_file(torch_home):
    with pytest.raises(MissingWeightsError, match=r"not found at .*hub/checkpoints/vgg16-397923af\.pth.*--substitute-weights") as e:
        load_lpips()
    assert "\n" not in str(e.value)


def test_corrupt_weights_file_is_a_user_error(torch_home):
    (torch_home / "hub" / "checkpoints" / "vgg16-397923af.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"not a usable VGG16 weights file"):
        load_lpips(substitute=True)


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
