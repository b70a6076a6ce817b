"""Generate, validate, cache and write the descriptive corpus (ALLD-SPEC §1 step 1, §4).

For every clip of a prepared manifest (MOS task) and every sampled A/B pair (A/B task), each
sampling variant asks the expert for a text. Each text is checked: the MOS parsed from a MOS text
must equal the clip's MOS (within ``mos_tolerance``), an A/B text must name the true winner (by
the parser and, optionally, the expert's own verdict summariser). A failed text is retried with
a new seed up to ``max_retries`` times, then recorded as rejected with its reason. Finished
generations go to a crash-safe JSON-lines cache, so an interrupted run resumes exactly where it
stopped. Outputs: SpeechBrain manifests for both tasks and the paper's JSON-lines layout.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from speechbrain.utils.logger import get_logger
from tqdm.auto import tqdm

from speechbrain_alld.corpora.prepare import read_json
from speechbrain_alld.corpora.released import DescriptiveRecord, export_released_jsonl
from speechbrain_alld.describe.cache import cache_key
from speechbrain_alld.describe.experts import (
    PAPER_VARIANTS,
    Expert,
    GenerationRequest,
    SamplingConfig,
)
from speechbrain_alld.describe.pairs import Pair, sample_pairs
from speechbrain_alld.describe.prompts import DEFAULT_INSTRUCTIONS, PromptExample, build_prompt
from speechbrain_alld.durable import write_json_atomic
from speechbrain_alld.jsonl_store import JsonlStore
from speechbrain_alld.parsing import parse_mos, parse_verdict
from speechbrain_alld.ratings import RatingError, RatingRecord

logger = get_logger(__name__)

CACHE_FILE = "description_cache.jsonl"
_RETRY_SEED_STRIDE = 1_000_003


@dataclass
class DescribeConfig:
    """Options of a description run (every field is a hyperparameter in describe.yaml)."""

    tasks: Sequence[str] = ("mos", "ab")
    variants: Sequence[SamplingConfig] = PAPER_VARIANTS
    n_pairs: int | None = None  # None: as many pairs as clips
    min_gap: float = 0.5
    #: Per split name, another smallest MOS gap of the A/B pairs drawn (e.g. evaluation pairs
    #: across all gaps: ``{NISQA_TEST_SIM: 0.1}``); the prompts keep ``min_gap``.
    split_min_gap: Mapping[str, float] = field(default_factory=dict)
    tie_threshold: float | None = None
    seed: int = 0
    max_retries: int = 2
    mos_tolerance: float = 0.05
    batch_size: int = 16
    use_summariser: bool = False
    instructions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_INSTRUCTIONS))
    examples: Mapping[str, Sequence[PromptExample]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.tasks) - {"mos", "ab"}
        if unknown or not self.tasks:
            raise ValueError(f"tasks must be a non-empty subset of ('mos', 'ab'), got "
                             f"{list(self.tasks)}")
        names = [v.name for v in self.variants]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"variants need distinct names, got {names}")
        if self.max_retries < 0 or self.batch_size < 1:
            raise ValueError("max_retries must be >= 0 and batch_size >= 1")


@dataclass
class DescribeSummary:
    """Counts of a run; ``rejected`` lists each rejected item with its reason."""

    requested: int = 0
    from_cache: int = 0
    generated: int = 0
    accepted: int = 0
    retried: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "from_cache": self.from_cache,
            "generated": self.generated,
            "accepted": self.accepted,
            "retried": self.retried,
            "n_rejected": len(self.rejected),
            "rejected": self.rejected,
            "outputs": self.outputs,
        }

    def __str__(self) -> str:
        return (f"requested {self.requested}: {self.from_cache} from cache, generated "
                f"{self.generated} texts ({self.retried} retries), accepted {self.accepted}, "
                f"rejected {len(self.rejected)}")


def load_rated_manifest(path: str | Path) -> dict[str, dict[str, Any]]:
    """A prepared SpeechBrain manifest (``prepare_corpus`` output) with its ratings validated."""
    path = Path(path)
    entries = read_json(path, "manifest")
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: a manifest must be a JSON object keyed by clip id")
    for clip_id, entry in entries.items():
        if not isinstance(entry, dict) or "wav" not in entry:
            raise ValueError(f"{path}: entry {clip_id!r} has no 'wav' field")
        try:
            entry["_rating"] = RatingRecord.from_mapping(entry, source=f"{path} [{clip_id}]")
        except RatingError as err:
            raise ValueError(str(err)) from None
    return entries


def check_text(
    request: GenerationRequest, text: str, expected_winner: str | None, tolerance: float
) -> str | None:
    """``None`` if ``text`` is faithful to the request's ratings, else the reason it is not."""
    if not text or not text.strip():
        return "empty text"
    if request.task == "mos":
        parsed = parse_mos(text)
        if parsed is None:
            return "no MOS found in the text"
        true = request.ratings[0].mos
        if abs(parsed - true) > tolerance + 1e-9:
            return f"stated MOS {parsed:g} differs from the rating {true:.2f}"
        return None
    verdict = parse_verdict(text)
    if verdict is None:
        return "no verdict found in the text"
    if verdict != expected_winner:
        return f"verdict {verdict} but the winner is {expected_winner}"
    return None


@dataclass
class _Job:
    request: GenerationRequest
    key: str
    winner: str | None
    attempt: int = 0
    reasons: list[str] = field(default_factory=list)


def _requests(
    entries: Mapping[str, Mapping[str, Any]], pairs: Sequence[Pair], config: DescribeConfig
) -> list[tuple[GenerationRequest, str | None]]:
    jobs: list[tuple[GenerationRequest, str | None]] = []
    items: list[tuple[str, tuple[RatingRecord, ...], str | None]] = []
    if "mos" in config.tasks:
        items += [(cid, (e["_rating"],), None) for cid, e in entries.items()]
    if "ab" in config.tasks:
        items += [(p.pair_id, (entries[p.a]["_rating"], entries[p.b]["_rating"]), p.winner)
                  for p in pairs]
    for item_id, ratings, winner in items:
        task = "mos" if winner is None else "ab"
        prompt = build_prompt(task, ratings, config.examples.get(task, ()), config.min_gap)
        for variant in config.variants:
            jobs.append((GenerationRequest(item_id, task, prompt, ratings, variant, config.seed),
                         winner))
    return jobs


def generate_descriptions(
    entries: Mapping[str, Mapping[str, Any]],
    expert: Expert,
    save_folder: str | Path,
    name: str,
    config: DescribeConfig | None = None,
    progress: bool = True,
) -> DescribeSummary:
    """Describe every clip (and sampled pair) of ``entries``; write manifests and exports.

    ``entries`` is a manifest from :func:`load_rated_manifest`. Writes, in ``save_folder``:
    ``<name>_mos.json`` and ``<name>_ab.json`` (SpeechBrain manifests), ``<name>_released.jsonl``
    (the paper's layout), ``<name>_summary.json``; the cache ``description_cache.jsonl`` is
    shared by all names in the folder.
    """
    config = config or DescribeConfig()
    save_folder = Path(save_folder)
    save_folder.mkdir(parents=True, exist_ok=True)
    pairs: list[Pair] = []
    if "ab" in config.tasks:
        n_pairs = len(entries) if config.n_pairs is None else config.n_pairs
        pairs = sample_pairs([(cid, e["_rating"]) for cid, e in entries.items()], n_pairs,
                             min_gap=config.split_min_gap.get(name, config.min_gap),
                             tie_threshold=config.tie_threshold,
                             seed=config.seed)
    cache = JsonlStore(save_folder / CACHE_FILE)
    summary = DescribeSummary()
    queue: deque[_Job] = deque()
    done: dict[str, dict[str, Any]] = {}
    for request, winner in _requests(entries, pairs, config):
        key = cache_key(request, expert.expert_id)
        summary.requested += 1
        cached = cache.get(key)
        if cached is not None and cached["status"] == "accepted" and check_text(
                request, cached["text"], winner, config.mos_tolerance) is not None:
            cached = None  # accepted under looser settings than this run's: generate again
        if cached is not None:
            summary.from_cache += 1
            done[key] = cached
        else:
            queue.append(_Job(request, key, winner))

    bar = tqdm(total=len(queue), desc=f"describe {name}", disable=not progress, unit="text")
    while queue:
        batch = _take_batch(queue, config.batch_size)
        texts = expert.generate([job.request for job in batch])
        if len(texts) != len(batch):
            raise RuntimeError(f"expert {expert.expert_id} returned {len(texts)} texts for "
                               f"{len(batch)} requests")
        summary.generated += len(batch)
        reasons = [check_text(job.request, text, job.winner, config.mos_tolerance)
                   for job, text in zip(batch, texts)]
        if config.use_summariser:
            # Only texts the parser accepted are worth a second opinion.
            ask = [k for k, job in enumerate(batch)
                   if job.request.task == "ab" and reasons[k] is None]
            if ask:
                answers = expert.summarise_verdict([texts[k] for k in ask])
                for k, answer in zip(ask, answers):
                    if answer != batch[k].winner:
                        reasons[k] = (f"summariser says {answer} but the winner is "
                                      f"{batch[k].winner}")
        finished = []
        for job, text, reason in zip(batch, texts, reasons):
            if reason is not None and job.attempt < config.max_retries:
                job.reasons.append(reason)
                job.attempt += 1
                summary.retried += 1
                new_seed = config.seed + _RETRY_SEED_STRIDE * job.attempt
                job.request = replace(job.request, seed=new_seed)
                queue.append(job)
                continue
            if reason is not None:
                job.reasons.append(reason)
            entry = {
                "key": job.key,
                "item_id": job.request.item_id,
                "task": job.request.task,
                "variant": job.request.variant.name,
                "seed": job.request.seed,
                "attempts": job.attempt + 1,
                "status": "accepted" if reason is None else "rejected",
                "text": text,
                "reasons": job.reasons,
                "expert_id": expert.expert_id,
            }
            finished.append(entry)
        cache.add(finished)
        for entry in finished:
            done[entry["key"]] = entry
        bar.update(len(finished))
    bar.close()

    summary.outputs = _write_outputs(entries, pairs, done, expert, save_folder, name, config,
                                     summary)
    write_json_atomic(save_folder / f"{name}_summary.json", summary.as_dict())
    logger.info("Descriptions for %s: %s", name, summary)
    return summary


def _take_batch(queue: deque[_Job], size: int) -> list[_Job]:
    """Up to ``size`` jobs sharing the first job's sampling settings (one generate call)."""
    first = queue.popleft()
    batch = [first]
    skipped: list[_Job] = []
    while queue and len(batch) < size:
        job = queue.popleft()
        (batch if job.request.variant == first.request.variant else skipped).append(job)
        if len(skipped) > 4 * size:
            break
    queue.extendleft(reversed(skipped))
    return batch


def _write_outputs(
    entries: Mapping[str, Mapping[str, Any]],
    pairs: Sequence[Pair],
    done: Mapping[str, dict[str, Any]],
    expert: Expert,
    save_folder: Path,
    name: str,
    config: DescribeConfig,
    summary: DescribeSummary,
) -> dict[str, str]:
    by_item: dict[str, dict[str, str]] = {}
    prompts: dict[str, str] = {}
    released: list[DescriptiveRecord] = []
    status = Counter()
    for request, _ in _requests(entries, pairs, config):
        entry = done[cache_key(request, expert.expert_id)]
        status[entry["status"]] += 1
        prompts[request.item_id] = request.prompt
        if entry["status"] != "accepted":
            summary.rejected.append({"item_id": request.item_id, "task": request.task,
                                     "variant": request.variant.name,
                                     "reasons": entry["reasons"]})
            continue
        by_item.setdefault(request.item_id, {})[request.variant.name] = entry["text"]
    summary.accepted = status["accepted"]

    outputs: dict[str, str] = {}
    public = {cid: {k: v for k, v in e.items() if not k.startswith("_")}
              for cid, e in entries.items()}
    if "mos" in config.tasks:
        manifest = {}
        for cid, entry in public.items():
            if cid not in by_item:
                continue
            manifest[cid] = {**entry, "instruction": config.instructions["mos"],
                             "prompt": prompts[cid], "responses": by_item[cid]}
            rating = entries[cid]["_rating"]
            for text in by_item[cid].values():
                released.append(DescriptiveRecord(cid, "mos", [Path(entry["wav"])],
                                                  config.instructions["mos"], text, [rating]))
        path = save_folder / f"{name}_mos.json"
        write_json_atomic(path, manifest)
        outputs["mos"] = str(path)
    if "ab" in config.tasks:
        manifest = {}
        for pair in pairs:
            if pair.pair_id not in by_item:
                continue
            a, b = public[pair.a], public[pair.b]
            ra, rb = entries[pair.a]["_rating"], entries[pair.b]["_rating"]
            manifest[pair.pair_id] = {
                "wav_a": a["wav"], "wav_b": b["wav"], "clip_a": pair.a, "clip_b": pair.b,
                "duration": max(a.get("duration") or 0, b.get("duration") or 0),
                "winner": pair.winner, "gap": pair.gap,
                "instruction": config.instructions["ab"], "prompt": prompts[pair.pair_id],
                "responses": by_item[pair.pair_id],
                **ra.to_dict(prefix="A_"), **rb.to_dict(prefix="B_"),
            }
            for text in by_item[pair.pair_id].values():
                released.append(DescriptiveRecord(
                    pair.pair_id, "ab", [Path(a["wav"]), Path(b["wav"])],
                    config.instructions["ab"], text, [ra, rb], winner=pair.winner))
        path = save_folder / f"{name}_ab.json"
        write_json_atomic(path, manifest)
        outputs["ab"] = str(path)
    path = save_folder / f"{name}_released.jsonl"
    export_released_jsonl(released, path)
    outputs["released"] = str(path)
    return outputs


def describe_manifests(
    manifests: Mapping[str, str | Path],
    expert: Expert,
    save_folder: str | Path,
    config: DescribeConfig | None = None,
    progress: bool = True,
) -> dict[str, DescribeSummary]:
    """Run :func:`generate_descriptions` for every ``{split name: prepared manifest}``."""
    summaries = {}
    for name, path in manifests.items():
        entries = load_rated_manifest(path)
        summaries[name] = generate_descriptions(entries, expert, save_folder, name, config,
                                                progress)
        print(f"{name}: {summaries[name]}")
    return summaries
