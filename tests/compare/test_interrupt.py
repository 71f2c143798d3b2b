"""`bondflow compare` killed with SIGKILL inside each step resumes to the results of an uninterrupted run."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bondflow.compare.flow import STEPS, compare
from bondflow.design import Design
from simgraphs import one_layer

pytestmark = [pytest.mark.sim, pytest.mark.synth]
IRIS = Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5"
MEASURED = ("status", "bit_exact", "vectors", "mismatches", "latency_cycles", "ii_cycles", "lut", "ff", "dsp", "bram",
            "fmax_mhz", "design_digest", "accuracy")

# generate and lint take well under a second on Iris: too short to hit by timing, so the CLI runs inside a wrapper
# that pauses them halfway (design files written into the temporary directory but not yet renamed; lint run but its
# checkpoint not yet written) and says so on stderr. simulate and synthesize run for seconds and are hit by timing.
WRAPPER = r"""
import contextlib, os, sys, time
pause_in = os.environ.get("BF_TEST_PAUSE_IN")
def pause(what):
    print(f"[test] paused in {what}", file=sys.stderr, flush=True)
    time.sleep(600)
if pause_in == "generate":
    import bondflow.design as d
    real_dir = d.atomic_dir
    @contextlib.contextmanager
    def slow_dir(path, force=False):
        with real_dir(path, force) as tmp:
            yield tmp
            pause("generate")
    d.atomic_dir = slow_dir
elif pause_in == "lint":
    import bondflow.sim.lint as lint_mod
    real_lint = lint_mod.lint
    def slow_lint(*a, **k):
        r = real_lint(*a, **k)
        pause("lint")
        return r
    lint_mod.lint = slow_lint
from bondflow.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def argv(out: Path) -> list[str]:
    return [sys.executable, "-c", WRAPPER, "compare", str(IRIS), "--arch", "dataflow", "--vectors", "200", "-o", str(out)]


def measured(out: Path) -> dict:
    (r,) = json.loads((out / "results.json").read_text())["results"]
    return {k: r[k] for k in MEASURED} | {"resumed": r["resumed"]}


def run_and_kill(out: Path, step: str, delay: float, timeout: float = 300) -> str:
    """Start a compare, SIGKILL its whole process group ``delay`` s after it enters ``step``; return its stderr."""
    env = dict(os.environ, BF_TEST_PAUSE_IN=step)
    p = subprocess.Popen(argv(out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                         start_new_session=True)  # the group holds the simulator and yosys too: a kill leaves no orphan writing
    seen: list[str] = []
    marker = f"[test] paused in {step}" if step in ("generate", "lint") else f"[dataflow] {step}"
    deadline = time.monotonic() + timeout
    try:
        for line in p.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if line.startswith(marker):
                time.sleep(delay)
                break
            assert time.monotonic() < deadline, f"step {step} not reached in {timeout} s: {''.join(seen)}"
        else:
            pytest.fail(f"compare ended (rc {p.wait()}) before entering {step}: {''.join(seen)}")
        assert p.poll() is None, f"compare must still be running in {step}, not have ended: {''.join(seen)}"
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    return "".join(seen)


def check_nothing_half_written(out: Path) -> None:
    """Every visible result parses and every visible design is complete, whatever the kill interrupted."""
    for path in [out / "results.json", *out.glob("dataflow/dataflow/*.json"), *out.glob("dataflow/dataflow/synth/*/synth_report.json")]:
        if path.exists():
            json.loads(path.read_text())
    for rep, end in (("report.md", "\n"), ("report.html", "</html>")):
        if (out / rep).exists():
            assert (out / rep).read_text().endswith(end), rep
    work = out / "dataflow" / "dataflow"
    if (work / "design").exists():
        d = Design.load(work / "design")  # raises on a missing manifest or file
        if (work / "generate.json").exists():
            assert d.digest() == json.loads((work / "generate.json").read_text())["digest"]


def test_sigkill_in_every_step_then_resume(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("yosys")
    base = tmp_path / "base"
    r = subprocess.run(argv(base), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    want = measured(base)
    assert want["bit_exact"] is True and want["resumed"] == []
    secs = json.loads((base / "results.json").read_text())["results"][0]["step_seconds"]

    out = tmp_path / "killed"
    work = out / "dataflow" / "dataflow"
    for i, step in enumerate(STEPS):
        # generate/lint wait in their pause; simulate/synthesize are hit halfway through their uninterrupted time
        delay = 0.3 if step in ("generate", "lint") else 0.5 * secs[step]
        log = run_and_kill(out, step, delay)
        check_nothing_half_written(out)
        for done in STEPS[:i]:  # the steps before were finished (now or by an earlier run) and checkpointed
            assert (work / f"{done}.json").exists(), f"{done} checkpoint missing after a kill in {step}: {log}"
        assert not (work / f"{step}.json").exists(), f"the kill must land inside {step}, not after it: {log}"
        assert not (out / "results.json").exists()
        if step == "generate":  # a complete-looking design sits in the temporary directory, never in design/
            assert list(work.glob(".design.*.tmp")) and not (work / "design").exists()
        if step == "synthesize":  # yosys was working in its cache directory: present, without a report
            partial = list(work.glob("synth/xc7z020-*"))
            assert partial and not list(work.glob("synth/*/synth_report.json")), partial

    r = subprocess.run(argv(out), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = measured(out)
    assert got["resumed"] == ["generate", "lint", "simulate"]  # synthesize redone, not taken from its partial directory
    assert {k: got[k] for k in MEASURED} == {k: want[k] for k in MEASURED}
    check_nothing_half_written(out)
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".old"))], "leftovers of killed writes remain"
    table = lambda p: [line for line in (p / "report.md").read_text().splitlines() if line.startswith("|")]  # noqa: E731
    assert table(out) == table(base)


def test_checkpoint_without_its_artifacts_is_redone(tmp_path, need_tool) -> None:
    """The states a kill can leave between two renames, or a corrupt checkpoint, are redone, not trusted."""
    need_tool("iverilog")
    need_tool("yosys")
    g, out = one_layer(), tmp_path / "c"
    archs = {"dataflow": ("dataflow", {})}
    run = lambda: compare(g, archs, "xc7z020", out, vectors=20, progress=lambda _m: None)[0]  # noqa: E731
    first = run()
    assert first.status == "ok" and first.bit_exact, first.error
    work = out / "dataflow" / "dataflow"
    # killed inside atomic_dir's swap: the old design moved aside, the new one still in its temporary directory
    os.replace(work / "design", work / ".design.old")
    shutil.copytree(work / ".design.old", work / ".design.abc123.tmp")
    (work / "lint.json").write_text('{"clean": tr')  # a checkpoint that is not JSON
    (out / ".results.json.x1.tmp").write_text("{")
    second = run()
    assert second.status == "ok", second.error
    assert second.resumed == ["simulate", "synthesize"]  # generate and lint redone
    assert Design.load(work / "design").digest() == first.design_digest == second.design_digest
    assert [getattr(second, k) for k in MEASURED] == [getattr(first, k) for k in MEASURED]
    assert not [p for p in out.rglob("*") if p.name.endswith((".tmp", ".old"))]
