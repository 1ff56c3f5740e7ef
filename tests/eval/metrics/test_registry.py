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
