"""The packaged MobileFaceNet tells the bundled sample people apart (no ../shared needed)."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from facegan.data.loader import to_model_range
from facegan.data.packed import PackedDataset
from facegan.models.identity import load_identity_net


def test_same_person_pairs_score_higher(sample_data):
    ds = PackedDataset(sample_data)
    images, ids = [], []
    for name in ds.split_names:
        s = ds.split(name)
        images.append(np.array(s.images))
        ids += s.identities
    x = to_model_range(torch.from_numpy(np.concatenate(images)))
    net = load_identity_net("mobilefacenet")
    with torch.no_grad():
        emb = net(x)
    cos = (emb @ emb.T).numpy()
    same, diff = [], []
    for i, j in itertools.combinations(range(len(ids)), 2):
        (same if ids[i] == ids[j] else diff).append(cos[i, j])
    assert len(same) > 20
    assert np.mean(same) > np.mean(diff) + 0.25, (np.mean(same), np.mean(diff))
