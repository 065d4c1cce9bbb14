"""Segment pipeline tests: shapes, RTG relabel on a hand-made episode, padding at episode ends, normaliser round trip."""
import numpy as np
import pytest
import torch

from mage_core.data.segments import (Episode, Normaliser, SegmentConfig, SegmentDataset, dense_rtg, episode_rtg,
                                      relabel_rtg)
from mage_core.errors import MageError


def _episode(T=5, success=True, obs_dim=3, act_dim=2, start=0.0):
    obs = np.arange(T + 1, dtype=np.float32)[:, None] * np.ones(obs_dim, np.float32) + start
    acts = np.full((T, act_dim), 0.5, np.float32)
    rew = np.zeros(T, np.float32)
    if success:
        rew[-1] = 1.0
    return Episode(obs, acts, rew, success)


def test_window_rtg_on_a_hand_made_episode():
    # 5 steps to the goal, window 8: at step i the goal is 5 - i steps away -> R = 8 - (5 - i)
    np.testing.assert_array_equal(relabel_rtg(5, True, 8), [3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(relabel_rtg(10, True, 8), [0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    np.testing.assert_array_equal(relabel_rtg(3, False, 8), [0, 0, 0, 0])
    np.testing.assert_array_equal(dense_rtg(np.array([1.0, 2.0, 3.0])), [6, 5, 3, 0])
    # goal first reached on transition 2 (observation 3), then held for 2 more steps: R = W while holding
    np.testing.assert_array_equal(relabel_rtg(5, True, 8, first_reward=2), [5, 6, 7, 8, 8, 8])
    ep = Episode(np.zeros((6, 2), np.float32), np.zeros((5, 1), np.float32),
                 np.array([0, 0, 1, 1, 0], np.float32), True)
    np.testing.assert_array_equal(episode_rtg(ep, 8), [5, 6, 7, 8, 8, 8])


def test_segment_shapes_padding_and_values():
    eps = [_episode(5), _episode(7, start=100.0)]
    ds = SegmentDataset(eps, SegmentConfig(horizon=4, rtg_window=8))
    assert len(ds) == 5 + 7
    b = ds.get(np.array([0, 3]))
    assert b.x_BHD.shape == (2, 4, 4) and b.a_BHA.shape == (2, 4, 2) and b.mask_BH.shape == (2, 4)
    x = ds.normaliser.denorm_x(b.x_BHD).numpy()
    np.testing.assert_allclose(x[0, :, 0], [3, 4, 5, 6], atol=1e-4)  # RTG column
    np.testing.assert_allclose(x[0, :, 1], [0, 1, 2, 3], atol=1e-4)  # first obs dim
    # segment starting at step 3 of a 5-step episode: 2 real steps, then the final state is held
    np.testing.assert_allclose(x[1, :, 1], [3, 4, 5, 5], atol=1e-4)
    np.testing.assert_array_equal(b.mask_BH[1].numpy(), [1, 1, 0, 0])
    np.testing.assert_array_equal(b.a_BHA[1, 2:].numpy(), 0.0)
    assert torch.equal(b.a_BA, b.a_BHA[:, 0])
    # segments never mix episodes
    x2 = ds.normaliser.denorm_x(ds.get(np.array([len(ds) - 1])).x_BHD).numpy()
    assert x2[0, :, 1].min() >= 100.0 - 1e-3


def test_normaliser_round_trip():
    rng = np.random.default_rng(0)
    x, a = rng.normal(3.0, 2.0, size=(100, 4)), rng.normal(size=(100, 2))
    n = Normaliser.fit(x, a)
    np.testing.assert_allclose(n.denorm_x(n.norm_x(x)), x, rtol=1e-5)
    assert abs(n.norm_x(x).mean()) < 1e-5
    n2 = Normaliser.from_state_dict(n.state_dict())
    t = torch.as_tensor(x, dtype=torch.float32)
    torch.testing.assert_close(n2.norm_x(t), torch.as_tensor(n.norm_x(x), dtype=torch.float32))
    const = Normaliser.fit(np.ones((10, 2)), np.ones((10, 1)))  # constant features stay finite
    assert np.all(np.isfinite(const.norm_x(np.ones((3, 2)))))


def test_bad_episodes_are_refused():
    with pytest.raises(MageError, match="lengths disagree"):
        Episode(np.zeros((4, 2)), np.zeros((4, 1)), np.zeros(4), True)
    with pytest.raises(MageError, match="NaN"):
        Episode(np.full((3, 2), np.nan), np.zeros((2, 1)), np.zeros(2), True)
    with pytest.raises(MageError, match="no episodes"):
        SegmentDataset([], SegmentConfig())
