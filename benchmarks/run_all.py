"""Run every benchmarks/bench_*.py in turn (but the hour-long ones in BY_HAND); each writes benchmarks/results/<name>.json."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Benchmarks that take an hour or more on 2 cores: run by hand (their docstrings say how).
BY_HAND = {"bench_cnn_ecp5.py"}


def main() -> int:
    failed = []
    for bench in sorted(HERE.glob("bench_*.py")):
        if bench.name in BY_HAND:
            print(f"== {bench.name}: skipped (an hour or more; run it by hand)", flush=True)
            continue
        print(f"== {bench.name}", flush=True)
        if subprocess.run([sys.executable, str(bench)]).returncode != 0:
            failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
