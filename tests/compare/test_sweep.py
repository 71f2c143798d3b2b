"""`bondflow sweep`: points equal their run_arch step results, the Pareto set is right, reruns resume, bad input is one line."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from bondflow.compare.sweep import pareto_front
from simgraphs import one_layer

TOML = """model = "tiny.json"
vectors = 50
[[arch]]
name = "dataflow"
reuse_factor = [1, 2]
[[arch]]
name = "moldable"
cores = [1, 2]
"""


def sweep(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", "sweep", *args], capture_output=True, text=True)


def dominated(p: tuple[float, float], others: list[tuple[float, float]]) -> bool:
    return any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in others)


@pytest.mark.sim
@pytest.mark.synth
def test_sweep_points_pareto_and_resume(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("yosys")
    one_layer().save(tmp_path / "tiny.json")  # a 6x4 layer: each point takes seconds, not a minute
    (tmp_path / "s.toml").write_text(TOML)
    out = tmp_path / "out"
    r = sweep(str(tmp_path / "s.toml"), "-o", str(out), "--workers", "2")
    assert r.returncode == 0, r.stderr
    pts = json.loads((out / "sweep.json").read_text())["points"]
    assert sorted(p["label"] for p in pts) == ["dataflow rf=1", "dataflow rf=2", "moldable cores=1", "moldable cores=2"]
    assert len({p["key"] for p in pts}) == 4 and not any(p["cached"] for p in pts)
    for p in pts:
        x = p["result"]
        assert json.loads((out / "points" / f"{p['key']}.json").read_text())["result"] == x
        steps = out / "work" / p["key"] / p["arch"]
        sim = json.loads((steps / "simulate.json").read_text())
        syn = json.loads((steps / "synthesize.json").read_text())
        assert x["status"] == "ok" and x["bit_exact"] is True and x["vectors"] == 50
        assert (x["latency_cycles"], x["ii_cycles"], x["mismatches"]) == (sim["latency_cycles"], sim["ii_cycles"], sim["mismatches"])
        assert (x["lut"], x["ff"], x["dsp"], x["bram"]) == (syn["lut"], syn["ff"], syn["dsp"], syn["bram"])
        # A graph JSON built in Python has no source model: the record says so, with no figure.
        assert p["fidelity"]["reference"] is None and "no source model" in p["fidelity"]["unavailable"]
        assert p["fidelity"]["agreement"] is None
    # The Pareto set, recomputed here from the step files: minimal latency and LUTs.
    coords = {p["key"]: (p["result"]["latency_cycles"], p["result"]["lut"]) for p in pts}
    front = {k for k, c in coords.items() if not dominated(c, list(coords.values()))}
    assert front and {p["key"] for p in pts if p["pareto"]} == front
    md = (out / "sweep.md").read_text()
    assert md in r.stdout
    for p in pts:
        x = p["result"]
        row = f"| {'*' if p['pareto'] else ''} | xc7z020 | {p['label']} | ok | True | {x['latency_cycles']} |"
        assert row in md

    # A rerun recomputes nothing: every point comes from its file, which is not rewritten.
    mtimes = {f.name: f.stat().st_mtime_ns for f in (out / "points").iterdir()}
    r2 = sweep(str(tmp_path / "s.toml"), "-o", str(out), "--workers", "2")
    assert r2.returncode == 0, r2.stderr
    assert "4 cached, 0 to run" in r2.stderr
    pts2 = json.loads((out / "sweep.json").read_text())["points"]
    assert all(p["cached"] for p in pts2) and [p["result"] for p in pts2] == [p["result"] for p in pts]
    assert {f.name: f.stat().st_mtime_ns for f in (out / "points").iterdir()} == mtimes

    # An interrupted sweep (one point file missing) runs that point only, and its finished steps resume.
    lost = pts[0]["key"]
    (out / "points" / f"{lost}.json").unlink()
    r3 = sweep(str(tmp_path / "s.toml"), "-o", str(out), "--workers", "2")
    assert r3.returncode == 0, r3.stderr
    pts3 = {p["key"]: p for p in json.loads((out / "sweep.json").read_text())["points"]}
    assert [k for k, p in pts3.items() if not p["cached"]] == [lost]
    assert set(pts3[lost]["result"]["resumed"]) == {"generate", "lint", "simulate", "synthesize"}


def test_pareto_front_per_target_and_ties() -> None:
    def rec(key: str, target: str, lat: float | None, lut: int | None, status: str = "ok") -> dict:
        return {"key": key, "target": target, "result": {"status": status, "bit_exact": status == "ok",
                                                         "latency_cycles": lat, "lut": lut}}
    recs = [rec("a", "xc7z020", 10, 100), rec("b", "xc7z020", 10, 100), rec("c", "xc7z020", 5, 300),
            rec("d", "xc7z020", 11, 100), rec("e", "xc7z020", 1, 1, "failed"), rec("f", "ecp5-25k", 50, 5000),
            rec("g", "xc7z020", None, 50)]
    assert pareto_front(recs, ["latency_cycles", "lut"]) == {"a", "b", "c", "f"}


@pytest.mark.parametrize("body, msg", [
    ('model = "tiny.json"\nvector = 5\n[[arch]]\nname = "dataflow"\n',
     "keys must be among model, weights, target, vectors, simulator, data, objectives, grid, arch, synth_timeout, not 'vector'"),
    ('model = "tiny.json"\nsynth_timeout = -3\n[[arch]]\nname = "dataflow"\n', "'synth_timeout' must be a number of seconds > 0, not -3"),
    ('model = "tiny.json"\n[[arch]]\nname = "dataflow"\nreuse_factor = []\n', "not an empty list (empty grid)"),
    ('model = "tiny.json"\narch = []\n', "must be one or more [[arch]] tables, not [] (empty grid)"),
    ('model = "tiny.json"\n[[arch]]\nname = "nope"\n', "name must be one of bondmachine, da4ml, dataflow, hls4ml, moldable, reference, not 'nope'"),
    ('model = "tiny.json"\ntarget = ["xc7z020", "nope"]\n[[arch]]\nname = "dataflow"\n', "'target' must be one of xc7z020,"),
    ('model = "tiny.json"\n[[arch]]\nname = "moldable"\nreuse_factor = 2\n', "moldable options must be among name, cores, lanes, not 'reuse_factor'"),
    ('model = "tiny.json"\n[grid]\ninput_precision = ["fixed<8,3>"]\n[[arch]]\nname = "dataflow"\n',
     "must be used with a Keras or ONNX model, not a JSON graph"),
    ('model = "tiny.json\n', "sweep file must be valid TOML, not"),
])
def test_bad_sweep_file(tmp_path, body: str, msg: str) -> None:
    one_layer().save(tmp_path / "tiny.json")
    (tmp_path / "s.toml").write_text(body)
    r = sweep(str(tmp_path / "s.toml"), "-o", str(tmp_path / "out"))
    assert r.returncode == 6 and msg in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_unreachable_scheduler(tmp_path) -> None:
    one_layer().save(tmp_path / "tiny.json")
    (tmp_path / "s.toml").write_text(TOML)
    t0 = time.monotonic()
    r = sweep(str(tmp_path / "s.toml"), "-o", str(tmp_path / "out"), "--scheduler", "tcp://127.0.0.1:1")
    assert time.monotonic() - t0 < 30
    assert r.returncode == 16 and "Traceback" not in r.stderr
    assert "Dask scheduler must be reachable at tcp://127.0.0.1:1 within 5s, not unreachable" in r.stderr


def test_synth_timeout_is_part_of_a_point(tmp_path) -> None:
    """A sweep file's synth_timeout reaches every point and keys it apart (a point timed out under one limit is not
    reused under another); without it the keys are as before."""
    from bondflow.compare.sweep import expand, load_sweep
    one_layer().save(tmp_path / "tiny.json")
    (tmp_path / "a.toml").write_text(TOML)
    (tmp_path / "b.toml").write_text(TOML.replace("vectors = 50", "vectors = 50\nsynth_timeout = 0.5"))
    a, b = load_sweep(tmp_path / "a.toml"), load_sweep(tmp_path / "b.toml")
    assert (a.synth_timeout, b.synth_timeout) == (None, 0.5)
    ka, kb = ({p.key for p in expand(s)[0]} for s in (a, b))
    assert len(ka) == len(kb) == 4 and not ka & kb
