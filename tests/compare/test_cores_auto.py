"""moldable's ``cores=auto`` is writable everywhere a user names cores: `generate --cores`, compare's --arch, sweep files."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bondflow.cli.cmd_compare import parse_arch_specs
from bondflow.cli.cmd_generate import parse_cores
from bondflow.compare.sweep import expand, load_sweep
from bondflow.errors import ConfigError
from simgraphs import one_layer


def test_parse_cores() -> None:
    assert parse_cores("auto", "--cores") == "auto"
    assert parse_cores(" 4 ", "--cores") == 4
    assert parse_cores("2,3", "--cores") == [2, 3]
    with pytest.raises(ConfigError, match=r"--cores must be 'auto', a number or a comma list of numbers, not 'many'"):
        parse_cores("many", "--cores")


def test_compare_arch_spec_accepts_cores_auto() -> None:
    specs = parse_arch_specs("moldable:cores=auto:lanes=2,moldable:cores=4,dataflow")
    assert specs == {"moldable:cores=auto:lanes=2": ("moldable", {"cores": "auto", "lanes": 2}),
                     "moldable:cores=4": ("moldable", {"cores": 4}), "dataflow": ("dataflow", {})}
    with pytest.raises(ConfigError, match="rf=N, cores=N, lanes=N, stage_adders=N or parallelism=N"):
        parse_arch_specs("dataflow:rf=auto")  # only moldable sizes anything automatically
    with pytest.raises(ConfigError, match="not 'cores=automatic'"):
        parse_arch_specs("moldable:cores=automatic")


def test_generate_cli_cores_auto_equals_default(tmp_path: Path) -> None:
    """`bondflow generate --cores auto` writes the very design the no-option default does."""
    one_layer(n_in=6, n_out=5).save(tmp_path / "g.json")

    def gen(out: str, *extra: str) -> str:
        r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "generate", str(tmp_path / "g.json"), "--arch",
                            "moldable", "-o", str(tmp_path / out), "--no-lint", *extra], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout.split("digest ")[-1].strip()

    default = gen("default")
    assert gen("auto", "--cores", "auto") == default
    assert gen("one", "--cores", "1") != default  # 5 neurons: auto gives more than one core
    r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "generate", str(tmp_path / "g.json"), "--arch",
                        "moldable", "-o", str(tmp_path / "bad"), "--cores", "lots"], capture_output=True, text=True)
    assert r.returncode != 0 and "--cores must be 'auto', a number or a comma list of numbers, not 'lots'" in r.stderr
    assert "Traceback" not in r.stderr


def test_sweep_file_accepts_cores_auto(tmp_path: Path) -> None:
    one_layer().save(tmp_path / "tiny.json")
    (tmp_path / "s.toml").write_text('model = "tiny.json"\n[[arch]]\nname = "moldable"\ncores = ["auto", 1]\n')
    sweep = load_sweep(tmp_path / "s.toml")
    pts, _, _ = expand(sweep)
    assert sorted(p.label for p in pts) == ["moldable cores=1", "moldable cores=auto"]
    assert {p.label: p.options for p in pts}["moldable cores=auto"] == {"cores": "auto"}
    for bad, shown in (('"many"', "'many'"), ("0", "0"), ("true", "True")):
        (tmp_path / "b.toml").write_text(f'model = "tiny.json"\n[[arch]]\nname = "moldable"\ncores = {bad}\n')
        with pytest.raises(ConfigError, match=rf"\[\[arch\]\] moldable 'cores' must be an integer >= 1 or 'auto' .*not {shown}"):
            load_sweep(tmp_path / "b.toml")


def test_sweep_point_cores_auto_generates(tmp_path: Path) -> None:
    """The expanded point's options reach the generator as they are (no int() on the way)."""
    import bondflow
    one_layer().save(tmp_path / "tiny.json")
    (tmp_path / "s.toml").write_text('model = "tiny.json"\n[[arch]]\nname = "moldable"\ncores = "auto"\n')
    (pt,), graphs, _ = expand(load_sweep(tmp_path / "s.toml"))
    d = bondflow.generate(graphs[pt.graph_digest], "moldable", **pt.options)
    assert d.digest() == bondflow.generate(graphs[pt.graph_digest], "moldable").digest()

