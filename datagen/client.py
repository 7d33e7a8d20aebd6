"""The teacher: `openai.AsyncOpenAI` against any OpenAI-compatible base URL.

One shared HTTP connection pool sized to the concurrency (keep-alive, no per-request client),
our own retry loop (exponential backoff with jitter, `Retry-After` honoured and shared by
every worker, no retry on 400/401/403/404/422), RPM/TPM limits, JSON mode where the endpoint
takes `response_format` and prompt-only where it does not. `openai` is imported here, lazily
from the CLI's point of view.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from dataclasses import dataclass, field

from stylewrap.errors import InputError

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
JSON_MODE_HINTS = ("response_format", "json_object", "json mode", "json_mode")
RETRY_AFTER_MAX = 120.0  # seconds; a longer Retry-After is a server's mistake, not a plan


@dataclass
class ClientSettings:
    model: str
    api_key: str
    base_url: str | None = None
    timeout: float = 60.0
    max_retries: int = 6
    concurrency: int = 64
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    temperature: float = 0.9
    max_tokens: int = 1024
    json_mode: bool = True
    backoff_base: float = 0.5
    backoff_max: float = 30.0


@dataclass
class Completion:
    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    failures: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)


class RequestFailed(Exception):
    """One request gave up: a non-retryable status (final), or the retries ran out (not final:
    the endpoint failed, so a later run may succeed)."""

    def __init__(self, reason: str, *, final: bool):
        super().__init__(reason)
        self.reason = reason
        self.final = final


class RateLimiter:
    """A token bucket refilled continuously at `per_minute`, holding at most ten seconds' worth
    (a burst of a whole minute at start-up is what trips a provider's finer-grained limits);
    `take` may go into debt so one large request is never starved, and `give_back` settles an
    estimate against the truth."""

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.level = self.capacity
        self.stamp = time.monotonic()
        self.lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    async def take(self, amount: float) -> None:
        async with self.lock:
            self._refill()
            while self.level <= 0 or (self.level < amount and self.level < self.capacity):
                await asyncio.sleep(max(0.005, (min(amount, self.capacity) - self.level) / self.rate))
                self._refill()
            self.level -= amount

    def give_back(self, amount: float) -> None:
        self._refill()
        self.level = min(self.capacity, self.level + amount)


def retry_after_seconds(headers) -> float | None:
    """Seconds a 429/503 asks us to wait: `retry-after-ms`, `retry-after` seconds or HTTP date."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt + 1`: what `Retry-After` asked (at most two
    minutes), else a random point in the upper half of min(cap, base * 2**attempt). The lower
    bound keeps the doubling real; the spread keeps a pool of workers hit by one outage from
    coming back in the same instant."""
    if retry_after is not None:
        return min(retry_after, RETRY_AFTER_MAX)
    ceiling = min(cap, base * 2**attempt)
    return rng.uniform(ceiling / 2, ceiling)


def estimate_tokens(messages: list[dict]) -> int:
    # CJK text runs near one token per character, Latin near four characters per token
    return sum(len(m["content"]) for m in messages) + 4 * len(messages)


def make_http_client(concurrency: int, timeout: float):
    """One keep-alive pool with a connection per worker: the default pool (100 keep-alive
    connections) thrashes past that, which is where throughput collapsed at 256."""
    import httpx2

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=60)
    timeouts = httpx2.Timeout(timeout, connect=min(timeout, 10.0))
    try:
        import aiohttp  # noqa: F401  the aiohttp transport costs a fraction of httpx's CPU per request
        from openai import DefaultAioHttpClient

        return DefaultAioHttpClient(limits=limits, timeout=timeouts)
    except (ImportError, RuntimeError):
        from openai import DefaultAsyncHttpxClient

        return DefaultAsyncHttpxClient(limits=limits, timeout=timeouts)


class ChatClient:
    """Use as `async with ChatClient(settings) as client: await client.complete(messages)`."""

    def __init__(self, settings: ClientSettings, stats: ClientStats | None = None, *, rng: random.Random | None = None):
        self.settings = settings
        self.ledger = None  # a datagen.ledger.Ledger once the run owns its output folder
        self.stats = stats or ClientStats()
        self.json_mode = settings.json_mode
        self.tokens_param = "max_tokens"
        self.send_temperature = True
        self.rng = rng or random.Random()
        self.requests_limit = RateLimiter(settings.requests_per_minute) if settings.requests_per_minute else None
        self.tokens_limit = RateLimiter(settings.tokens_per_minute) if settings.tokens_per_minute else None
        self.mean_completion = settings.max_tokens / 4
        self.paused_until = 0.0
        self._openai = None

    async def __aenter__(self) -> "ChatClient":
        from openai import AsyncOpenAI

        self._http = make_http_client(self.settings.concurrency, self.settings.timeout)
        self._openai = AsyncOpenAI(
            api_key=self.settings.api_key,
            base_url=self.settings.base_url,
            timeout=self.settings.timeout,
            max_retries=0,
            http_client=self._http,
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self._openai.close()

    # ------------------------------------------------------------------ preflight

    async def preflight(self) -> None:
        """Fail before spending anything: unreachable endpoint, rejected key, unknown model."""
        import openai

        where = self.settings.base_url or "the OpenAI API"
        try:
            page = await self._openai.models.list()
            served = [model.id for model in page.data]
        except openai.AuthenticationError:
            raise InputError(f"{where} rejected the API key", hint="check $OPENAI_API_KEY (or the variable named by --api-key-env)") from None
        except openai.APIConnectionError as exc:
            raise InputError(f"cannot reach {where}: {_cause(exc)}", hint="check --base-url / $OPENAI_BASE_URL") from None
        except openai.APIStatusError:
            served = []  # some compatible servers have no /models; a one-token request decides instead
        if served and self.settings.model not in served:
            shown = ", ".join(served[:8]) + (" ..." if len(served) > 8 else "")
            raise InputError(f"model {self.settings.model!r} is not served by {where}", hint=f"available: {shown}")
        if not served:
            try:
                await self.complete([{"role": "user", "content": "ping"}], max_tokens=1, json_object=False)
            except RequestFailed as exc:
                raise InputError(f"{where} failed a one-token test request: {exc.reason}") from None

    # ------------------------------------------------------------------ requests

    async def _wait_turn(self, messages: list[dict], max_tokens: int) -> float:
        delay = self.paused_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.requests_limit:
            await self.requests_limit.take(1)
        estimate = 0.0
        if self.tokens_limit:
            estimate = estimate_tokens(messages) + min(max_tokens, self.mean_completion)
            await self.tokens_limit.take(estimate)
        return estimate

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        return backoff_delay(attempt, base=self.settings.backoff_base, cap=self.settings.backoff_max, rng=self.rng,
                             retry_after=retry_after)

    async def complete(
        self, messages: list[dict], *, max_tokens: int | None = None, json_object: bool = True, stage: str = "", seed: int | None = None
    ) -> Completion:
        import httpx2
        import openai

        max_tokens = max_tokens or self.settings.max_tokens
        attempt = 0
        while True:
            estimate = await self._wait_turn(messages, max_tokens)
            body = {"model": self.settings.model, "messages": messages, self.tokens_param: max_tokens}
            if self.send_temperature:
                body["temperature"] = self.settings.temperature
            if json_object and self.json_mode:
                body["response_format"] = {"type": "json_object"}
            if seed is not None:
                body["seed"] = seed
            self.stats.requests += 1
            request_id = self.ledger.sent(estimate_tokens(messages)) if self.ledger else None
            try:
                # The typed `chat.completions.create` walks every message through the SDK's
                # TypedDict transformer, deep-copies the body and builds pydantic models for the
                # reply: ~4 ms of CPU per request, the whole budget at 256 in flight. The same
                # client's `post` with encoded bytes and the raw reply keeps auth, base URL,
                # timeouts and error types; the reply is decoded once, here.
                # --timeout bounds the whole exchange: the SDK's timeout is per read, so a server
                # dripping a byte at a time could hold a request for ever
                raw = await asyncio.wait_for(self._openai.post(
                    "/chat/completions", content=json.dumps(body, ensure_ascii=False).encode(), cast_to=httpx2.Response,
                    options={"headers": {"Content-Type": "application/json", **({"X-Stylewrap-Stage": stage} if stage else {})}},
                ), timeout=self.settings.timeout)
            except asyncio.TimeoutError:
                wait, reason = self._backoff(attempt, None), f"timeout: no whole reply within {self.settings.timeout:g} s"
            except openai.APIStatusError as exc:
                if request_id is not None:
                    self.ledger.answered(request_id, 0, 0)  # refused: nothing generated, nothing billed
                status = exc.status_code
                if status == 401:
                    raise InputError("the endpoint rejected the API key (401)", hint="check $OPENAI_API_KEY") from None
                if status == 404 and "model" in str(exc.message).lower():
                    raise InputError(f"model {self.settings.model!r} not found (404): {exc.message}") from None
                if status == 400 and self._adapt(_error_message(exc), body):
                    continue
                if status not in RETRY_STATUSES:
                    self.stats.failures += 1
                    raise RequestFailed(f"HTTP {status}: {_error_message(exc)}", final=True) from None
                wait = self._backoff(attempt, retry_after_seconds(exc.response.headers))
                if status == 429 and wait:
                    self.paused_until = max(self.paused_until, time.monotonic() + wait)
                reason = f"HTTP {status}"
            except openai.APITimeoutError as exc:
                wait, reason = self._backoff(attempt, None), f"timeout: {_cause(exc)}"
            except openai.APIConnectionError as exc:
                wait, reason = self._backoff(attempt, None), f"connection: {_cause(exc)}"
            else:
                try:
                    return self._settle(json.loads(raw.content), estimate, request_id)
                except ValueError:
                    wait, reason = self._backoff(attempt, None), "reply body is not JSON"
            if self.tokens_limit and estimate:
                self.tokens_limit.give_back(estimate)
            if attempt >= self.settings.max_retries:
                self.stats.failures += 1
                raise RequestFailed(f"gave up after {attempt + 1} attempts: {reason}", final=False)
            attempt += 1
            self.stats.retries += 1
            key = reason.split(":")[0]
            self.stats.retry_reasons[key] = self.stats.retry_reasons.get(key, 0) + 1
            await asyncio.sleep(wait)

    def _adapt(self, message: str, body: dict) -> bool:
        """Follow an endpoint that refuses one of our parameters, for the rest of the run: no JSON
        mode (prompt-only), `max_completion_tokens` instead of `max_tokens` (reasoning models),
        no temperature (models with a fixed one). True when the request is worth sending again."""
        text = message.lower()
        if "response_format" in body and any(hint in text for hint in JSON_MODE_HINTS):
            self.json_mode = False
        elif "max_tokens" in body and "max_completion_tokens" in text:
            self.tokens_param = "max_completion_tokens"
        elif "temperature" in body and "temperature" in text:
            self.send_temperature = False
        else:
            return False
        return True

    def _settle(self, response: dict, estimate: float, request_id: str | None = None) -> Completion:
        choices = response.get("choices") or [{}]
        choice = choices[0]
        usage = response.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens") or 0)
        completion_tokens = int(usage.get("completion_tokens") or 0)
        if request_id is not None:
            self.ledger.answered(request_id, prompt_tokens, completion_tokens)
        self.stats.tokens_in += prompt_tokens
        self.stats.tokens_out += completion_tokens
        if completion_tokens:
            self.mean_completion = 0.9 * self.mean_completion + 0.1 * completion_tokens
        if self.tokens_limit and estimate:
            self.tokens_limit.give_back(estimate - (prompt_tokens + completion_tokens))
        return Completion(
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


def _error_message(exc) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(inner.get("message") or exc.message)


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return f"{type(inner).__name__}: {inner}" if inner else str(exc)
