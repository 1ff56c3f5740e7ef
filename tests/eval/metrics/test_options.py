"""stylegan_eval.metrics.options: what every metric takes, validated once."""

import pytest
import torch

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.options import MetricOptions


def test_defaults_and_normalisation(tmp_path):
    o = MetricOptions(G=None, device="cpu", cache_dir=str(tmp_path))
    assert o.device == torch.device("cpu") and o.cache_dir == tmp_path and (o.rank, o.world_size) == (0, 1)
    assert o.resolved_cache_dir() == tmp_path


@pytest.mark.parametrize("kw, message", [
    ({"seed": -1}, "seed must be non-negative"),
    ({"batch_size": 0}, "batch size must be at least 1"),
    ({"rank": 1}, r"rank 1 is not in 0..0"),
])
def test_bad_options(kw, message):
    with pytest.raises(ConfigError, match=message):
        MetricOptions(G=None, **kw)
