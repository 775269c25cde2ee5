"""Every figure the README quotes can be traced: each bench writes its result through one writer (machine, versions,
command, commit), and each results file the README names is committed and carries that provenance (issue 15,
item 6)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench._results import write_result

ROOT = Path(__file__).resolve().parents[2]
NAMED = re.compile(r"bench/results/[a-z][a-z0-9_]*\.json")


def test_the_writer_records_machine_versions_command_and_commit(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / "demo.py"), "--rounds", "3"])
    path = write_result("demo", {"median_s": 1.5}, tmp_path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert path == tmp_path / "demo.json" and data["bench"] == "demo" and data["median_s"] == 1.5
    assert data["command"] == ".venv/bin/python bench/demo.py --rounds 3"  # as typed from the repository root
    assert data["machine"]["cpus"] >= 1 and data["machine"]["python"].count(".") == 2
    assert {"torch", "transformers", "playground"} <= set(data["versions"])
    assert re.fullmatch(r"[0-9a-f]{12}(-dirty)?", data["commit"]), data["commit"]


def test_every_results_file_the_readme_names_is_committed_with_its_provenance():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    named = sorted(set(NAMED.findall(readme)))
    assert len(named) >= 4, named
    tracked = set(subprocess.run(["git", "ls-files", "bench/results"], cwd=ROOT, capture_output=True, text=True,
                                 check=True).stdout.split())
    for name in named:
        assert name in tracked, f"{name} is quoted in the README but not committed"
        data = json.loads((ROOT / name).read_text(encoding="utf-8"))
        assert data.get("command") and data.get("machine"), f"{name} does not say how and where it was measured"


def test_results_are_not_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/results/x.json"], cwd=ROOT)
    assert ignored.returncode == 1  # 1: not ignored


def test_the_readme_layout_names_every_package_and_module():
    """README's Layout section stays current (issue 15, item 10: it still said "packaging/ … to come")."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    names = [p.name + "/" for p in [*(ROOT / "playground").iterdir(), *(ROOT / "ui").iterdir(),
                                    *(ROOT / "playground" / "engine").iterdir()]
             if p.is_dir() and (p / "__init__.py").exists()]
    names += [p.name for p in (ROOT / "playground").glob("*.py") if p.name != "__init__.py"]
    names += [p.name + "/" for p in ROOT.iterdir() if p.name in ("assets", "packaging", "bench", "scripts")]
    missing = [n for n in names if n.rstrip("/") not in layout]
    assert not missing and "to come" not in layout, missing
    areas = [p.name for p in (ROOT / "tests").iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert not [a for a in areas if a not in layout], areas


def test_a_bench_run_through_pytest_records_the_command_as_typed(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["/x/.venv/lib/python3.11/site-packages/pytest/__main__.py", "bench/ui.py", "-s"])
    data = json.loads(write_result("ui", {}, tmp_path).read_text(encoding="utf-8"))
    assert data["command"] == ".venv/bin/python -m pytest bench/ui.py -s"
