"""Training throughput and trajectory of each shipped checkpoint, from the model cards and the
committed run folders (runs/d*/metrics.jsonl)."""

from __future__ import annotations

import json

from _common import HERE, markdown_table, write_section

from scoreoracle.checkpoint import available_checkpoints, model_card


def main():
    rows = []
    for name in sorted(available_checkpoints(), key=lambda k: int(k[1:])):
        card = model_card(name)
        mc, tc = card["model_config"], card["train_config"]
        seconds = 60 * card["training_minutes"]
        metrics = HERE.parent / "runs" / name / "metrics.jsonl"
        last = json.loads(metrics.read_text().splitlines()[-1]) if metrics.exists() else {}
        rows.append([card["dim"], f"{mc['width']}×{mc['depth']} ({mc['heads']} heads, kernel heads {mc.get('kernel_heads', 0)})",
                     f"{card['parameters']:,}", card["steps"], f"{card['training_minutes']:.0f}",
                     f"{seconds / card['steps']:.2f}", f"{tc['context_sizes'][0]}–{tc['context_sizes'][1]}",
                     tc["tokens_per_batch"], tc["alpha"], f"{last.get('rel_score_1024', float('nan')):.1f}"])
    body = ("## Training (2 CPU cores, runs resumed across sessions, 1 thread each)\n\n"
            "s/step is wall-clock per optimizer step including data generation and evaluation, summed over "
            "all sessions, while the runs shared the machine with each other (2–4 at once) and with "
            "development work.  Alone on one core a 64×3 run takes 0.2 s/step (d = 3) to 0.3 s/step (d = 10); "
            "an idle 2-thread run 0.10 s/step at n = 256, batch 16.\n\n"
            + markdown_table(["d", "model", "parameters", "steps", "minutes", "s/step", "context n",
                              "tokens/batch", "α (final)", "in-training rel. score % (n=1024)"], rows))
    write_section("training", body)


if __name__ == "__main__":
    main()
