"""Choosing under constraints (known numbers: rules, ties, nothing fitting) and the one-command flow on Iris."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.compare.choose import REPORT_VERSION, Constraints, choose, load_report
from bondflow.compare.metrics import metrics_for
from bondflow.errors import ConfigError, NoDesignError
from bondflow.synth.targets import get_target
from bundles import driver

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _res(label: str, lat: int, ii: int, lut: int, dsp: int, status: str = "ok", bit_exact: bool = True,
         fmax: float | None = None) -> dict:
    return {"arch": label.split(":")[0], "label": label, "options": {}, "status": status, "bit_exact": bit_exact,
            "failed_step": None if status == "ok" else "simulate", "latency_cycles": lat, "ii_cycles": ii,
            "lut": lut, "ff": 2 * lut, "dsp": dsp, "bram": 0, "fmax_mhz": fmax}


def _report(*results: dict, target: str = "xc7z020") -> dict:
    return {"version": REPORT_VERSION, "target": target, "results": list(results)}


REPORT = _report(_res("big", 10, 1, 60_000, 0),  # fastest, does not fit the Z-7020's 53,200 LUTs
                 _res("a", 20, 2, 1_000, 10), _res("b", 20, 4, 1_000, 5), _res("slow", 80, 40, 500, 1),
                 _res("broken", 5, 1, 10, 0, bit_exact=False), _res("dead", 5, 1, 10, 0, status="failed"))


def test_metrics_from_cycles_and_resources() -> None:
    m = metrics_for(_res("a", 20, 2, 1_000, 10), get_target("xc7z020"), clock_mhz=200)
    assert (m.clock_mhz, m.clock_source, m.latency_ns, m.throughput_per_s) == (200, "assumed (--clock-mhz)", 100.0, 1e8)
    assert m.util_lut == pytest.approx(100 * 1000 / 53_200) and m.util_dsp == pytest.approx(100 * 10 / 220) and m.fits
    placed = metrics_for(_res("e", 10, 1, 100, 0, fmax=50.0), get_target("ecp5-25k"), clock_mhz=200)
    assert placed.clock_source == "placed and routed" and placed.latency_ns == 200.0  # measured fmax beats the assumption
    assert metrics_for(_res("d", 1, 1, 10, 1), get_target("ice40-hx8k")).fits is False  # the HX8K has no DSPs


def test_rules_ties_and_objectives() -> None:
    c = choose(REPORT, Constraints(objective="lut"))
    assert c.chosen.label == "slow" and [r.label for r in c.runners_up] == ["a", "b"]
    assert c.excluded == {"big": "does not fit xc7z020 (LUT 113 %, FF 113 %)", "broken": "not bit-exact with the golden model",
                          "dead": "failed in simulate"}
    # a and b tie on LUTs and latency: the name decides, and the reason says so.
    c = choose(REPORT, Constraints(max_latency_ns=250, objective="lut"))
    assert c.chosen.label == "a" and "tied with b" in c.why and c.excluded["slow"] == "latency 800 ns > 250 ns"
    assert choose(REPORT, Constraints(max_latency_ns=250, objective="dsp")).chosen.label == "b"
    assert choose(REPORT, Constraints(objective="throughput")).chosen.label == "a"  # II 2 beats II 4 and 40
    c = choose(REPORT, Constraints(min_throughput=3e7, clock_mhz=100))
    assert c.chosen.label == "a" and c.excluded["b"] == "throughput 2.5e+07/s < 3e+07/s"
    assert choose(REPORT, Constraints(fit="xczu9eg", objective="latency")).chosen.label == "big"  # fits the larger part


def test_nothing_fits_names_every_reason() -> None:
    with pytest.raises(NoDesignError) as e:
        choose(REPORT, Constraints(max_latency_ns=50))
    msg = str(e.value)
    assert msg.startswith("no design meets fits xc7z020, latency <= 50 ns:")
    for part in ("big: does not fit xc7z020", "a: latency 200 ns > 50 ns", "dead: failed in simulate"):
        assert part in msg


def test_bad_constraints_and_old_reports(tmp_path) -> None:
    with pytest.raises(ConfigError, match="objective must be one of"):
        Constraints(objective="area")
    with pytest.raises(ConfigError, match="positive number"):
        Constraints(max_latency_ns=-1)
    with pytest.raises(ConfigError, match="not comparable"):
        choose(REPORT, Constraints(fit="ecp5-85k"))
    (tmp_path / "results.json").write_text(json.dumps({"target": "xc7z020", "results": []}))
    with pytest.raises(ConfigError, match="version 2 report, not version 1"):
        load_report(tmp_path)
    with pytest.raises(ConfigError, match="must hold results.json"):
        load_report(tmp_path / "nowhere")


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bondflow.cli.main", *args], capture_output=True, text=True)


def test_choose_cli(tmp_path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(REPORT))
    r = _cli("choose", str(tmp_path), "--max-latency-ns", "250", "--objective", "dsp")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("chosen: b (b) on xc7z020: 20 cycles = 200.0 ns at 100 MHz")
    chosen = json.loads((tmp_path / "chosen.json").read_text())
    assert chosen["chosen"]["label"] == "b" and chosen["constraints"]["max_latency_ns"] == 250
    r = _cli("choose", str(tmp_path), "--max-latency-ns", "10")
    assert r.returncode == 19 and r.stderr.count("\n") == 1 and r.stderr.startswith("bondflow: error: no design meets")
    r = _cli("choose", str(tmp_path), "--fit", "nope")
    assert r.returncode == 6 and "target must be one of" in r.stderr


@pytest.mark.sim
@pytest.mark.synth
def test_flow_on_iris_deploys_the_chosen_design(tmp_path, need_tool) -> None:
    for t in ("iverilog", "yosys"):
        need_tool(t)
    out = tmp_path / "flow"
    r = _cli("flow", str(EXAMPLES / "iris" / "model.h5"), "--board", "pynq-z2", "--arch", "dataflow,dataflow:rf=4",
             "--vectors", "100", "--max-latency-ns", "200", "-o", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    flow = json.loads((out / "flow.json").read_text())
    assert flow["deployed"] == "dataflow"  # RF 4 takes 23 cycles = 230 ns at the assumed 100 MHz: excluded
    assert flow["choice"]["excluded"] == {"dataflow:rf=4": "latency 230 ns > 200 ns"}
    res = {x["label"]: x for x in json.loads((out / "report" / "results.json").read_text())["results"]}
    for label, x in res.items():  # the report's new columns equal the step files
        step = out / "report" / label.replace(":", "_").replace("=", "") / "dataflow"
        sim = json.loads((step / "simulate.json").read_text())
        syn = json.loads((step / "synthesize.json").read_text())
        m = x["metrics"]
        assert m["latency_ns"] == pytest.approx(1000 * sim["latency_cycles"] / 100) and m["clock_source"] == "assumed (target default)"
        assert m["throughput_per_s"] == pytest.approx(100e6 / sim["ii_cycles"])
        assert m["util_lut"] == pytest.approx(100 * syn["lut"] / 53_200) and m["fits"] is True
    assert "## Deployed" in (out / "report" / "report.md").read_text()
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    acc = driver(out / "bundle").Accelerator(out / "bundle", backend="sim")
    x = np.random.default_rng(4).uniform(-4, 4, (20, g.input.size))
    assert np.array_equal(acc.predict(x), bondflow.reference.run(g, x))


@pytest.mark.sim
@pytest.mark.synth
def test_flow_on_a_cnn_deploys_a_driver_that_streams_images(tmp_path, need_tool) -> None:
    """The mission end to end on the Conv1D example: two streaming designs verified and synthesized, the chosen one
    bundled; its driver takes (batch, length, channels) arrays and, on the simulated device, equals the golden model."""
    for t in ("iverilog", "yosys"):
        need_tool(t)
    out = tmp_path / "flow"
    r = _cli("flow", str(EXAMPLES / "conv1d" / "model.h5"), "--board", "pynq-z2", "--arch",
             "dataflow:multipliers=lut,dataflow:parallelism=1", "--vectors", "30", "--objective", "latency", "-o", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    flow = json.loads((out / "flow.json").read_text())
    res = {x["label"]: x for x in json.loads((out / "report" / "results.json").read_text())["results"]}
    assert set(res) == {"dataflow:multipliers=lut", "dataflow:parallelism=1"}
    assert all(x["status"] == "ok" and x["bit_exact"] for x in res.values()), res
    lat = {k: x["metrics"]["latency_ns"] for k, x in res.items()}
    assert flow["deployed"] == min(lat, key=lat.get) == "dataflow:multipliers=lut"  # full parallelism: fewer cycles
    g = bondflow.load_model(EXAMPLES / "conv1d" / "model.h5")
    acc = driver(out / "bundle").Accelerator(out / "bundle", backend="sim")
    x = np.random.default_rng(5).uniform(-2, 2, (12, *g.input.shape))
    assert np.array_equal(acc.predict(x), bondflow.reference.run(g, x.reshape(len(x), -1)))


def test_flow_default_candidates_for_a_cnn_all_build() -> None:
    """flow's default candidates for a CNN are ones that build CNNs (none is refused for being a CNN)."""
    from bondflow.cli.cmd_compare import parse_arch_specs
    from bondflow.cli.cmd_flow import DEFAULT_ARCHS, DEFAULT_CNN_ARCHS
    g = bondflow.load_model(EXAMPLES / "conv1d" / "model.h5")
    specs = parse_arch_specs(DEFAULT_CNN_ARCHS)
    assert len(specs) >= 3 and set(parse_arch_specs(DEFAULT_ARCHS)) != set(specs)
    for arch, opts in specs.values():
        if arch == "hls4ml":
            continue  # writes a project; its CNN C-sim is tested in tests/codegen
        extra = {"target": "xc7z020"} if opts.get("multipliers") == "auto" else {}
        d = bondflow.generate(g, arch, **opts, **extra)
        assert d.ii_cycles >= 1 and d.rtl_files, arch
