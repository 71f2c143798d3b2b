"""Two runs in one output directory: the second fails at once with a typed one-line error; a killed holder blocks nothing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bondflow.errors import OutputLockedError
from bondflow.fsutil import LOCK_NAME, lock_dir

IRIS = str(Path(__file__).resolve().parents[2] / "examples" / "iris" / "model.h5")


def compare_cmd(out: Path) -> list[str]:
    return [sys.executable, "-m", "bondflow.cli.main", "compare", IRIS, "--arch", "dataflow", "--vectors", "200", "-o", str(out)]


@pytest.mark.sim
def test_second_compare_into_same_dir_fails_fast(tmp_path, need_tool) -> None:
    need_tool("iverilog")
    out = tmp_path / "report"
    first = subprocess.Popen(compare_cmd(out), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                             start_new_session=True)
    try:
        for line in first.stderr:  # type: ignore[union-attr]
            if line.startswith("[dataflow] generate"):  # printed inside compare(): the lock is held
                break
        else:
            pytest.fail(f"first compare ended (rc {first.wait()}) before starting")
        assert (out / LOCK_NAME).read_text().strip() == str(first.pid)
        t0 = time.monotonic()
        second = subprocess.run(compare_cmd(out), capture_output=True, text=True, timeout=120)
        took = time.monotonic() - t0
        assert first.poll() is None, "the first run must still hold the lock while the second is refused"
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    err = second.stderr.strip()
    assert second.returncode == OutputLockedError.exit_code, err
    assert err == f"bondflow: error: output directory must not be in use by another bondflow run, not locked by pid {first.pid}: {out}"
    assert "[dataflow]" not in second.stderr  # refused before doing any work
    # "at once": refused before the model load (~10 s), with no waiting for the first run (~30 s more)
    assert took < 8, f"the second run took {took:.1f} s to fail"
    # The kernel dropped the SIGKILLed holder's lock: the directory is free again.
    with lock_dir(out):
        assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())


def test_lock_dir_nests_in_one_process_and_refuses_another(tmp_path) -> None:
    out = tmp_path / "o"
    probe = [sys.executable, "-c", "import sys; from pathlib import Path; from bondflow.fsutil import lock_dir\n"
             "with lock_dir(Path(sys.argv[1])): pass", str(out)]
    with lock_dir(out):
        with lock_dir(out):  # compare() inside the CLI's own lock
            pass
        r = subprocess.run(probe, capture_output=True, text=True)  # still held after the inner block
        assert r.returncode != 0 and f"not locked by pid {os.getpid()}" in r.stderr
    assert subprocess.run(probe, capture_output=True, text=True).returncode == 0  # released


def test_sweep_refuses_a_locked_output_directory(tmp_path) -> None:
    """A sweep into a directory another run holds stops at once with the lock error, before loading models."""
    out = tmp_path / "sweep"
    toml = Path(__file__).resolve().parents[2] / "examples" / "iris" / "sweep.toml"
    with lock_dir(out):
        r = subprocess.run([sys.executable, "-m", "bondflow.cli.main", "sweep", str(toml), "-o", str(out)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == OutputLockedError.exit_code, r.stderr
    assert f"not locked by pid {os.getpid()}" in r.stderr and "Traceback" not in r.stderr
    assert not (out / "points").exists()
