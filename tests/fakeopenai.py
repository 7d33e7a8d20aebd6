"""A real OpenAI-compatible HTTP server for tests and benchmarks, scripted per test.

Run it in its own process: `python tests/fakeopenai.py --port 0` prints `PORT <n>` once it
listens. A test scripts it over HTTP (`POST /_control/script`) and reads what it received
(`GET /_control/log`, `GET /_control/authorizations`). It answers /v1/models and /v1/chat/completions:

- replies depend on the `X-Stylewrap-Stage` header: topics from a pool, dialogues with numbered
  questions (or scripted repeats), stylize echoing the dialogue with each answer restyled;
- `replies`: {model: text} answers that model's requests instead, `{question}` replaced by the
  last user message (so eval variants can answer alike or differently);
- judge requests (stage `judge`) get a verdict: `judge` "marker" prefers the answer containing
  `judge_marker` on every axis, whichever position it is in (a consistent judge); "first" always
  names answer A (a judge that follows the position);
- any other request is answered with `reply`; `stream: true` gets it as server-sent events, one
  chunk per word, each naming the requested model;
- `latency` seconds before every chat reply;
- `faults`: a queue, one popped per chat request (optionally only for one stage): 429 (with
  Retry-After), 500, 400, 401, 404 (with an optional `message`), slow (past the client timeout),
  drop (connection closed mid-request),
  prose (object wrapped in text and a code fence), python (dict quoting), fullwidth (full-width
  punctuation), truncate (finish_reason=length), unchanged (answer not restyled), question
  (question altered), empty (empty answer), garbage (no object at all), stall (a streamed reply
  sends its first word, then waits `slow_seconds`, or until its client leaves, before the rest),
  drip (the reply in `drip_pieces` pieces `drip_interval` seconds apart).

The log keeps each chat request's messages; a streamed reply's entry counts the pieces it sent
(`pieces_sent`) and, when the client left first, how many had been sent then (`client_left_after`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
import time
import urllib.request

from aiohttp import web
from ports import free_port

DEFAULT_SCRIPT = {
    "latency": 0.0,
    "faults": [],
    "models": ["teacher-1"],
    "api_key": "test-key",
    "refuse_params": [],       # answer 400 to a request carrying any of these, as real servers do
    "topics_pool": ["天气", "电影", "音乐", "体育", "健康", "时尚", "科技", "动物", "家庭", "学习",
                    "工作", "趣闻", "娱乐", "旅游", "社交", "美食", "宠物", "书籍", "艺术", "购物"],
    "topics_per_reply": 20,
    "repeat_questions": 0,     # the first N dialogue replies all ask the same question
    "slow_seconds": 5.0,
    "stream_interval": 0.0,     # seconds between streamed pieces (a reply that takes a while to arrive)
    "retry_after": "0.05",
    "style_prefix": "噢，亲爱的，",
    "hold_until_in_flight": 0,
    "hold_timeout": 5.0,
    "reply": "pong",
    "replies": {},
    "judge": "marker",
    "judge_marker": "噢",
    "drip_pieces": 10,
    "drip_interval": 0.4,
}


REFUSALS = {
    "response_format": "response_format is not supported by this server",
    "max_tokens": "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
    "temperature": "Unsupported value: 'temperature' does not support 0.9 with this model. Only the default (1) value is supported.",
}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script = dict(DEFAULT_SCRIPT)
        self.log: list[dict] = []
        self.authorizations: list[str | None] = []  # the Authorization header of every API request
        self.topic_cursor = 0
        self.question_counter = 0
        # requests in flight per script: a handler a previous test left sleeping (its client timed out)
        # must not count against the next test's concurrency check
        self.script_number = 0
        self.in_flight_by_script: collections.Counter[int] = collections.Counter()
        self.released = asyncio.Event()

    @property
    def in_flight(self) -> int:
        return self.in_flight_by_script[self.script_number]

    # ------------------------------------------------------------------ control

    async def set_script(self, request: web.Request) -> web.Response:
        self.script = {**DEFAULT_SCRIPT, **(await request.json())}
        self.log.clear()
        self.authorizations.clear()
        self.topic_cursor = self.question_counter = 0
        self.released = asyncio.Event()
        self.script_number += 1
        return web.json_response({"ok": True})

    async def get_log(self, request: web.Request) -> web.Response:
        return web.json_response(self.log)

    async def get_authorizations(self, request: web.Request) -> web.Response:
        return web.json_response(self.authorizations)

    async def clear_log(self, request: web.Request) -> web.Response:
        self.log.clear()
        return web.json_response({"ok": True})

    # ------------------------------------------------------------------ API

    def _authorized(self, request: web.Request) -> bool:
        self.authorizations.append(request.headers.get("Authorization"))
        return request.headers.get("Authorization") == f"Bearer {self.script['api_key']}"

    async def models(self, request: web.Request) -> web.Response:
        self.log.append({"stage": "models", "key": "models", "fault": None, "time": time.time()})
        if not self._authorized(request):
            return _error(401, "invalid api key")
        if self.script["models"] is None:
            return _error(404, "no such route")
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.script["models"]]})

    def _pop_fault(self, stage: str) -> dict | None:
        for index, fault in enumerate(self.script["faults"]):
            fault = fault if isinstance(fault, dict) else {"kind": fault}
            if fault.get("stage") in (None, stage):
                del self.script["faults"][index]
                return fault
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        script_number = self.script_number
        self.in_flight_by_script[script_number] += 1
        try:
            return await self._chat(request)
        finally:
            self.in_flight_by_script[script_number] -= 1

    async def _hold(self) -> None:
        wanted = self.script["hold_until_in_flight"]
        if not wanted or self.released.is_set():
            return
        if self.in_flight >= wanted:
            self.released.set()
            return
        try:
            await asyncio.wait_for(self.released.wait(), self.script["hold_timeout"])
        except asyncio.TimeoutError:
            self.released.set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        stage = request.headers.get("X-Stylewrap-Stage", "")
        if not self._authorized(request):
            return _error(401, "invalid api key")
        models = self.script["models"]
        if models is not None and body.get("model") not in models:
            return _error(404, f"The model `{body.get('model')}` does not exist")
        for param in self.script["refuse_params"]:
            if param in body:
                return _error(400, REFUSALS[param])
        fault = self._pop_fault(stage)
        kind = fault["kind"] if fault else None
        entry = {"stage": stage, "key": _request_key(stage, body), "fault": kind, "time": time.time(),
                 "params": {k: v for k, v in body.items() if k != "messages"}, "in_flight": self.in_flight,
                 "messages": body["messages"]}
        self.log.append(entry)
        await self._hold()
        if kind == "429":
            return _error(429, "rate limited", headers={"Retry-After": str(fault.get("retry_after", self.script["retry_after"]))})
        if kind in ("500", "400", "401", "404"):
            return _error(int(kind), fault.get("message", "scripted failure"))
        if kind == "drop":
            request.transport.close()
            return web.Response(status=500)
        await asyncio.sleep(self.script["slow_seconds"] if kind == "slow" else self.script["latency"])
        payload = self._reply(stage, body)
        finish_reason = "stop"
        text = json.dumps(payload, ensure_ascii=False) if not isinstance(payload, str) else payload
        text, finish_reason = _mangle(kind, payload, text, self.script)
        prompt_tokens = sum(len(m.get("content") or "") for m in body["messages"])
        entry["usage"] = [prompt_tokens, len(text)]
        if body.get("stream"):
            return await self._stream(request, entry, text, finish_reason, stall=kind == "stall")
        reply = {
            "id": f"chatcmpl-{len(self.log)}", "object": "chat.completion", "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(text), "total_tokens": prompt_tokens + len(text)},
        }
        if kind == "drip":
            return await self._drip(request, json.dumps(reply, ensure_ascii=False).encode())
        return web.json_response(reply)

    async def _drip(self, request: web.Request, body: bytes) -> web.StreamResponse:
        """The whole reply, `drip_pieces` pieces `drip_interval` seconds apart: every read is quick,
        the reply is slow."""
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": str(len(body))})
        await response.prepare(request)
        pieces = self.script["drip_pieces"]
        size = -(-len(body) // pieces)
        for start in range(0, len(body), size):
            await response.write(body[start:start + size])
            await asyncio.sleep(self.script["drip_interval"])
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, entry: dict, text: str, finish_reason: str, *,
                      stall: bool) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        chunk_id = f"chatcmpl-{len(self.log)}"
        model = entry["params"]["model"]
        entry["pieces_sent"] = 0

        async def send(delta: dict, finish: str | None = None) -> None:
            chunk = {"id": chunk_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            entry["pieces_sent"] += 1

        def client_left() -> bool:
            gone = request.transport is None or request.transport.is_closing()
            if gone:
                entry.setdefault("client_left_after", entry["pieces_sent"])
            return gone

        for index, word in enumerate(re.findall(r"\S+\s*", text) or [text]):
            if stall and index == 1:
                deadline = time.monotonic() + self.script["slow_seconds"]
                while time.monotonic() < deadline and not client_left():
                    await asyncio.sleep(0.02)
            elif index and self.script["stream_interval"]:
                await asyncio.sleep(self.script["stream_interval"])
            if client_left():
                return response
            await send({"role": "assistant", "content": word} if index == 0 else {"content": word})
        await send({}, finish_reason)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def _reply(self, stage: str, body: dict):
        prompt = body["messages"][-1]["content"]
        if stage == "topics":
            pool = self.script["topics_pool"]
            count = self.script["topics_per_reply"]
            chosen = [pool[(self.topic_cursor + i) % len(pool)] for i in range(count)]
            self.topic_cursor += count
            return {"topics": chosen}
        if stage == "dialogues":
            topic = re.search(r"「(.+?)」", prompt).group(1)
            turns = int(re.search(r"共 (\d+) 轮", prompt).group(1))
            self.question_counter += 1
            if self.question_counter <= self.script["repeat_questions"]:
                first = "你有宠物吗？"
            else:
                first = f"关于{topic}的第{self.question_counter}个问题？"
            return {"dialogue": [{"user": first if t == 0 else f"{first}追问{t}", "assistant": f"{topic}的回答{t}。"} for t in range(turns)]}
        if stage == "stylize":
            dialogue = json.loads(prompt)["dialogue"]
            return {"dialogue": [{"user": t["user"], "assistant": self.script["style_prefix"] + t["assistant"]} for t in dialogue]}
        if stage == "judge":
            return _verdict(prompt, self.script)
        if body.get("model") in self.script["replies"]:
            return self.script["replies"][body["model"]].replace("{question}", prompt)
        return self.script["reply"]


def _verdict(prompt: str, script: dict) -> dict:
    answer_a = prompt.split("Answer A:\n", 1)[1].split("\n\nAnswer B:\n", 1)[0]
    answer_b = prompt.split("\n\nAnswer B:\n", 1)[1]
    if script["judge"] == "first":
        choice = "A"
    else:
        marked_a, marked_b = script["judge_marker"] in answer_a, script["judge_marker"] in answer_b
        choice = "A" if marked_a and not marked_b else "B" if marked_b and not marked_a else "tie"
    return {"style": choice, "content": choice, "fluency": choice, "overall": choice, "reason": "scripted"}


def _request_key(stage: str, body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    if stage == "stylize":
        return json.loads(prompt)["dialogue"][0]["user"]
    if stage == "dialogues":
        match = re.search(r"「(.+?)」", prompt)
        return match.group(1) if match else ""
    return stage


def _mangle(kind: str | None, payload, text: str, script: dict) -> tuple[str, str]:
    if kind == "prose":
        return f"好的！下面是改写后的结果：\n```json\n{text}\n```\n希望你喜欢。", "stop"
    if kind == "python":
        return repr(payload), "stop"
    if kind == "fullwidth":
        turns = payload["dialogue"]
        inner = "，".join(f"｛“user”：“{t['user']}”，“assistant”：“{t['assistant']}”，｝" for t in turns)
        return f"｛“dialogue”：［{inner}］｝", "stop"
    if kind == "truncate":
        return text[: len(text) // 2], "length"
    if kind in ("unchanged", "question", "empty"):
        for turn in payload["dialogue"]:
            if kind == "unchanged":
                turn["assistant"] = turn["assistant"].removeprefix(script["style_prefix"])
            elif kind == "question":
                turn["user"] = turn["user"] + "（改）"
            else:
                turn["assistant"] = ""
        return json.dumps(payload, ensure_ascii=False), "stop"
    if kind == "garbage":
        return "抱歉，我不能完成这个请求。", "stop"
    return text, "stop"


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": "fake", "code": status}}, status=status, headers=headers)


def make_app(fake: FakeOpenAI | None = None) -> web.Application:
    fake = fake or FakeOpenAI()
    app = web.Application()
    app.router.add_get("/v1/models", fake.models)
    app.router.add_post("/v1/chat/completions", fake.chat)
    app.router.add_post("/_control/script", fake.set_script)
    app.router.add_get("/_control/log", fake.get_log)
    app.router.add_get("/_control/authorizations", fake.get_authorizations)
    app.router.add_post("/_control/clear", fake.clear_log)
    return app


class FakeServer:
    """The parent side: starts the server in its own process and scripts it over HTTP."""

    def __init__(self, latency: float = 0.0):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--latency", str(latency)], stdout=subprocess.PIPE, text=True
        )
        line = self.process.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fake server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"

    def _call(self, method: str, path: str, payload=None):
        data = json.dumps(payload).encode() if payload is not None else (b"" if method == "POST" else None)
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def script(self, **settings) -> None:
        """Replace the script (unset keys take their defaults) and clear the log."""
        self._call("POST", "/_control/script", settings)

    def log(self) -> list[dict]:
        return self._call("GET", "/_control/log")

    def authorizations(self) -> list[str | None]:
        """The Authorization header of every API request since the last script (None: none sent)."""
        return self._call("GET", "/_control/authorizations")

    def clear_log(self) -> None:
        self._call("POST", "/_control/clear")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process.stdout.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    port = args.port or free_port()
    fake = FakeOpenAI()
    fake.script["latency"] = args.latency
    app = make_app(fake)

    async def serve() -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=4096).start()
        print(f"PORT {port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
