"""Exception hierarchy: every failure a user can cause or meet is one of these, with a one-line message."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = [
    "BondflowError", "UnsupportedOpError", "QuantizationError", "GraphValidationError",
    "ConfigError", "TemplateRenderError", "ToolNotFoundError", "ToolFailedError", "ToolTimeoutError",
    "SimulationMismatch", "SimulationError", "MissingDependencyError", "ModelLoadError",
    "DesignError", "OutputExistsError", "DoesNotFitError", "ClusterError",
    "OutputLockedError", "FidelityError", "NoDesignError", "unsupported_layers",
]


class BondflowError(Exception):
    """Base of all bondflow errors; the CLI prints ``str(err)`` on one line and exits ``exit_code``."""

    exit_code = 1


class ModelLoadError(BondflowError):
    """The model file is missing, unreadable, or not a model."""

    exit_code = 2


class UnsupportedOpError(BondflowError):
    """A layer or op that bondflow (or one architecture) cannot express."""

    exit_code = 3

    def __init__(self, op: str, node: str, supported: Sequence[str], where: str = "bondflow") -> None:
        self.op, self.node, self.supported = op, node, tuple(supported)
        super().__init__(
            f"layer '{node}' of type '{op}' is not supported by {where}; supported: {', '.join(sorted(self.supported))}"
        )


def unsupported_layers(found: Sequence[tuple[str, str]], supported: Sequence[str],
                       where: str = "bondflow") -> UnsupportedOpError:
    """One error naming every unsupported (kind, name) of a model: each kind with its count and first names."""
    if len(found) == 1:
        return UnsupportedOpError(found[0][0], found[0][1], supported, where)
    kinds: dict[str, list[str]] = {}
    for kind, name in found:
        kinds.setdefault(kind, []).append(name)
    parts = [f"{kind} x{len(names)} ({', '.join(repr(n) for n in names[:3])}{', ...' if len(names) > 3 else ''})"
             for kind, names in kinds.items()]
    err = UnsupportedOpError(found[0][0], found[0][1], supported, where)
    err.args = (f"{len(found)} layers are not supported by {where}: {'; '.join(parts)}; supported: "
                f"{', '.join(sorted(err.supported))}",)
    err.found = tuple(found)
    return err


class QuantizationError(BondflowError):
    """A value or type that cannot be represented as asked (overflow, bad precision, NaN)."""

    exit_code = 4


class GraphValidationError(BondflowError):
    """The graph is malformed (cycle, dangling input, shape or type mismatch)."""

    exit_code = 5


class ConfigError(BondflowError):
    """An option or argument has a wrong value."""

    exit_code = 6


class TemplateRenderError(BondflowError):
    """A generator template failed to render: a bug in the generator."""

    exit_code = 7


class ToolNotFoundError(BondflowError):
    """An external tool is not installed."""

    exit_code = 8

    def __init__(self, tool: str, install_hint: str) -> None:
        self.tool = tool
        super().__init__(f"tool '{tool}' must be installed, not missing; install it with: {install_hint}")


class ToolFailedError(BondflowError):
    """An external tool exited non-zero (or panicked, or timed out)."""

    exit_code = 9

    def __init__(self, tool: str, rc: int, log: Path | None, stderr_tail: str, cmd: Sequence[str] = ()) -> None:
        self.tool, self.rc, self.log, self.stderr_tail, self.cmd = tool, rc, log, stderr_tail, tuple(cmd)
        lines = [line.strip() for line in stderr_tail.strip().splitlines() if line.strip()]
        errs = [line for line in lines if "error" in line.lower() and not line.lower().startswith("0 warnings")]
        tail = errs[0] if errs else " | ".join(lines[-3:])
        where = f" (log: {log})" if log else ""
        super().__init__(f"{tool} must exit 0, not {rc}{where}: {tail}")


class ToolTimeoutError(ToolFailedError):
    """An external tool ran past the time it was given (a user's --synth-timeout, or a step's own limit)."""

    def __init__(self, tool: str, timeout: float, log: Path | None, cmd: Sequence[str] = ()) -> None:
        super().__init__(tool, -9, log, f"timed out after {timeout:g} s", cmd)
        self.timeout = timeout
        where = f" (log: {log})" if log else ""
        self.args = (f"{tool} must finish within {timeout:g} s, not run longer{where}",)


class SimulationMismatch(BondflowError):
    """RTL outputs differ from the golden model."""

    exit_code = 10


class SimulationError(BondflowError):
    """A simulation could not run to completion (compile error, timeout)."""

    exit_code = 11


class MissingDependencyError(BondflowError):
    """An optional Python package is not installed."""

    exit_code = 12

    def __init__(self, package: str, purpose: str) -> None:
        super().__init__(f"python package '{package}' is required for {purpose}, not installed; run `make setup`")


class DesignError(BondflowError):
    """A design directory is missing its manifest or is inconsistent."""

    exit_code = 13


class OutputExistsError(BondflowError):
    """An output path exists and --force was not given."""

    exit_code = 14


class DoesNotFitError(BondflowError):
    """A design needs more resources than the target has."""

    exit_code = 15


class ClusterError(BondflowError):
    """A Dask scheduler cannot be reached or a local cluster cannot start."""

    exit_code = 16


class OutputLockedError(BondflowError):
    """Another bondflow run holds the lock on the output directory."""

    exit_code = 17


class FidelityError(BondflowError):
    """The design's outputs do not follow the source model as closely as the user demanded (--min-agreement, --max-error)."""

    exit_code = 18


class NoDesignError(BondflowError):
    """No design of a report meets the user's constraints (bondflow choose / flow)."""

    exit_code = 19
