"""Deploy bundles: manifest, numpy+pynq driver, bitstream/hwh when a Vivado flow produced them, and the RTL."""
from __future__ import annotations

import hashlib
import json
import shutil
from importlib.resources import files
from pathlib import Path

from .. import __version__
from ..design import Design
from .shapes import bundle_shapes
from ..errors import ConfigError, DesignError
from ..fsutil import atomic_dir

__all__ = ["deploy", "write_driver", "BOARDS"]

#: Zynq boards with an AXI DMA (hier_0/axi_dma_0) block design; widths as hls4ml's PYNQ flow uses.
BOARDS = {"pynq-z2": {"part": "xc7z020", "data_width": 64, "length_width": 26},
          "zcu102": {"part": "xczu9eg", "data_width": 128, "length_width": 26}}


def write_driver(pkg: Path, init: str) -> None:
    """The bundle's ``bondflow_driver`` package: both drivers plus verbatim copies of the one definition of lane
    packing (stream.py) and of fixed-point quantization (fixed.py), so it needs numpy and pynq only."""
    pkg.mkdir()
    rt = files("bondflow") / "deploy" / "runtime"
    (pkg / "__init__.py").write_text(init)
    for name in ("accelerator.py", "xrt_accelerator.py"):
        (pkg / name).write_text((rt / name).read_text())
    (pkg / "stream.py").write_text((files("bondflow") / "stream.py").read_text())
    (pkg / "fixed.py").write_text((files("bondflow") / "ir" / "types.py").read_text())


def deploy(design_dir: str | Path, board: str, out: str | Path, force: bool = False, build: bool = True) -> Path:
    """Write the bundle; a missing bitstream is recorded with the command that makes it, not faked.

    Zynq boards get an AXI-DMA bundle; data-centre cards (deploy/card.py) get an XRT kernel bundle.
    """
    from .card import CARDS, deploy_card
    if board in CARDS:
        return deploy_card(Path(design_dir), board, Path(out), force=force, build=build)
    if board not in BOARDS:
        raise ConfigError(f"board must be one of {', '.join([*BOARDS, *CARDS])}, not {board!r}")
    design_dir = Path(design_dir)
    d = Design.load(design_dir)
    if d.language != "verilog" or d.interface is None:
        raise DesignError(f"design must have RTL behind the stream shell to deploy, not '{d.language}' ({d.arch})")
    b = BOARDS[board]
    bit = next(iter(sorted(design_dir.glob(f"synth/{b['part']}-*/bondflow.bit"))), None)
    with atomic_dir(Path(out), force=force) as tmp:
        write_driver(tmp / "bondflow_driver", '"""bondflow board driver (numpy + pynq)."""\nfrom .accelerator import *  # noqa: F401,F403\n')
        shutil.copytree(design_dir, tmp / "design", ignore=shutil.ignore_patterns("sim", "synth"))
        manifest = {"driver_format": 1, "bondflow_version": __version__, "board": board, "arch": d.arch,
                    "design_digest": d.digest(), "graph_digest": d.graph_digest, "interface": d.interface.to_dict(),
                    "tlast_mode": d.info.get("tlast_mode", 0), "latency_cycles": d.latency_cycles, "ii_cycles": d.ii_cycles,
                    "dma": {"path": "hier_0/axi_dma_0", "data_width": b["data_width"], "length_width": b["length_width"]},
                    "shapes": bundle_shapes(design_dir), "bitstream": None, "bitstream_sha256": None,
                    "bitstream_howto": f"bondflow synth {design_dir} --target {b['part']} --vivado (needs Vivado), then deploy again"}
        if bit is not None and bit.with_suffix(".hwh").exists():
            shutil.copy(bit, tmp / "bondflow.bit")
            shutil.copy(bit.with_suffix(".hwh"), tmp / "bondflow.hwh")
            manifest.update(bitstream="bondflow.bit", bitstream_sha256=hashlib.sha256(bit.read_bytes()).hexdigest())
        else:
            (tmp / "MISSING_BITSTREAM.txt").write_text(f"No bitstream yet. {manifest['bitstream_howto']}\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return Path(out)
