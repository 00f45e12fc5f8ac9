"""Particle runs on Dask arrays: the state sharded by rows across workers.

Each stage of a step (Euler, Heun or RK4):

1. a seeded random context of ``oracle_samples`` particles (default 4096) is gathered from all
   shards and the oracle is fitted to it once, on the client;
2. every shard computes its particles' scores from that fitted oracle and its velocity — for
   Landau, random-batch collisions inside the shard (batches drawn from the step's seed and the
   shard's index), for Fokker–Planck, drift − D·score — in one pure task per shard.

At the start and every ``reshuffle_every`` steps the particles are permuted across shards (so a
shard is a random batch of the whole population, whatever the input's row order); a particle's
identity is tracked, and snapshots are stored in the original order.
Snapshots, the state and the run's record go to a Zarr folder (``checkpoint=``), and
``resume=True`` continues a run with the same fingerprint; every draw is a function of (seed,
step), so a resumed run equals the uninterrupted one, and results do not depend on the scheduler
(up to floating-point rounding when the oracle runs in float32).
With one shard, no reshuffling, batches of the whole shard and a context of every particle, a
Landau run is the full pair-sum run of :func:`solvers.simulate_landau` on numpy input.

Requires the optional extra ``scoreoracle[dask]`` (Dask and Zarr).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scoreoracle.distributed import shared
from scoreoracle.fingerprint import SCHEME as FINGERPRINT_SCHEME
from scoreoracle.fingerprint import fingerprint
from scoreoracle.whitening import SingularSamplesError

from .cloud import check_oracle
from .collisions import RandomBatches, _collisions, energy_drift
from .run import (STEPPERS, SolverDivergenceError, check_new_run_folder, check_oracle_samples, check_same_run,
                  check_time_arguments, drift_velocity, oracle_fingerprint, step_rng)
from .trajectory import Trajectory, sharded_record

DEFAULT_CONTEXT = 4096
CONTEXT_STREAM, SHUFFLE_STREAM, SHARD_STREAM = 10, 100, 1000  # + stage, —, + shard index


@dataclass
class ShardPhysics:
    """What a shard task needs besides its rows: the kind of field and its constants."""

    kind: str  # "landau" or "fokker-planck"
    gamma: float = 0.0
    C: float = 1.0
    delta: float = 0.0
    batch_size: int | None = None
    drift: object = None
    D: np.ndarray | None = None
    seed: int = 0


def shard_field(rows, fitted, physics: ShardPhysics, step: int, t: float, shard: int, population: int):
    """Velocity (r, d), ‖score‖² (r, 1) and entropy production (r, 1) of one shard of a population
    of n particles, as one block (r, d + 2): a pure function of its arguments (a lost task is
    recomputed identically).

    Landau: the shard is a random batch of the population (the particles are reshuffled across
    shards), so its pair sums are rescaled by κ = r(n − 1)/(n(r − 1)) — a pair shares a shard with
    probability (r − 1)/(n − 1) — and estimate the full pair sums without bias whatever the shard
    size; the entropy production column holds the shard's (rescaled) estimate on every row."""
    rows = np.asarray(rows, dtype=np.float64)
    s = np.asarray(fitted.score(rows), dtype=np.float64)
    ent = np.zeros(len(rows))
    if physics.kind == "landau":
        batches = None
        if physics.batch_size is not None and physics.batch_size < len(rows):
            rng = step_rng(physics.seed, step, SHARD_STREAM + shard)
            batches = RandomBatches.draw(rng, len(rows), physics.batch_size)
        velocity, ent_total = _collisions(rows, s, None, physics.gamma, physics.C, physics.delta, batches)
        r = len(rows)
        kappa = r * (population - 1) / (population * (r - 1))
        velocity *= kappa
        ent[:] = kappa * ent_total
    else:
        velocity = -s @ physics.D.T
        if physics.drift is not None:
            velocity = velocity + drift_velocity(physics.drift, rows, t)
    with np.errstate(over="ignore"):
        s2 = (s * s).sum(1)
    return np.concatenate([velocity, s2[:, None], ent[:, None]], axis=1)


def _block_digest(block) -> np.ndarray:
    """(1, 1) uint64: the first 8 bytes of the SHA-256 of one block."""
    digest = hashlib.sha256(np.ascontiguousarray(block).tobytes()).digest()
    return np.array([[int.from_bytes(digest[:8], "little")]], dtype=np.uint64)


class DistributedRun:
    """State, context draws, stages and storage of one sharded run (see the module docstring)."""

    def __init__(self, particles, oracle, physics: ShardPhysics, options, t_span, dt):
        import dask.array as da

        self.da = da
        self.oracle = check_oracle(oracle)
        self.physics, self.options = physics, options
        if particles.ndim != 2 or particles.shape[0] < particles.shape[1] + 2:
            raise ValueError(f"particles must be a Dask array (n, d) with n ≥ d + 2, got shape {particles.shape}")
        self.n, self.d = particles.shape
        rows = tuple(r for r in particles.chunks[0] if r)  # empty blocks (left by filtering) carry nothing
        if physics.kind == "landau" and min(rows) < 2:
            raise ValueError(f"every shard needs at least 2 particles to collide, got row chunks {rows}; "
                             "rechunk the particles")
        self.chunks = (rows, (self.d,))
        self.x0 = particles.rechunk(self.chunks).astype(np.float64)
        self.grid = check_time_arguments(t_span, dt)
        self.n_steps, self.h = self.grid.n_steps, self.grid.h
        self.save_every = options.save_every or max(1, self.n_steps // 100)
        self.context = check_oracle_samples(options.oracle_samples, self.n, self.d) or min(self.n, DEFAULT_CONTEXT)
        self.reshuffle_every = options.reshuffle_every
        self.folder = None if options.checkpoint is None else Path(options.checkpoint)
        # one pass over the input: finite?, extent, and the SHA-256 of its bytes block by block
        # (Dask names an array read from Zarr or HDF5 by its path, not by what the file holds)
        digests = self.x0.map_blocks(_block_digest, chunks=((1,) * self.x0.numblocks[0], (1,)), dtype=np.uint64)
        (finite, extent), blocks = self.da.compute(self.extent_check(self.x0), digests)
        if not finite:
            raise ValueError("particles contain NaN or infinite values; remove or impute them")
        self.scale = max(extent, 1e-300)
        self.content = fingerprint(np.asarray(blocks))

    def extent_check(self, x):
        """Lazy (all finite?, the widest coordinate range max − min) of sharded particles."""
        return self.da.isfinite(x).all(), (x.max(0) - x.min(0)).max()

    def checked_extent(self, x):
        """(all finite?, the widest coordinate range max − min) of sharded particles, in one pass."""
        finite, extent = self.da.compute(*self.extent_check(x))
        return bool(finite), float(extent)

    # --- one stage ---------------------------------------------------------------------------
    def fitted(self, state, step: int, stage: int, t: float):
        """The oracle fitted to a seeded random context of the stage state (gathered from all shards)."""
        rng = step_rng(self.physics.seed, step, CONTEXT_STREAM + stage)
        rows = np.sort(rng.choice(self.n, self.context, replace=False)) if self.context < self.n else slice(None)
        context = np.asarray(state[rows].compute())
        if not np.isfinite(context).all():
            raise FloatingPointError("non-finite values")
        oracle = self.oracle.at_time(t) if hasattr(self.oracle, "at_time") else self.oracle
        return oracle.fit(context)

    def field(self, state, step: int, stage: int, t: float):
        """Lazy (n, d + 2) block array: velocity, ‖score‖², entropy production."""
        import dask

        node = shared(self.fitted(state, step, stage, t))
        blocks = [self.da.from_delayed(dask.delayed(shard_field, pure=True)(block, node, self.physics, step, t, i,
                                                                             self.n),
                                       shape=(rows, self.d + 2), dtype=np.float64)
                  for i, (block, rows) in enumerate(zip(state.to_delayed().ravel(), state.chunks[0]))]
        return self.da.concatenate(blocks, axis=0)

    def step(self, state, step: int, t: float):
        """One time step; returns (new state, stage-1 field) — both persisted."""
        stage = {"i": 0}
        first = {}

        def velocity(x, time):
            f = self.field(x, step, stage["i"], time).persist()
            if stage["i"] == 0:
                first["field"] = f
            stage["i"] += 1
            return f[:, :self.d]
        new = STEPPERS[self.options.method](velocity, state, t, self.h).persist()
        return new, first["field"]

    # --- diagnostics and storage ---------------------------------------------------------------
    def diagnostics(self, state, fld) -> dict:
        da = self.da
        sq = (state * state).sum(1)
        mean = state.mean(0).compute()
        centred = state - mean
        cov = ((centred.T @ centred) / self.n).compute()  # the empirical measure's, as local runs
        energy, m4, fisher, ent = da.compute(0.5 * sq.mean(), (sq * sq).mean(), fld[:, self.d].mean(),
                                             fld[:, self.d + 1].mean())  # shards weighted by their sizes
        out = {"mean" if self.physics.kind != "landau" else "momentum": mean, "covariance": cov, "fisher": fisher}
        if self.physics.kind == "landau":
            out.update(energy=energy, fourth_moment=m4, entropy_production=ent)
        return out


def simulate_distributed(particles, oracle, physics: ShardPhysics, options, *, t_span, dt, energies=None):
    """Run the sharded particle solver (see the module docstring); returns a Trajectory whose
    ``particles`` is a Dask array (T, n, d) in the particles' original order.  ``energies``: a Landau
    run's initial (energy, thermal energy), the baseline of its energy-conservation check."""
    import dask.array as da
    import zarr

    run = DistributedRun(particles, oracle, physics, options, t_span, dt)
    run_id = fingerprint({"physics": physics, "oracle": oracle_fingerprint(oracle), "options": options.fingerprint(),
                          "t": (run.grid.t0, run.grid.t1, run.n_steps), "chunks": run.chunks,
                          "particles": run.content})
    state, order, start = run.x0.persist(), np.arange(run.n), 0
    times, diags, snapshots = [], {}, []
    group = None
    if run.folder is not None:
        if (run.folder / "run.json").exists():
            raise ValueError(f"checkpoint {run.folder} holds a local run (particles given as a numpy array): "
                             "continue it with numpy particles, or choose another folder")
        if run.folder.exists() and any(run.folder.iterdir()) and not (run.folder / "zarr.json").exists():
            raise ValueError(f"checkpoint {run.folder} is a non-empty folder that holds no run: choose an empty "
                             "or new folder (nothing there is deleted)")
        group = zarr.open_group(str(run.folder), mode="a")
        stored = group.attrs.get("run_id")
        if stored is None and len(group.attrs) + len(list(group.keys())):
            raise ValueError(f"checkpoint {run.folder} holds a Zarr group that is not a run; choose another folder")
        if options.resume and stored is not None:
            check_same_run(run.folder, stored, group.attrs.get("fingerprint_scheme"), run_id)
        if options.resume and stored == run_id and "checkpoint" in group.attrs:
            saved = group.attrs["checkpoint"]  # written last: a consistent state, order and record
            start = int(saved["step"])
            state = da.from_zarr(str(run.folder), component=f"checkpoints/{start}/state").rechunk(run.chunks).persist()
            order = np.asarray(group[f"checkpoints/{start}/order"][:])
            times, diags, snapshots = sharded_record(run.folder)
        else:  # a new run: replace a saved run only when told to, and only what a run of ours left
            # (our own run resumed before its first checkpoint starts over: nothing of it was saved)
            check_new_run_folder(run.folder, stored is not None and not (options.resume and stored == run_id), options)
            for name in ("checkpoints", "snapshots"):
                if name in group:
                    del group[name]
            group.attrs.clear()
            group.attrs.update(run_id=run_id, fingerprint_scheme=FINGERPRINT_SCHEME)

    def original_order(x):
        inverse = np.empty_like(order)
        inverse[order] = np.arange(run.n)
        return x if np.array_equal(order, np.arange(run.n)) else x[inverse].rechunk(run.chunks)

    def record(x, t, fld):
        values = run.diagnostics(x, fld)
        broken = None if energies is None else energy_drift(values["energy"], *energies)
        if broken:
            raise SolverDivergenceError(f"the state at t = {t:.6g} has {broken}; stopped at the last snapshot",
                                        trajectory())
        times.append(t)
        for k, v in values.items():
            diags.setdefault(k, []).append(np.asarray(v, dtype=float))
        snap = original_order(x)
        if group is not None:
            snap.to_zarr(str(run.folder), component=f"snapshots/{len(times) - 1:06d}", overwrite=True)
            snap = da.from_zarr(str(run.folder), component=f"snapshots/{len(times) - 1:06d}")
        else:
            snap = snap.persist()
        snapshots.append(snap)

    def save(step, x):
        """State and order under checkpoints/<step>, then the record pointing at them (written
        last, so a crash leaves the previous consistent checkpoint), then the old one goes."""
        if group is None:
            return
        x.to_zarr(str(run.folder), component=f"checkpoints/{step}/state", overwrite=True)
        group.create_array(f"checkpoints/{step}/order", data=order, overwrite=True)
        previous = group.attrs.get("checkpoint", {}).get("step")
        group.attrs["checkpoint"] = {"step": step, "times": [float(t) for t in times],
                                     "diagnostics": {k: [np.asarray(v).tolist() for v in vs] for k, vs in diags.items()}}
        if previous is not None and previous != step:
            del group[f"checkpoints/{previous}"]

    def trajectory():
        return Trajectory.of_snapshots(times, diags, snapshots)

    from tqdm.auto import tqdm

    bar = tqdm(total=run.n_steps, initial=start, disable=not options.progress, desc=f"{physics.kind} (dask)")
    for step in range(start, run.n_steps + 1):
        t = run.grid.time(step)
        # permute at step 0 too (unless resuming there): the input's own row order may group particles
        if len(run.chunks[0]) > 1 and step % run.reshuffle_every == 0 and (step != start or start == 0):
            perm = step_rng(physics.seed, step, SHUFFLE_STREAM).permutation(run.n)
            state, order = state[perm].rechunk(run.chunks).persist(), order[perm]
        due = step % run.save_every == 0 or step == run.n_steps
        try:
            if step == run.n_steps:
                fld = run.field(state, step, 0, t).persist() if due else None
                new = None
            else:
                new, fld = run.step(state, step, t)
                finite, extent = run.checked_extent(new)
                if not finite:
                    raise FloatingPointError("non-finite values")
                if extent > options.explode_factor * run.scale:
                    raise FloatingPointError("an exploding state")
        except (FloatingPointError, SingularSamplesError) as exc:  # diverged, or collapsed onto a subspace
            if not times or times[-1] != t:
                with contextlib.suppress(FloatingPointError, SingularSamplesError):  # the state itself may be bad
                    record(state, t, run.field(state, step, 0, t).persist())
            bar.close()
            if not times:  # nothing computed at all: the input (particles, drift, oracle) is the problem
                raise exc from None
            save(step, state)
            what = (f"the final state (t = {t:.6g}) gives {exc}" if step == run.n_steps
                    else f"step {step + 1}/{run.n_steps} (t = {t:.6g}) produced {exc}")
            raise SolverDivergenceError(f"{what}; stopped at the last good state t = {t:.6g}", trajectory()) from None
        if due and (not times or times[-1] < t):
            record(state, t, fld)
        if step != start and (step % options.checkpoint_every == 0 or step == run.n_steps):
            save(step, state)
        if new is None:
            break
        state = new
        bar.update(1)
        if options.on_step is not None:  # the new state, lazily, in the particles' original order
            options.on_step(step + 1, run.grid.time(step + 1), original_order(state))
    bar.close()
    return trajectory()
