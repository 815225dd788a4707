"""``python -m precompute [options]``: see ``python -m precompute --help`` and the package docstring."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from precompute.config import Config
from precompute.job import run
from precompute.push import push


def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_args(argv)
    manifest = run(config)
    models = ", ".join(manifest["models"])
    print(f"store: {config.output} ({len(manifest['images'])} images; models: {models})")
    if config.push_to_hub:
        result = push(config.output, config.push_to_hub, private=config.private)
        if result.commit is None:
            print(f"hf://datasets/{result.repo_id}: already up to date ({result.unchanged} files)")
        else:
            print(
                f"hf://datasets/{result.repo_id}@{result.commit}: pushed {len(result.uploaded)} new or changed "
                f"files, {result.unchanged} unchanged"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
