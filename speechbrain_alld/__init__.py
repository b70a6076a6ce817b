"""speechbrain-alld: audio LLMs as descriptive speech-quality evaluators (ALLD, ICLR 2025).

The package follows the paper's pipeline, one module per stage, each importing only earlier ones:
ratings and corpora -> description generation -> models -> losses -> brain -> metrics -> inference.
"""

__version__ = "0.1.0"
