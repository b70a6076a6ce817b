"""Rated corpora: readers (pluggable by name), manifest preparation, released-corpus import."""

from speechbrain_alld.corpora.base import (
    ClipRecord,
    CorpusError,
    CorpusReader,
    CorpusReadResult,
    MissingAudioError,
    available_readers,
    get_reader,
    probe_audio,
    register_reader,
)
from speechbrain_alld.corpora.nisqa import read_nisqa
from speechbrain_alld.corpora.prepare import prepare_corpus, write_json_atomic
from speechbrain_alld.corpora.released import (
    DescriptiveRecord,
    ImportResult,
    export_released_jsonl,
    import_released_corpus,
)

__all__ = [
    "ClipRecord",
    "CorpusError",
    "CorpusReadResult",
    "CorpusReader",
    "DescriptiveRecord",
    "ImportResult",
    "MissingAudioError",
    "available_readers",
    "export_released_jsonl",
    "get_reader",
    "import_released_corpus",
    "prepare_corpus",
    "probe_audio",
    "read_nisqa",
    "register_reader",
    "write_json_atomic",
]
