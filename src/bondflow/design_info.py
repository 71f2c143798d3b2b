"""Human-readable summaries of generated designs for `bondflow info DESIGN_DIR`."""
from __future__ import annotations

import json

from .cli.table import format_table
from .design import Design

__all__ = ["describe"]


def describe(d: Design) -> str:
    head = (f"design: {d.arch}, top {d.top}, {d.language}, graph {d.graph_digest[:12]}, digest {d.digest()[:12]}\n"
            f"latency {d.latency_cycles} cycles, II {d.ii_cycles}"
            + (f"; stream in {d.interface.input.tdata_bits} bits x {d.interface.input.beats} beats, "
               f"out {d.interface.output.tdata_bits} bits x {d.interface.output.beats} beats" if d.interface else ""))
    if d.arch == "moldable" and "moldable.json" in d.files:
        m = json.loads(d.files["moldable.json"])
        rows = [(l["name"], c["name"], len(c["neurons"]), ",".join(c["opcodes"]), c["program_length"])
                for l in m["layers"] for c in l["cores"]]
        bonds = "\n".join(f"bond {b['from']} -> {b['to']} ({b['protocol']})" for b in m["bonds"])
        head += f"\n{sum(len(l['cores']) for l in m['layers'])} cores, {m.get('lanes', 1)} MAC lane(s) each"
        return "\n".join([head, format_table(("layer", "core", "neurons", "opcodes", "program"), rows), bonds])
    if d.arch == "bondmachine" and "bondmachine/bondmachine.json" in d.files:
        from .bondmachine.model import describe_bondmachine
        return head + "\n" + describe_bondmachine(json.loads(d.files["bondmachine/bondmachine.json"]),
                                                    json.loads(d.files.get("bondmachine/bminfo.json", "{}")))
    layers = d.info.get("layers")
    if layers:
        keys = list(layers[0])
        return "\n".join([head, format_table(keys, [[l[k] for k in keys] for l in layers])])
    return head + "\n" + json.dumps(dict(d.info), indent=1, default=str)[:2000]
