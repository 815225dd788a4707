"""``python -m precompute [options]``: see ``python -m precompute --help`` and the package docstring.

A failure the user can act on (a refused option, a store of another image set, a push the Hub refused or could
not take) ends with one line on stderr saying what to do, and exit status 1; not a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from precompute.config import Config
from precompute.job import run
from precompute.push import push
from vitattn.hub import WeightsUnreachable
from vitattn.store import StoreError

HTTP_TIMEOUT = (10.0, 120.0)  # seconds: to connect, and between two packets (huggingface_hub's default: no limit)


def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_args(argv)
    try:
        manifest = run(config)
        models = ", ".join(manifest["models"])
        print(f"store: {config.output} ({len(manifest['images'])} images; models: {models})", flush=True)
        if config.push_to_hub:
            _bound_hub_requests()
            result = push(config.output, config.push_to_hub, private=config.private)
            if result.commit is None:
                print(f"hf://datasets/{result.repo_id}: already up to date ({result.unchanged} files)")
            else:
                print(
                    f"hf://datasets/{result.repo_id}@{result.commit}: pushed {len(result.uploaded)} new or changed "
                    f"files, {result.unchanged} unchanged"
                )
    except (StoreError, WeightsUnreachable) as e:
        print(f"precompute: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            f"precompute: stopped; run the same command again to resume ({config.output} keeps the work done)",
            file=sys.stderr,
        )
        return 130
    return 0


def _bound_hub_requests() -> None:
    """A time limit on every request of this process's huggingface_hub session, so a push never hangs forever on a
    connection that stopped answering (huggingface_hub's session has none by default)."""
    import httpx2
    from huggingface_hub.utils import set_client_factory

    try:
        from huggingface_hub.utils._http import default_client_factory
    except ImportError:  # another huggingface_hub: keep its own settings
        return

    def factory() -> httpx2.Client:
        client = default_client_factory()
        client.timeout = httpx2.Timeout(HTTP_TIMEOUT[1], connect=HTTP_TIMEOUT[0])
        return client

    set_client_factory(factory)


if __name__ == "__main__":
    sys.exit(main())
