"""`stylewrap datagen`: topics -> dialogues -> stylize -> build, each stage resumable on its own.

Output folder layout:
    topics.jsonl  dialogues.jsonl  stylized.jsonl   one finished item per line (checkpoints)
    errors.jsonl                                    every item still failed: input, raw reply, reason
    requests.jsonl                                  the cost ledger: each request sent, each reply's tokens
    manifest.json                                   teacher, prompts hash, counts, tokens, cost, time
    train.jsonl                                     the training file, in any adapters format
    pairs.jsonl                                     preference pairs: styled answer chosen, plain rejected
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from stylewrap import __version__
from stylewrap.config import StylewrapConfig
from stylewrap.datagen.client import ChatClient, ClientSettings, ClientStats, RequestFailed
from stylewrap.datagen.engine import ItemFailed, ItemUsage, StageCounts, WorkItem, run_items
from stylewrap.datagen.ledger import Ledger, ledger_totals
from stylewrap.datagen.pairs import write_pairs
from stylewrap.datagen.manifest import cost, read_manifest, summary_table, usage_totals, write_manifest
from stylewrap.datagen.parsing import normalize_text
from stylewrap.datagen.styles import Style, load_style
from stylewrap.datagen.progress import RichProgress, SilentProgress
from stylewrap.datagen.sink import Checkpoint, folder_lock, read_checkpoint
from stylewrap.datagen.stages import DialogueStage, StylizeStage, dialogue_items, request_seed, stylize_item, topic_round
from stylewrap.errors import InputError, Location, RunFailed
from stylewrap.secrets import get_secret, redact_urls, url_has_credentials

STAGES = ("topics", "dialogues", "stylize", "build")
FILES = {"topics": "topics.jsonl", "dialogues": "dialogues.jsonl", "stylize": "stylized.jsonl", "errors": "errors.jsonl"}
TRAIN_FILE = "train.jsonl"
TOPIC_ROUNDS = 5
MANIFEST_SETTINGS = (
    "num_topics", "num_dialogues", "turns", "temperature", "max_tokens", "concurrency", "requests_per_minute",
    "tokens_per_minute", "max_retries", "max_attempts", "dedup_attempts", "distinct_questions", "json_mode", "seed",
    "output_format", "price_input_per_1k", "price_output_per_1k",
    "api_key_env",  # the variable's name, never its value: publish keeps that value out of uploads
)


@dataclass
class DatagenJob:
    """What to run: which stages, and the inputs that replace an earlier stage's output."""

    stages: tuple[str, ...] = STAGES
    topics_file: Path | None = None
    input_file: Path | None = None
    show_progress: bool = True
    register_dir: Path | None = None  # register the training file in this backend dataset folder
    register_backend: str | None = None  # llamafactory or swift (default: train.backend)
    retry_errors: bool = False  # send the items of errors.jsonl again (e.g. after raising max_tokens)


@dataclass
class Session:
    config: StylewrapConfig
    style: Style
    out_dir: Path
    stats: ClientStats = field(default_factory=ClientStats)
    counts: dict[str, StageCounts] = field(default_factory=dict)
    duplicates: int = 0
    endpoint: dict = field(default_factory=dict)  # what the endpoint turned out to accept
    prior_tokens: tuple[int, int] = (0, 0)  # spent by earlier runs into this folder
    started: bool = False  # past the preflight: from here on the run leaves a manifest
    generating: bool = False  # asks the teacher (a build-only run keeps the generation's identity)
    previous: dict | None = None  # the manifest earlier runs left in the folder
    wall_start: float = field(default_factory=time.time)
    monotonic_start: float = field(default_factory=time.monotonic)

    @property
    def settings(self):
        return self.config.datagen

    def checkpoint(self, stage: str) -> Checkpoint:
        return Checkpoint(self.out_dir / FILES[stage])


def client_settings(config: StylewrapConfig) -> ClientSettings:
    settings = config.datagen
    api_key = get_secret(settings.api_key_env)
    base_url = settings.base_url or get_secret("OPENAI_BASE_URL")
    if not api_key:
        raise InputError(f"no API key: ${settings.api_key_env} is not set", hint="export it, or name another variable with --api-key-env")
    if base_url and url_has_credentials(base_url):
        # a key in the URL would be logged, recorded and shown in every error about the endpoint
        raise InputError(f"the endpoint URL carries credentials: {redact_urls(base_url)}", location=Location(field="datagen.base_url"),
                         hint=f"put the key in ${settings.api_key_env}, or name its variable with --api-key-env")
    return ClientSettings(
        model=settings.teacher_model, api_key=api_key, base_url=base_url, timeout=settings.request_timeout,
        max_retries=settings.max_retries, concurrency=settings.concurrency,
        requests_per_minute=settings.requests_per_minute, tokens_per_minute=settings.tokens_per_minute,
        temperature=settings.temperature, max_tokens=settings.max_tokens, json_mode=settings.json_mode,
        backoff_base=settings.retry_backoff,
    )


def read_topics_file(path: Path) -> list[str]:
    """Topics one per line (the seed's 1_Topics.txt) or a topics.jsonl checkpoint."""
    if not path.is_file():
        raise InputError("topics file not found", location=Location(path))
    if path.suffix == ".jsonl":
        topics = [record["topic"] for record in read_checkpoint(path) if record.get("topic")]
    else:
        topics = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not topics:
        raise InputError("no topics in the file", location=Location(path))
    return list(dict.fromkeys(topics))


def read_conversations(path: Path) -> list[tuple[str, list[dict], dict]]:
    """(source id, messages, meta) of every row: a dialogues checkpoint, or any adapters format."""
    if not path.is_file():
        raise InputError("input file not found", location=Location(path))
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    try:
        head = json.loads(first)
    except ValueError:
        head = None
    if isinstance(head, dict) and {"id", "messages", "usage"} <= set(head):
        return [(r["id"], r["messages"], {"topic": r.get("topic")}) for r in read_checkpoint(path)]
    from stylewrap.adapters import read_records

    rows = []
    for number, record in enumerate(read_records(path), 1):
        messages = [{"role": m["role"], "content": m["content"]} for m in record.messages]
        rows.append((f"{path.name}:{number}", messages, dict(record.meta)))
    return rows


# ---------------------------------------------------------------------- stages


async def stage_topics(session: Session, client: ChatClient, job: DatagenJob, progress) -> list[str]:
    topics_file = job.topics_file or session.config.resolve_path(session.settings.topics_file)
    wanted = session.settings.num_topics
    with session.checkpoint("topics") as done, session.checkpoint("errors") as errors:
        if topics_file:
            given = read_topics_file(topics_file)
            for index, topic in enumerate(given):
                if f"topic-{index:04d}" not in done:
                    done.append({"id": f"topic-{index:04d}", "topic": topic, "usage": asdict(ItemUsage())})
            session.counts["topics"] = StageCounts(requested=len(given), done=len(given))
            return given
        topics = [r["topic"] for r in sorted(done.values(), key=lambda r: r["id"])][:wanted]
        counts = StageCounts(requested=wanted, resumed=len(topics))
        progress.start("topics", wanted, len(topics))
        for round_number in range(TOPIC_ROUNDS):
            if len(topics) >= wanted:
                break
            usage = ItemUsage()
            try:
                fresh = await topic_round(client, session.style, wanted - len(topics), topics, usage,
                                          request_seed(session.settings.seed, "topics", round_number + len(errors)))
            except (ItemFailed, RequestFailed) as exc:
                errors.append({"id": f"topics-round-{len(errors):04d}", "stage": "topics", "reason": exc.reason,
                               "input": {"have": topics}, "raw": getattr(exc, "raw", None), "final": False, "usage": asdict(usage)})
                continue
            fresh = fresh[: wanted - len(topics)]
            for offset, topic in enumerate(fresh):
                # the round's tokens ride on its first topic, so totals stay exact
                done.append({"id": f"topic-{len(topics):04d}", "topic": topic, "usage": asdict(usage if offset == 0 else ItemUsage())})
                topics.append(topic)
                progress.advance("topics", failed=False)
        counts.done = len(topics)
        session.counts["topics"] = counts
        if len(topics) < wanted:
            # the dialogues are spread over the topics: starting them on a partial list would
            # reshuffle every topic's share when the rest arrive
            counts.errors = counts.retryable = wanted - len(topics)
            raise RunFailed(
                f"only {len(topics)} of {wanted} distinct topics after {TOPIC_ROUNDS} requests (see {errors.path})",
                hint="run again to ask for the rest, lower --num-topics, or pass --topics-file",
            )
        return topics


async def stage_dialogues(session: Session, client: ChatClient, topics: list[str], job: DatagenJob, progress) -> list[dict]:
    settings = session.settings
    items = dialogue_items(topics, settings.num_dialogues, settings.turns)
    stage = DialogueStage(client, session.style, settings.max_attempts, settings.dedup_attempts, settings.seed)
    with session.checkpoint("dialogues") as done, session.checkpoint("errors") as errors:
        for record in done.values():
            stage.remember(record)
        session.counts["dialogues"] = await run_items(
            "dialogues", items, stage, done=done, errors=errors, concurrency=settings.concurrency, progress=progress,
            retry_errors=job.retry_errors,
        )
        session.duplicates += stage.duplicates
        return [done.records[item.id] for item in items if item.id in done]


async def stage_stylize(session: Session, client: ChatClient, conversations: list[tuple[str, list[dict], dict]], job: DatagenJob, progress) -> None:
    settings = session.settings
    items = distinct_items(conversations, by_question=settings.distinct_questions)
    stage = StylizeStage(client, session.style, settings.max_attempts, settings.seed)
    with session.checkpoint("stylize") as done, session.checkpoint("errors") as errors:
        counts = await run_items("stylize", items, stage, done=done, errors=errors, concurrency=settings.concurrency,
                                 progress=progress, retry_errors=job.retry_errors)
    counts.skipped = len(conversations) - len(items)
    session.counts["stylize"] = counts


def distinct_items(conversations: list[tuple[str, list[dict], dict]], *, by_question: bool) -> list[WorkItem]:
    """One item per distinct conversation, or per distinct (normalized) first question: the
    seed's stage-2 file asks "你有宠物吗？" 314 times."""
    unique: dict[str, WorkItem] = {}
    for order, row in enumerate(conversations):
        item = stylize_item(order, *row)
        first = next((m["content"] for m in row[1] if m["role"] == "user"), "")
        key = normalize_text(first) if by_question and isinstance(first, str) else item.id
        unique.setdefault(key, item)
    return list({item.id: item for item in unique.values()}.values())


def stage_build(session: Session, job: DatagenJob) -> Path:
    from stylewrap.adapters import Record, write_records

    path = session.out_dir / FILES["stylize"]
    if not path.exists():
        raise InputError("nothing to build: no stylized.jsonl yet", location=Location(session.out_dir), hint="run `stylewrap datagen stylize` first")
    system = session.config.style.system_prompt
    records = []
    # the order of the input, whatever order the replies came back in
    stylized = sorted(read_checkpoint(path), key=lambda r: (r.get("order", 0), r["id"]))
    session.counts["pairs"] = write_pairs(session.out_dir, stylized, session.out_dir / FILES["dialogues"], system)
    for row in stylized:
        messages = row["messages"]
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
        meta = {"id": row["id"], "source_id": row.get("source_id"), **{k: v for k, v in (row.get("meta") or {}).items() if v is not None}}
        records.append(Record(messages=messages, meta=meta))
    target = session.out_dir / TRAIN_FILE
    written = write_records(records, target, session.settings.output_format)
    session.counts["build"] = StageCounts(requested=len(records), done=written)
    if job.register_dir:
        from stylewrap.dataops import register_dataset

        register_dataset(job.register_backend, job.register_dir, session.config.data.dataset_name, target,
                         session.settings.output_format)
    return target


# ---------------------------------------------------------------------- the run


def check_output_dir(session: Session, previous: dict | None) -> None:
    """Refuse to mix two different generations in one folder."""
    if previous is None:
        return
    for key, ours in (("prompts_sha256", session.style.prompts_hash()), ("teacher_model", session.settings.teacher_model)):
        if previous.get(key) not in (None, ours):
            raise InputError(
                f"{session.out_dir} holds a run with another {key.replace('_', ' ')} ({previous[key]}, now {ours})",
                location=Location(session.out_dir / "manifest.json"),
                hint="use a new --output folder to start over, or restore the style/model to resume",
            )


def build_manifest(session: Session, status: str) -> dict:
    lines = [list(read_checkpoint(session.out_dir / name)) for name in FILES.values()]
    _, tokens_in, tokens_out = usage_totals(*lines)
    before = session.previous or {}
    sent = before.get("requests", {}).get("sent", 0) + session.stats.requests
    ledger = ledger_totals(session.out_dir)
    estimated_in = 0
    if ledger is not None:
        # the ledger also holds what items in flight at a kill, or rejected and asked again, cost
        sent, tokens_in, tokens_out, estimated_in = ledger.sent, ledger.tokens_in + ledger.estimated_in, ledger.tokens_out, ledger.estimated_in
    settings = session.settings
    stages = dict(before.get("stages", {}))
    stages.update({name: asdict(counts) for name, counts in session.counts.items()})
    item_stages = [c for name, c in stages.items() if name != "build"]
    # a build-only run says which generation it built, not what the current config would generate
    generated_by = before if not session.generating else {}
    run_settings = {key: getattr(settings, key) for key in MANIFEST_SETTINGS}
    if generated_by.get("settings"):
        run_settings = {**generated_by["settings"], "output_format": settings.output_format}
    return {
        "stylewrap_version": __version__,
        "status": status,
        # every requested item is finished or has a final error; retryable errors mean "run again"
        "complete": status == "complete" and all(
            c["done"] + c["errors"] == c["requested"] and not c.get("retryable") for c in item_stages
        ),
        "preset": generated_by.get("preset", session.style.name),
        "prompts_sha256": generated_by.get("prompts_sha256", session.style.prompts_hash()),
        "teacher_model": generated_by.get("teacher_model", settings.teacher_model),
        "settings": run_settings,
        "stages": stages,
        "duplicates_rejected": before.get("duplicates_rejected", 0) + session.duplicates,
        "style_markers": marker_coverage(lines[list(FILES).index("stylize")], session.style.markers)
        if session.generating else before.get("style_markers"),
        "tokens": {"input": tokens_in, "output": tokens_out, "input_estimated": estimated_in},
        "cost_usd": cost(tokens_in, tokens_out, run_settings["price_input_per_1k"], run_settings["price_output_per_1k"]),
        "requests": {
            "sent": sent,
            "retries": before.get("requests", {}).get("retries", 0) + session.stats.retries,
            "failed": before.get("requests", {}).get("failed", 0) + session.stats.failures,
            "retries_by_reason": _add_counts(before.get("requests", {}).get("retries_by_reason", {}), session.stats.retry_reasons),
        },
        "endpoint": session.endpoint or before.get("endpoint", {}),
        "sessions": before.get("sessions", 0) + 1,
        "started_at": before.get("started_at") or datetime.fromtimestamp(session.wall_start, timezone.utc).isoformat(timespec="seconds"),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(before.get("duration_s", 0.0) + time.monotonic() - session.monotonic_start, 3),
        "files": {name: file for name, file in {**FILES, "train": TRAIN_FILE}.items() if (session.out_dir / file).exists()},
    }


def marker_coverage(stylized: list[dict], markers: list[str]) -> dict:
    """How many rewritten answers use at least one of the style's marker phrases: a cheap
    check that the teacher wrote in the style, not just around it."""
    answers = [m["content"] for row in stylized for m in row["messages"] if m["role"] == "assistant"]
    hits = sum(1 for answer in answers if any(marker in answer for marker in markers))
    return {"answers": len(answers), "with_marker": hits, "rate": round(hits / len(answers), 4) if answers else None}


async def _run_api_stages(session: Session, job: DatagenJob, progress) -> None:
    async with ChatClient(client_settings(session.config), session.stats) as client:
        try:
            await _api_stages(session, client, job, progress)
        finally:
            session.endpoint = {"json_mode": client.json_mode, "tokens_param": client.tokens_param,
                                "sends_temperature": client.send_temperature}


async def _api_stages(session: Session, client: ChatClient, job: DatagenJob, progress) -> None:
    conversations = None
    if "stylize" in job.stages and "dialogues" not in job.stages:
        # a bad input file is reported before the endpoint is even asked
        conversations = read_conversations(job.input_file or session.out_dir / FILES["dialogues"])
    await client.preflight()
    with folder_lock(session.out_dir):
        session.started = True
        carried = usage_totals(*(list(read_checkpoint(session.out_dir / name)) for name in FILES.values()))
        client.ledger = Ledger(session.out_dir, carried)
        refresher = asyncio.ensure_future(_refresh_manifest(session))
        try:
            await _run_stages(session, client, job, progress, conversations)
        finally:
            refresher.cancel()
            client.ledger.close()
            client.ledger = None


async def _refresh_manifest(session: Session) -> None:
    """Rewrite the manifest every few seconds while the run goes on, so a run killed with -9
    still leaves its request counts and time for the next run to add to."""
    while True:
        await asyncio.sleep(session.settings.manifest_every_s)
        write_manifest(session.out_dir, build_manifest(session, "running"))


async def _run_stages(session: Session, client: ChatClient, job: DatagenJob, progress, conversations) -> None:
    if "topics" in job.stages or "dialogues" in job.stages:
        if "topics" in job.stages:
            topics = await stage_topics(session, client, job, progress)
        else:
            topics = read_topics_file(job.topics_file or session.out_dir / FILES["topics"])
        if "dialogues" in job.stages:
            dialogues = await stage_dialogues(session, client, topics, job, progress)
            conversations = [(r["id"], r["messages"], {"topic": r["topic"]}) for r in dialogues]
    if "stylize" in job.stages:
        await stage_stylize(session, client, conversations, job, progress)


def run_datagen(config: StylewrapConfig, job: DatagenJob) -> dict:
    """Run the job's stages; returns the manifest (also written to the output folder)."""
    style = load_style(config.style.preset)
    out_dir = config.resolve_path(config.datagen.output_dir)
    session = Session(config, style, out_dir)
    session.previous = previous = read_manifest(out_dir)
    api_stages = [s for s in job.stages if s != "build"]
    session.generating = bool(api_stages)
    if api_stages:
        check_output_dir(session, previous)
    if "build" in job.stages and config.datagen.output_format not in _formats():
        raise InputError(f"unknown output format {config.datagen.output_format!r}", hint=f"one of: {', '.join(_formats())}")
    if "build" in job.stages and job.register_dir:
        from stylewrap.dataops import registration_backend

        job = replace(job, register_backend=registration_backend(job.register_backend or config.train.backend).name)
    progress = SilentProgress()
    if api_stages and job.show_progress:
        _, *session.prior_tokens = usage_totals(*(list(read_checkpoint(out_dir / name)) for name in FILES.values()))
        progress = RichProgress(lambda: _live_usage(session))
    status = "failed"
    try:
        if api_stages:
            asyncio.run(_run_api_stages(session, job, progress))
        if "build" in job.stages:
            with folder_lock(out_dir):
                session.started = True
                stage_build(session, job)
        status = "complete"
    except (KeyboardInterrupt, asyncio.CancelledError):
        status = "interrupted"
        raise
    finally:
        progress.stop()
        # a run stopped before its first stage (bad key, unreachable endpoint) leaves no trace
        manifest = build_manifest(session, status)
        if session.started:
            write_manifest(out_dir, manifest)
    return manifest


def _add_counts(first: dict[str, int], second: dict[str, int]) -> dict[str, int]:
    return {key: first.get(key, 0) + second.get(key, 0) for key in sorted({*first, *second})}


def _live_usage(session: Session) -> tuple[int, int, float]:
    """Tokens and cost so far, earlier runs into the same folder included."""
    settings = session.settings
    tokens_in = session.prior_tokens[0] + session.stats.tokens_in
    tokens_out = session.prior_tokens[1] + session.stats.tokens_out
    return tokens_in, tokens_out, cost(tokens_in, tokens_out, settings.price_input_per_1k, settings.price_output_per_1k)


def _formats() -> list[str]:
    from stylewrap.adapters import FORMATS

    return sorted(FORMATS)


__all__ = ["DatagenJob", "STAGES", "run_datagen", "summary_table"]
