import pytest
import torch

from stylegan_core.seeding import LATENT, NOISE, derive_seed, per_sample_noise, per_sample_rand, per_sample_randn, torch_generator


def test_derive_seed_is_stable_and_key_sensitive():
    assert derive_seed(0, 1) == derive_seed(0, 1)
    assert len({derive_seed(0, i) for i in range(1000)}) == 1000
    assert derive_seed(0, 1, 2) != derive_seed(0, 2, 1)
    assert 0 <= derive_seed(123, 4) < 2**63


def test_derive_seed_rejects_negative():
    with pytest.raises(ValueError, match="non-negative"):
        derive_seed(-1)


def test_per_sample_draws_do_not_depend_on_batching():
    whole = per_sample_randn((7,), seed=3, indices=range(10))
    parts = torch.cat([per_sample_randn((7,), seed=3, indices=range(0, 4)), per_sample_randn((7,), 3, range(4, 10))])
    assert torch.equal(whole, parts)
    # streams are independent draws for the same sample
    assert not torch.equal(whole, per_sample_randn((7,), seed=3, indices=range(10), stream=1))
    u = per_sample_rand((2,), seed=3, indices=[5, 6], stream=2)
    assert u.shape == (2, 2) and (u >= 0).all() and (u < 1).all()


def test_torch_generator_reproducible():
    a = torch.randn(5, generator=torch_generator(1, 2))
    b = torch.randn(5, generator=torch_generator(1, 2))
    assert torch.equal(a, b)


def test_noise_is_drawn_per_sample_in_layer_order():
    shapes = [(4, 4), (8, 8)]
    whole = per_sample_noise(shapes, seed=3, indices=range(5))
    part = per_sample_noise(shapes, seed=3, indices=[4, 1])
    assert [tuple(n.shape) for n in whole] == [(5, 1, 4, 4), (5, 1, 8, 8)]
    assert all(torch.equal(w[[4, 1]], p) for w, p in zip(whole, part))
    # sample i's layers come from one generator keyed (seed, stream, i), in layer order
    gen = torch_generator(3, NOISE, 4)
    assert torch.equal(whole[0][4, 0], torch.randn((1, 4, 4), generator=gen)[0])
    assert torch.equal(whole[1][4, 0], torch.randn((1, 8, 8), generator=gen)[0])
    assert not torch.equal(whole[0], per_sample_noise(shapes, seed=3, indices=range(5), stream=LATENT)[0])
