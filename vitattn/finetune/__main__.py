"""``python -m vitattn.finetune [options]``: see ``--help``. A failure the user can act on ends with one line."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vitattn.finetune.config import FinetuneConfig


def main(argv: Sequence[str] | None = None) -> int:
    config = FinetuneConfig.from_args(argv)
    from vitattn.finetune.train import run

    try:
        info = run(config)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"vitattn.finetune: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vitattn.finetune: stopped; run the same command again to resume in {config.output}", file=sys.stderr)
        return 130
    print(
        f"{config.output}: {config.strategy} fine-tune of {config.model}, "
        f"validation accuracy {info['val_accuracy']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
