"""make_loader: workers, reproducibility independent of num_workers, sharding, fork safety."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from vitzoo.data import (
    SegmentSampler,
    VideoClipDataset,
    VideoListDataset,
    VideoReader,
    make_loader,
    read_frame_index,
    set_epoch,
    train_transform,
)

TIMEOUT = 60  # seconds a worker may take per batch before the loader raises instead of hanging


def _train_dataset(motion, **kwargs):
    return VideoListDataset(
        motion.root, motion.train_list, sampler=SegmentSampler(4, train=True),
        transform=train_transform(img_size=16, mean=(0.5,) * 3, std=(0.5,) * 3), return_info=True, **kwargs,
    )  # fmt: skip


def _epoch(loader):
    clips, labels, index = [], [], []
    for clip, label, info in loader:
        clips.append(clip)
        labels.append(label)
        index.append(info["index"])
    return torch.cat(clips), torch.cat(labels), torch.cat(index)


def test_two_workers_load_every_sample_once(motion):
    ds = _train_dataset(motion)
    loader = make_loader(ds, batch_size=3, num_workers=2, shuffle=True, seed=0, timeout=TIMEOUT)
    assert loader.persistent_workers and loader.multiprocessing_context.get_start_method() == "fork"
    for _ in range(2):
        clips, labels, index = _epoch(loader)
        assert clips.shape == (8, 3, 4, 16, 16)
        assert sorted(index.tolist()) == list(range(8))
        assert labels.tolist() == [ds.labels[i] for i in index.tolist()]


def test_batches_do_not_depend_on_num_workers(motion):
    ds = _train_dataset(motion)
    runs = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, num_workers=workers, shuffle=True, seed=7, timeout=TIMEOUT)
        runs[workers] = [_epoch(loader) for _ in range(2)]
    for a, b in zip(runs[0], runs[2], strict=True):
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y)
    assert not torch.equal(runs[0][0][2], runs[0][1][2])  # a new order each epoch
    assert not torch.equal(runs[0][0][0], runs[0][1][0])


def test_seed_and_set_epoch(motion):
    ds = _train_dataset(motion)
    first = make_loader(ds, batch_size=4, shuffle=True, seed=1)
    epoch0 = _epoch(first)
    _epoch(first)
    set_epoch(first, 0)  # resuming replays epoch 0 exactly
    assert all(torch.equal(x, y) for x, y in zip(epoch0, _epoch(first), strict=True))
    other = _epoch(make_loader(ds, batch_size=4, shuffle=True, seed=2))
    assert not torch.equal(epoch0[0], other[0])


def test_no_shuffle_keeps_order(motion):
    loader = make_loader(_train_dataset(motion), batch_size=5, shuffle=False)
    assert _epoch(loader)[2].tolist() == list(range(8))


def test_distributed_shards(motion):
    ds = _train_dataset(motion)
    shards = []
    for rank in range(2):
        loader = make_loader(ds, batch_size=2, shuffle=True, distributed=True, num_replicas=2, rank=rank, seed=3)
        shards.append(set(_epoch(loader)[2].tolist()))
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(range(8))
    with pytest.raises(ValueError):
        make_loader(ds, batch_size=2, distributed=True, num_replicas=2)
    with pytest.raises(ValueError):
        make_loader(ds, batch_size=2, rank=0)


class _HoldsOpenReader(Dataset):
    """A dataset that (against our advice) carries a reader opened in the parent into the workers."""

    def __init__(self, path):
        self.reader = VideoReader(path).open()
        self.reader.get([0])

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return read_frame_index(self.reader.get([i])[0])


def test_reader_open_in_parent_survives_forked_workers(videos):
    ds = _HoldsOpenReader(videos.index)
    loader = make_loader(ds, batch_size=4, num_workers=2, timeout=TIMEOUT)
    got = torch.cat(list(loader)).tolist()
    assert got == list(range(8))
    assert read_frame_index(ds.reader.get([9])[0]) == 9  # parent's decoder still fine
    ds.reader.close()


def test_failure_count_is_shared_with_workers(videos):
    samples = [(videos.short, 0), (videos.broken["text"], 1)] * 4 + [(videos.fps50, 2)]  # all 32x32
    ds = VideoClipDataset(samples, sampler=SegmentSampler(2), on_error="skip", return_info=True)
    loader = make_loader(ds, batch_size=3, num_workers=2, timeout=TIMEOUT)
    flags = torch.cat([info["substituted"] for *_, info in loader])
    assert flags.sum().item() == 4  # per-sample flag
    assert ds.num_failures == 4  # counted in the workers, visible here


class _NumpyRandom(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return int(np.random.randint(0, 2**31))


def test_worker_numpy_rngs_are_seeded():
    runs = [torch.cat(list(make_loader(_NumpyRandom(), batch_size=2, num_workers=2, seed=5))) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert len(set(runs[0].tolist())) == 8  # workers do not share a stream


@pytest.mark.slow
def test_spawn_workers(videos):
    """spawn re-imports torch in each worker (slow on 2 cores); the failure count still adds up."""
    samples = [(videos.index, 0), (videos.broken["text"], 1)] * 2
    ds = VideoClipDataset(samples, sampler=SegmentSampler(2), on_error="skip")
    loader = make_loader(ds, batch_size=2, num_workers=2, multiprocessing_context="spawn", timeout=120)
    assert torch.cat([labels for _, labels in loader]).tolist() == [0, 0, 0, 0]
    assert ds.num_failures == 2
