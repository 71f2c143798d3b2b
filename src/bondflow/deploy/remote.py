"""Run a deploy bundle on a board over ssh: copy it, benchmark it there, bring back predictions and timings."""
from __future__ import annotations

import json
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BondflowError

__all__ = ["RemoteError", "run_remote"]

_SCRIPT = """
import json, sys, time
import numpy as np
sys.path.insert(0, {bundle!r})
try:
    from bondflow_driver import Accelerator, AcceleratorError
except ImportError as e:
    print(json.dumps({{"error": "the bundle driver must import on the board, not fail: %s" % e}})); sys.exit(0)
try:
    x = np.load({bundle!r} + "/_inputs.npy")
    acc = Accelerator({bundle!r}, backend={backend!r})
    y, s, ips = acc.predict(x, profile=True)
    print(json.dumps({{"y": y.tolist(), "seconds": s, "inferences_per_s": ips, "n": len(x)}}))
except AcceleratorError as e:
    print(json.dumps({{"error": str(e)}}))
"""


class RemoteError(BondflowError):
    """The board cannot be reached or the bundle fails there."""

    exit_code = 16


def _ssh_opts(port: int, identity: str | None) -> list[str]:
    opts = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=10"]
    if identity:
        opts += ["-i", identity, "-o", "IdentitiesOnly=yes"]
    return opts


def run_remote(bundle: str | Path, host: str, x: np.ndarray, backend: str = "pynq", port: int = 22,
               identity: str | None = None, python: str = "python3", remote_dir: str = "bondflow_bundle",
               timeout: float = 900, known_hosts: str | None = None) -> dict[str, Any]:
    """Copy ``bundle`` (and the inputs) to ``host``, run ``predict(profile=True)`` there, return its results."""
    bundle = Path(bundle)
    opts = _ssh_opts(port, identity) + (["-o", f"UserKnownHostsFile={known_hosts}"] if known_hosts else [])

    def ssh(cmd: str, t: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", *opts, "-p", str(port), host, cmd], capture_output=True, text=True, timeout=t)
    try:
        probe = ssh(f"{shlex.quote(python)} -c 'import numpy' && rm -rf {shlex.quote(remote_dir)} && echo ok")
    except subprocess.TimeoutExpired:
        raise RemoteError(f"host {host} must answer ssh within 60 s, not time out") from None
    if probe.returncode != 0 or "ok" not in probe.stdout:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        raise RemoteError(f"host {host}:{port} must be reachable by ssh with {python} and numpy, not fail: {last}")
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "b"
        import shutil
        shutil.copytree(bundle, staged, ignore=shutil.ignore_patterns("sim", "synth"))
        np.save(staged / "_inputs.npy", np.asarray(x, dtype=np.float64))
        r = subprocess.run(["scp", *opts, "-q", "-r", "-P", str(port), str(staged), f"{host}:{remote_dir}"],
                           capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise RemoteError(f"scp to {host} must succeed, not fail: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    home = ssh("pwd").stdout.strip()
    path = remote_dir if remote_dir.startswith("/") else f"{home}/{remote_dir}"
    script = _SCRIPT.format(bundle=path, backend=backend)
    try:
        r = ssh(f"{shlex.quote(python)} -c {shlex.quote(script)}", timeout)
    except subprocess.TimeoutExpired:
        raise RemoteError(f"the benchmark on {host} must finish within {timeout} s, not hang") from None
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RemoteError(f"the benchmark on {host} must print a result, not fail: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    out = json.loads(lines[-1])
    if "error" in out:
        raise RemoteError(f"on {host}: {out['error']}")
    out["y"] = np.asarray(out["y"])
    return out
