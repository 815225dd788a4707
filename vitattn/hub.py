"""How vitattn names things on the Hugging Face Hub: one grammar for repo ids and dataset locations."""

from __future__ import annotations

import re

REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")  # <namespace>/<name>
HUB_DATASET = re.compile(rf"hf://datasets/({REPO_ID.pattern})(?:@([^@\s]+))?")  # groups: repo id, revision
