"""Command line: ``scoreoracle train …``, ``scoreoracle export …``, ``scoreoracle info``.

Every field of the core configs (:mod:`scoreoracle.models`) and of ``TrainConfig`` is a
``--flag`` (underscores become dashes); unknown flags fail.  ``--dim-groups`` takes triples
``lo hi weight`` and ``--families`` pairs ``name weight``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

# --dim has its own flag; size_feature_max of transformer cores follows the training --context-sizes,
# equivariant cores train without that cap
MODEL_FLAGS_SKIPPED = ("dim", "size_feature_max")
GROUPED_FLAGS = {"dim_groups": (3, (int, int, float)), "families": (2, (str, float))}
GROUPED_HELP = {"dim_groups": "LO HI WEIGHT [LO HI WEIGHT …]: d is drawn from a group by weight, then log-uniform "
                              "in [LO, HI]",
                "families": "NAME WEIGHT [NAME WEIGHT …]: training families (gmm, student_t, warped) by weight"}


def _add_dataclass_flags(parser, classes, skip=()):
    fields = {}  # name: [(class, field)] — a field several configs share gets one flag
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.name not in skip:
                fields.setdefault(f.name, []).append((cls, f))
    for name, owners in fields.items():
        f = owners[0][1]
        flag = "--" + name.replace("_", "-")
        defaults = [" ".join(map(str, g.default)) if isinstance(g.default, tuple) else str(g.default)
                    for _, g in owners]
        default = defaults[0] if len(set(defaults)) == 1 else ", ".join(
            f"{default} ({cls.__name__.removesuffix('Config').lower()})" for (cls, _), default in zip(owners, defaults))
        if name in GROUPED_FLAGS:
            parser.add_argument(flag, nargs="+", default=None, help=GROUPED_HELP[name])
        elif isinstance(f.default, bool):
            parser.add_argument(flag, type=_boolean, default=None, help=f"true/false, default {default}")
        elif isinstance(f.default, tuple):
            parser.add_argument(flag, type=type(f.default[0]), nargs=len(f.default), default=None,
                                help=f"default {default}")
        else:
            parser.add_argument(flag, type=type(f.default), default=None, help=f"default {default}")


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return text.lower() in ("true", "1", "yes")


def _grouped(name, values, parser):
    size, types = GROUPED_FLAGS[name]
    if len(values) % size:
        parser.error(f"--{name.replace('_', '-')} takes groups of {size} values, got {len(values)}")
    try:
        return tuple(tuple(t(v) for t, v in zip(types, values[i:i + size])) for i in range(0, len(values), size))
    except ValueError as exc:
        parser.error(f"--{name.replace('_', '-')}: {exc}")


def _overrides(args, cls, parser, skip=()):
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if f.name in skip or value is None:
            continue
        out[f.name] = _grouped(f.name, value, parser) if f.name in GROUPED_FLAGS else (
            tuple(value) if isinstance(value, list) else value)
    return out


def _extensions(items, parser) -> dict | None:
    """FIELD=VALUE pairs as a dict of integers/floats/strings."""
    if not items:
        return None
    out = {}
    for item in items:
        if "=" not in item:
            parser.error(f"--extend takes FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                out[key] = value
    return out


def main(argv=None):
    from ..models import ARCHITECTURES
    from .loop import TrainConfig

    configs = {name: config for name, (_, config) in ARCHITECTURES.items()}
    parser = argparse.ArgumentParser(prog="scoreoracle")
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train (or resume) a core on random distributions")
    p_train.add_argument("--run-dir", required=True, help="checkpoint, metrics and config go here")
    p_train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    p_train.add_argument("--max-minutes", type=float, default=None, help="stop (and save) after this many minutes of this call")
    p_train.add_argument("--no-progress", action="store_true")
    p_train.add_argument("--architecture", choices=sorted(configs), default="transformer", help="new runs")
    p_train.add_argument("--extend", nargs="+", default=None, metavar="FIELD=VALUE",
                         help="with --resume: grow the stored architecture (depth, local_gaussian_iterations), "
                              "keeping its function")
    p_train.add_argument("--dim", type=int, help="data dimension d (new per-dimension transformer runs)")
    _add_dataclass_flags(p_train, list(configs.values()), skip=MODEL_FLAGS_SKIPPED)
    _add_dataclass_flags(p_train, [TrainConfig])

    p_export = sub.add_parser("export", help="write a run's weights, model card and manifest entry to a folder")
    p_export.add_argument("run_dir")
    p_export.add_argument("--out", required=True, help="checkpoint folder (load it with scoreoracle.load(path=…))")
    p_export.add_argument("--name", default=None, help="checkpoint name, default the run folder's name")
    p_export.add_argument("--eval-gmms", type=int, default=32,
                          help="GMMs per cell of the model card's evaluation table (0: no table)")
    p_export.add_argument("--default", action="store_true", help="make it the folder's default checkpoint")
    p_export.add_argument("--replace", action="store_true", help="overwrite a checkpoint of the same name")

    sub.add_parser("info", help="versions, device and shipped checkpoints")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from .loop import train
            train_over = _overrides(args, TrainConfig, parser)
            given = {f for cfg in configs.values() for f in _overrides(args, cfg, parser, skip=MODEL_FLAGS_SKIPPED)}
            if args.resume:
                if given or args.dim is not None:
                    parser.error(f"--resume keeps the stored architecture (grow it with --extend); remove "
                                 f"{sorted(given) or ['dim']}")
                train(args.run_dir, resume=True, overrides=train_over, extend=_extensions(args.extend, parser),
                      progress=not args.no_progress, max_minutes=args.max_minutes)
                return 0
            if args.extend:
                parser.error("--extend grows a stored run: use it with --resume")
            config_class = configs[args.architecture]
            model_over = _overrides(args, config_class, parser, skip=MODEL_FLAGS_SKIPPED)
            foreign = given - set(model_over)
            if foreign:
                parser.error(f"{sorted(foreign)} are not settings of the {args.architecture} architecture")
            if "dim" in {f.name for f in dataclasses.fields(config_class)}:
                if args.dim is None:
                    parser.error("--dim is required for a new per-dimension run")
                model_over["dim"] = args.dim
            elif args.dim is not None:
                parser.error(f"the {args.architecture} architecture serves every d: use --dim-groups, not --dim")
            train(args.run_dir, config_class(**model_over), TrainConfig(**train_over), progress=not args.no_progress,
                  max_minutes=args.max_minutes)
        elif args.command == "export":
            from .export import export_run
            path = export_run(args.run_dir, args.out, name=args.name, eval_gmms=args.eval_gmms, default=args.default,
                              replace=args.replace)
            print(f"wrote {path}")
        elif args.command == "info":
            import torch

            from ..weights import read_manifest
            info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
                    "checkpoints": {name: {"dim": e.get("dim") or "any", "architecture": e.get("architecture"),
                                           "context_limit": e.get("context_limit"), "default": bool(e.get("default")),
                                           "retired": bool(e.get("retired"))}
                                    for name, e in read_manifest().items()}}
            print(json.dumps(info, indent=2))
    except (ValueError, FileNotFoundError, FileExistsError) as exc:  # bad settings or folders: no traceback
        parser.exit(2, f"scoreoracle {args.command}: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
