"""Progress (issue #22): plain timed lines without ANSI codes off a terminal, rich bars on one, nothing but results under -q."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bondflow import progress
from bondflow.progress import Reporter, detect_mode, follow_file, use
from simgraphs import one_layer

ANSI = re.compile(r"\x1b\[")


def cli(*args: str) -> subprocess.CompletedProcess:
    # capture_output: stderr is a pipe, not a terminal, so the CLI must choose plain lines
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True)


# -- the reporter itself (milliseconds) ----------------------------------------------------------------------------

def test_mode_follows_the_stream_and_q() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    assert detect_mode(False, io.StringIO()) == "plain"
    assert detect_mode(False, Tty()) == "rich"
    assert detect_mode(True, Tty()) == "quiet"


def test_plain_prints_steps_and_every_tenth_without_ansi(monkeypatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_MIN_SECONDS", 0.0)
    buf = io.StringIO()
    r = Reporter("plain", stream=buf)
    r.step("[dataflow] simulate (icarus, 200 vectors)")
    with r.task("simulate dataflow (icarus)", 200, "vectors") as t:
        for _ in range(200):
            t.advance()
    with r.task("synthesize dataflow for ecp5-25k", 4, "phases") as t:
        for ph in ("yosys synth", "place", "route", "bitstream"):
            t.start_phase(ph)
    lines = buf.getvalue().splitlines()
    assert re.fullmatch(r"\[dataflow\] simulate \(icarus, 200 vectors\)  \[\d+\.\d s\]", lines[0])
    counts = [l for l in lines if "vectors (" in l]
    assert [re.search(r": (\d+)/200 vectors \((\d+)%\)", l).groups() for l in counts] == \
        [(str(20 * k), str(10 * k)) for k in range(1, 11)]
    assert all(re.search(r", \d+\.\d s$", l) for l in counts)
    assert [l.split(": ", 1)[1].rsplit(",", 1)[0] for l in lines if "synthesize" in l] == \
        ["yosys synth (1/4)", "place (2/4)", "route (3/4)", "bitstream (4/4)", "done"]
    assert not ANSI.search(buf.getvalue())


def test_plain_is_not_chatty_when_fast() -> None:
    buf = io.StringIO()
    with Reporter("plain", stream=buf).task("simulate x", 1000, "vectors") as t:
        t.update(500)
        t.update(1000)  # all in the same instant: only the end earns a line
    assert buf.getvalue().splitlines() == [buf.getvalue().splitlines()[-1]] and ": 1000/1000 vectors (100%)" in buf.getvalue()


def test_quiet_prints_nothing(capsys) -> None:
    r = Reporter("quiet")
    r.step("[dataflow] generate")
    with r.task("simulate", 10, "vectors") as t:
        t.advance(10)
        t.start_phase("place")
    assert capsys.readouterr() == ("", "")


def test_rich_draws_a_bar_on_a_terminal() -> None:
    from rich.console import Console
    buf = io.StringIO()
    r = Reporter("rich", console=Console(file=buf, force_terminal=True, width=100))
    r.step("[dataflow] simulate (icarus, 50 vectors)")
    with r.task("simulate dataflow (icarus)", 50, "vectors") as t:
        for _ in range(25):
            t.advance()
        r._bars.refresh()  # draw now rather than at the next 10 Hz tick
        drawn = buf.getvalue()
        t.advance(25)
    r.close()
    assert "\x1b[" in drawn and "━" in drawn and "simulate dataflow (icarus)" in drawn and "25/50" in drawn
    # the bar goes; a plain record of it stays, after the step line
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buf.getvalue())
    assert "[dataflow] simulate (icarus, 50 vectors)" in text  # brackets are not taken for rich markup
    assert re.search(r"simulate dataflow \(icarus\): 50/50 vectors, \d+\.\d s", text)


def test_follow_file_sees_appended_and_rewritten_lines(tmp_path) -> None:
    f = tmp_path / "progress.txt"
    seen: list[str] = []

    def write() -> None:
        for n in (10, 20, 30):
            with f.open("a") as fh:
                fh.write(f"{n}\n")
            time.sleep(0.05)
        f.write_text("1\n")  # the tool ran again and rewrote its log
    with follow_file(f, seen.append, interval=0.01):
        th = threading.Thread(target=write)
        th.start()
        th.join()
        time.sleep(0.05)
    assert seen[:3] == ["10", "20", "30"] and seen[-1] == "1"


FAKE_NEXTPNR = """import json, sys, time
a = sys.argv[1:]
log = open(a[a.index("--log") + 1], "w")
for line in ("Info: Packing IOs..", "Info: Running main analytical placer.", "Info: Routing globals...", "Info: Routing.."):
    log.write(line + "\\n"); log.flush(); time.sleep(0.3)
json.dump({"fmax": {"clk": {"achieved": 123.0}}, "utilization": {}}, open(a[a.index("--report") + 1], "w"))
open(a[a.index("--textcfg") + 1], "w").write("fake")
"""


def test_nextpnr_phases_come_from_its_live_log(tmp_path, monkeypatch) -> None:
    """place, then route when nextpnr's log says so (not when it ends), then bitstream: with stand-in tools."""
    from bondflow.synth.nextpnr import place_and_route
    from bondflow.synth.targets import get_target
    for name, body in (("nextpnr", FAKE_NEXTPNR), ("ecppack", "import sys; open(sys.argv[2], 'wb').write(b'bit')")):
        f = tmp_path / name
        f.write_text(f"#!{sys.executable}\n{body}")
        f.chmod(0o755)
    monkeypatch.setenv("BONDFLOW_NEXTPNR_ECP5", str(tmp_path / "nextpnr"))
    monkeypatch.setenv("BONDFLOW_ECPPACK", str(tmp_path / "ecppack"))
    seen: list[tuple[str, bool]] = []
    log = tmp_path / "nextpnr.live.log"
    # each phase with whether nextpnr had finished writing its log when the phase was announced
    r = place_and_route(tmp_path / "netlist.json", get_target("ecp5-25k"), 50, tmp_path,
                        on_phase=lambda ph: seen.append((ph, log.exists() and "Routing..\n" in log.read_text())))
    assert [ph for ph, _ in seen] == ["place", "route", "bitstream"]
    assert seen[0][1] is False and r["fmax_mhz"] == 123.0 and r["bitstream_bytes"] == 3

# -- the CLI (one simulation, one small compare and its resumed rerun: about 30 s) ---------------------------------

@pytest.fixture(scope="module")
def ref_design(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("progress")
    (d / "g.json").write_text(one_layer().to_json())
    r = cli("generate", str(d / "g.json"), "--arch", "reference", "-o", str(d / "ref"))
    assert r.returncode == 0, r.stderr
    return d


@pytest.mark.sim
@pytest.mark.synth
def test_compare_plain_then_quiet(ref_design, need_tool, tmp_path) -> None:
    need_tool("iverilog")
    need_tool("yosys")
    out = tmp_path / "cmp"
    args = ("compare", str(ref_design / "g.json"), "--arch", "reference", "--vectors", "40", "-o", str(out))
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert not ANSI.search(r.stderr) and not ANSI.search(r.stdout)
    err = r.stderr.splitlines()
    for step in ("generate", "lint", "simulate (icarus, 40 vectors)", "synthesize (xc7z020)"):
        assert any(re.fullmatch(rf"\[reference\] {re.escape(step)}  \[\d+\.\d s\]", l) for l in err), (step, r.stderr)
    assert any(re.fullmatch(r"  simulate reference \(icarus\): 40/40 vectors \(100%\), \d+\.\d s", l) for l in err), r.stderr
    assert any(re.fullmatch(r"  synthesize reference for xc7z020: yosys synth \(1/1\), \d+\.\d s", l) for l in err), r.stderr
    assert any(re.fullmatch(r"  synthesize reference for xc7z020: done, \d+\.\d s", l) for l in err), r.stderr
    # results stay on stdout, progress on stderr: `bondflow compare ... > report.txt` holds the report only
    assert "| reference | ok | True | 40 |" in r.stdout and f"report: {out / 'report.html'}" in r.stdout
    assert "[reference]" not in r.stdout

    q = cli("-q", *args)  # resumes every step from its checkpoint: seconds
    assert q.returncode == 0, q.stderr
    assert q.stderr == ""
    assert "| reference | ok | True | 40 |" in q.stdout and f"report: {out / 'report.html'}" in q.stdout
    assert json.loads((out / "results.json").read_text())["results"][0]["resumed"] == ["generate", "lint", "simulate", "synthesize"]


@pytest.mark.sim
def test_sim_quiet_keeps_result_and_one_line_errors(ref_design, need_tool, tmp_path) -> None:
    need_tool("iverilog")
    r = cli("-q", "sim", str(ref_design / "ref"), "--vectors", "30", "--out", str(tmp_path / "res"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.startswith("PASS: reference on icarus") and "vectors 30, mismatches 0" in r.stdout
    after = cli("sim", str(ref_design / "ref"), "--vectors", "30", "--out", str(tmp_path / "res2"), "-q")  # -q after the command
    assert after.returncode == 0 and after.stderr == "" and after.stdout.startswith("PASS: reference on icarus"), after.stderr
    bad = cli("-q", "sim", str(tmp_path / "nowhere"), "--vectors", "30")
    assert bad.returncode != 0 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("bondflow: error: design must be a directory")
    # an error in the middle of a counted task (the testbench times out): still one line, non-zero exit
    hang = cli("-q", "sim", str(ref_design / "ref"), "--vectors", "30", "--timeout-cycles", "1", "--out", str(tmp_path / "h"))
    assert hang.returncode != 0
    assert hang.stderr.count("\n") == 1 and hang.stderr.startswith("bondflow: error: simulation must finish within 1 cycles")


def test_q_and_v_exclude_each_other() -> None:
    r = cli("-q", "-v", "synth", "--list-targets")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
    r = cli("-v", "synth", "--list-targets", "-q")  # one on each side of the command
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not allowed with argument" in r.stderr


@pytest.mark.sim
def test_sim_vectors_reach_a_rich_bar(ref_design, need_tool, tmp_path) -> None:
    """The testbench's counts cross the process boundary into the bar (rich mode, as on a terminal)."""
    need_tool("iverilog")
    from rich.console import Console

    from bondflow.sim.runner import simulate
    buf = io.StringIO()
    with use(Reporter("rich", console=Console(file=buf, force_terminal=True, width=120))):
        res = simulate(ref_design / "ref", 300, workdir=tmp_path / "sim", result_path=tmp_path / "r.json")
    assert res.passed
    counts = (tmp_path / "sim" / "run-icarus-0" / "progress.txt").read_text().split()
    assert counts[0] == "3" and counts[-1] == "300"  # about a hundred counts, the last one complete
    text = buf.getvalue()
    assert "━" in text and "simulate reference (icarus)" in text
    assert re.search(r"simulate reference \(icarus\): 300/300 vectors, \d+\.\d s", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text))
