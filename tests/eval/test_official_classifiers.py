"""The paper's attribute classifiers (official D_basic pickles) as one [N, A] classifier:
naming by file, option mapping, minibatch-stddev grouping, one-line errors."""

import pytest
import torch

from stylegan_core import Discriminator, DiscriminatorConfig
from stylegan_core.errors import CheckpointError
from stylegan_eval.official_classifiers import attribute_of, load_official_classifiers
from tests import official_pickles as op


def _classifier(seed, resolution=8, group=4):
    D = Discriminator(DiscriminatorConfig(resolution=resolution, fmap_base=32, fmap_max=8, mbstd_group_size=group))
    op.randomize(D, seed)
    return D


def _write(folder, name, D):
    folder.mkdir(exist_ok=True)
    return op.dump(op.discriminator_network(D, name="D"), folder / name)


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "classifiers"
    nets = {"celebahq-classifier-01-smiling.pkl": _classifier(1), "celebahq-classifier-00-male.pkl": _classifier(0)}
    for name, D in nets.items():
        _write(d, name, D)
    return d, nets


def test_named_by_attribute_in_official_order_with_their_own_weights(folder):
    d, nets = folder
    clf = load_official_classifiers([d])
    assert clf.attribute_names == ["male", "smiling"] and clf.resolution == 8 and clf.group_size == 4
    assert len(clf.sha256) == 64 and "2 official classifiers" in clf.source
    x = torch.randn(8, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = clf(x)
        for a, name in enumerate(["celebahq-classifier-00-male.pkl", "celebahq-classifier-01-smiling.pkl"]):
            per_group = torch.cat([nets[name](x[:4]), nets[name](x[4:])])  # official minibatches of 4
            torch.testing.assert_close(logits[:, a : a + 1], per_group, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(clf.probabilities(x), torch.sigmoid(2 * logits.double()))
    # Listing the files one by one gives the same classifier.
    files = sorted(d.glob("*.pkl"), reverse=True)
    assert load_official_classifiers(files).attribute_names == ["male", "smiling"]


def test_minibatch_stddev_couples_a_group_but_not_the_batch(folder):
    d, _ = folder
    clf = load_official_classifiers([d])
    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole = clf(x)
        in_pieces = torch.cat([clf(x[:4]), clf(x[4:12])])  # batch sizes 4 and 8: same groups
        torch.testing.assert_close(in_pieces, whole, rtol=0, atol=0)
        changed = x.clone()
        changed[1] = 0  # a group-mate of sample 0 changes ...
        y = clf(changed)
    assert not torch.allclose(y[0], whole[0])  # ... and so does sample 0's logit (official behaviour)
    torch.testing.assert_close(y[4:], whole[4:], rtol=0, atol=0)  # other groups are untouched


def test_classifier_without_mbstd_is_independent_of_its_batch(tmp_path):
    d = tmp_path / "c"
    _write(d, "celebahq-classifier-05-bangs.pkl", _classifier(2, group=0))
    clf = load_official_classifiers([d])
    assert clf.group_size == 1 and clf.attribute_names == ["bangs"]
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(clf(x)[1:2], clf(x[1:2]), rtol=1e-6, atol=1e-6)


def test_attribute_names_from_file_names(tmp_path):
    assert attribute_of(tmp_path / "celebahq-classifier-39-wearing-necktie.pkl") == (39, "wearing-necktie")
    assert attribute_of(tmp_path / "smile.pkl") == (None, "smile")


def test_errors_are_one_line(folder, tmp_path):
    d, nets = folder
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no .pkl files"):
        load_official_classifiers([empty])
    with pytest.raises(CheckpointError, match="no such file or folder"):
        load_official_classifiers([tmp_path / "missing"])
    with pytest.raises(CheckpointError, match=r"attribute name\(s\) \['male'\] given twice"):
        other = tmp_path / "other"
        _write(other, "celebahq-classifier-00-male.pkl", _classifier(3))
        load_official_classifiers([d, other])
    big = tmp_path / "big"
    _write(big, "celebahq-classifier-02-x.pkl", _classifier(4, resolution=16))
    with pytest.raises(CheckpointError, match="differ in resolution"):
        load_official_classifiers([d, big])
    not_pkl = tmp_path / "n" / "a.pkl"
    not_pkl.parent.mkdir()
    not_pkl.write_bytes(b"text")
    with pytest.raises(CheckpointError, match="not an official StyleGAN classifier pickle"):
        load_official_classifiers([not_pkl])
