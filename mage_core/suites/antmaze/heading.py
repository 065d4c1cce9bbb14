"""The ant's heading frame for MAGE's plan-reading action head (ModelConfig.inv_frame = "ant-heading"): the head sees
the ant as the data's controller did."""
from __future__ import annotations

from mage_core.suites.antmaze.tasks import GOAL, POS

GAIT_STEPS = 4  # plan steps below this also give the head their joint angles and velocities (the next strides' gait);
#                 every lookahead step gives its torso xy


def ant_heading_features(s_BD, rows_BLD, steps: tuple):
    """The head's input in the torso's heading frame, as the data's controller sees the ant: proprioception without
    xy or heading (27, the controller's layout), the goal relative to the torso (2), and per lookahead step the planned
    torso xy relative to the torso (2) plus, for steps < GAIT_STEPS, the planned joint angles and velocities (16).
    s_BD: raw flattened observations (B, 31); rows_BLD: raw decoded (R, s) rows at `steps` (B, L, 32)."""
    import torch

    w, x, y, z = s_BD[:, 1:5].unbind(1)
    yaw_B = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    c_B, s_B = torch.cos(yaw_B), torch.sin(yaw_B)
    hw, hz = torch.cos(-yaw_B / 2), torch.sin(-yaw_B / 2)  # the half-turn quaternion (hw, 0, 0, hz) removing the heading
    q_B4 = torch.stack([hw * w - hz * z, hw * x - hz * y, hw * y + hz * x, hw * z + hz * w], 1)
    q_B4 = q_B4 * torch.where(q_B4[:, :1] < 0, -1.0, 1.0)

    def rot(v_X2, c, s):  # world -> heading frame
        return torch.stack([c * v_X2[..., 0] + s * v_X2[..., 1], -s * v_X2[..., 0] + c * v_X2[..., 1]], -1)

    xy_B2 = s_BD[:, POS]
    vel_B3 = torch.cat([rot(s_BD[:, 13:15], c_B, s_B), s_BD[:, 15:16]], 1)  # qvel[0:3]: world linear velocity
    goal_B2 = rot(s_BD[:, GOAL] - xy_B2, c_B, s_B)
    rel_BL2 = rot(rows_BLD[:, :, 1 + POS.start:1 + POS.stop] - xy_B2[:, None], c_B[:, None], s_B[:, None])
    gait = [i for i, t in enumerate(steps) if t < GAIT_STEPS]
    joints_BG = torch.cat([rows_BLD[:, gait, 6:14], rows_BLD[:, gait, 20:28]], -1).flatten(1)  # 1 + s index: R leads
    return torch.cat([s_BD[:, 0:1], q_B4, s_BD[:, 5:13], vel_B3, s_BD[:, 16:27], goal_B2, rel_BL2.flatten(1),
                      joints_BG], 1)


def ant_heading_dim(steps: tuple) -> int:
    return 29 + 2 * len(steps) + 16 * sum(t < GAIT_STEPS for t in steps)
