"""Particle trajectories: snapshot times, particle states and diagnostics, in memory or on disk.

A trajectory folder holds ``times.npy`` (T,), ``diagnostics.npz`` (name → (T, ...)), the particle
masses ``weights.npy`` (n,) of a weighted run, and ``snapshots/000000.npy`` … one (n, d) file per
snapshot, so a long run's snapshots never need to
fit in memory at once; :class:`SnapshotStack` reads them on demand.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class SnapshotStack:
    """Read-only (T, n, d) view of the snapshot files of a trajectory folder, loaded on indexing."""

    def __init__(self, folder, count: int):
        self.folder, self.count = Path(folder), count
        first = np.load(self.folder / f"{0:06d}.npy", mmap_mode="r") if count else np.zeros((0, 0))
        self.shape = (count, *first.shape)
        self.dtype = first.dtype

    def __len__(self):
        return self.count

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _snapshot(self, i: int) -> np.ndarray:
        return np.load(self.folder / f"{i:06d}.npy")

    def __getitem__(self, index):
        """numpy indexing; only the snapshots the first index selects are read (an index that does
        not start on the snapshot axis, such as ``[..., 0]``, reads them all)."""
        index = index if isinstance(index, tuple) else (index,)
        if not index or index[0] is Ellipsis or index[0] is None:
            return np.asarray(self)[index]
        try:
            which = np.arange(self.count)[index[0]]
        except IndexError:
            raise IndexError(f"snapshot {index[0]!r} out of range for {self.count} snapshots") from None
        if np.ndim(which) == 0:
            return self._snapshot(int(which))[index[1:]]
        stacked = (np.stack([self._snapshot(i) for i in which]) if len(which)
                   else np.zeros((0, *self.shape[1:]), dtype=self.dtype))
        return stacked[(slice(None), *index[1:])]

    def __array__(self, dtype=None, copy=None):
        out = np.stack([self._snapshot(i) for i in range(self.count)]) if self.count else np.zeros(self.shape)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return f"SnapshotStack({self.count} snapshots of shape {self.shape[1:]} in {self.folder})"


@dataclass(frozen=True)
class Trajectory:
    """Saved snapshots of a particle run.

    times : (T,) snapshot times (first = start, last = end).
    particles : (T, n, d) particle states (an array, or a :class:`SnapshotStack` for runs streamed
        to disk; ``np.asarray`` loads it whole).
    diagnostics : name → (T, ...) array of per-snapshot diagnostics.
    weights : (n,) the particles' normalised masses, constant in time (None: equal masses).
    """

    times: np.ndarray
    particles: object
    diagnostics: dict = field(default_factory=dict)
    weights: np.ndarray | None = None

    @property
    def final(self) -> np.ndarray:
        """The last saved state (n, d)."""
        return self.particles[-1]

    def save_metadata(self, folder):
        """Write times, diagnostics and masses (not the snapshots) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = [("times.npy", lambda p: np.save(p, self.times)),
                 ("diagnostics.npz", lambda p: np.savez(p, **self.diagnostics))]
        if self.weights is not None:
            files.append(("weights.npy", lambda p: np.save(p, self.weights)))
        else:  # not another trajectory's masses
            (folder / "weights.npy").unlink(missing_ok=True)
        for name, write in files:
            tmp = folder / ("tmp." + name)
            write(tmp)
            os.replace(tmp, folder / name)

    def save(self, folder):
        """Write the whole trajectory to a folder (:meth:`load` reads it back)."""
        folder = Path(folder)
        (folder / "snapshots").mkdir(parents=True, exist_ok=True)
        for i in range(len(self.times)):
            np.save(folder / "snapshots" / f"{i:06d}.npy", np.asarray(self.particles[i]))
        self.save_metadata(folder)

    @classmethod
    def of_snapshots(cls, times: list, diagnostics: dict, snapshots: list) -> "Trajectory":
        """A trajectory from per-snapshot lists: times, {name: [values]} and Dask (n, d) states."""
        import dask.array as da
        return cls(np.array(times), da.stack(snapshots), {k: np.stack(v) for k, v in diagnostics.items()})

    @classmethod
    def load(cls, folder) -> "Trajectory":
        """A trajectory saved by :meth:`save` or streamed by a run with ``checkpoint=folder``
        (particles are read lazily; a sharded run's folder gives a Dask array, up to its last
        checkpoint)."""
        folder = Path(folder)
        if (folder / "zarr.json").is_file():  # a sharded (Dask) run's folder
            return cls.of_snapshots(*sharded_record(folder))
        if not (folder / "times.npy").is_file():
            raise FileNotFoundError(f"{folder} holds no trajectory (no times.npy)")
        times = np.load(folder / "times.npy")
        with np.load(folder / "diagnostics.npz") as diags:
            diagnostics = {k: diags[k] for k in diags.files}
        weights = np.load(folder / "weights.npy") if (folder / "weights.npy").is_file() else None
        return cls(times, SnapshotStack(folder / "snapshots", len(times)), diagnostics, weights)


def sharded_record(folder):
    """(times, diagnostics {name: [values]}, snapshots [Dask (n, d)]) recorded in a sharded run's
    Zarr folder at its last checkpoint (the record is written last, so it is always consistent)."""
    import dask.array as da
    import zarr

    saved = zarr.open_group(str(folder), mode="r").attrs.get("checkpoint")
    if saved is None:
        raise FileNotFoundError(f"{folder} holds a sharded run with no checkpoint yet")
    diagnostics = {k: [np.asarray(v) for v in vs] for k, vs in saved["diagnostics"].items()}
    snapshots = [da.from_zarr(str(folder), component=f"snapshots/{i:06d}") for i in range(len(saved["times"]))]
    return list(saved["times"]), diagnostics, snapshots
