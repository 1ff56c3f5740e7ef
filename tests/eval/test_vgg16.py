"""stylegan_eval.vgg16: the real loading path on a stand-in weights file (features equal to
torch-fidelity's own extractor loading the same file), the shared VGG16 file description, one-line
errors, planted files refused, and the labelled substitute."""

import dataclasses
import io

import numpy as np
import pytest
import torch
import torchvision
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16

from stylegan_eval import lpips_net, vgg16
from stylegan_eval.records import file_sha256
from stylegan_eval.vgg16 import VGG16_FILE, load_vgg16, vgg16_shapes
from stylegan_eval.weights import MissingWeightsError, WeightsFileError

from tests.eval.test_lpips_net import install_standin_vgg16, standin_vgg16_state
from tests.eval.test_weights import FORMATS, REFUSED, payload_bytes


def images(n, size=20, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, size, size), dtype=np.uint8))


def test_one_vgg16_file_description_shared_with_lpips():
    assert lpips_net.VGG16_FILE is VGG16_FILE  # defined once: LPIPS's trunk is the same file
    assert VGG16_FILE.filename == "vgg16-397923af.pth" and VGG16_FILE.url.endswith("/" + VGG16_FILE.filename)
    assert VGG16_FILE.url == torchvision.models.VGG16_Weights.IMAGENET1K_V1.url  # what torch-fidelity loads
    assert VGG16_FILE.filename.endswith(f"-{VGG16_FILE.sha256_prefix}.pth")
    assert VGG16_FILE.env_var == "STYLEGAN_EVAL_VGG16_WEIGHTS"


def test_real_loading_path_gives_torch_fidelitys_features(torch_home, monkeypatch):
    path = install_standin_vgg16(torch_home, monkeypatch)
    assert path.stat().st_size < 2_000_000
    before = torch.get_rng_state()
    net = load_vgg16()
    assert torch.equal(torch.get_rng_state(), before)
    assert net.identity.name == "vgg16" and not net.identity.substitute and net.dim == 4096
    assert net.identity.weights == str(path) and net.identity.sha256 == file_sha256(path) == net.digest
    # torch-fidelity's own loader (weights_only=False) is trusted here only because the test wrote the file.
    theirs = FeatureExtractorVGG16("vgg16", ["fc2_relu"], feature_extractor_weights_path=str(path))
    x = images(2)
    ours = net(x)
    assert ours.shape == (2, 4096) and ours.dtype == torch.float32
    # Equal up to float32 rounding: ours runs channels_last (stylegan_eval.feature_extractor).
    want = theirs(x)[0]
    torch.testing.assert_close(ours, want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    assert (ours > 0).float().mean() > 0.1 and (ours[0] - ours[1]).abs().max() > 0  # not degenerate
    monkeypatch.delenv(VGG16_FILE.env_var)
    assert load_vgg16(weights_path=path).digest == net.digest  # an explicit path: the same loader


def spy_torch_load(monkeypatch):
    """Record (what, weights_only) of every torch.load, torch-fidelity's included."""
    calls, real = [], torch.load

    def spy(f, *args, **kwargs):
        calls.append((f, kwargs.get("weights_only")))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    return calls


def test_torch_fidelity_never_opens_the_users_file(torch_home, monkeypatch):
    """torch-fidelity 0.4.0's extractor unpickles what it is given with weights_only=False: it
    gets only a placeholder serialised in memory; the file is read once, by weights.read_data."""
    path = install_standin_vgg16(torch_home, monkeypatch)
    calls = spy_torch_load(monkeypatch)
    load_vgg16()
    assert [c for c in calls if not isinstance(c[0], io.BytesIO)] == [(path, True)]
    assert len(calls) == 2  # and one placeholder, handed to torch-fidelity


def test_hub_cache_file_with_the_published_hash_is_used(torch_home, monkeypatch):
    """The hub-cache path: accepted when its SHA-256 has the spec's prefix (set here to the
    stand-in's own, since no stand-in can match the real one)."""
    path = torch_home / "hub" / "checkpoints" / VGG16_FILE.filename
    torch.save(standin_vgg16_state(), path)
    monkeypatch.setattr(vgg16, "VGG16_FILE", dataclasses.replace(VGG16_FILE, sha256_prefix=file_sha256(path)[:8]))
    net = load_vgg16(substitute=True)
    assert net.identity.weights == str(path) and not net.identity.substitute


def test_missing_weights_is_one_line_naming_the_file(torch_home, monkeypatch):
    with pytest.raises(MissingWeightsError, match=r"not found at .*hub/checkpoints/vgg16-397923af\.pth.*STYLEGAN_EVAL_VGG16_WEIGHTS.*--substitute-weights") as e:
        load_vgg16()
    assert "\n" not in str(e.value)
    # A file the user named is never silently replaced by the substitute.
    with pytest.raises(WeightsFileError, match=r"weights file .*nowhere\.pth \(given\) not found; correct the path"):
        load_vgg16(weights_path=torch_home / "nowhere.pth", substitute=True)
    monkeypatch.setenv(VGG16_FILE.env_var, str(torch_home / "nowhere.pth"))
    with pytest.raises(WeightsFileError, match=r"nowhere\.pth \(STYLEGAN_EVAL_VGG16_WEIGHTS\) not found"):
        load_vgg16(substitute=True)


def test_unusable_files_are_one_line(torch_home, monkeypatch):
    hub = torch_home / "hub" / "checkpoints" / VGG16_FILE.filename
    hub.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match=r"vgg16-397923af\.pth: not the official ImageNet VGG16 \(torchvision\) file .*published one 397923af\); delete it"):
        load_vgg16(substitute=True)
    mine = torch_home / "mine.pth"
    mine.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match=r"mine\.pth: not a usable ImageNet VGG16 \(torchvision\) file: not a PyTorch weights file"):
        load_vgg16(weights_path=mine)
    state = standin_vgg16_state()
    del state["classifier.0.bias"]
    torch.save(state, mine)
    with pytest.raises(WeightsFileError, match=r"mine\.pth: .*wrong tensor names or shapes \(1 missing \(e\.g\. classifier\.0\.bias\)\)") as e:
        load_vgg16(weights_path=mine, substitute=True)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("substitute", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_planted_files_are_refused_and_never_run(torch_home, monkeypatch, tmp_path, fmt, substitute):
    """As in test_weights: a pickle payload (creates `marker` when unpickled) under the official
    name in the hub cache is refused by its hash before it is parsed; named explicitly under
    another name, the restricted unpickler refuses it. Either way the marker is never created."""
    marker = tmp_path / "pwned"
    hub = torch_home / "hub" / "checkpoints" / VGG16_FILE.filename
    hub.write_bytes(payload_bytes(marker, fmt))
    with pytest.raises(WeightsFileError, match=r"vgg16-397923af\.pth: not the official ImageNet VGG16 .*published one 397923af\)") as e:
        load_vgg16(substitute=substitute)
    assert "\n" not in str(e.value)
    evil = hub.rename(torch_home / "mine.pth")
    monkeypatch.setenv(VGG16_FILE.env_var, str(evil))
    with pytest.raises(WeightsFileError, match=rf"mine\.pth: not a usable ImageNet VGG16 .* file: it contains {REFUSED}"):
        load_vgg16(substitute=substitute)
    assert not marker.exists()


def test_loadable_but_unofficial_hub_file_is_refused(torch_home):
    """A perfectly loadable VGG16 under the official name is still not the official file."""
    path = torch_home / "hub" / "checkpoints" / VGG16_FILE.filename
    torch.save(standin_vgg16_state(), path)
    with pytest.raises(WeightsFileError) as e:
        load_vgg16(substitute=True)
    assert str(e.value) == (
        f"{path}: not the official ImageNet VGG16 (torchvision) file (its SHA-256 starts {file_sha256(path)[:8]}, "
        f"the published one 397923af); delete it and place the official file "
        f"https://download.pytorch.org/models/vgg16-397923af.pth there (or name your own file with "
        f"STYLEGAN_EVAL_VGG16_WEIGHTS)"
    )


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
