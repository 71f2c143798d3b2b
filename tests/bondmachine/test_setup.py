"""make setup's BondMachine step: bad snapshots and old Go give one warning line; provenance reaches doctor and tests."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bondflow.bondmachine.provenance import PROVENANCE_FILE, read_provenance
from bondflow.bondmachine.toolchain import locate_neuron_library
from bondflow.errors import ToolNotFoundError

ROOT = Path(__file__).resolve().parents[2]
MODULE = "module github.com/BondMachineHQ/BondMachine\n"


def _setup(tmp_path: Path, src: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BM_SRC": str(src), "GOBIN": str(tmp_path / "bin"), "BONDFLOW_SETUP_ONLY": "bondmachine"}
    return subprocess.run(["bash", "scripts/setup.sh"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _fake_snapshot(d: Path, go: str, tools: tuple[str, ...] = ("neuralbond", "basm", "bondmachine", "bmnumbers")) -> Path:
    (d / "library" / "neurons").mkdir(parents=True)
    (d / "library" / "neurons" / "weight.nb").write_text("")
    (d / "go.mod").write_text(f"{MODULE}\ngo {go}\n")
    for t in tools:
        (d / "cmd" / t).mkdir(parents=True)
        (d / "cmd" / t / "main.go").write_text("package main\n\nfunc main() { undefinedName }\n")
    return d


@pytest.mark.parametrize("case,expect", [
    ("missing", r"no usable source snapshot: .*/missing: missing;"),
    ("incomplete", r"no usable source snapshot: .*/incomplete: incomplete \(no cmd/bmnumbers\);"),
    ("oldgo", r"needs Go >= 9\.99, `go version` is \d"),
])
def test_bad_snapshot_is_one_line_and_not_fatal(tmp_path: Path, case: str, expect: str) -> None:
    src = tmp_path / case
    if case == "incomplete":
        _fake_snapshot(src, "1.21", tools=("neuralbond", "basm", "bondmachine"))
    elif case == "oldgo":
        _fake_snapshot(src, "9.99")
    r = _setup(tmp_path, src)
    assert r.returncode == 0, r.stderr[-400:]
    warn = [l for l in r.stdout.splitlines() if "BondMachine" in l]
    assert len(warn) == 1 and re.search(expect, warn[0]), r.stdout
    assert r.stdout.rstrip().endswith("setup: ok")  # the rest of the set-up still ran


def test_failed_build_names_command_and_error(tmp_path: Path) -> None:
    src = _fake_snapshot(tmp_path / "broken", "1.21")
    r = _setup(tmp_path, src)
    warn = [l for l in r.stdout.splitlines() if "warning" in l]
    assert r.returncode == 0 and len(warn) == 1, r.stdout
    assert f"cd {src} && CGO_ENABLED=0" in warn[0] and "go install" in warn[0] and "undefined: undefinedName" in warn[0]
    assert not (tmp_path / "bin" / "neuralbond").exists()
    (ROOT / ".venv" / ".bm-build-failed").unlink(missing_ok=True)


def test_library_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, need_bm) -> None:
    monkeypatch.setenv("BONDFLOW_BM_LIBRARY", str(tmp_path))
    with pytest.raises(ToolNotFoundError, match="BONDFLOW_BM_LIBRARY must name a library/neurons directory"):
        locate_neuron_library()
    monkeypatch.delenv("BONDFLOW_BM_LIBRARY")
    monkeypatch.delenv("BM_SRC", raising=False)
    lib, how = locate_neuron_library()
    assert (lib / "softmax.nb").is_file() and (lib / "frag-softmaxq.basm").is_file()
    prov = read_provenance()
    if prov is not None:  # installed by make setup: the library is the one the tools were built from
        assert how.startswith("the tools' source") and Path(prov["library"]) == lib
        assert prov["version"] == "c9e6992" and prov["method"] in ("go install", "source snapshot", "BM_SRC")


def test_doctor_says_where_tools_came_from(need_bm) -> None:
    r = subprocess.run([str(Path(sys.executable).parent / "bondflow"), "doctor"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l for l in r.stdout.splitlines() if l.strip()}
    for t in ("neuralbond", "basm", "bondmachine", "bmnumbers"):
        assert "BondMachine c9e6992" in rows[t] or "not installed by make setup" in rows[t], rows[t]
    assert "BM neuron library" in r.stdout and "library/neurons" in r.stdout
    assert re.search(r"^da4ml +\d+\.\d+\.\d+ +\S*\.venv-da4ml/bin/python", r.stdout, re.M), r.stdout  # beside the venv
    assert re.search(r"^hgq2 +\d+\.\d+\.\d+ +\S*\.venv-hgq ", r.stdout, re.M), r.stdout


def test_require_tools_fails_without_bondmachine(tmp_path: Path) -> None:
    """Under --require-tools a machine without the BondMachine tools fails the test instead of skipping it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BONDFLOW_")}
    env.update(PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin", GOPATH=str(tmp_path), GOBIN=str(tmp_path / "bin"))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--require-tools",
                        "tests/bondmachine/test_bondmachine.py::test_tool_panic_is_reported"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "must be installed by make setup" in r.stdout, r.stdout[-600:]
    assert PROVENANCE_FILE not in os.listdir(tmp_path)
