"""Read BondMachine's bondmachine.json (+ bminfo.json): processors, their opcodes and the bonds between them."""
from __future__ import annotations

from collections import Counter
from typing import Any

from ..cli.table import format_table

__all__ = ["summarize", "describe_bondmachine"]

# pkg/bondmachine's endpoint kinds (Map_to): BM input, BM output, CP input, CP output.
_KIND = {0: "i{e}", 1: "o{e}", 2: "p{r}i{e}", 3: "p{r}o{e}"}


def _name(ep: dict[str, Any]) -> str:
    return _KIND.get(int(ep.get("Map_to", -1)), "?{r}.{e}").format(r=ep.get("Res_id"), e=ep.get("Ext_id"))


def summarize(bm: dict[str, Any], bminfo: dict[str, Any] | None = None) -> dict[str, Any]:
    """Processors (index, name, role, opcodes, registers, ROM words) and bonds ``source -> sink``."""
    info = bminfo or {}
    names = {int(k): v for k, v in (info.get("CPNames") or {}).items()}
    roles = info.get("List") or {}
    domains = bm.get("Domains", [])
    procs = []
    for i, d in enumerate(bm.get("Processors", [])):
        dom = domains[d] if 0 <= d < len(domains) else {}
        name = names.get(i, f"p{i}")
        procs.append({"index": i, "name": name, "role": roles.get(name, "?"), "opcodes": list(dom.get("Op", [])),
                      "registers": 1 << int(dom.get("R", 0)), "inputs": dom.get("N", 0), "outputs": dom.get("M", 0),
                      "rom_words": len(dom.get("Slocs", []))})
    ins, outs = bm.get("Internal_inputs", []), bm.get("Internal_outputs", [])
    bonds = [(_name(outs[src]), _name(ins[k])) for k, src in enumerate(bm.get("Links", []))
             if src is not None and 0 <= src < len(outs) and k < len(ins)]
    return {"processors": len(procs), "register_size": bm.get("Rsize"), "inputs": bm.get("Inputs"), "outputs": bm.get("Outputs"),
            "processor_list": procs, "bonds": bonds, "bond_count": len(bonds),
            "roles": dict(Counter(p["role"] for p in procs))}


def describe_bondmachine(bm: dict[str, Any], bminfo: dict[str, Any] | None = None, max_bonds: int = 40) -> str:
    """Text for `bondflow info build/bondmachine`."""
    s = summarize(bm, bminfo)
    rows = [(p["index"], p["name"], p["role"], ",".join(p["opcodes"]), p["registers"], p["inputs"], p["outputs"], p["rom_words"])
            for p in s["processor_list"]]
    head = (f"{s['processors']} connecting processors ({', '.join(f'{v} {k}' for k, v in sorted(s['roles'].items()))}), "
            f"Rsize {s['register_size']}, {s['inputs']} inputs, {s['outputs']} outputs, {s['bond_count']} bonds")
    bonds = [f"bond {a} -> {b}" for a, b in s["bonds"][:max_bonds]]
    if s["bond_count"] > max_bonds:
        bonds.append(f"... {s['bond_count'] - max_bonds} more (bondmachine/bondmachine.json)")
    return "\n".join([head, format_table(("cp", "name", "role", "opcodes", "regs", "in", "out", "rom"), rows), *bonds])
