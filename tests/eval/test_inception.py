"""stylegan_eval.inception: torch-fidelity's real loading path (on a stand-in weights file with the
real key names and shapes), one-line errors for missing or corrupt files, and the labelled,
seeded substitute, which must still tell a dataset from a blurred copy of it."""

import dataclasses
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from stylegan_core.synthetic import synthesize
from stylegan_eval import inception
from stylegan_eval.metrics.fid import frechet_distance
from stylegan_eval.inception import INCEPTION_WEIGHTS, load_inception, random_inception_state_dict, substitute_inception
from stylegan_eval.records import file_sha256
from stylegan_eval.weights import MissingWeightsError, WeightsFileError

STANDIN_SEED = 0


def standin_file(shared_dir):
    """A stand-in weights file (random_inception_state_dict(STANDIN_SEED), built from
    torch-fidelity's own module structure), written once into `shared_dir` (per test session)."""
    shared = shared_dir / "inception-standin.pth"
    if not shared.is_file():
        tmp = shared.with_suffix(".tmp")
        torch.save(random_inception_state_dict(STANDIN_SEED), tmp)
        tmp.replace(shared)
    return shared


def install_standin(torch_home, shared_dir, monkeypatch):
    """Name the stand-in with $STYLEGAN_EVAL_INCEPTION_WEIGHTS, the documented way to use one's own
    Inception file (under the official name in the hub cache it is refused: its hash cannot match).
    Linked into the test's private TORCH_HOME so that records name a per-test path."""
    path = torch_home / "standin-inception.pth"
    path.symlink_to(standin_file(shared_dir))
    monkeypatch.setenv(INCEPTION_WEIGHTS.env_var, str(path))
    return path


def test_hub_cache_file_name_and_hash_are_torch_fidelitys():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

    assert INCEPTION_WEIGHTS.filename == "weights-inception-2015-12-05-6726825d.pth"
    assert URL_INCEPTION_V3 == INCEPTION_WEIGHTS.url and INCEPTION_WEIGHTS.url.endswith("/" + INCEPTION_WEIGHTS.filename)
    assert INCEPTION_WEIGHTS.filename.endswith(f"-{INCEPTION_WEIGHTS.sha256_prefix}.pth")


def test_real_loading_path_reads_the_named_file(torch_home, tmp_path_factory, monkeypatch):
    path = install_standin(torch_home, tmp_path_factory.getbasetemp(), monkeypatch)
    before = torch.get_rng_state()
    net = load_inception()
    assert torch.equal(torch.get_rng_state(), before)
    assert net.identity.name == "inception-v3-compat" and not net.identity.substitute
    assert net.identity.weights == str(path) and net.identity.sha256 == file_sha256(path) == net.digest
    # The file's weights reached the network: its features are torch-fidelity's own module's with
    # the stand-in state (the inference form folds batch norms, so the state dicts differ).
    reference = inception._structure()
    reference.load_weights(random_inception_state_dict(STANDIN_SEED))
    x = torch.randint(0, 256, (2, 3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (want,) = reference.eval()(x)
    torch.testing.assert_close(net(x), want, rtol=1e-5, atol=1e-5 * want.abs().max().item())
    # An explicit path goes through the same loader.
    monkeypatch.delenv(INCEPTION_WEIGHTS.env_var)
    assert load_inception(weights_path=path).digest == net.digest


def test_torch_fidelity_never_opens_the_users_file(torch_home, tmp_path_factory, monkeypatch):
    """torch-fidelity 0.4.0's constructor unpickles what it is given with weights_only=False: it
    gets only an empty dict serialised in memory; the file is read once, by weights.read_data."""
    from tests.eval.test_vgg16 import spy_torch_load

    path = install_standin(torch_home, tmp_path_factory.getbasetemp(), monkeypatch)
    calls = spy_torch_load(monkeypatch)
    load_inception()
    assert [c for c in calls if not isinstance(c[0], io.BytesIO)] == [(path, True)]
    assert len(calls) == 2  # and one empty placeholder, handed to torch-fidelity


def test_hub_cache_file_with_the_published_hash_is_used(torch_home, tmp_path_factory, monkeypatch):
    """The hub-cache path: accepted when its SHA-256 has the spec's prefix (set here to the
    stand-in's own, since no stand-in can match the real one)."""
    path = torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename
    path.symlink_to(standin_file(tmp_path_factory.getbasetemp()))
    monkeypatch.setattr(inception, "INCEPTION_WEIGHTS", dataclasses.replace(INCEPTION_WEIGHTS, sha256_prefix=file_sha256(path)[:8]))
    net = load_inception()
    assert net.identity.weights == str(path) and not net.identity.substitute


def test_missing_weights_is_one_line_naming_the_file(torch_home):
    with pytest.raises(MissingWeightsError, match=r"not found at .*hub/checkpoints/weights-inception-2015-12-05-6726825d\.pth.*--substitute-weights") as e:
        load_inception()
    assert "\n" not in str(e.value)
    with pytest.raises(WeightsFileError, match=r"weights file .*nowhere\.pth \(given\) not found"):
        load_inception(weights_path=torch_home / "nowhere.pth", substitute=True)


def test_corrupt_weights_file_is_a_user_error(torch_home):
    (torch_home / "hub" / "checkpoints" / INCEPTION_WEIGHTS.filename).write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match=r"not the official Inception-v3 .*published one 6726825d\); delete it and place the official file https://"):
        load_inception(substitute=True)  # a broken real file is never silently replaced
    named = torch_home / "mine.pth"
    named.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsFileError, match=r"mine\.pth: not a usable Inception-v3 .* file: not a PyTorch weights file"):
        load_inception(weights_path=named)


def test_wrong_keys_are_a_user_error(torch_home):
    torch.save({"fc.weight": torch.zeros(3)}, torch_home / "mine.pth")
    with pytest.raises(WeightsFileError, match=r"mine\.pth: not a usable .* wrong tensor names or shapes \(\d+ missing .*1 of the wrong shape \(e\.g\. fc\.weight: \[3\]"):
        load_inception(weights_path=torch_home / "mine.pth")


def test_substitute_is_labelled_seeded_and_leaves_global_rng_alone(torch_home):
    before = torch.get_rng_state()
    net = load_inception(substitute=True)
    assert torch.equal(torch.get_rng_state(), before)
    assert net.identity.substitute and net.identity.weights == "substitute:random-inception-seed0"
    assert net.identity.sha256 is None
    assert substitute_inception(1).digest != net.digest
    with pytest.raises(ValueError, match=r"expected uint8 images \[N, 3, H, W\]"):
        net(torch.zeros(1, 3, 8, 8))


@pytest.mark.slow
def test_substitute_tells_a_dataset_from_a_blurred_copy():
    """FID(half A, half B) of one dataset is far below FID(half A, blurred half B).

    Few samples in 2048-d make both values mostly estimation noise of similar size (~10-20 here),
    so 8 per half is about the least that shows the gap reliably (blur: 5x; at 4 per half the
    ratio depends on which images are drawn)."""
    n = 8
    imgs, _ = synthesize(0, range(2 * n), 16)  # [2n, 16, 16, 3] uint8
    blurred = np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(1))) for im in imgs[n:]])
    x = torch.from_numpy(np.concatenate([imgs, blurred])).permute(0, 3, 1, 2).contiguous()
    f = substitute_inception(0)(x).double().numpy()  # [3n, 2048]

    def fid(a, b):
        return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # n samples in 2048-d: singular, as expected
        halves, blur = fid(f[:n], f[n : 2 * n]), fid(f[:n], f[2 * n :])
    assert blur > 4 * halves > 0, (halves, blur)
    assert inception.FEATURE_DIM == f.shape[1]
