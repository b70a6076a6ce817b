"""The expert interface: something that turns rating prompts into evaluation texts.

An :class:`Expert` receives a batch of :class:`GenerationRequest` objects (the full expert prompt
x_t, the ratings it was built from, the sampling variant and a seed) and returns one text per
request. Backends: :class:`~speechbrain_alld.describe.template_expert.TemplateExpert` (offline,
no model), :class:`~speechbrain_alld.describe.hf_expert.HFExpert` (any Hugging Face causal LM),
and any server/engine backend written against this interface (see :class:`Expert`).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from speechbrain_alld.parsing import parse_verdict
from speechbrain_alld.ratings import RatingRecord

TASKS = ("mos", "ab")


@dataclass(frozen=True)
class SamplingConfig:
    """How one variant is sampled. ``do_sample=False`` is greedy (the "default" sample)."""

    name: str = "default"
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256

    def key(self) -> str:
        """A stable string identifying these settings (part of the cache key)."""
        return json.dumps(asdict(self), sort_keys=True)


#: The paper's five samples per clip: one default plus temperature {0.9, 1.1} x top-p
#: {0.85, 0.95} (ALLD-SPEC §4).
PAPER_VARIANTS: tuple[SamplingConfig, ...] = (
    SamplingConfig("default"),
    SamplingConfig("t0.9-p0.85", True, 0.9, 0.85),
    SamplingConfig("t0.9-p0.95", True, 0.9, 0.95),
    SamplingConfig("t1.1-p0.85", True, 1.1, 0.85),
    SamplingConfig("t1.1-p0.95", True, 1.1, 0.95),
)


@dataclass(frozen=True)
class GenerationRequest:
    """One text to generate.

    ``item_id`` is the clip id (MOS task) or pair id (A/B task); ``ratings`` holds one record
    (MOS task) or two, for A then B (A/B task); ``prompt`` is the full expert prompt x_t.
    """

    item_id: str
    task: str
    prompt: str
    ratings: tuple[RatingRecord, ...]
    variant: SamplingConfig
    seed: int

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        expected = 1 if self.task == "mos" else 2
        if len(self.ratings) != expected:
            raise ValueError(f"a {self.task} request needs {expected} rating record(s), got "
                             f"{len(self.ratings)}")

    @property
    def prompt_hash(self) -> str:
        return hashlib.sha256(self.prompt.encode("utf-8")).hexdigest()[:16]


class Expert(ABC):
    """A text generator for expert descriptions.

    Subclasses implement :meth:`generate` (a batch in, one text per request out, in order) and
    set :attr:`expert_id`, a string that changes whenever the texts would (model, template
    version): it is part of every cache key. A server backend (e.g. an OpenAI-compatible endpoint
    such as a vLLM server running a 70B model) implements ``generate`` by posting each request's
    ``prompt`` as a chat message with the variant's temperature/top-p/max tokens and the seed.
    """

    expert_id: str = "expert"

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[str]:
        """One generated text per request, in the same order."""

    def summarise_verdict(self, texts: Sequence[str]) -> list[str | None]:
        """Which clip a comparison text prefers ("A"/"B"), answered by the expert itself.

        The default reads it with the rule-based parser; model backends override this with the
        verdict-summariser prompt.
        """
        return [parse_verdict(t) for t in texts]
