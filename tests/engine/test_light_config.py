"""A Llama-family model loads on the fused path without transformers' model-loading stack (torch.distributed's
tensor module, sympy, accelerate: ~50 MB and ~0.7 s of the embedded model's load), and transformers' own forward
still works in the same process afterwards. Fresh interpreters: the suite's own process has imported everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gguf_files import tiny_model, write_gguf

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("transformers.activations", "torch.distributed.tensor", "sympy", "accelerate")

_LOAD = """
import json, sys
from pathlib import Path
import torch
source = Path(sys.argv[1])
if source.suffix == ".gguf":
    from playground.engine.gguf_text import load_gguf_text_model as load
else:
    from playground.engine.text import load_text_model as load
fused = load("m", source, device="cpu", precision="int4")
HEAVY = json.loads(sys.argv[2])
heavy = [m for m in HEAVY if m in sys.modules]
ids = [5, 7, 9]
with torch.inference_mode():
    fast_logits = fused.fast.prefill(0, ids, reuse=False)
# transformers' forward in the same process: the chain is imported now, as its modeling code needs it
from transformers import LlamaConfig
bad = None
try:
    LlamaConfig(initializer_range=5.0)
except Exception as exc:
    bad = type(exc).__name__
ref = load("m", source, device="cpu", precision="fp32",
           **({} if source.suffix == ".gguf" else {"path": "transformers"}))
with torch.inference_mode():
    ref_logits = ref.hf_model(torch.tensor([ids])).logits[0, -1]
print(json.dumps({"path": fused.describe(), "heavy": heavy, "ref_heavy": [m for m in HEAVY if m in sys.modules],
                  "top": [int(fast_logits.argmax()), int(ref_logits.argmax())], "bad_range": bad}))
"""


def _run(source: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _LOAD, str(source), json.dumps(HEAVY)], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_llama_folder_loads_fused_without_the_model_loading_stack(tiny_model_dir: Path):
    got = _run(tiny_model_dir)
    assert "fused" in got["path"]
    assert got["heavy"] == []
    assert "transformers.activations" in got["ref_heavy"]  # transformers' forward loaded its own way
    assert got["top"][0] == got["top"][1]  # same next token from both paths, in the one process
    assert got["bad_range"] is not None  # the config's own field validators still run


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_a_gguf_loads_fused_without_the_model_loading_stack(family: str, tmp_path: Path):
    path = write_gguf(tiny_model(family), tmp_path / f"{family}.gguf", quant="Q4_0")
    got = _run(path)
    assert "fused" in got["path"]
    assert got["heavy"] == []
    assert got["top"][0] == got["top"][1]
