"""stylegan_eval.weights and every reader built on it, one test per class of fault:

- a pickle payload (a real `__reduce__` that creates a marker file when unpickled) placed as the
  VGG16 file, the Inception file, a classifier and an FID cache entry, in each file format torch
  reads: refused with one line, the marker never created, with and without substitute weights;
  the same files DO run their payload under an unsafe load, and under lpips's own loader;
- an official file name whose content is not the official file: one line with the published
  hash prefix, the URL and the fix;
- truncated, empty and foreign files: one line;
- the CLI with a planted file and --substitute-weights: exit 2, one line, nothing run.
"""

import dataclasses
import io
import os
import pickle
import shlex

import lpips
import pytest
import torch

from stylegan_core.checkpoint import save_generator, snapshot_path
from stylegan_core.errors import CheckpointError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval import fid_cache, lpips_net
from stylegan_eval.classifier import load_classifier
from stylegan_eval.cli import main
from stylegan_eval.inception import INCEPTION_WEIGHTS, load_inception
from stylegan_eval.lpips_net import VGG16_FILE, load_lpips
from stylegan_eval.records import file_sha256
from stylegan_eval.weights import WeightsFileError, load_state_dict, locate, read_data

from tests.eval.test_lpips_net import standin_vgg16_state


class Payload:
    """Unpickling this object runs a shell command that creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.marker)}",))


def payload_bytes(marker, fmt: str) -> bytes:
    """A weights-looking dict (one real tensor) carrying the payload, in one of torch's formats."""
    obj = {"features.0.weight": torch.zeros(2), "evil": Payload(marker)}
    if fmt == "raw-pickle":
        return pickle.dumps(obj, protocol=2)
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=fmt == "zip")
    return buf.getvalue()


FORMATS = ["zip", "legacy", "raw-pickle"]
REFUSED = r"pickled Python objects other than tensors \(refused, nothing was run\)"


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "pwned"


# ---------------------------------------------------------------------------------------------
# Controls: the planted files are real attacks


@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_runs_under_an_unsafe_load(tmp_path, marker, fmt):
    path = tmp_path / "evil.pth"
    path.write_bytes(payload_bytes(marker, fmt))
    try:
        torch.load(path, weights_only=False)
    except Exception:  # the raw pickle is no torch file: it fails, after running the payload
        pass
    assert marker.exists()


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision deprecation notes, triggered by lpips
def test_lpips_own_loader_runs_a_planted_hub_file(torch_home, marker):
    """Why nothing is handed to a library loader: `lpips.LPIPS(pretrained=True)` lets torchvision
    unpickle the hub cache's VGG16 file with weights_only=False."""
    (torch_home / "hub" / "checkpoints" / VGG16_FILE.filename).write_bytes(payload_bytes(marker, "zip"))
    with pytest.raises(Exception):  # the payload runs, then the non-state-dict fails to load
        lpips.LPIPS(net="vgg", version="0.1", verbose=False)
    assert marker.exists()


# ---------------------------------------------------------------------------------------------
# Planted payloads: refused, one line, never run


def _one_line(e):
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("substitute", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_in_the_hub_cache_is_refused_by_its_hash(torch_home, marker, fmt, substitute):
    for spec, load in ((VGG16_FILE, lambda: load_lpips(substitute=substitute)),
                       (INCEPTION_WEIGHTS, lambda: load_inception(substitute=substitute))):
        (torch_home / "hub" / "checkpoints" / spec.filename).write_bytes(payload_bytes(marker, fmt))
        with pytest.raises(WeightsFileError, match=rf"{spec.filename}: not the official .*published one {spec.sha256_prefix}\)") as e:
            load()
        _one_line(e)
    assert not marker.exists()


@pytest.mark.parametrize("substitute", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_in_a_named_file_is_refused_by_the_unpickler(torch_home, monkeypatch, marker, fmt, substitute):
    evil = torch_home / "mine.pth"
    evil.write_bytes(payload_bytes(marker, fmt))
    monkeypatch.setenv(VGG16_FILE.env_var, str(evil))
    with pytest.raises(WeightsFileError, match=rf"mine\.pth: not a usable ImageNet VGG16 .* file: it contains {REFUSED}") as e:
        load_lpips(substitute=substitute)
    _one_line(e)
    with pytest.raises(WeightsFileError, match=rf"mine\.pth: not a usable Inception-v3 .* file: it contains {REFUSED}") as e:
        load_inception(weights_path=evil, substitute=substitute)
    _one_line(e)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_as_classifier_is_refused(tmp_path, marker, fmt):
    evil = tmp_path / "clf.pt"
    evil.write_bytes(payload_bytes(marker, fmt))
    with pytest.raises(CheckpointError, match=rf"clf\.pt: (it contains {REFUSED}|not a classifier checkpoint \(not a PyTorch zip archive\))") as e:
        load_classifier(evil)
    _one_line(e)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_payload_as_fid_cache_entry_is_a_miss(tmp_path, marker, fmt):
    key = {"dataset": "abc", "num_images": 3}
    fid_cache.entry_path(tmp_path, "fid-stats", key).write_bytes(payload_bytes(marker, fmt))
    with pytest.warns(RuntimeWarning, match=rf"ignoring unreadable cache file .*fid-stats-.*\.pt \(it contains {REFUSED}\)"):
        assert fid_cache.load_entry(tmp_path, "fid-stats", key) is None
    assert not marker.exists()


def test_lpips_linear_layers_are_checked_too(tmp_path, monkeypatch, marker):
    """The v0.1 linear layers come from the lpips package folder: pinned hash, weights_only."""
    evil = tmp_path / "vgg.pth"
    evil.write_bytes(payload_bytes(marker, "zip"))
    monkeypatch.setattr(lpips_net, "_linear_weights_path", lambda: str(evil))
    with pytest.raises(WeightsFileError, match=r"vgg\.pth: not the official LPIPS v0\.1 linear layers .*published one a78928a0"):
        lpips_net.substitute_model(0)
    monkeypatch.setattr(lpips_net, "LINEAR_V01_FILE", dataclasses.replace(lpips_net.LINEAR_V01_FILE, sha256_prefix=file_sha256(evil)))
    with pytest.raises(WeightsFileError, match=rf"vgg\.pth: not a usable LPIPS v0\.1 linear layers .* file: it contains {REFUSED}"):
        lpips_net.substitute_model(0)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# Hash mismatch, truncated and foreign files


def test_hash_mismatch_names_the_file_the_published_hash_the_url_and_the_fix(torch_home):
    path = torch_home / "hub" / "checkpoints" / VGG16_FILE.filename
    torch.save(standin_vgg16_state(), path)  # a perfectly loadable VGG16, but not the official one
    digest = file_sha256(path)
    with pytest.raises(WeightsFileError) as e:
        load_lpips()
    assert str(e.value) == (
        f"{path}: not the official ImageNet VGG16 (torchvision) file (its SHA-256 starts {digest[:8]}, "
        f"the published one 397923af); delete it and place the official file "
        f"https://download.pytorch.org/models/vgg16-397923af.pth there (or name your own file with "
        f"STYLEGAN_EVAL_VGG16_WEIGHTS)"
    )


def test_official_name_is_checked_wherever_the_file_is(torch_home):
    """A file named like the official one must be it, even when named explicitly (a corrupt
    download copied from elsewhere); any other name is the user's own choice."""
    elsewhere = torch_home / "downloads" / VGG16_FILE.filename
    elsewhere.parent.mkdir()
    torch.save(standin_vgg16_state(), elsewhere)
    assert locate(VGG16_FILE, elsewhere).official
    with pytest.raises(WeightsFileError, match=r"not the official ImageNet VGG16"):
        load_lpips(weights_path=elsewhere)
    own = elsewhere.rename(torch_home / "downloads" / "vgg16-finetuned.pth")
    assert not locate(VGG16_FILE, own).official
    assert load_lpips(weights_path=own).identity.sha256 == file_sha256(own)


def _truncated(path):
    buf = io.BytesIO()
    torch.save(standin_vgg16_state(), buf)
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


@pytest.mark.parametrize(
    "make, reason",
    [
        (_truncated, r"truncated or not a PyTorch file \(RuntimeError: PytorchStreamReader failed"),
        (lambda p: p.write_bytes(b""), r"truncated or not a PyTorch file \(EOFError\)"),
        (lambda p: p.write_text("<html>404 Not Found</html>"), r"not a PyTorch weights file"),
        (lambda p: torch.save([torch.ones(2)], p), r"not a flat state dict of tensors"),
        (lambda p: torch.save({"w": torch.ones(2), "step": 3}, p), r"not a flat state dict of tensors"),
    ],
    ids=["truncated", "empty", "html", "list", "non-tensor"],
)
def test_unusable_named_file_is_one_line(tmp_path, make, reason):
    path = tmp_path / "mine.pth"
    make(path)
    for spec in (VGG16_FILE, INCEPTION_WEIGHTS):
        with pytest.raises(WeightsFileError, match=rf"mine\.pth: not a usable .* file: {reason}.*; name a file that holds a plain state dict") as e:
            load_state_dict(locate(spec, path))
        _one_line(e)


@pytest.mark.parametrize("make", [_truncated, lambda p: p.write_bytes(b"")], ids=["truncated", "empty"])
def test_truncated_official_file_fails_its_hash_check(torch_home, make):
    make(torch_home / "hub" / "checkpoints" / VGG16_FILE.filename)
    with pytest.raises(WeightsFileError, match=r"not the official .*; delete it and place the official file"):
        load_lpips(substitute=True)


def test_read_data_passes_unopenable_files_through(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_data(tmp_path / "absent.pt")
    with pytest.raises(IsADirectoryError):
        read_data(tmp_path)


# ---------------------------------------------------------------------------------------------
# The CLI: a planted file is an error even with --substitute-weights


@pytest.fixture
def ckpt(tmp_path):
    return save_generator(snapshot_path(tmp_path / "run", 1000), Generator(get_preset("F-test16").generator), preset="F-test16")


def test_cli_refuses_planted_files_even_with_substitute_weights(ckpt, tmp_path, torch_home, marker, capsys):
    hub = torch_home / "hub" / "checkpoints"
    (hub / VGG16_FILE.filename).write_bytes(payload_bytes(marker, "zip"))
    (hub / INCEPTION_WEIGHTS.filename).write_bytes(payload_bytes(marker, "legacy"))
    data = synthesize_dataset(tmp_path / "data", 4, 16, seed=0)
    runs = {
        "ppl": ["ppl", "--ckpt", str(ckpt), "--num-samples", "2", "--no-crop", "--substitute-weights"],
        "fid": ["fid", "--ckpt", str(ckpt), "--data", str(data), "--num-gen", "2", "--num-real", "2",
                "--cache-dir", str(tmp_path / "c"), "--substitute-weights"],
    }
    for command, argv in runs.items():
        assert main(argv) == 2
        out = capsys.readouterr()
        err = [line.rsplit("\r", 1)[-1] for line in out.err.strip().split("\n")]
        assert len(err) == 1 and err[0].startswith(f"stylegan-eval {command}: error: "), err
        assert "not the official" in err[0] and "delete it and place the official file" in err[0]
    assert not marker.exists()
