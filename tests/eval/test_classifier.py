"""Attribute classifiers: config rules, batch independence, probabilities, label checks, the
trainer on the synthetic dataset, and safe checkpoints."""

import json
import zipfile

import pytest
import torch

from stylegan_core.errors import CheckpointError, ConfigError, DatasetError
from stylegan_core.synthetic import synthesize
from stylegan_eval.classifier import (
    AttributeClassifier,
    ClassifierConfig,
    TrainConfig,
    build_classifier,
    check_labels,
    classifier_config,
    load_classifier,
    save_classifier,
    split_indices,
    to_classifier_input,
    train_classifier,
)


def _tiny(attributes=("a", "b", "c"), resolution=8, seed=0):
    return build_classifier(classifier_config(list(attributes), resolution, fmap_base=64, fmap_max=16), seed)


def test_config_rules():
    cfg = classifier_config(["a", "b"], 16)
    assert cfg.discriminator.out_features == 2 and cfg.discriminator.mbstd_group_size == 0 and cfg.resolution == 16
    assert ClassifierConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="attribute names repeat"):
        classifier_config(["a", "a"], 16)
    with pytest.raises(ConfigError, match="at least one attribute"):
        classifier_config([], 16)
    import dataclasses

    with pytest.raises(ConfigError, match="mbstd_group_size=0"):
        ClassifierConfig(("a", "b"), dataclasses.replace(cfg.discriminator, mbstd_group_size=4))
    with pytest.raises(ConfigError, match="out_features=2 but 3 attributes"):
        ClassifierConfig(("a", "b", "c"), cfg.discriminator)
    with pytest.raises(ConfigError, match="unknown classifier config keys"):
        ClassifierConfig.from_dict({**cfg.to_dict(), "extra": 1})


def test_outputs_do_not_depend_on_the_batch_and_probabilities_are_the_softmax_pair():
    model = _tiny().eval()
    x = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        full = model(x)
        torch.testing.assert_close(model(x[:2]), full[:2], rtol=1e-5, atol=1e-6)
        p = model.probabilities(x)
    assert full.shape == (6, 3)
    pair = torch.softmax(torch.stack([full, -full], dim=-1).double(), dim=-1)[..., 0]
    torch.testing.assert_close(p, pair)


def test_initial_weights_depend_only_on_seed():
    a, b, c = _tiny(seed=1), _tiny(seed=1), _tiny(seed=2)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_inputs_are_area_downsampled_to_minus_one_one():
    img = torch.zeros(1, 3, 4, 4, dtype=torch.uint8)
    img[..., :2, :2] = 255
    x = to_classifier_input(img, 2)
    assert x.shape == (1, 3, 2, 2)
    torch.testing.assert_close(x[0, 0], torch.tensor([[1.0, -1.0], [-1.0, -1.0]]))
    with pytest.raises(DatasetError, match="images are 4px"):
        to_classifier_input(img, 3)


def test_check_labels_errors():
    good = torch.tensor([[1, -1], [-1, 1], [1, 0]], dtype=torch.int8)
    check_labels(good, ["a", "b"], 3)
    with pytest.raises(DatasetError, match="3 label rows for 4 images"):
        check_labels(good, ["a", "b"], 4)
    with pytest.raises(DatasetError, match=r"labels must be \[N, 3\]"):
        check_labels(good, ["a", "b", "c"], 3)
    single = good.clone()
    single[:, 1] = 1
    with pytest.raises(DatasetError, match=r"attribute 'b' has a single class \(1 \(present\) for all 3"):
        check_labels(single, ["a", "b"], 3)


def test_split_is_seeded_disjoint_and_complete():
    tr, ho = split_indices(100, 0.1, seed=3)
    tr2, ho2 = split_indices(100, 0.1, seed=3)
    assert torch.equal(tr, tr2) and torch.equal(ho, ho2) and len(ho) == 10
    assert sorted(torch.cat([tr, ho]).tolist()) == list(range(100))
    assert not torch.equal(split_indices(100, 0.1, seed=4)[1], ho)


@pytest.fixture(scope="module")
def synth16():
    imgs, labels = synthesize(0, range(1600), 16)
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


@pytest.mark.slow
def test_trainer_reaches_high_heldout_accuracy_on_synthetic_attributes(synth16):
    from stylegan_core.synthetic import SYNTH_ATTRIBUTES

    imgs, labels = synth16
    names = ["Pale_Skin", "Light_Background", "Dark_Hair"]
    cols = [SYNTH_ATTRIBUTES.index(n) for n in names]
    cfg = classifier_config(names, 16, fmap_base=256, fmap_max=32)
    model, report = train_classifier(imgs, labels[:, cols], cfg, TrainConfig(kimg=4, holdout=0.2, seed=0), progress=False)
    assert report.num_heldout == 320 and report.num_train == 1280 and report.images_shown == 4000
    for name, acc, base in zip(report.attributes, report.heldout_accuracy, report.majority_baseline):
        assert acc >= 0.9 and acc > base + 0.2, (name, acc, base)


def test_save_load_round_trip(tmp_path):
    model = _tiny(seed=5).eval()
    path = save_classifier(tmp_path / "c.pt", model)
    loaded = load_classifier(path)
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert loaded.attribute_names == ["a", "b", "c"] and loaded.resolution == 8
    assert loaded.source == str(path) and len(loaded.sha256) == 64 and loaded.report == {}
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary files left behind


def test_load_refuses_bad_files(tmp_path):
    from stylegan_core.checkpoint import save_generator
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset

    with pytest.raises(CheckpointError, match="no such file"):
        load_classifier(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch zip archive"):
        load_classifier(tmp_path / "text.pt")
    gen = save_generator(tmp_path / "g.pt", Generator(get_preset("F-test16").generator), "F-test16")
    with pytest.raises(CheckpointError, match="not a classifier checkpoint .* is it a generator"):
        load_classifier(gen)
    good = save_classifier(tmp_path / "c.pt", _tiny())
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: truncated or not a PyTorch file"):
        load_classifier(tmp_path / "cut.pt")
    torch.save({"format": "stylegan-eval-classifier", "payload": zipfile.ZipInfo("x")}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match=r"evil\.pt: it contains pickled Python objects other than tensors \(refused, nothing was run\)"):
        load_classifier(tmp_path / "evil.pt")
    payload = torch.load(good, weights_only=True)
    payload["state_dict"] = {k: v for k, v in list(payload["state_dict"].items())[1:]}
    torch.save(payload, tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match="config or weights unusable"):
        load_classifier(tmp_path / "short.pt")
    assert isinstance(load_classifier(good), AttributeClassifier)


def test_training_is_seeded_and_mirror_changes_it(synth16):
    imgs, labels = synth16[0][:200], synth16[1][:200, :2]
    cfg = classifier_config(["Eyeglasses", "Smiling"], 8, fmap_base=64, fmap_max=16)

    def weights(**kw):
        model, report = train_classifier(imgs, labels, cfg, TrainConfig(kimg=0.1, **kw), progress=False)
        assert report.images_shown == 100
        return torch.cat([p.flatten() for p in model.parameters()])

    plain = weights(seed=1)
    assert torch.equal(plain, weights(seed=1))
    assert not torch.equal(plain, weights(seed=2))
    mirrored = weights(seed=1, mirror=True)
    assert torch.equal(mirrored, weights(seed=1, mirror=True)) and not torch.equal(mirrored, plain)


def test_train_config_errors():
    with pytest.raises(ConfigError, match="holdout must be a fraction"):
        TrainConfig(holdout=1.0)
    with pytest.raises(ConfigError, match="must be positive"):
        TrainConfig(lr=0)
