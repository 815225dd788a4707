"""Fine-tuning a vitattn model on an image-classification set: linear probe, LoRA or full (the study's Q2).

    python -m vitattn.finetune --model clip --strategy lora --dataset styles/ --output runs/clip-lora \\
        --exclude hf://datasets/ns/vitattn-wikichurches

Then ``vitattn.load_model("clip", checkpoint="runs/clip-lora")`` (or ``precompute --models clip,clip@lora=runs/
clip-lora``) gives the variant ``clip@lora``. Layout: ``config.py`` (options and the study's defaults), ``data.py``
(sources, exclusion, split), ``train.py`` (strategies, loop, resume, output), ``checkpoint.py`` (the output
folder, state dicts and Hub checkpoints, applied to a base module).
"""

from vitattn.finetune.config import DEFAULT_LR, FinetuneConfig, LoraSettings

__all__ = ["DEFAULT_LR", "FinetuneConfig", "LoraSettings", "run"]


def run(config: FinetuneConfig, **kwargs) -> dict:
    """`vitattn.finetune.train.run` (imported on use: torch and peft load only when training)."""
    from vitattn.finetune.train import run as _run

    return _run(config, **kwargs)
