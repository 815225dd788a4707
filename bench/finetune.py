"""Training throughput of the fine-tune strategies (linear probe, LoRA, full) on a ViT-B, side by side.

    python -m bench.finetune [--model vit] [--device cuda] [--steps 20] [--batch-size 32] [--warmup 3]

Each strategy runs the fine-tune job's own ``prepare`` and ``train_step`` (AdamW, cross-entropy, bfloat16 autocast
on CUDA) on synthetic inputs (random tensors of the model's input size, random labels of 4 classes), so the figures
leave out image decoding; a plain inference forward (fused attention, no_grad) of the same network is measured
beside them. Strategies run one step each in turn and the median step time counts, so all see the same load.
Random weights (speed does not depend on the values); no network, no gradio, no Ray.
"""

from __future__ import annotations

import functools
import statistics
import tempfile

import torch

from bench.common import once, parser
from vitattn.finetune import FinetuneConfig
from vitattn.finetune.train import build_base, prepare, train_step
from vitattn.specs import STRATEGIES

CLASSES = 4


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__, model="vit")
    p.add_argument("--steps", type=int, default=20, help="timed optimizer steps per strategy (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--batch-size", type=int, default=32, help="images per step (default 32)")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"model {args.model}, random weights, device {device} ({where}), batch {args.batch_size}, {args.steps} steps")
    if device.type == "cpu":
        print("on the CPU: figures for comparing strategies only; the study's runs need a GPU")
    gen = torch.Generator().manual_seed(0)
    steps, trainable = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in STRATEGIES:
            config = FinetuneConfig(model=args.model, strategy=strategy, dataset="synthetic", output=tmp, seed=0)
            module, _ = build_base(args.model, random_weights=True, seed=0, overrides={})
            if strategy == STRATEGIES[0]:
                size = int(module.patch_embed.img_size[0]) if hasattr(module, "patch_embed") else 224
                x = torch.randn(args.batch_size, 3, size, size, generator=gen).to(device)  # (B, 3, S, S)
                y = torch.randint(0, CLASSES, (args.batch_size,), generator=gen).to(device)  # (B,)
            model, groups = prepare(module, strategy, CLASSES, config)
            model = model.to(device).train() if strategy != "linear" else model.to(device).eval()
            optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
            trainable[strategy] = sum(p.numel() for g in groups for p in g["params"])
            steps[strategy] = functools.partial(train_step, model, x, y, optimizer)
        steps["forward"] = functools.partial(
            _forward, build_base(args.model, random_weights=True, seed=0, overrides={})[0].to(device).eval(), x
        )
        for _ in range(args.warmup):
            for step in steps.values():
                step()
        times = {name: [] for name in steps}
        for _ in range(args.steps):  # one step of each in turn: all see the same machine load
            for name, step in steps.items():
                times[name].append(once(step))
    rates = {name: args.batch_size / statistics.median(t) for name, t in times.items()}
    for name, rate in rates.items():
        what = f"trainable parameters {trainable[name]:>11,}" if name in trainable else "plain inference, no_grad"
        print(f"{name:>7}: {rate:8.1f} img/s   {what}")
    full = rates["full"]
    print("ratios to full fine-tuning: " + ", ".join(f"{name} {rate / full:.2f}" for name, rate in rates.items()))


@torch.no_grad()
def _forward(module: torch.nn.Module, x: torch.Tensor) -> None:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=x.device.type == "cuda"):
        module(x)


if __name__ == "__main__":
    main()
