"""Run management shared by the particle solvers: time steppers, snapshots, diagnostics,
on-disk checkpoints with resume, and divergence detection.

A solver supplies ``velocity(x, t) -> (n, d)`` (which calls the score oracle on the current
particle cloud) and ``diagnostics(x, t) -> dict`` of arrays; :func:`integrate` does the rest.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scoreoracle._validation import as_points


def euler(velocity, x, t, dt):
    return x + dt * velocity(x, t)


def heun(velocity, x, t, dt):
    k1 = velocity(x, t)
    k2 = velocity(x + dt * k1, t + dt)
    return x + 0.5 * dt * (k1 + k2)


def rk4(velocity, x, t, dt):
    k1 = velocity(x, t)
    k2 = velocity(x + 0.5 * dt * k1, t + 0.5 * dt)
    k3 = velocity(x + 0.5 * dt * k2, t + 0.5 * dt)
    k4 = velocity(x + dt * k3, t + dt)
    return x + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)


STEPPERS = {"euler": euler, "heun": heun, "rk4": rk4}


@dataclass(frozen=True)
class Trajectory:
    """Saved snapshots of a particle run.

    times : (T,) snapshot times (first = start, last = end).
    particles : (T, n, d) particle states at those times.
    diagnostics : name → (T, ...) array of per-snapshot diagnostics.
    """

    times: np.ndarray
    particles: np.ndarray
    diagnostics: dict = field(default_factory=dict)

    @property
    def final(self) -> np.ndarray:
        """The last saved state (n, d)."""
        return self.particles[-1]


class SolverDivergenceError(FloatingPointError):
    """The particle state became non-finite or exploded; ``.trajectory`` ends at the last good state."""

    def __init__(self, message, trajectory: Trajectory):
        super().__init__(message)
        self.trajectory = trajectory


def check_time_arguments(t_span, dt):
    try:
        t0, t1 = (float(t) for t in t_span)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"t_span must be a pair (t_start, t_end), got {t_span!r}") from exc
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"t_span must be finite, got {t_span!r}")
    if t1 <= t0:
        raise ValueError(f"t_span must increase (t_end > t_start), got {t_span!r}; "
                         "backward integration is not supported")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive and finite, got {dt!r}")
    n_steps = max(1, math.ceil((t1 - t0) / dt - 1e-9))
    return t0, t1, n_steps


def check_particles(particles) -> np.ndarray:
    x = as_points(particles, "particles").numpy()
    if x.shape[1] > x.shape[0]:
        raise ValueError(f"particles has shape {x.shape}: more dimensions than particles; "
                         "arrays are (n, d) — pass particles.T")
    return np.ascontiguousarray(x)


def _save(path: Path, **arrays):
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def integrate(particles, velocity, diagnostics, *, t_span, dt, method="heun", save_every=None,
              checkpoint=None, checkpoint_every=50, resume=False, explode_factor=1e6,
              progress=False, desc="particles", rng_state=None):
    """Advance ``particles`` (n, d) with ``velocity`` over ``t_span`` using ``method``.

    dt is shrunk so that a whole number of steps spans t_span exactly.  A snapshot (state plus
    ``diagnostics``) is kept every ``save_every`` steps (default: ≈100 snapshots) and at the end.
    With ``checkpoint`` (a .npz path) the run is written there every ``checkpoint_every`` steps;
    ``resume=True`` continues from it and gives the same result as an uninterrupted run.
    ``rng_state`` is an optional ``np.random.Generator`` whose state is saved and restored with
    the checkpoint (for solvers that subsample).
    """
    from tqdm.auto import tqdm

    if method not in STEPPERS:
        raise ValueError(f"method must be one of {sorted(STEPPERS)}, got {method!r}")
    stepper = STEPPERS[method]
    x = check_particles(particles)
    t0, t1, n_steps = check_time_arguments(t_span, dt)
    h = (t1 - t0) / n_steps
    save_every = save_every or max(1, n_steps // 100)
    checkpoint = Path(checkpoint) if checkpoint is not None else None

    start, times, states, diags = 0, [], [], {}

    def record(state, t):
        times.append(t)
        states.append(state.copy())
        for name, value in diagnostics(state, t).items():
            diags.setdefault(name, []).append(np.asarray(value, dtype=float))

    def trajectory():
        return Trajectory(np.array(times), np.stack(states), {k: np.stack(v) for k, v in diags.items()})

    def save_checkpoint(step, state):
        if checkpoint is None:
            return
        extra = {} if rng_state is None else {"rng": np.array(json.dumps(rng_state.bit_generator.state))}
        _save(checkpoint, step=step, state=state, times=np.array(times), states=np.stack(states),
              n_steps=n_steps, t_span=np.array([t0, t1]), method=np.array(method),
              **{f"diag_{k}": np.stack(v) for k, v in diags.items()}, **extra)

    if resume and checkpoint is not None and checkpoint.exists():
        with np.load(checkpoint) as ck:
            if int(ck["n_steps"]) != n_steps or not np.allclose(ck["t_span"], [t0, t1]) \
                    or str(ck["method"]) != method or ck["state"].shape != x.shape:
                raise ValueError(f"checkpoint {checkpoint} belongs to a different run "
                                 "(t_span, dt, method or particle shape differ)")
            start, x = int(ck["step"]), ck["state"].copy()
            times, states = list(ck["times"]), list(ck["states"])
            diags = {k[5:]: list(ck[k]) for k in ck.files if k.startswith("diag_")}
            if rng_state is not None and "rng" in ck.files:
                rng_state.bit_generator.state = json.loads(str(ck["rng"]))
    else:
        record(x, t0)

    x_start = np.asarray(states[0])  # divergence threshold from the initial state, resumed or not
    scale = max(float(np.sqrt((x_start ** 2).sum(1).mean())), 1e-300)
    bar = tqdm(total=n_steps, initial=start, disable=not progress, desc=desc)
    for step in range(start, n_steps):
        t = t0 + step * h
        new = stepper(velocity, x, t, h)
        if not np.isfinite(new).all() or np.abs(new).max() > explode_factor * scale:
            if times[-1] != t:
                record(x, t)
            save_checkpoint(step, x)
            what = "non-finite values" if not np.isfinite(new).all() else "an exploding state"
            raise SolverDivergenceError(
                f"step {step + 1}/{n_steps} (t = {t + h:.6g}) produced {what}; stopped, the trajectory "
                f"ends at the last good state t = {t:.6g}. Reduce dt or check the drift/oracle.",
                trajectory())
        x = new
        bar.update(1)
        done = step + 1 == n_steps
        if (step + 1) % save_every == 0 or done:
            record(x, t0 + (step + 1) * h if not done else t1)
        if (step + 1) % checkpoint_every == 0 or done:
            save_checkpoint(step + 1, x)
    bar.close()
    return trajectory()

