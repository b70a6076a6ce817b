"""Cache keys of generated descriptions (kept in a ``JsonlStore``).

Each finished generation (accepted, or rejected after its retries) is stored under a key built
from (item id, task, prompt hash, expert id, sampling settings incl. the variant).
"""

from __future__ import annotations

import hashlib
import json

from speechbrain_alld.describe.experts import GenerationRequest


def cache_key(request: GenerationRequest, expert_id: str) -> str:
    """Stable key of a request for a given expert (the seed is deliberately not part of it)."""
    payload = json.dumps(
        [request.item_id, request.task, request.prompt_hash, expert_id, request.variant.key()],
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()
