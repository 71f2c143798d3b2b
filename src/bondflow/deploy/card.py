"""Data-centre bundles (AWS F1, Alveo): the RTL kernel, its Vitis packaging and link scripts, and the XRT driver."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .. import __version__
from ..codegen.render import render
from ..design import Design
from .shapes import bundle_shapes
from ..errors import ConfigError, ToolFailedError
from ..fsutil import atomic_dir
from ..tools import find_tool
from .kernel import KERNEL_NAME, kernel_design
from .package import write_driver

__all__ = ["CARDS", "deploy_card", "vitis_files"]

#: Cards, their Vitis platforms and the memory the kernel's masters are linked to. ``device_match`` is what
#: the XRT device name of that card contains; ``pynq_memory`` is the bank PYNQ names for that memory.
CARDS: dict[str, dict[str, Any]] = {
    "aws-f1": {"platform": "xilinx_aws-vu9p-f1_shell-v04261818_201920_3", "part": "xcvu9p-flgb2104-2-i",
               "memory": "DDR[0]", "pynq_memory": "bank0", "device_match": "aws-vu9p-f1", "clock_mhz": 250,
               "xclbin": "bondflow.awsxclbin"},
    "alveo-u250": {"platform": "xilinx_u250_gen3x16_xdma_4_1_202210_1", "part": "xcu250-figd2104-2L-e",
                   "memory": "DDR[0]", "pynq_memory": "bank0", "device_match": "u250", "clock_mhz": 300,
                   "xclbin": "bondflow.xclbin"},
    "alveo-u55c": {"platform": "xilinx_u55c_gen3x16_xdma_3_202210_1", "part": "xcu55c-fsvh2892-2L-e",
                   "memory": "HBM[0]", "pynq_memory": "HBM0", "device_match": "u55c", "clock_mhz": 300,
                   "xclbin": "bondflow.xclbin"},
}


def vitis_files(kernel: Design, board: str) -> dict[str, str]:
    """The kernel description, packaging and link scripts, and the C++ XRT host, as path -> text."""
    card = CARDS[board]
    lay = kernel.info["kernel"]
    ctx = dict(version=__version__, digest=kernel.digest(), kernel=KERNEL_NAME, board=board, regs=lay["registers"],
               w0=lay["input"]["word_bits"], w1=lay["output"]["word_bits"], rtl=list(kernel.rtl_files),
               in_slot=lay["input"]["slot_bytes"], out_slot=lay["output"]["slot_bytes"], **card)
    out = {name: render(f"vitis/{name}.j2", **ctx) for name in
           ("kernel.xml", "package_kernel.tcl", "link.cfg", "build.sh", "host/host.cpp", "host/Makefile")}
    if board == "aws-f1":
        out["create_afi.sh"] = render("vitis/create_afi.sh.j2", **ctx)
    return out


def _build(vitis: Path, xclbin: str, keep_log: Path) -> Path | None:
    """Run build.sh when Vivado and v++ are on PATH; the xclbin it made, or None when the tools are missing.

    A failed build leaves no bundle, so its log is kept beside the output directory.
    """
    if not (find_tool("vivado") and find_tool("v++")):
        return None
    logf = vitis / "build.log"
    with logf.open("w") as f:
        rc = subprocess.run(["bash", str(vitis / "build.sh")], cwd=vitis, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not (vitis / "bondflow.xclbin").is_file():
        shutil.copy(logf, keep_log)
        raise ToolFailedError("v++", rc or 1, keep_log, logf.read_text()[-2000:] or "no bondflow.xclbin produced",
                              ["bash", "build.sh"])
    if xclbin != "bondflow.xclbin":  # F1: the AFI step (create_afi.sh) makes the .awsxclbin, only AWS can run it
        return None
    return vitis / "bondflow.xclbin"


def deploy_card(design_dir: Path, board: str, out: Path, force: bool = False, build: bool = True,
                in_word_bits: int | None = None, out_word_bits: int | None = None) -> Path:
    """Write a data-centre bundle; an xclbin that cannot be built here is recorded with the commands, not faked."""
    if board not in CARDS:
        raise ConfigError(f"card must be one of {', '.join(CARDS)}, not {board!r}")
    card = CARDS[board]
    kd = kernel_design(Design.load(design_dir), in_word_bits, out_word_bits)
    with atomic_dir(Path(out), force=force) as tmp:
        kd.write(tmp / "kernel")
        vitis = tmp / "vitis"
        for rel, text in vitis_files(kd, board).items():
            p = vitis / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            if p.suffix == ".sh":
                os.chmod(p, 0o755)
        write_driver(tmp / "bondflow_driver", '"""bondflow data-centre driver (numpy + pynq on XRT)."""\n'
                     "from .xrt_accelerator import *  # noqa: F401,F403\n"
                     "from .xrt_accelerator import KernelAccelerator as Accelerator  # the Zynq driver's name\n")
        lay = kd.info["kernel"]
        howto = (f"cd vitis && ./build.sh (Vivado + Vitis with platform {card['platform']})"
                 + (", then S3_BUCKET=... ./create_afi.sh (AWS credentials) for bondflow.awsxclbin" if board == "aws-f1" else ""))
        manifest = {"driver_format": 1, "kind": "xrt-kernel", "bondflow_version": __version__, "board": board,
                    "platform": card["platform"], "part": card["part"], "device_match": card["device_match"],
                    "pynq_memory": card["pynq_memory"], "memory": card["memory"], "clock_mhz": card["clock_mhz"],
                    "arch": kd.options["core_arch"], "design_digest": kd.options["core_digest"],
                    "kernel_digest": kd.digest(), "graph_digest": kd.graph_digest,
                    "interface": kd.interface.to_dict() if kd.interface else None, "shapes": bundle_shapes(Path(design_dir)),
                    "kernel": {**lay, "name": KERNEL_NAME, "instance": f"{KERNEL_NAME}_1"},
                    "xclbin": None, "xclbin_sha256": None, "xclbin_howto": howto}
        built = _build(vitis, card["xclbin"], Path(out).with_name(Path(out).name + ".vitis-build.log")) if build else None
        if built is not None:
            shutil.copy(built, tmp / card["xclbin"])
            manifest.update(xclbin=card["xclbin"],
                            xclbin_sha256=hashlib.sha256((tmp / card["xclbin"]).read_bytes()).hexdigest())
        else:
            (tmp / "MISSING_XCLBIN.txt").write_text(f"No {card['xclbin']} yet. {howto}\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return Path(out)
