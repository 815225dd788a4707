"""The precompute job: every map, feature and metric of an annotated image set, as a store (Parquet), pushed to a
Hugging Face Hub dataset if asked.

    python -m precompute --source examples --output store                      # all models, pretrained weights
    python -m precompute --models dinov2,clip --methods cls,rollout --feature-layers -1 --batch-size 32 \\
        --device cuda --output store --push-to-hub ns/vitattn-examples
    python -m precompute --random-weights --output /tmp/dry-run                 # no download: tests, dry runs
    python -m precompute --source wikichurches/ --shard 2/8 --output store     # machine 2 of 8
    python -m precompute --engine ray --ray-address auto --output /shared/store # model workers on a Ray cluster

Stop it at any time (even with SIGKILL) and run the same command again: it skips the units already written and ends
with the same store as an uninterrupted run. Every option is checked against every model before any work starts.
Pushing sends one commit holding only new or changed files; a push that failed (the Hub down, a connection lost) is
completed by running the same command again. The Hub token comes from ``HF_TOKEN`` or ``hf auth login``, never from
the command line. Read the result with ``vitattn.store.open_store``.

Layout: ``config.py`` (the frozen `Config`, parsed from the command line), ``unit.py`` (a unit of work and how it is
computed, for both engines), ``job.py`` (planning, resume, the manifest),
``push.py`` (one commit of the changed files), ``ray_engine.py`` (the units on Ray actors, ``--engine ray``),
``__main__.py`` (the command).
"""

from precompute.config import Config
from precompute.job import run
from precompute.push import PushError, PushResult, push
from precompute.unit import Unit

__all__ = ["Config", "PushError", "PushResult", "Unit", "push", "run"]
