"""The locomotion suite's shipped behaviour policies and replay logs: where they live, loading them checked, exporting
them from a behaviour-policy training run (`python -m mage_core.suites.locomotion.export ENV`)."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.locomotion.actor import ASSETS, NumpyActor, sha256

ASSETS_ENV_VAR = "MAGE_LOCOMOTION_ASSETS"  # overrides the folder the policies and replay logs are read from
ACTOR_KEYS = ("n_layers", "w_mu", "b_mu", "w_logstd", "b_logstd")  # besides w<i>, b<i> for each hidden layer
REPLAY_KEYS = ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts")
MEDIUM_FRACTION = 1 / 3  # D4RL's medium policy: about a third of the expert's return
MANIFEST = "manifest.json"  # per shipped file: sha256, size and what it is (written by export())
PART_BYTES = 18_000_000  # most uncompressed bytes of one replay-log file, so each stays under the repo's 20 MB


def asset_dir(override: str | os.PathLike | None = None) -> Path:
    """The folder of the shipped locomotion files: `override`, else $MAGE_LOCOMOTION_ASSETS, else assets/locomotion."""
    if override is not None:
        return Path(override)
    env = os.environ.get(ASSETS_ENV_VAR)
    return Path(env) if env else ASSETS


def policy_path(folder: Path, env: str, which: str) -> Path:
    """`<env>-<which>.npz` in the assets folder (which: 'expert', 'medium', 'medium-replay' or 'replay-tail')."""
    return Path(folder) / f"{env}-{which}.npz"


def replay_part_paths(folder: Path, env: str, which: str) -> list[Path]:
    """The files of a shipped replay log ('medium-replay' or 'replay-tail') in order: `<env>-<which>.npz`, then
    `<env>-<which>-2.npz`, `-3`, ... while they exist (a log longer than PART_BYTES is shipped in parts)."""
    paths = [policy_path(folder, env, which)]
    while (nxt := policy_path(folder, env, f"{which}-{len(paths) + 1}")).is_file():
        paths.append(nxt)
    return paths


def load_replay_parts(paths: list[Path], env: str, obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    """A replay log shipped in parts, each checked (load_replay), joined in order."""
    parts = [load_replay(p, env, obs_dim, act_dim) for p in paths]
    return parts[0] if len(parts) == 1 else {k: np.concatenate([z[k] for z in parts]) for k in REPLAY_KEYS}


def _how_to_make(env: str) -> str:
    return (f"make it with `python -m mage_core.suites.locomotion.behaviour {env}` (SAC; needs the 'controller' "
            f"extra), then `python -m mage_core.suites.locomotion.export {env}` (see assets/locomotion/README.md)")


def _read_npz(path: Path, env: str, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise MageError(f"missing locomotion {what} file {path}; {_how_to_make(env)}")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MageError(f"damaged locomotion {what} file {path} ({exc}); {_how_to_make(env)}") from None


def load_actor(path: Path, env: str, obs_dim: int, act_dim: int) -> tuple[NumpyActor, dict]:
    """A shipped SAC actor (behaviour.actor_arrays plus an `info` JSON string) checked against the env's sizes, and
    its info; a MageError naming the file when it is missing or damaged."""
    arrays = _read_npz(path, env, "policy")
    try:
        n = int(arrays["n_layers"]) if "n_layers" in arrays else -1
        missing = [k for k in ACTOR_KEYS + tuple(f"{w}{i}" for i in range(n) for w in "wb") if k not in arrays]
        if n < 1 or missing:
            raise ValueError(f"missing arrays {', '.join(missing) or 'n_layers'}")
        widths = [obs_dim] + [int(arrays[f"w{i}"].shape[0]) for i in range(n)]
        for i in range(n):
            if arrays[f"w{i}"].shape != (widths[i + 1], widths[i]) or arrays[f"b{i}"].shape != (widths[i + 1],):
                raise ValueError(f"layer {i} has w {arrays[f'w{i}'].shape}, b {arrays[f'b{i}'].shape} "
                                 f"(a {obs_dim}-dim observation in, {act_dim} actions out expected)")
        for k in ("w_mu", "w_logstd"):
            if arrays[k].shape != (act_dim, widths[-1]):
                raise ValueError(f"{k} has shape {arrays[k].shape}, expected {(act_dim, widths[-1])}")
        for k in ("b_mu", "b_logstd"):
            if arrays[k].shape != (act_dim,):
                raise ValueError(f"{k} has shape {arrays[k].shape}, expected {(act_dim,)}")
        if not all(np.all(np.isfinite(v)) for k, v in arrays.items() if k != "info"):
            raise ValueError("NaN or inf weights")
        info = json.loads(str(arrays["info"])) if "info" in arrays else {}
    except (ValueError, TypeError) as exc:
        raise MageError(f"damaged locomotion policy file {path}: {exc}; {_how_to_make(env)}") from None
    return NumpyActor(arrays), info


def load_replay(path: Path, env: str, obs_dim: int, act_dim: int) -> dict[str, np.ndarray]:
    """A shipped SAC replay log (the arrays behaviour.py writes to replay.npz), checked; a MageError naming the file
    when it is missing or damaged."""
    z = _read_npz(path, env, "replay log")
    missing = [k for k in REPLAY_KEYS if k not in z]
    n = len(z["rewards"]) if "rewards" in z else 0
    shapes = {"observations": (n, obs_dim), "next_observations": (n, obs_dim), "actions": (n, act_dim),
              "rewards": (n,), "terminals": (n,), "timeouts": (n,)}
    wrong = [f"{k} {z[k].shape}" for k in REPLAY_KEYS if k in z and z[k].shape != shapes[k]]
    if missing or wrong or n == 0:
        raise MageError(f"damaged locomotion replay log {path}: "
                        + (f"missing {', '.join(missing)}" if missing else
                           f"expected {n} transitions of {obs_dim}-dim observations and {act_dim}-dim actions, got "
                           f"{', '.join(wrong) or 'none'}") + f"; {_how_to_make(env)}")
    if not all(np.all(np.isfinite(z[k])) for k in ("observations", "next_observations", "actions", "rewards")):
        raise MageError(f"damaged locomotion replay log {path}: NaN or inf values; {_how_to_make(env)}")
    return z


def save_actor(path: Path, arrays: dict[str, np.ndarray], info: dict) -> None:
    """Write an actor file as the suite reads it: the arrays of behaviour.actor_arrays and `info` as a JSON string."""
    tmp = Path(path).with_name(Path(path).name + ".tmp.npz")
    np.savez(tmp, info=np.array(json.dumps(info)), **{k: v for k, v in arrays.items() if k != "info"})
    os.replace(tmp, path)


# ---- export from a training run --------------------------------------------------------------------------------------
def _snapshots(run_dir: Path, env: str) -> list[tuple[int, float, Path]]:
    """(steps, mean evaluation return, path) of every actor snapshot of a run, in training order."""
    out = []
    for p in sorted((run_dir / "snapshots").glob(f"{env}-*.npz")):
        with np.load(p, allow_pickle=False) as z:
            info = json.loads(str(z["info"]))
        out.append((int(info["steps"]), float(np.mean(info["eval_returns"])), p))
    return out


def ships_replay_tail(folder: Path, env: str) -> bool:
    """Whether the shipped files include `env`'s replay tail (what `full-replay` needs): its manifest lists it, or,
    in a folder without a manifest, its first file is there."""
    manifest = Path(folder) / MANIFEST
    if manifest.is_file():
        return policy_path(Path("."), env, "replay-tail").name in json.loads(manifest.read_text())
    return policy_path(folder, env, "replay-tail").is_file()


def export(env: str, run_dir: Path, out_dir: Path, medium_steps: int | None = None, replay_tail: bool = True) -> dict:
    """Write `<env>-expert.npz` (the run's last snapshot), `<env>-medium.npz` (the one at `medium_steps`, else the
    snapshot closest to MEDIUM_FRACTION of the expert's return among those up to the first that reaches it: D4RL's
    medium policy is a partly trained agent, never a later collapse of a good one) and `<env>-medium-replay.npz`
    (the first `medium steps` transitions of the run's replay log, float32, compressed) and `<env>-replay-tail.npz`
    (the log's transitions from there up to the expert snapshot: with the medium replay, D4RL's full replay), each
    log in parts `-2`, `-3`, ... where it exceeds PART_BYTES; record their sha256 in the manifest. Without
    `replay_tail` the tail is not written and any earlier one is removed (the task then has no `full-replay`).
    Returns the manifest entries written."""
    snaps = _snapshots(run_dir, env)
    if len(snaps) < 2:
        raise MageError(f"{run_dir} holds {len(snaps)} actor snapshots of {env}; train longer "
                        f"(`python -m mage_core.suites.locomotion.behaviour {env}`)")
    expert = snaps[-1]
    if medium_steps is not None:
        medium = next((s for s in snaps if s[0] == medium_steps), None)
        if medium is None:
            raise MageError(f"no snapshot at {medium_steps} steps; snapshots: {', '.join(str(s[0]) for s in snaps)}")
    else:
        target = MEDIUM_FRACTION * expert[1]
        first_reach = next((i for i, s in enumerate(snaps[:-1]) if s[1] >= target), len(snaps) - 2)
        medium = min(snaps[:first_reach + 1], key=lambda s: (abs(s[1] - target), s[0]))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for which, (steps, ret, src) in (("expert", expert), ("medium", medium)):
        with np.load(src, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "info"}
            info = json.loads(str(z["info"]))
        info.update(role=which, source_snapshot=src.name, expert_return=expert[1], medium_fraction=MEDIUM_FRACTION)
        dst = policy_path(out_dir, env, which)
        save_actor(dst, arrays, info)
        written[dst.name] = dict(steps=steps, eval_return=ret, sha256=sha256(dst), bytes=dst.stat().st_size)
    with np.load(run_dir / "replay.npz", allow_pickle=False) as z:
        n = min(medium[0], len(z["rewards"]))
        replay = {k: np.asarray(z[k][:n], np.float32) for k in REPLAY_KEYS}
        tail = {k: np.asarray(z[k][n:min(expert[0], len(z["rewards"]))], np.float32) for k in REPLAY_KEYS}
    removed = []
    for which, log in (("medium-replay", replay), ("replay-tail", tail)):
        old_parts = replay_part_paths(out_dir, env, which)
        for stale in old_parts[1:] if which != "replay-tail" or replay_tail else old_parts:  # an earlier export's
            if stale.is_file():
                stale.unlink()
                removed.append(stale.name)
        if which == "replay-tail" and not replay_tail:
            continue
        per_part = max(1, PART_BYTES // sum(log[k][:1].nbytes for k in REPLAY_KEYS))
        n_parts = max(1, -(-len(log["rewards"]) // per_part))
        for i in range(n_parts):
            part = {k: v[i * per_part:(i + 1) * per_part] for k, v in log.items()}
            dst = policy_path(out_dir, env, which if i == 0 else f"{which}-{i + 1}")
            tmp = dst.with_name(dst.name + ".tmp.npz")
            np.savez_compressed(tmp, **part)
            os.replace(tmp, dst)
            written[dst.name] = dict(steps=len(part["rewards"]), episodes=int(np.sum(part["terminals"] > 0)),
                                     sha256=sha256(dst), bytes=dst.stat().st_size)
    manifest_path = out_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    for name in removed:
        manifest.pop(name, None)
    manifest.update(written)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return written
