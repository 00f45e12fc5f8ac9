"""Training throughput and trajectory of each shipped checkpoint, from the model cards and their
training logs (older cards without one: the committed runs/<name>/metrics.jsonl)."""

from __future__ import annotations

import json
import math

from _common import HERE, markdown_table, write_section

from scoreoracle.weights import model_card, read_manifest


def checkpoint_order(item):
    """Per-dimension checkpoints by d, then dimension-free ones by name."""
    name, entry = item
    dim = entry.get("dim")
    return (math.inf if dim is None else dim, name)


def describe_model(card: dict) -> str:
    mc = card["model_config"]
    text = f"{card.get('architecture', 'transformer')} {mc['width']}×{mc['depth']}"
    extras = [f"{mc['heads']} heads"] if "heads" in mc else []
    if "kernel_heads" in mc:
        extras.append(f"kernel heads {mc['kernel_heads']}")
    return text + (f" ({', '.join(extras)})" if extras else "")


def _run_log(name: str) -> list:
    metrics = HERE.parent / "runs" / name / "metrics.jsonl"
    return [json.loads(line) for line in metrics.read_text().splitlines()] if metrics.exists() else []


def in_training_error(metrics: dict) -> str:
    """The last evaluation's relative score error at n = 1024 (per evaluated d for an all-d core)."""
    if "rel_score_1024" in metrics:
        return f"{metrics['rel_score_1024']:.1f}"
    per_d = {int(k.split("_")[2][1:]): v for k, v in metrics.items() if k.startswith("rel_score_d") and k.endswith("_1024")}
    return ", ".join(f"d={d}: {v:.1f}" for d, v in sorted(per_d.items())) or "–"


def context_range(train_config: dict) -> str:
    """The context sizes drawn, with the long-context share where the run had one (final configuration)."""
    low, high = train_config["context_sizes"]
    share = train_config.get("long_context_share", 0)
    extra = f" (+{100 * share:g} % {high}–{train_config.get('long_context_max', high)})" if share else ""
    return f"{low}–{high}{extra}"


def report_rows(manifest: dict) -> list:
    rows = []
    for name, entry in sorted(manifest.items(), key=checkpoint_order):
        card = model_card(name)
        tc = card["train_config"]
        seconds = 60 * card["training_minutes"]
        log = card.get("training_log") or _run_log(name)
        last = log[-1] if log else {}
        dim = entry.get("dim")
        rows.append([dim if dim is not None else "any", describe_model(card), f"{card['parameters']:,}",
                     card["steps"], f"{card['training_minutes']:.0f}", f"{seconds / card['steps']:.2f}",
                     context_range(tc), tc["tokens_per_batch"], tc.get("threads", 1),
                     tc["alpha"],
                     in_training_error(last)])
    return rows


def main():
    rows = report_rows(read_manifest())
    body = ("## Training (2 CPU cores, runs resumed across sessions)\n\n"
            "s/step is wall-clock per optimizer step including data generation and evaluation, summed over "
            "all sessions, while the runs shared the machine with each other (2–4 at once) and with "
            "development work, so it overstates the time of a run alone on the machine.  Context n and α are "
            "the run's final configuration (the model card's training log has the history).\n\n"
            + markdown_table(["d", "model", "parameters", "steps", "minutes", "s/step", "context n",
                              "tokens/batch", "threads", "α (final)", "in-training rel. score % (n=1024)"], rows))
    write_section("training", body)


if __name__ == "__main__":
    main()
