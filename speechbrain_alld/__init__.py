"""speechbrain-alld: audio LLMs as descriptive speech-quality evaluators (ALLD, ICLR 2025).

The package follows the paper's pipeline, one module per stage, each importing only earlier ones:
ratings and corpora -> description generation -> training examples -> models -> losses ->
preference data -> brain -> the chain's stages -> metrics -> inference. Foundations any stage may
import: ``durable`` (atomic writes, fingerprints, seeds), ``jsonl_store`` (crash-safe JSON lines),
``hub`` (dtype and offline-hub helpers) and ``resume`` (stage bookkeeping).
"""

__version__ = "0.1.0"
