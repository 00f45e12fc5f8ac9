"""Command line: ``scoreoracle train …``, ``scoreoracle export …``, ``scoreoracle info``.

Every field of ``ModelConfig`` / ``TrainConfig`` is a ``--flag`` (underscores become dashes);
unknown flags fail.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

# --dim has its own flag; size_feature_max always follows the training --context-sizes
MODEL_FLAGS_SKIPPED = ("dim", "size_feature_max")


def _add_dataclass_flags(parser, cls, skip=()):
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, type=_boolean, default=None, help=f"true/false, default {f.default}")
        elif isinstance(f.default, tuple):
            parser.add_argument(flag, type=type(f.default[0]), nargs=len(f.default), default=None,
                                help=f"default {' '.join(map(str, f.default))}")
        else:
            parser.add_argument(flag, type=type(f.default), default=None, help=f"default {f.default}")


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def _overrides(args, cls, skip=()):
    return {f.name: (tuple(v) if isinstance(v, list) else v)
            for f in dataclasses.fields(cls) if f.name not in skip
            and (v := getattr(args, f.name)) is not None}


def main(argv=None):
    from .model import ModelConfig
    from .training import TrainConfig

    parser = argparse.ArgumentParser(prog="scoreoracle")
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train (or resume) a DiScoFormer core on random GMMs")
    p_train.add_argument("--run-dir", required=True, help="checkpoint, metrics and config go here")
    p_train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p_train.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this many minutes of this call")
    p_train.add_argument("--no-progress", action="store_true")
    p_train.add_argument("--dim", type=int, help="data dimension d (new runs)")
    _add_dataclass_flags(p_train, ModelConfig, skip=MODEL_FLAGS_SKIPPED)
    _add_dataclass_flags(p_train, TrainConfig)

    p_export = sub.add_parser("export", help="write a run's weights and model card into the package")
    p_export.add_argument("run_dir")
    p_export.add_argument("--name", default=None, help="checkpoint name, default d<dim>")
    p_export.add_argument("--eval-gmms", type=int, default=32)

    sub.add_parser("info", help="versions, device and shipped checkpoints")
    args = parser.parse_args(argv)

    if args.command == "train":
        from .training import train
        train_over = _overrides(args, TrainConfig)
        model_over = _overrides(args, ModelConfig, skip=MODEL_FLAGS_SKIPPED)
        if args.resume:
            if model_over or args.dim is not None:
                parser.error(f"--resume keeps the stored architecture; remove {sorted(model_over) or ['dim']}")
            train(args.run_dir, resume=True, overrides=train_over, progress=not args.no_progress,
                  max_minutes=args.max_minutes)
        else:
            if args.dim is None:
                parser.error("--dim is required for a new run")
            model_cfg = ModelConfig(dim=args.dim, **model_over)
            train(args.run_dir, model_cfg, TrainConfig(**train_over), progress=not args.no_progress,
                  max_minutes=args.max_minutes)
    elif args.command == "export":
        from .checkpoint import export_run
        path = export_run(args.run_dir, name=args.name, eval_gmms=args.eval_gmms)
        print(f"wrote {path}")
    elif args.command == "info":
        from .checkpoint import available_checkpoints
        import torch
        info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
                "cuda": torch.cuda.is_available(), "checkpoints": available_checkpoints()}
        print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
