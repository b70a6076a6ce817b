"""A simulated, rated speech-quality corpus in the NISQA layout (the project's embedded data).

SIMULATION ONLY: speech from espeak-ng (or a user folder), degradations with recorded
parameters, and ratings from hand-written rules plus simulated listener noise. Use it to build,
test and demonstrate the pipeline; never report results on it as results on human ratings.

    from speechbrain_alld.simulation import simulate_corpus
    simulate_corpus("results/simulated_nisqa", {"NISQA_TRAIN_SIM": 200, "NISQA_TEST_SIM": 50})
"""

from speechbrain_alld.simulation.config import (
    CSV_COLUMNS,
    DEFAULT_SIZES,
    SIM_COLUMNS,
    SimulationConfig,
    SimulationConfigError,
    SimulationError,
    SimulationMismatchError,
)
from speechbrain_alld.simulation.corpus import SimulationSummary, simulate_corpus
from speechbrain_alld.simulation.degradations import (
    DegradationParams,
    active_speech_level,
    apply_degradations,
)
from speechbrain_alld.simulation.plan import plan_degradations
from speechbrain_alld.simulation.rating_model import simulate_votes, true_ratings
from speechbrain_alld.simulation.render import params_from_row

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_SIZES",
    "SIM_COLUMNS",
    "DegradationParams",
    "SimulationConfig",
    "SimulationConfigError",
    "SimulationError",
    "SimulationMismatchError",
    "SimulationSummary",
    "active_speech_level",
    "apply_degradations",
    "params_from_row",
    "plan_degradations",
    "simulate_corpus",
    "simulate_votes",
    "true_ratings",
]
