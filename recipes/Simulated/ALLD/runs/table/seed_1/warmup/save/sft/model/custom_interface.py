"""foreign_class entry point (the interface is speechbrain_alld.inference)."""

from speechbrain_alld.inference import DescriptiveQualityEvaluator as CustomInterface  # noqa: F401
