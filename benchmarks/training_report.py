"""Training throughput and trajectory of each shipped checkpoint, from the model cards and the
committed run folders (runs/<name>/metrics.jsonl)."""

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


def report_rows(manifest: dict) -> list:
    rows = []
    for name, entry in sorted(manifest.items(), key=checkpoint_order):
        card = model_card(name)
        tc = card["train_config"]
        seconds = 60 * card["training_minutes"]
        metrics = HERE.parent / "runs" / name / "metrics.jsonl"
        last = json.loads(metrics.read_text().splitlines()[-1]) if metrics.exists() else {}
        dim = entry.get("dim")
        rows.append([dim if dim is not None else "any", describe_model(card), f"{card['parameters']:,}",
                     card["steps"], f"{card['training_minutes']:.0f}", f"{seconds / card['steps']:.2f}",
                     f"{tc['context_sizes'][0]}–{tc['context_sizes'][1]}", tc["tokens_per_batch"], tc["alpha"],
                     f"{last.get('rel_score_1024', float('nan')):.1f}"])
    return rows


def main():
    rows = report_rows(read_manifest())
    body = ("## Training (2 CPU cores, runs resumed across sessions, 1 thread each)\n\n"
            "s/step is wall-clock per optimizer step including data generation and evaluation, summed over "
            "all sessions, while the runs shared the machine with each other (2–4 at once) and with "
            "development work, so it overstates the time of a run alone on the machine.\n\n"
            + markdown_table(["d", "model", "parameters", "steps", "minutes", "s/step", "context n",
                              "tokens/batch", "α (final)", "in-training rel. score % (n=1024)"], rows))
    write_section("training", body)


if __name__ == "__main__":
    main()
