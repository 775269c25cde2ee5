"""What constrained output costs per token on the embedded model: the same generation free and under a JSON schema,
and the mask alone (llguidance computing the allowed tokens + consuming the chosen one, replayed over the tokens
the constrained run produced), so the figure does not depend on what the model chose to write.

    .venv/bin/python bench/grammar_overhead.py

Writes bench/results/grammar_overhead.json.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _results import write_result  # noqa: E402

from playground import paths  # noqa: E402
from playground.domain.text import Constraint, GenerationRequest  # noqa: E402
from playground.engine.constrain import TokenMask  # noqa: E402
from playground.engine.generate import generate  # noqa: E402
from playground.engine.text import load_text_model  # noqa: E402
from playground.models import embedded  # noqa: E402

SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 80}, "year": {"type": "integer", "minimum": 1800, "maximum": 2100},
    "genres": {"type": "array", "items": {"enum": ["drama", "comedy", "action", "horror", "romance"]}, "maxItems": 3},
    "summary": {"type": "string", "maxLength": 300}},
    "required": ["title", "year", "genres", "summary"], "additionalProperties": False}
MESSAGES = ({"role": "user", "content": "Describe the film Casablanca as JSON with a long summary."},)
ROUNDS = 5


def per_token_ms(tm, constraint: Constraint | None) -> tuple[float, list[int]]:
    req = GenerationRequest(prompt="", messages=MESSAGES, max_new_tokens=160, temperature=0, constraint=constraint)
    result = generate(tm, req).first
    t = result.timings
    return 1000.0 / t.tokens_per_s, [e.token_id for e in result.tokens]


def mask_ms(tm, constraint: Constraint, tokens: list[int]) -> float:
    vocab = tm.vocab_size
    mask = TokenMask(constraint, tm.tokenizer, tm.eos_ids, vocab)
    started = time.perf_counter()
    for token in tokens:
        mask.allowed()
        mask.advance(token)
    return (time.perf_counter() - started) * 1000 / len(tokens)


def main() -> None:
    paths.set_data_dir(None)
    tm = load_text_model(embedded.EMBEDDED_ID, embedded.ensure_embedded(), device="cpu")
    constraint = Constraint("json_schema", json.dumps(SCHEMA))
    per_token_ms(tm, constraint)  # warm-up: builds llguidance's view of the tokenizer once (cached after)
    free, constrained, masks = [], [], []
    tokens: list[int] = []
    for _ in range(ROUNDS):  # alternating rounds: machine noise hits both sides
        free.append(per_token_ms(tm, None)[0])
        ms, tokens = per_token_ms(tm, constraint)
        constrained.append(ms)
        masks.append(mask_ms(tm, constraint, tokens))
    import llguidance

    result = {
        "model": embedded.EMBEDDED_ID, "precision": tm.precision, "llguidance": llguidance.__version__,
        "vocab": int(tm.model.config.vocab_size), "constrained_tokens": len(tokens),
        "free_ms_per_token": round(statistics.median(free), 2),
        "json_schema_ms_per_token": round(statistics.median(constrained), 2),
        "mask_alone_ms_per_token": round(statistics.median(masks), 3),
    }
    result["ratio_constrained_vs_free"] = round(result["json_schema_ms_per_token"] / result["free_ms_per_token"], 3)
    print(f"free {result['free_ms_per_token']} ms/token, JSON schema {result['json_schema_ms_per_token']} ms/token "
          f"({result['ratio_constrained_vs_free']}x); the mask alone {result['mask_alone_ms_per_token']} ms/token "
          f"({tm.precision}, vocabulary {result['vocab']})")
    print(f"wrote {write_result('grammar_overhead', result).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
