"""Remote text models: ``generate_remote`` streams a completion from an OpenAI-compatible server and produces the
same TokenEvents and GenerationResult as the local engine, so every mode works with either.

Raw text (source + prompt) goes to ``/v1/completions`` with ``logprobs: k``; a request with chat ``messages`` goes
to ``/v1/chat/completions`` with ``logprobs: true, top_logprobs: k``. A server that sends no logprobs (or a chunk
whose tokens do not spell its text) gives TokenEvents with ``logprob=None``: "not provided by this server", never
a made-up number. Stop sequences are sent to the server and also applied here (some servers ignore them), with the
same hold-back as the local loop. Token ids are unknown over the wire: they are -1.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from playground.domain.jobs import Cancel
from playground.domain.models import remote_id, split_remote_id
from playground.domain.score import ScoredToken, ScoreItem, ScoreResult
from playground.domain.stream import StopAssembler
from playground.domain.text import (
    Alternative,
    Completion,
    Constraint,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Timings,
    TokenEvent,
)
from playground.errors import KnownError, RemoteBadRequest, RemoteNotFound, RemoteProtocolError
from playground.models.endpoints import Endpoint, EndpointStore
from playground.remote.client import RemoteClient, ServerModel

EventFn = Callable[[TokenEvent], None]
PER_TOKEN_DEADLINE_S = 2.0  # a request's overall deadline: twice the read timeout + this per token asked for
MAX_TOP_LOGPROBS = 20  # vLLM's and SGLang's default ceiling; OpenAI's is 5 (servers clip or refuse above theirs)
NOT_PROVIDED = "not provided by this server"
UNKNOWN_ID = -1


@dataclass
class RemoteTextModel:
    """A model served by an endpoint: what the runner, the pool and the workers hold in place of a TextModel."""

    id: str  # the id it was loaded under: remote:<endpoint>/<model> (or remote:<endpoint> for its default)
    endpoint: Endpoint
    model_name: str  # the name the server knows it by
    client: RemoteClient
    load_s: float = 0.0
    server_models: tuple[ServerModel, ...] = ()
    remote = True  # what dispatch checks (cheaper than importing this module)
    dtype = "remote"
    context_length = 0  # unknown: the server checks

    @property
    def device(self) -> str:
        return f"remote ({self.endpoint.name})"

    def unload(self) -> None:
        """Nothing is held: each request has its own connection."""


def client_for(endpoint: Endpoint, store: EndpointStore | None = None) -> RemoteClient:
    """A client for ``endpoint`` with its stored key."""
    key = (store or EndpointStore()).api_key(endpoint.name) if endpoint.has_key else None
    return RemoteClient(endpoint.base_url, key, name=endpoint.name, read_timeout=endpoint.timeout_s)


def load_remote_model(model_id: str, store: EndpointStore | None = None, check: bool = True) -> RemoteTextModel:
    """A RemoteTextModel for ``remote:<endpoint>/<model>``. With ``check``, asks the server's ``/v1/models`` once,
    so a wrong URL, key or model name shows up now, not at the first run."""
    store = store or EndpointStore()
    name, model = split_remote_id(model_id)
    endpoint = store.get(name)
    client = client_for(endpoint, store)
    started = time.perf_counter()
    listed: list[ServerModel] = client.list_models() if check else []
    model = model or endpoint.model or (listed[0].id if listed else "")
    if not model:
        raise KnownError(f"{name}: the server lists no model; set the endpoint's model (remote:{name}/MODEL)")
    ids = [m.id for m in listed]
    if listed and model not in ids:
        shown = ", ".join(ids[:8]) + (" …" if len(ids) > 8 else "")
        raise RemoteNotFound(f"{name}: no such model {model!r}; the server offers {shown}")
    return RemoteTextModel(model_id, endpoint, model, client, time.perf_counter() - started, tuple(listed))


def list_remote_models(store: EndpointStore | None = None) -> dict[str, list[str] | str]:
    """For each endpoint, its models as remote ids, or the error message saying why they could not be listed.
    Network: call it off the UI thread."""
    store = store or EndpointStore()
    out: dict[str, list[str] | str] = {}
    for endpoint in store.list():
        try:
            out[endpoint.name] = [remote_id(endpoint.name, m.id) for m in client_for(endpoint, store).list_models()]
        except KnownError as exc:
            out[endpoint.name] = str(exc)
    return out


# -- generation ----------------------------------------------------------------------------------------------------
def generate_remote(rm: RemoteTextModel, req: GenerationRequest, on_event: EventFn = lambda e: None,
                    cancel: Cancel | None = None) -> GenerationResult:
    """Complete ``req`` ``req.n`` times on the server (one streamed request each, seeds seed, seed+1 …), streaming
    a TokenEvent per token. Cancelled: the connection is closed at once and the partial text kept (CANCELLED).
    A stream cut off before its end raises RemoteProtocolError carrying the partial result in ``partial``."""
    req.validate()
    cancel = cancel or Cancel()
    seed = req.seed if req.seed is not None else random.randrange(2**31)
    chat = bool(req.messages) and req.prompt_ids is None
    if not chat and not req.text and req.prompt_ids is None:
        raise KnownError("Nothing to complete: type a source text or a prompt")
    completions: list[Completion] = []
    usage: dict[str, int] = {}

    def result() -> GenerationResult:
        return GenerationResult(model=rm.id, completions=tuple(completions), seed=seed,
                                prompt_tokens=usage.get("prompt_tokens", 0), device=rm.device, chat=chat)

    for i in range(req.n):
        run = _Stream(rm, req, i, on_event)
        deadline = 2 * rm.client.read_timeout + PER_TOKEN_DEADLINE_S * req.max_new_tokens
        try:
            run.consume(rm.client.stream(*_request(rm, req, seed + i, chat), cancel, deadline), usage)
        except RemoteProtocolError as exc:
            completions.append(run.completion(FinishReason.CANCELLED))
            exc.partial = result()
            raise
        completions.append(run.completion(FinishReason.CANCELLED if cancel.is_set() and run.finish is None
                                          else None))
        if cancel.is_set():
            break
    return result()


def _request(rm: RemoteTextModel, req: GenerationRequest, seed: int, chat: bool) -> tuple[str, dict[str, Any]]:
    """(path, body) for one completion."""
    k = min(max(req.top_logprobs, 1), MAX_TOP_LOGPROBS)  # at least 1: the chosen token's own logprob
    body: dict[str, Any] = {"model": rm.model_name, "max_tokens": req.max_new_tokens,
                            "temperature": req.temperature, "top_p": req.top_p, "seed": seed}
    if req.stop:
        body["stop"] = list(req.stop)
    # Not in OpenAI's API but understood by vLLM, SGLang and llama.cpp (which calls the penalty repeat_penalty);
    # sent only when set, so a strict server is not sent fields it does not know. Unset, the server's defaults
    # apply (llama.cpp's are top_k 40 and repeat_penalty 1.1).
    if req.top_k > 0:
        body["top_k"] = req.top_k
    if req.presence_penalty:
        body["presence_penalty"] = req.presence_penalty
    if req.frequency_penalty:
        body["frequency_penalty"] = req.frequency_penalty
    if req.logit_bias:  # token ids are the server's: meaningful when it serves the same tokenizer
        body["logit_bias"] = {str(t): b for t, b in req.logit_bias}
    if req.constraint is not None:
        body.update(constraint_fields(req.constraint))
    if req.repetition_penalty != 1.0:
        body["repetition_penalty"] = body["repeat_penalty"] = req.repetition_penalty
    if chat:
        body.update(messages=[dict(m) for m in req.messages or ()], logprobs=True, top_logprobs=k)
        return "/chat/completions", body
    body.update(prompt=list(req.prompt_ids) if req.prompt_ids is not None else req.text, logprobs=k)
    return "/completions", body


def constraint_fields(constraint: Constraint) -> dict[str, Any]:
    """The request fields that ask a server for constrained output. JSON (schema or any object) goes as OpenAI's
    ``response_format``, which vLLM, SGLang, llama.cpp's server, Ollama and ``playground serve`` honour; regex,
    choice and grammar go as vLLM's ``structured_outputs`` (vLLM >= 0.10 and ``playground serve``; other servers
    ignore it and answer unconstrained)."""
    if constraint.kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if constraint.kind == "json_schema":
        schema = json.loads(constraint.spec)
        return {"response_format": {"type": "json_schema",
                                    "json_schema": {"name": "output", "schema": schema, "strict": True}}}
    key = {"regex": "regex", "choice": "choice", "lark": "grammar"}[constraint.kind]
    value: Any = json.loads(constraint.spec) if constraint.kind == "choice" else constraint.spec
    return {"structured_outputs": {key: value}}


def score_remote(rm: RemoteTextModel, items: list[ScoreItem], top_logprobs: int = 0) -> list[ScoreResult]:
    """Token log-probabilities of texts from the server, by ``echo`` + ``logprobs`` with ``max_tokens: 0`` on
    ``/v1/completions`` (vLLM and ``playground serve`` answer it; llama.cpp's server and Ollama do not: the error
    says so)."""
    out = []
    for item in items:
        prompt: Any = list(item.ids) if item.ids is not None else item.text + item.continuation
        body = {"model": rm.model_name, "prompt": prompt, "echo": True, "max_tokens": 0,
                "logprobs": max(top_logprobs, 1)}
        try:
            data = rm.client.post_json("/completions", body)
        except RemoteBadRequest as exc:
            raise RemoteBadRequest(f"{exc} — scoring needs a server that answers echo with logprobs "
                                   "(vLLM, playground serve)") from exc
        choice = (data.get("choices") or [{}])[0] if isinstance(data, dict) else {}
        lp = choice.get("logprobs") if isinstance(choice, dict) else None
        if not isinstance(lp, dict) or not isinstance(lp.get("tokens"), list):
            raise RemoteProtocolError(f"{rm.endpoint.name}: the server answered echo without prompt logprobs; "
                                      "scoring needs vLLM or playground serve")
        tokens, at, start = [], 0, None
        for text, value, top in zip(lp["tokens"], lp.get("token_logprobs") or [], lp.get("top_logprobs") or [],
                                    strict=False):
            if start is None and item.continuation and at >= len(item.text):
                start = len(tokens)
            alts = _top_from_dict(top, top_logprobs) if top_logprobs else ()
            best = max((a.logprob for a in _top_from_dict(top, 1)), default=None)
            lp_value = _number(value)
            greedy = lp_value is not None and best is not None and lp_value >= best - 1e-6
            tokens.append(ScoredToken(str(text), UNKNOWN_ID, lp_value, alts, greedy, str(text).encode()))
            at += len(str(text))
        out.append(ScoreResult(rm.id, tuple(tokens), len(tokens) if start is None else start, len(tokens)))
    return out


class _Stream:
    """One completion being received: pieces -> stop handling -> TokenEvents, with timings."""

    def __init__(self, rm: RemoteTextModel, req: GenerationRequest, index: int, on_event: EventFn) -> None:
        self.rm, self.req, self.index, self.on_event = rm, req, index, on_event
        self.assembler = StopAssembler(req.stop)
        self.events: list[TokenEvent] = []
        self.finish: FinishReason | None = None
        self.pieces = 0
        self.started = time.perf_counter()
        self.first_at = self.last_at = 0.0

    def consume(self, events: Iterable[dict[str, Any]], usage: dict[str, int]) -> None:
        with contextlib.closing(iter(events)) as stream:  # closing it early closes the connection
            for event in stream:
                if isinstance(event.get("usage"), dict):
                    usage.update({k: v for k, v in event["usage"].items() if isinstance(v, int)})
                for choice in event.get("choices") or ():
                    if not isinstance(choice, dict):
                        raise RemoteProtocolError(f"{self.rm.endpoint.name}: malformed choice in the stream")
                    for text, logprob, top in _pieces(choice, self.req.top_logprobs):
                        if self.pieces >= self.req.max_new_tokens:
                            # A server that goes on past max_tokens (or never ends): stop listening.
                            self.finish = FinishReason.LENGTH
                            return
                        self._push(text, logprob, top)
                    reason = choice.get("finish_reason")
                    if reason and self.finish is None:
                        self.finish = FinishReason.LENGTH if reason == "length" else FinishReason.STOP
                if self.assembler.stopped:
                    self.finish = FinishReason.STOP  # a stop sequence the server did not apply: hang up
                    return

    def _push(self, text: str, logprob: float | None, top: tuple[Alternative, ...]) -> None:
        self.last_at = time.perf_counter()
        if not self.pieces:
            self.first_at = self.last_at
        self.pieces += 1
        self._emit(self.assembler.push(text, UNKNOWN_ID, logprob, top))  # type: ignore[arg-type]

    def _emit(self, batch: list) -> None:
        for tok, text in batch:
            event = TokenEvent(self.index, len(self.events), text, tok.token_id, tok.logprob, tok.top)
            self.events.append(event)
            self.on_event(event)

    def completion(self, override: FinishReason | None) -> Completion:
        if not self.assembler.stopped:
            self._emit(self.assembler.flush())
        finish = override or self.finish
        if finish is None:  # [DONE] without a finish_reason
            finish = FinishReason.LENGTH if self.pieces >= self.req.max_new_tokens else FinishReason.STOP
        decode = self.pieces - 1
        span = self.last_at - self.first_at
        timings = Timings(load_s=self.rm.load_s, ttft_s=(self.first_at - self.started) if self.first_at else 0.0,
                          tokens_per_s=decode / span if decode > 0 and span > 0 else 0.0)
        return Completion(self.assembler.text, finish, tuple(self.events), timings)


def _pieces(choice: dict[str, Any], k: int) -> list[tuple[str, float | None, tuple[Alternative, ...]]]:
    """(text, logprob, top) per token of one streamed choice (completions or chat, delta or whole message)."""
    # Every field is checked for its type: a server may send anything (a number for a list, a list for a string).
    if "text" in choice:
        text = _text(choice.get("text"))
        lp = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else {}
        tokens = [_text(t) for t in _items(lp.get("tokens"))]
        values = _items(lp.get("token_logprobs"))
        tops = [_top_from_dict(t, k) for t in _items(lp.get("top_logprobs"))]
    else:
        message = choice.get("delta") or choice.get("message") or {}
        text = _text(message.get("content")) if isinstance(message, dict) else ""
        content = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
        content = [c for c in _items(content) if isinstance(c, dict)]
        tokens = [_text(c.get("token")) for c in content]
        values = [c.get("logprob") for c in content]
        tops = [_top_from_list(_items(c.get("top_logprobs")), k) for c in content]
    values = [_number(v) for v in values]
    tops += [()] * (len(tokens) - len(tops))
    if tokens and len(values) == len(tokens) and "".join(tokens) == text:
        # Tokens with no text of their own (the first bytes of a character) count too, as they do locally.
        return [(t, v, top) for t, v, top in zip(tokens, values, tops, strict=False)]
    if not text:
        return []
    if tokens and values and all(v is not None for v in values):
        # Tokens that do not spell the text (byte tokens, a server's own detokenising): one piece whose
        # probability is the product of its tokens'.
        return [(text, sum(v for v in values if v is not None), tops[0] if len(tokens) == 1 else ())]
    return [(text, None, ())]


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None  # NaN or an infinity: no probability (and no invalid JSON later)


def _top_from_dict(top: Any, k: int) -> tuple[Alternative, ...]:
    if not isinstance(top, dict):
        return ()
    alts = [(str(t), v) for t, lp in top.items() if (v := _number(lp)) is not None]
    alts.sort(key=lambda a: -a[1])
    return tuple(Alternative(t, UNKNOWN_ID, v) for t, v in alts[:k])


def _top_from_list(top: list[Any], k: int) -> tuple[Alternative, ...]:
    alts = [(str(a.get("token", "")), v) for a in top if isinstance(a, dict)
            and (v := _number(a.get("logprob"))) is not None]
    alts.sort(key=lambda a: -a[1])
    return tuple(Alternative(t, UNKNOWN_ID, v) for t, v in alts[:k])
