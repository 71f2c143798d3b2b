"""`bondflow compare`: report numbers equal the step results; a rerun resumes; a failing architecture is reported."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.synth]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", "compare", str(EXAMPLES / "iris" / "model.h5"),
                           "--arch", "dataflow,dataflow:rf=4,moldable:lanes=99", "--vectors", "200", "-o", str(out)],
                          capture_output=True, text=True)


def test_compare_report_resume_and_failure(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    need_tool("yosys")
    out = tmp_path / "report"
    r = run(out)
    assert r.returncode == 1, r.stderr  # one architecture is asked for what it cannot build: the others still complete
    res = {x["label"]: x for x in json.loads((out / "results.json").read_text())["results"]}
    bad = res["moldable:lanes=99"]
    assert bad["status"] == "failed" and bad["failed_step"] == "generate" and "lanes" in bad["error"]
    for label in ("dataflow", "dataflow:rf=4"):
        x = res[label]
        step_dir = out / label.replace(":", "_").replace("=", "") / label.split(":")[0]
        sim = json.loads((step_dir / "simulate.json").read_text())
        syn = json.loads((step_dir / "synthesize.json").read_text())
        assert x["status"] == "ok" and x["bit_exact"] is True
        assert (x["latency_cycles"], x["ii_cycles"], x["vectors"]) == (sim["latency_cycles"], sim["ii_cycles"], sim["vectors"])
        assert (x["lut"], x["ff"], x["dsp"]) == (syn["lut"], syn["ff"], syn["dsp"])
        assert f"| {label} | ok | True | 200 | {x['latency_cycles']} |" in (out / "report.md").read_text()
    # The float model (Keras predict on the example's data) is the accuracy reference of every design.
    import numpy as np
    fm = json.loads((out / "results.json").read_text())["float_model"]
    d = np.load(EXAMPLES / "iris" / "data.npz")
    assert fm["source"].startswith("Keras predict") and fm["samples"] == len(d["x_test"])
    from bondflow.frontend.float_model import float_predict
    yf, _ = float_predict(EXAMPLES / "iris" / "model.h5", d["x_test"])
    assert fm["accuracy"] == float(np.mean(yf.argmax(1) == d["y_test"]))
    assert 0.5 < res["dataflow"]["float_agreement"] <= 1 and bad["float_agreement"] is None
    assert f"Float model ({fm['source']}): accuracy" in (out / "report.md").read_text()
    # The fidelity record: measured once on the example's data, stated for each design.
    fid = json.loads((out / "results.json").read_text())["fidelity"]
    assert fid["reference"] == fm["source"] and fid["samples"] == len(d["x_test"]) and fid["agreement"] >= 0.95
    assert res["dataflow"]["fidelity"]["applies_to"].startswith("design (bit-exact")
    assert bad["fidelity"]["applies_to"].startswith("golden model only")
    assert "Fidelity vs Keras predict" in (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "id='float-model'" in page and "id='fidelity'" in page
    assert "<table id='results'>" in page and "data:image/png;base64," in page
    # A rerun resumes every finished step and gives identical results.
    run(out)
    res2 = {x["label"]: x for x in json.loads((out / "results.json").read_text())["results"]}
    assert set(res2["dataflow"]["resumed"]) == {"generate", "lint", "simulate", "synthesize"}
    for label in ("dataflow", "dataflow:rf=4"):
        for k in ("latency_cycles", "ii_cycles", "lut", "ff", "dsp", "bit_exact"):
            assert res2[label][k] == res[label][k]


def test_unknown_arch_and_target(tmp_path) -> None:
    for extra, msg in ((["--arch", "nope"], "architecture must be one of"), (["--target", "nope"], "target must be one of")):
        r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "compare", str(EXAMPLES / "iris" / "model.h5"),
                            "-o", str(tmp_path / "x"), *extra], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr


def test_an_architecture_that_cannot_build_the_model_is_refused_not_failed(tmp_path, need_tool) -> None:
    """A branched MLP: dataflow and moldable build it, the chain-only reference design refuses it in one line; compare
    reports that and exits 0."""
    need_tool("iverilog")
    need_tool("yosys")
    from simgraphs import branchy
    branchy(seed=2).save(tmp_path / "g.json")
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "compare", str(tmp_path / "g.json"), "--arch", "dataflow,moldable,reference",
                        "--vectors", "100", "--no-fidelity", "-o", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = {x["label"]: x for x in json.loads((out / "results.json").read_text())["results"]}
    assert all(res[a]["status"] == "ok" and res[a]["bit_exact"] is True for a in ("dataflow", "moldable")), res
    assert res["reference"]["status"] == "refused" and "'sum3' of type 'merge add'" in res["reference"]["error"]
    assert "- **reference** refused: layer 'sum3'" in (out / "report.md").read_text()
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "choose", str(out)], capture_output=True, text=True)
    assert r.returncode == 0 and "reference: refused: the architecture cannot build this model" in r.stdout + r.stderr, r.stdout


def test_a_synthesis_past_synth_timeout_leaves_the_design_verified_without_resources(tmp_path, need_tool) -> None:
    """--synth-timeout: yosys is stopped, the design keeps its verification, the report says why it has no LUTs."""
    need_tool("iverilog")
    need_tool("yosys")
    from simgraphs import branchy
    branchy(seed=3).save(tmp_path / "g.json")
    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "compare", str(tmp_path / "g.json"), "--arch", "dataflow",
                        "--vectors", "50", "--no-fidelity", "--synth-timeout", "0.01", "-o", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    x = json.loads((out / "results.json").read_text())["results"][0]
    assert x["status"] == "ok" and x["bit_exact"] is True and x["lut"] is None and x["error"] is None
    assert x["note"].startswith("not synthesized: yosys must finish within 0.01 s"), x["note"]
    assert "- **dataflow** not synthesized: yosys must finish within 0.01 s" in (out / "report.md").read_text()
    assert not (out / "dataflow" / "dataflow" / "synthesize.json").exists()  # nothing to resume: a rerun tries again
