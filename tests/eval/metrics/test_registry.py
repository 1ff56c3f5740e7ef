"""stylegan_eval.metrics.registry: the protocols' constants as the official code fixes them."""

import pytest

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.registry import PROTOCOLS, get_protocols


def test_protocol_constants():
    assert PROTOCOLS["fid50k"].config.num_samples == 50_000 and PROTOCOLS["fid50k"].config.num_real == 50_000
    assert PROTOCOLS["fid50k_full"].config.num_real is None  # every real image
    kid = PROTOCOLS["kid50k"].config
    assert (kid.num_samples, kid.num_real, kid.num_subsets, kid.subset_size) == (50_000, 50_000, 100, 1000)
    pr = PROTOCOLS["pr50k3"].config
    assert (pr.num_samples, pr.num_real, pr.k) == (50_000, 50_000, 3)
    for space in "zw":
        for sampling in ("full", "end"):
            p = PROTOCOLS[f"ppl_{space}{sampling}"]
            assert p.kind == "ppl" and p.config.metric == p.name
            assert (p.config.space, p.config.sampling, p.config.num_samples, p.config.epsilon, p.config.crop) == (
                space, sampling, 100_000, 1e-4, True)
    ls = PROTOCOLS["ls"].config
    assert (ls.num_samples, ls.keep, ls.spaces) == (200_000, 100_000, ("z", "w"))
    assert all(p.protocol_num_samples is None for p in PROTOCOLS.values())


def test_scaling_down_keeps_the_constants_and_says_so():
    fid, kid, ls = get_protocols("fid50k, kid50k,ls", num_samples=500)
    assert fid.num_samples == 500 and fid.config.num_real == 50_000 and fid.protocol_num_samples == 50_000
    assert kid.config.subset_size == 1000 and kid.config.num_subsets == 100  # clipped when measured
    assert ls.config.keep == 250 and ls.protocol_num_samples == 200_000
    assert get_protocols(["ppl_wend"])[0] is PROTOCOLS["ppl_wend"]


@pytest.mark.parametrize("names, message", [
    ("fid50k,fid10k", "unknown metric fid10k; choose from fid50k, fid50k_full"),
    ("", "no metrics given"),
    ("kid50k,kid50k", "named twice"),
])
def test_bad_names(names, message):
    with pytest.raises(ConfigError, match=message):
        get_protocols(names)


def test_too_few_samples():
    with pytest.raises(ConfigError, match="--num-samples must be at least 2"):
        get_protocols("fid50k", num_samples=1)


def test_without_crop_only_for_ppl():
    p = PROTOCOLS["ppl_zend"].without_crop()
    assert p.config.crop is False and p.config.epsilon == 1e-4 and PROTOCOLS["ppl_zend"].config.crop is True
    with pytest.raises(ConfigError, match="fid50k has no face crop"):
        PROTOCOLS["fid50k"].without_crop()


def test_disentanglement_protocols_are_disentanglement_libs_constants():
    dci, lasso, mig, sap = (PROTOCOLS[n] for n in ("dci", "dci_lasso", "mig", "sap"))
    assert {p.kind for p in (dci, lasso, mig, sap)} == {"disentanglement"}
    assert (dci.num_samples, dci.config.constants.num_test, dci.config.constants.regressor) == (15_000, 5_000, "gbt")
    assert lasso.config.constants.regressor == "lasso" and lasso.config.constants.name == "dci"
    assert (mig.num_samples, mig.config.constants.num_bins) == (10_000, 20)
    assert (sap.num_samples, sap.config.constants.svm_c) == (15_000, 0.01)
    assert all(p.config.spaces == ("z", "w", "s") for p in (dci, lasso, mig, sap))


def test_spaces_and_jobs_reach_only_the_protocols_with_latent_spaces():
    fid, ls, mig = (p.with_spaces(("w", "s")).with_jobs(3) for p in get_protocols("fid50k,ls,mig"))
    assert fid is PROTOCOLS["fid50k"]
    assert ls.config.spaces == ("w",) and ls.config.n_jobs == 3  # ls has no S
    assert mig.config.spaces == ("w", "s") and mig.config.n_jobs == 3
    with pytest.raises(ConfigError, match="ls measures z or w; add one of them to --spaces"):
        PROTOCOLS["ls"].with_spaces(("s",))
    with pytest.raises(ConfigError, match="--spaces must be distinct names from z, w, s"):
        PROTOCOLS["sap"].with_spaces(("z", "z"))


@pytest.mark.parametrize("names, n, message", [
    ("dci,dci_lasso", None, "dci and dci_lasso both write the records dci_<space>"),
    ("sap", 3, "--num-samples must be at least 4 for sap, got 3"),
])
def test_disentanglement_refusals(names, n, message):
    with pytest.raises(ConfigError, match=message):
        get_protocols(names, n)
