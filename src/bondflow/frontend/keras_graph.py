"""The layers of a tf_keras model in topological order, each with the layers it reads (functional graphs by inbound nodes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UnsupportedOpError

__all__ = ["LayerNode", "layer_graph", "MODEL_INPUT"]

#: The name standing for the model's input tensor among a layer's inputs.
MODEL_INPUT = "\x00input"


@dataclass(frozen=True)
class LayerNode:
    """One layer and the names of the layers whose outputs it reads (``MODEL_INPUT`` for the model's input)."""

    layer: Any
    inputs: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.layer.name)


def layer_graph(model: Any, supported: tuple[str, ...]) -> list[LayerNode]:
    """Every layer of ``model`` in topological order, the model's output layer last.

    A Sequential model is its layer list, each layer reading the one before (as bondflow always read it);
    a functional model is walked by its inbound nodes. Shared layers (called twice), layers off the path
    to the single output, and several outputs are refused in one line.
    """
    if not getattr(model, "_is_graph_network", False) or type(model).__name__ == "Sequential" or not _functional(model):
        nodes, prev = [], MODEL_INPUT
        for layer in model.layers:
            if type(layer).__name__ == "InputLayer":
                continue
            nodes.append(LayerNode(layer, (prev,)))
            prev = layer.name
        return nodes
    cfg = model.get_config()
    by_name = {l.name: l for l in model.layers}
    inputs_of: dict[str, tuple[str, ...]] = {}
    for entry in cfg["layers"]:
        name = entry.get("name") or entry["config"]["name"]
        calls = entry.get("inbound_nodes") or []
        if len(calls) > 1:
            raise UnsupportedOpError(f"{entry['class_name']} called {len(calls)} times (a shared layer)", name, supported,
                                     "bondflow (each layer must be used once)")
        srcs = _inbound_names(calls[0]) if calls else ()
        inputs_of[name] = tuple(MODEL_INPUT if type(by_name[s]).__name__ == "InputLayer" else s for s in srcs)
    outs = cfg.get("output_layers") or []
    if len(outs) != 1:
        raise UnsupportedOpError(f"model with {len(outs)} outputs", model.name, ["a single-output model"])
    out = outs[0][0]
    needed = _ancestors(out, inputs_of)
    unused = [n for n in inputs_of if n not in needed and type(by_name[n]).__name__ != "InputLayer"]
    if unused:
        raise UnsupportedOpError(f"{type(by_name[unused[0]]).__name__} off the path to the output", unused[0], supported,
                                 "bondflow (every layer must lead to the single output)")
    order: list[LayerNode] = []
    done = {MODEL_INPUT}
    pending = [l for l in model.layers if l.name in needed]
    while pending:  # Kahn's algorithm, keeping Keras's own order among ready layers
        ready = next((l for l in pending if set(inputs_of[l.name]) <= done), None)
        if ready is None:
            raise UnsupportedOpError("cyclic layer graph", pending[0].name, supported)
        pending.remove(ready)
        done.add(ready.name)
        order.append(LayerNode(ready, inputs_of[ready.name]))
    return order


def _functional(model: Any) -> bool:
    """Whether the model has an inbound-node graph to walk (a functional model, not a subclassed one)."""
    try:
        cfg = model.get_config()
    except (NotImplementedError, TypeError):
        return False
    return isinstance(cfg, dict) and isinstance(cfg.get("layers"), list) and "output_layers" in cfg


def _inbound_names(call: Any) -> tuple[str, ...]:
    """Layer names of one call's inbound tensors: tf_keras writes ``[[name, node, tensor, kwargs], ...]``
    (or ``{"args": ...}`` in newer configs)."""
    if isinstance(call, dict):  # Keras 3 style, in case a rebuilt config carries it
        call = call.get("args", [])
    names = []
    for item in call:
        if isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            names.append(item[0])
        elif isinstance(item, dict) and "config" in item:  # a keras_history dict
            names.append(item["config"]["keras_history"][0])
    return tuple(names)


def _ancestors(name: str, inputs_of: dict[str, tuple[str, ...]]) -> set[str]:
    seen, stack = set(), [name]
    while stack:
        n = stack.pop()
        if n in seen or n == MODEL_INPUT:
            continue
        seen.add(n)
        stack.extend(inputs_of.get(n, ()))
    return seen
