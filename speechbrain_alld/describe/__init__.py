"""Descriptive corpus generation: prompts, pairs, experts, validation, cache (ALLD step 1)."""

from speechbrain_alld.describe.experts import (
    PAPER_VARIANTS,
    Expert,
    GenerationRequest,
    SamplingConfig,
)
from speechbrain_alld.describe.generate import (
    DescribeConfig,
    DescribeSummary,
    describe_manifests,
    generate_descriptions,
    load_rated_manifest,
)
from speechbrain_alld.describe.pairs import Pair, sample_pairs
from speechbrain_alld.describe.template_expert import TemplateExpert

__all__ = [
    "PAPER_VARIANTS",
    "DescribeConfig",
    "DescribeSummary",
    "Expert",
    "GenerationRequest",
    "Pair",
    "SamplingConfig",
    "TemplateExpert",
    "describe_manifests",
    "generate_descriptions",
    "load_rated_manifest",
    "sample_pairs",
]
