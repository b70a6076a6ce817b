"""Column layout of the NISQA corpus CSV files (ALLD-SPEC §3)."""

from __future__ import annotations

#: Columns every NISQA CSV carries, in the released order.
NISQA_BASE_COLUMNS: tuple[str, ...] = (
    "db", "con", "file", "con_description", "filename_deg", "filename_ref", "source", "lang",
    "votes", "mos", "noi", "col", "dis", "loud", "noi_std", "col_std", "dis_std", "loud_std",
    "mos_std", "filepath_deg", "filepath_ref",
)

#: Simulation-parameter columns of the NISQA SIM subsets (empty where not applicable).
NISQA_SIMULATION_COLUMNS: tuple[str, ...] = (
    "filter", "timeclipping", "wbgn", "p50mnru", "bgn", "clipping", "arb_filter", "asl_in",
    "asl_out", "codec1", "codec2", "codec3", "plcMode1", "plcMode2", "plcMode3", "wbgn_snr",
    "bgn_snr", "tc_fer", "tc_nburst", "cl_th", "bp_low", "bp_high", "p50_q", "bMode1", "bMode2",
    "bMode3", "FER1", "FER2", "FER3", "asl_in_level", "asl_out_level",
)

NISQA_COLUMNS: tuple[str, ...] = NISQA_BASE_COLUMNS + NISQA_SIMULATION_COLUMNS

#: Subsets of the released NISQA corpus and their sizes.
NISQA_SUBSETS: dict[str, int] = {
    "NISQA_TRAIN_SIM": 10000,
    "NISQA_VAL_SIM": 2500,
    "NISQA_TRAIN_LIVE": 1020,
    "NISQA_VAL_LIVE": 200,
    "NISQA_TEST_FOR": 240,
    "NISQA_TEST_P501": 240,
    "NISQA_TEST_LIVETALK": 232,
}

CORPUS_FILE = "NISQA_corpus_file.csv"


def subset_csv_name(subset: str) -> str:
    """``NISQA_<SET>_file.csv``, the per-subset CSV inside the subset folder."""
    return f"{subset}_file.csv"
