"""`deploy --host` against a real OpenSSH server on loopback (throw-away keys); the remote side uses the sim backend."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bondflow
from bondflow.deploy.package import deploy
from bondflow.deploy.remote import RemoteError, run_remote

pytestmark = pytest.mark.sim
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not Path("/usr/sbin/sshd").exists() or shutil.which("ssh") is None:
        pytest.skip("openssh-server not installed (make setup installs it)")
    if os.geteuid() != 0:
        pytest.skip("sshd on loopback needs root here")
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "user")], check=True)
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(exist_ok=True)
    port = _free_port()
    cfg = d / "sshd_config"
    cfg.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nAuthorizedKeysFile {d}/authorized_keys\n"
                   f"PermitRootLogin prohibit-password\nPasswordAuthentication no\nStrictModes no\nPidFile {d}/pid\n"
                   "UsePAM no\nSubsystem sftp /usr/lib/openssh/sftp-server\n")
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(cfg)], stderr=subprocess.PIPE)
    for _ in range(50):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield {"port": port, "identity": str(d / "user"), "known_hosts": str(d / "known_hosts")}
    proc.terminate()
    proc.wait(timeout=10)


def test_remote_benchmark_equals_golden(sshd, tmp_path, need_tool) -> None:
    need_tool("iverilog")
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    bundle = deploy(bondflow.generate(g, "dataflow", tlast_mode=1).write(tmp_path / "d"), "pynq-z2", tmp_path / "bundle")
    x = np.load(EXAMPLES / "iris" / "data.npz")["x_test"]
    r = run_remote(bundle, "root@127.0.0.1", x, backend="sim", port=sshd["port"], identity=sshd["identity"],
                   python=sys.executable, remote_dir=str(tmp_path / "remote_bundle"), known_hosts=sshd["known_hosts"])
    assert np.array_equal(r["y"], bondflow.reference.run(g, x))
    assert r["n"] == len(x) and r["inferences_per_s"] > 0


def test_board_without_pynq_device_is_clear(sshd, tmp_path) -> None:
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    bundle = deploy(bondflow.generate(g, "dataflow", tlast_mode=1).write(tmp_path / "d"), "pynq-z2", tmp_path / "bundle")
    with pytest.raises(RemoteError, match="bitstream"):
        run_remote(bundle, "root@127.0.0.1", np.zeros((2, 4)), backend="pynq", port=sshd["port"],
                   identity=sshd["identity"], python=sys.executable, remote_dir=str(tmp_path / "rb"),
                   known_hosts=sshd["known_hosts"])


def test_unreachable_host(tmp_path) -> None:
    g = bondflow.load_model(EXAMPLES / "iris" / "model.h5")
    bundle = deploy(bondflow.generate(g, "dataflow").write(tmp_path / "d"), "pynq-z2", tmp_path / "bundle")
    with pytest.raises(RemoteError, match="must be reachable"):
        run_remote(bundle, "nobody@127.0.0.1", np.zeros((2, 4)), port=_free_port())
