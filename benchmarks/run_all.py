"""Run every benchmarks/bench_*.py in turn; each prints its figures and writes benchmarks/results/<name>.json."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for bench in sorted(HERE.glob("bench_*.py")):
        print(f"== {bench.name}", flush=True)
        if subprocess.run([sys.executable, str(bench)]).returncode != 0:
            failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
