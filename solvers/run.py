"""The run layer shared by the particle solvers: validation, stepping, snapshots streamed to disk,
fingerprinted checkpoints with resume, a per-step hook, and divergence detection.

A solver supplies a :class:`ParticleProblem`:

* ``begin_step(step, t, x)`` — called once at the start of every step (and before the final
  snapshot), before any stage: draw per-step randomness here (random batches; the oracle's
  context subset is drawn anew every stage, from the same per-step stream).
  Randomness must come from :func:`step_rng` so a resumed run draws exactly what the
  uninterrupted one drew;
* ``field(x, t) -> dict`` — the velocity under key ``"velocity"`` (n, d) plus whatever the
  diagnostics need (scores, kernel by-products); the run layer keeps the last field, so a
  snapshot's diagnostics and the next step's first stage share one evaluation;
* ``diagnostics(x, t, field) -> dict`` of arrays for a snapshot;
* ``broken_invariant(diagnostics) -> str | None`` — optional: a conserved quantity gone (the run
  then stops as diverged at that snapshot);
* ``fingerprint() -> dict`` — everything that determines the run besides the options.

:func:`integrate` does the rest.  With ``checkpoint=folder`` every snapshot is written to its own
``.npy`` file as it is taken (memory does not grow with the number of snapshots) and the state is
saved every ``checkpoint_every`` steps; ``resume=True`` continues a run whose fingerprint matches.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from scoreoracle.fingerprint import SCHEME as FINGERPRINT_SCHEME
from scoreoracle.fingerprint import fingerprint
from scoreoracle.validation import check_positive_float, check_positive_int, check_sample_set
from scoreoracle.whitening import SingularSamplesError

from .trajectory import SnapshotStack, Trajectory


class SolverDivergenceError(FloatingPointError):
    """The particle state became non-finite or exploded; ``.trajectory`` ends at the last good state."""

    def __init__(self, message, trajectory: Trajectory):
        super().__init__(message)
        self.trajectory = trajectory


class _StageDiverged(Exception):
    """Raised inside a time step when a stage state or velocity is unusable."""


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
class RunOptions:
    """How a particle run is stepped, recorded and made resumable (the physics aside).

    method : "euler", "heun" or "rk4".
    save_every : steps between snapshots (default ⌊n_steps / 100⌋, at least 1: 100–200 snapshots, every step
        of runs under 200 steps); the end is always saved.
    checkpoint : a run folder: snapshots stream there and the state is saved every
        ``checkpoint_every`` steps; ``Trajectory.load(folder)`` reads it back.
    resume : continue the run saved in ``checkpoint`` (refused if it was a different run).
    overwrite : let a new run replace the run saved in ``checkpoint`` (refused by default: its
        snapshots would be lost, and trajectories read from that folder would read the new run's).
    oracle_samples : give the oracle a random subset of this many particles as its samples
        (O(n·m) instead of O(n²)); drawn anew every stage from the per-step seed.
    seed : seed of every random draw of the run.
    progress : tqdm progress bar.
    explode_factor : a state whose extent (its widest coordinate range, max − min) exceeds this ×
        the initial particles' extent diverged (a translation of the whole cloud is no divergence);
        ``math.inf`` turns the check off.
    reshuffle_every : runs on Dask arrays: steps between permutations of the particles across shards.
    on_step : ``on_step(step, t, x)`` called after every completed step with the new state (n, d)
        at time t (read it, do not modify it; a Dask array, in the particles' order, for runs on
        Dask arrays): monitoring, custom output.  Not part of the run's identity.
    """

    method: str = "heun"
    save_every: int | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 50
    resume: bool = False
    overwrite: bool = False
    oracle_samples: int | None = None
    seed: int = 0
    progress: bool = False
    explode_factor: float = 1e6
    reshuffle_every: int = 10
    on_step: object = None

    def __post_init__(self):
        if self.method not in STEPPERS:
            raise ValueError(f"method must be one of {sorted(STEPPERS)}, got {self.method!r}")
        if self.save_every is not None:
            check_positive_int(self.save_every, "save_every")
        check_positive_int(self.checkpoint_every, "checkpoint_every")
        check_positive_int(self.seed, "seed", allow_zero=True)
        if self.explode_factor != math.inf:
            check_positive_float(self.explode_factor, "explode_factor")
        check_positive_int(self.reshuffle_every, "reshuffle_every")
        if self.resume and self.checkpoint is None:
            raise ValueError("resume=True needs checkpoint= (the run folder to resume from)")
        if self.on_step is not None and not callable(self.on_step):
            raise TypeError(f"on_step must be a callable on_step(step, t, x), got {self.on_step!r}")

    @classmethod
    def for_call(cls, method: str | None, options: "RunOptions | None", keywords: dict) -> "RunOptions":
        """The options of a solver call: an options object, or keyword arguments (never both);
        unknown keywords are named.  ``method`` None: the options' (default "heun")."""
        if options is not None:
            if keywords:
                raise TypeError(f"give run options either as options=RunOptions(...) or as keywords, not both "
                                f"(got options= and {sorted(keywords)})")
            if not isinstance(options, cls):
                raise TypeError(f"options must be a RunOptions, got {type(options).__name__}")
            if method is not None and method != options.method:
                raise ValueError(f"method={method!r} conflicts with options.method={options.method!r}")
            return options
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(keywords) - known)
        if unknown:
            raise TypeError(f"unknown run option(s) {unknown}; run options are {sorted(known)}")
        return cls(**keywords) if method is None else cls(method=method, **keywords)

    def fingerprint(self) -> dict:
        """The options that change the computed trajectory (not where or how it is stored)."""
        return {k: v for k, v in asdict(self).items()
                if k in ("method", "save_every", "oracle_samples", "seed", "reshuffle_every")}


def step_rng(seed: int, step: int, stream: int = 0) -> np.random.Generator:
    """The random generator of one step (and stream): a function of (seed, step, stream) only."""
    return np.random.default_rng([seed, step, stream])


def check_particles(particles, name: str = "particles") -> np.ndarray:
    """Particles (n, d) as a contiguous float64 array: finite, n ≥ d + 2, sample-major."""
    return np.ascontiguousarray(check_sample_set(particles, name).detach().cpu().numpy())


def drift_velocity(drift, x: np.ndarray, t: float) -> np.ndarray:
    """A user drift b(x, t) at particles x (n, d) as float64 (n, d); any other shape is refused
    (broadcasting a (n, 1) or (d,) answer would silently change the physics)."""
    b = np.asarray(drift(x, t), dtype=np.float64)
    if b.shape != x.shape:
        raise ValueError(f"drift returned shape {b.shape}, expected {x.shape} (one velocity per particle)")
    if not np.isfinite(b).all():
        raise FloatingPointError(f"the drift returned non-finite values at t = {t:.6g}")
    return b


@dataclass(frozen=True)
class TimeGrid:
    """``n_steps`` equal steps from ``t0`` to ``t1``."""

    t0: float
    t1: float
    n_steps: int

    @property
    def h(self) -> float:
        return (self.t1 - self.t0) / self.n_steps

    def time(self, step: int) -> float:
        """t after ``step`` steps (the end exactly at the last one)."""
        return self.t1 if step == self.n_steps else self.t0 + step * self.h


def check_time_arguments(t_span, dt) -> TimeGrid:
    """The steps from t_span = (t0, t1), t1 > t0, and a positive dt (shrunk so that a whole number
    of steps spans t_span exactly)."""
    try:
        t0, t1 = (float(t) for t in t_span)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"t_span must be a pair (t_start, t_end), got {t_span!r}") from exc
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ValueError(f"t_span must be finite, got {t_span!r}")
    if t1 <= t0:
        raise ValueError(f"t_span must increase (t_end > t_start), got {t_span!r}; "
                         "backward integration is not supported")
    dt = check_positive_float(dt, "dt")
    return TimeGrid(t0, t1, max(1, math.ceil((t1 - t0) / dt - 1e-9)))


def check_oracle_samples(value, n: int, d: int):
    if value is None:
        return None
    value = check_positive_int(value, "oracle_samples")
    if value < d + 2:
        raise ValueError(f"oracle_samples must be at least d + 2 = {d + 2}, got {value}")
    return min(value, n)


def oracle_fingerprint(oracle) -> str:
    """The oracle's own ``fingerprint()`` when it has one, else its content."""
    fp = getattr(oracle, "fingerprint", None)
    return fp() if callable(fp) else fingerprint(oracle)


class ParticleProblem:
    """Base of a solver's problem (see the module docstring); ``begin_step`` does nothing."""

    def begin_step(self, step: int, t: float, x: np.ndarray):
        pass

    def field(self, x, t) -> dict:
        raise NotImplementedError

    def diagnostics(self, x, t, field: dict) -> dict:
        raise NotImplementedError

    def broken_invariant(self, diagnostics: dict) -> str | None:
        """What a snapshot's diagnostics show of a quantity the dynamics conserve gone far beyond
        step error (a run diverging too slowly for the extent check), or None."""
        return None

    def fingerprint(self) -> dict:
        raise NotImplementedError


@dataclass
class _Recorder:
    """Snapshots in memory, or streamed to ``folder/snapshots`` (one .npy per snapshot)."""

    folder: Path | None
    weights: np.ndarray | None = None  # the particles' normalised masses (n,)
    times: list = field(default_factory=list)
    states: list = field(default_factory=list)
    diags: dict = field(default_factory=dict)

    def add(self, x, t, diagnostics: dict):
        if self.folder is None:
            self.states.append(x.copy())
        else:
            _atomic_npy(self.folder / "snapshots" / f"{len(self.times):06d}.npy", x)
        self.times.append(t)
        for name, value in diagnostics.items():
            self.diags.setdefault(name, []).append(np.asarray(value, dtype=float))

    def trajectory(self) -> Trajectory:
        particles = (np.stack(self.states) if self.folder is None
                     else SnapshotStack(self.folder / "snapshots", len(self.times)))
        return Trajectory(np.array(self.times), particles, {k: np.stack(v) for k, v in self.diags.items()},
                          self.weights)

    def save_record(self):
        """Times and diagnostics (small) next to the streamed snapshots."""
        Trajectory(np.array(self.times), None, {k: np.stack(v) for k, v in self.diags.items()}, self.weights) \
            .save_metadata(self.folder)


def _atomic_npy(path: Path, array):
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def _atomic_json(path: Path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


RUN_FILES = ("state.npz", "times.npy", "diagnostics.npz", "weights.npy")


def cloud_extent(x: np.ndarray) -> float:
    """The widest coordinate range max − min of particles x (n, d): their size, whatever their place."""
    return float((x.max(0) - x.min(0)).max())


def check_new_run_folder(folder: Path, holds_run: bool, options: RunOptions) -> None:
    """A new run (not resumed) replaces a saved run only with ``overwrite=True``."""
    if holds_run and not options.overwrite:
        raise FileExistsError(f"checkpoint {folder} holds a saved run: continue it with resume=True (refused if "
                              "it was a different run), or choose another folder, or pass overwrite=True to "
                              "replace it (nothing was deleted)")


def check_same_run(folder: Path, saved_id: str, saved_scheme: int | None, run_id: str) -> None:
    """Resume only the run saved in ``folder``: its fingerprint (made under the same scheme) is ``run_id``."""
    if saved_scheme != FINGERPRINT_SCHEME:
        raise ValueError(f"checkpoint {folder} was saved by an older scoreoracle, whose run fingerprints are "
                         "computed differently: this version cannot tell whether it is the same run, so it does "
                         "not resume it; start the run again (overwrite=True) or use another folder")
    if saved_id != run_id:
        raise ValueError(f"checkpoint {folder} belongs to a different run (other particles, oracle, "
                         "physics, time grid or options); use another folder")


def _prepare_folder(folder: Path, run_id: str, options: RunOptions) -> bool:
    """Create the run folder before any work; True when resuming the same run.  Resuming a
    different run, a non-empty folder that holds no run (no run.json), and a new run over a
    saved one without ``overwrite`` are refused."""
    run_file = folder / "run.json"
    if (folder / "zarr.json").exists():
        raise ValueError(f"checkpoint {folder} holds a sharded run (particles given as a Dask array): continue it "
                         "with the Dask array, or choose another folder")
    if folder.exists() and any(folder.iterdir()) and not run_file.exists():
        raise ValueError(f"checkpoint {folder} is a non-empty folder that holds no run: choose an empty "
                         "or new folder (nothing there is deleted)")
    folder.mkdir(parents=True, exist_ok=True)
    if options.resume and run_file.exists():
        saved = json.loads(run_file.read_text())
        check_same_run(folder, saved["fingerprint"], saved.get("fingerprint_scheme"), run_id)
        (folder / "snapshots").mkdir(exist_ok=True)
        return True
    check_new_run_folder(folder, run_file.exists(), options)
    for name in RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    if (folder / "snapshots").exists():
        shutil.rmtree(folder / "snapshots")
    (folder / "snapshots").mkdir()
    _atomic_json(run_file, {"fingerprint": run_id, "fingerprint_scheme": FINGERPRINT_SCHEME})
    return False


def integrate(particles, problem: ParticleProblem, *, t_span, dt, options: RunOptions, weights=None,
              desc="particles"):
    """Advance ``particles`` (n, d) (normalised masses ``weights`` (n,), kept in the trajectory)
    over ``t_span`` with the problem's field; returns a Trajectory.

    dt is shrunk so that a whole number of steps spans t_span exactly.  Snapshots (state plus
    diagnostics) are taken every ``options.save_every`` steps and at the end.
    """
    from tqdm.auto import tqdm

    x = check_particles(particles)
    grid = check_time_arguments(t_span, dt)
    t0, t1, n_steps, h = grid.t0, grid.t1, grid.n_steps, grid.h
    save_every = options.save_every or max(1, n_steps // 100)
    folder = None if options.checkpoint is None else Path(options.checkpoint)
    run_id = None if folder is None else fingerprint(
        {"problem": problem.fingerprint(), "options": options.fingerprint(), "t_span": (t0, t1), "n_steps": n_steps,
         "particles": x})
    recorder = _Recorder(folder, weights)
    start = 0
    scale = max(cloud_extent(x), 1e-300)  # of the initial particles, also on resume
    if folder is not None and _prepare_folder(folder, run_id, options) and (folder / "state.npz").exists():
        with np.load(folder / "state.npz") as state:
            if str(state["run_id"]) != run_id:
                raise ValueError(f"checkpoint {folder}: its saved state belongs to a different run")
            start, x = int(state["step"]), state["state"].copy()
        saved = Trajectory.load(folder)
        recorder.times, recorder.diags = list(saved.times), {k: list(v) for k, v in saved.diagnostics.items()}
    memo: dict = {}

    def checked(state, t):
        if not np.isfinite(state).all():
            raise _StageDiverged("non-finite values")
        if cloud_extent(state) > options.explode_factor * scale:
            raise _StageDiverged("an exploding state")

    def field_at(state, t):
        if memo and memo["t"] == t and (memo["x"] is state or np.array_equal(memo["x"], state)):
            return memo["field"]
        checked(state, t)
        try:
            value = problem.field(state, t)
        except (SingularSamplesError, FloatingPointError) as exc:  # particles collapsed onto a subspace, a bad drift
            raise _StageDiverged(f"a failure of the field ({exc})") from exc
        if not np.isfinite(value["velocity"]).all():
            raise _StageDiverged("a non-finite velocity")
        memo.update(t=t, x=state, field=value)
        return value

    def velocity(state, t):
        return field_at(state, t)["velocity"]

    def diagnostics_at(state, t):
        value = problem.diagnostics(state, t, field_at(state, t))
        broken = problem.broken_invariant(value)
        if broken:
            raise _StageDiverged(broken)
        return value

    def save_state(step, state):
        if folder is not None:
            recorder.save_record()
            tmp = folder / "state.tmp.npz"
            np.savez(tmp, step=step, state=state, run_id=np.array(run_id))
            os.replace(tmp, folder / "state.npz")

    bar = tqdm(total=n_steps, initial=start, disable=not options.progress, desc=desc)
    for step in range(start, n_steps + 1):
        t = grid.time(step)
        memo.clear()
        problem.begin_step(step, t, x)
        if (step % save_every == 0 or step == n_steps) and (not recorder.times or recorder.times[-1] < t):
            try:
                recorder.add(x, t, diagnostics_at(x, t))
            except _StageDiverged as exc:
                if not recorder.times:  # nothing computed at all: the input itself is the problem
                    raise exc.__cause__ or ValueError(f"the initial particles give {exc}") from None
                raise SolverDivergenceError(f"the state at t = {t:.6g} has {exc}", recorder.trajectory()) from None
        if step != start and (step % options.checkpoint_every == 0 or step == n_steps):
            save_state(step, x)
        if step == n_steps:
            break
        try:
            new = STEPPERS[options.method](velocity, x, t, h)
            checked(new, t + h)
        except _StageDiverged as exc:
            if not recorder.times or recorder.times[-1] != t:
                try:
                    recorder.add(x, t, diagnostics_at(x, t))
                except _StageDiverged:  # the field at the last good state is itself unusable
                    pass
            if not recorder.times:  # nothing computed at all: the input itself is the problem
                raise exc.__cause__ or ValueError(f"the initial particles give {exc}") from None
            save_state(step, x)
            raise SolverDivergenceError(
                f"step {step + 1}/{n_steps} (t = {t:.6g} → {t + h:.6g}) produced {exc}; stopped, the "
                f"trajectory ends at the last good state t = {t:.6g}. Reduce dt or check the drift/oracle.",
                recorder.trajectory()) from None
        x = new
        bar.update(1)
        if options.on_step is not None:
            options.on_step(step + 1, grid.time(step + 1), x)
    bar.close()
    return recorder.trajectory()
