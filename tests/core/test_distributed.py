import torch

from stylegan_core import distributed


def test_single_process_fallbacks():
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    x = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(distributed.gather_by_index(x, 3), x)
    assert torch.equal(distributed.all_reduce_sum(x), x)


def test_shards_partition_indices():
    total = range(11)
    shards = [distributed.shard(total, r, 3) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(total)
    assert list(shards[1]) == [1, 4, 7, 10]
