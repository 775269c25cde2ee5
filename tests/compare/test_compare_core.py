"""Compare mode without Qt: column specs, sweeps, divergence, confidence, memory-budgeted model swapping."""

from __future__ import annotations

import pytest

from playground.domain.jobs import Cancel
from playground.domain.text import FinishReason
from playground.errors import ParameterError
from playground.runtime.model_pool import ModelPool, model_bytes
from playground.tasks.compare import (
    column_label,
    column_stats,
    diff_words,
    format_column,
    most_confident,
    parse_column,
    parse_values,
    resolve,
    sweep,
)
from playground.tasks.compare_run import run_columns


def test_column_spec_parses_types_and_round_trips():
    col = parse_column("model=org/m, temperature=0.7,seed=3,max_tokens=12,stop=\\n\\n|END")
    assert col == {"model": "org/m", "temperature": 0.7, "seed": 3, "max_new_tokens": 12, "stop": ("\n\n", "END")}
    assert parse_column(format_column(col)) == col
    assert parse_column("model=org/m  temperature=0.7 seed=3") == {"model": "org/m", "temperature": 0.7, "seed": 3}
    assert parse_column("model=/my models/a b.gguf,seed=1") == {"model": "/my models/a b.gguf", "seed": 1}
    with pytest.raises(ParameterError, match="unknown column key 'temprature'"):
        parse_column("temprature=1")
    with pytest.raises(ParameterError, match="temperature='hot'"):
        parse_column("temperature=hot")


def test_column_keys_override_defaults():
    defaults = {"model": "a", "temperature": 0.7, "max_new_tokens": 20, "seed": None}
    model, req = resolve({"temperature": 0.0, "seed": 4}, defaults, "src ", "prompt")
    assert (model, req.temperature, req.max_new_tokens, req.seed, req.text) == ("a", 0.0, 20, 4, "src prompt")
    with pytest.raises(ParameterError, match="top-p"):
        resolve({"top_p": 0}, defaults, "", "p")
    assert column_label({"model": "org/small", "temperature": 0.0}, defaults) == "small · temperature=0.0"


def test_sweep_makes_one_column_per_value():
    cols = sweep({"model": "m", "seed": 1}, "temperature", parse_values("temperature", "0, 0.5, 1"))
    assert [c["temperature"] for c in cols] == [0.0, 0.5, 1.0]
    assert all(c["model"] == "m" and c["seed"] == 1 for c in cols)
    assert [c["model"] for c in sweep({}, "model", parse_values("model", "a, b"))] == ["a", "b"]
    with pytest.raises(ParameterError, match="cannot sweep"):
        parse_values("stop", "x")
    with pytest.raises(ParameterError, match="at most 6"):
        sweep({}, "seed", list(range(7)))


def test_word_diff_marks_where_outputs_diverge():
    same = diff_words("The cat sat on the mat", "The cat sat on the mat")
    assert same.spans == () and same.first_divergence is None and same.similarity == 1.0
    text = "The dog sat on a mat today"
    d = diff_words("The cat sat on the mat", text)
    assert [text[a:b] for a, b in d.spans] == ["dog", "a", "today"]
    assert d.first_divergence == text.index("dog")
    assert 0 < d.similarity < 1
    gone = diff_words("one two three", "one three")
    assert gone.spans == () and gone.removed == 1 and gone.first_divergence == len("one ")


def test_stats_and_most_confident_column():
    sure = {"tokens": [{"logprob": -0.1}, {"logprob": -0.3}], "timings": {"tokens_per_s": 10, "ttft_s": 0.2}}
    unsure = {"tokens": [{"logprob": -2.0}], "timings": {}}
    assert column_stats(sure)["mean_logprob"] == pytest.approx(-0.2)
    assert column_stats(sure)["tokens_per_s"] == 10
    assert most_confident([unsure, None, sure]) == 2
    assert most_confident([None, {"error": "x"}]) is None


def test_pool_swaps_models_within_a_tiny_budget(tiny_model_dir, tiny_model_dir_b, path_loader, tiny_model):
    a, b = str(tiny_model_dir), str(tiny_model_dir_b)
    one = model_bytes(tiny_model)
    states = []
    pool = ModelPool(path_loader, budget_bytes=int(one * 1.5), on_change=states.append)
    pool.get(a)
    pool.get(a)  # cached: no second load
    assert path_loader.calls == [a]
    pool.get(b)  # does not fit beside a: a goes
    assert [m for m, _ in pool.state().loaded] == [b] and pool.evictions == [a]
    assert pool.state().used_bytes <= pool.budget_bytes or len(pool.state().loaded) == 1
    assert "MB of" in states[-1].describe()
    pool.set_budget(10 * one)
    pool.get(a)  # a big budget holds both
    assert {m for m, _ in pool.state().loaded} == {a, b}
    pool.set_budget(1)  # smaller than any model: only the most recent stays
    assert [m for m, _ in pool.state().loaded] == [a]
    pool.unload_all()
    assert pool.state().loaded == ()


def test_columns_run_in_order_and_a_bad_column_does_not_stop_the_rest(tiny_model_dir, path_loader):
    m = str(tiny_model_dir)
    pool = ModelPool(path_loader, budget_bytes=2**30)
    started, tokens = [], {}
    cols = [{"temperature": 0.0}, {"top_p": 5.0}, {"temperature": 1.0, "seed": 2}]
    out = run_columns(pool, cols, {"model": m, "max_new_tokens": 6}, "", "hello", None,
                      lambda i, _: started.append(i), lambda i, e: tokens.setdefault(i, []).append(e.text))
    assert started == [0, 1, 2]
    assert out[1].error and "top-p" in out[1].error
    assert "".join(tokens[0]) == out[0].result.first.text and out[2].result is not None
    assert path_loader.calls == [m]  # one model, loaded once for all columns
    pool.unload_all()


def test_cancel_mid_comparison_keeps_partial_output(tiny_model_dir, path_loader):
    pool = ModelPool(path_loader, budget_bytes=2**30)
    cancel = Cancel()

    def on_token(i, event):
        if event.index == 2:
            cancel.set()

    out = run_columns(pool, [{"temperature": 0.0}, {"temperature": 1.0}], {"model": str(tiny_model_dir),
                      "max_new_tokens": 30}, "", "abc", cancel, on_token=on_token)
    first = out[0].result.first
    assert first.finish_reason == FinishReason.CANCELLED and len(first.tokens) == 3
    assert out[1].result is None and "cancelled" in out[1].error
    pool.unload_all()


def test_columns_of_one_fast_path_model_decode_together_with_the_same_results(tiny_model_dir):
    """Compare's columns of one model on the fast path (int4, fused step) decode in one batched step per token,
    each in its own cache slot, and give what each column gives alone (greedy, seeded sampling, a stop)."""
    from pathlib import Path

    from playground.engine.text import load_text_model

    loaded = []

    def loader(model_id, on_progress):
        tm = load_text_model(model_id, Path(model_id), device="cpu", dtype="float32", precision="int4")
        widths = tm.widths = []
        real_step = tm.fast.step
        tm.fast.step = lambda tokens, slots: widths.append(len(slots)) or real_step(tokens, slots)
        loaded.append(tm)
        return tm

    m = str(tiny_model_dir)
    cols = [{"temperature": 0.0}, {"temperature": 1.0, "seed": 2}, {"temperature": 0.0, "stop": "e"},
            {"top_p": 5.0}]
    defaults = {"model": m, "max_new_tokens": 12}
    pool = ModelPool(loader, budget_bytes=2**30)
    tokens: dict[int, list[str]] = {}
    together = run_columns(pool, cols, defaults, "", "hello", None,
                           on_token=lambda i, e: tokens.setdefault(i, []).append(e.text))
    assert loaded[0].path == "fused" and max(loaded[0].widths) == 3  # three valid columns per step
    assert together[3].error and "top-p" in together[3].error
    for i in range(3):
        alone = run_columns(ModelPool(loader, budget_bytes=2**30), cols, defaults, "", "hello", only={i})[0]
        assert together[i].result.first.text == alone.result.first.text
        assert "".join(tokens[i]) == together[i].result.first.text
    assert max(loaded[-1].widths) == 1  # a column alone: no batching


def test_a_fused_model_is_weighed_without_loading_its_full_precision_module(tmp_path):
    """Compare's pool weighs each model it loads. It read ``tm.model``, which on the fused path loads transformers'
    module at full precision: every GGUF in a Compare column held a 4x fp32 copy beside its int4 weights."""
    from playground.engine.fast import kernels
    from playground.engine.gguf_text import load_gguf_text_model
    from tests.gguf_files import tiny_model as tiny_hf_model
    from tests.gguf_files import write_gguf

    if not kernels.available():
        pytest.skip(kernels.unavailable_reason() or "kernel library not built")
    hf = tiny_hf_model("llama", hidden_size=256, intermediate_size=512)
    tm = load_gguf_text_model("tiny", write_gguf(hf, tmp_path / "tiny.gguf", quant="Q4_0"), device="cpu")
    assert tm.path == "fused" and tm.hf_model is None
    weighed = model_bytes(tm)
    assert tm.hf_model is None  # not loaded to be weighed
    fp32 = sum(p.numel() * 4 for p in hf.parameters())
    assert tm.fast.weights.nbytes() <= weighed < fp32 / 2
