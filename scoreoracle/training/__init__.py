"""The training toolchain: data stream, training loop, evaluation protocol, export and CLI.

Nothing here is imported by ``scoreoracle.load()`` or the oracles: running shipped weights needs
only the runtime (contract, oracles, whitening, models, weights).
"""
