"""One writer for every bench's result file: bench/results/NAME.json, committed, so each figure the README quotes
can be traced to the run that measured it (machine, package versions, the exact command, the commit).

    from bench._results import write_result
    write_result("inspect_speed", {"median_s": ...})
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
PACKAGES = ("playground", "torch", "transformers", "diffusers", "PySide6", "llguidance", "peft", "httpx",
            "llama_cpp_python")


def machine() -> dict[str, Any]:
    """What the figures depend on: CPU, core count, torch's thread count, OS, Python."""
    info: dict[str, Any] = {"cpu": _cpu_name(), "arch": platform.machine(), "cpus": os.cpu_count(),
                            "system": platform.platform(), "python": platform.python_version()}
    if "torch" in sys.modules:  # never imported just for this: some benches time torch's import
        torch = sys.modules["torch"]
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info


def versions() -> dict[str, str]:
    """Installed versions of the packages a result can depend on (those not installed are left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def command() -> str:
    """The command line that produced the result, as one would type it from the repository root."""
    argv = list(sys.argv)
    if argv and Path(argv[0]).name == "__main__.py":  # python -m MODULE (pytest runs the UI bench)
        argv[0:1] = ["-m", Path(argv[0]).parent.name]
    elif argv and Path(argv[0]).is_absolute():
        argv[0] = os.path.relpath(argv[0], ROOT)
    return " ".join([".venv/bin/python", *argv])


def commit() -> str:
    """The checkout's commit (with ``-dirty`` when files differ from it), or "" outside git."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=ROOT,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def write_result(name: str, data: dict[str, Any], folder: Path | None = None) -> Path:
    """Write ``data`` with its provenance to ``folder``/NAME.json (bench/results/ by default); return the path."""
    target = (folder or RESULTS_DIR) / f"{name}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    record = {"bench": name, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command(),
              "commit": commit(), "machine": machine(), "versions": versions(), **data}
    target.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return target


def isa_suffix() -> str:
    """"" where the kernels run their AVX-512 path (the machine the README's main table was measured on), else
    "_" and the path they do run ("_avx2"): result files of another vector ISA sit beside, never over, those."""
    from playground.engine.fast import kernels

    kernels.available()
    isa = (kernels.build_info().get("isa") or "none").split()
    return "" if "avx512" in isa else f"_{isa[0]}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def kernel_bench_args(doc: str, rounds: int = 5) -> argparse.Namespace:
    """``--rounds`` / ``--threads`` for a bench of the compiled kernels alone; sets torch's threads and stops with
    the reason when the library is not built."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=rounds)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    from playground.engine.fast import int4_kernel

    torch.set_num_threads(args.threads)
    if not int4_kernel.available():
        raise SystemExit(f"the kernel library is not built: {int4_kernel.unavailable_reason()}")
    return args


def rate_rows(title: str, best: dict[str, float], amount: float, unit: str, baseline: str) -> dict[str, Any]:
    """Each mode's rate (``amount`` per its best seconds, in 1e9 ``unit``: "GB/s", "GFLOP/s") and speed against
    ``baseline``'s, printed under ``title``; returned keyed by mode ("gb_per_s" / "gflop_per_s", "ms",
    "x_baseline")."""
    key = unit.lower().replace("/", "_per_")
    rows = {name: {key: round(amount / s / 1e9, 2), "ms": round(s * 1e3, 3), "x_baseline": round(best[baseline] / s, 2)}
            for name, s in best.items()}
    print(title)
    width = max(map(len, rows))
    for name, r in rows.items():
        print(f"  {name:{width}s} {r[key]:7.1f} {unit}  {r['ms']:8.2f} ms  {r['x_baseline']:.2f}x baseline")
    return rows
