#!/usr/bin/env bash
# Installs everything the build, the tests, the fuzzers and the Wine driver
# tests need on a fresh Debian machine. Idempotent: safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=0
for bin in wine64 x86_64-w64-mingw32-gcc x86_64-w64-mingw32-windmc x86_64-w64-mingw32-windres x86_64-w64-mingw32-dlltool osslsigncode valgrind openssl python3 pgrep setsid timeout addr2line; do
  command -v "$bin" >/dev/null 2>&1 || need_apt=1
done
[ -f /usr/include/wine/wine/windows/ddk/fltkernel.h ] || need_apt=1
if [ "$need_apt" = 1 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    wine64 wine libwine-dev mingw-w64 osslsigncode valgrind openssl python3 procps util-linux coreutils binutils >/dev/null
fi

# The toolchain pinned in rust-toolchain.toml (installed explicitly: rustup's
# auto-install may be off), plus the targets and components the driver, the
# fuzzers and Miri need.
pinned=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain install "$pinned" --profile minimal >/dev/null
rustup show active-toolchain >/dev/null
rustup target add x86_64-pc-windows-msvc x86_64-pc-windows-gnu x86_64-unknown-none >/dev/null
rustup component add rustfmt clippy >/dev/null
rustup toolchain install nightly --profile minimal >/dev/null 2>&1 || true
rustup component add miri rust-src --toolchain nightly >/dev/null
rustup component add llvm-tools-preview --toolchain nightly >/dev/null
# Miri's sysroot (built once, cached in ~/.cache/miri) for scripts/miri.sh.
cargo +nightly miri setup >/dev/null 2>&1 || true

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --version 0.13.2 >/dev/null 2>&1 || cargo install cargo-fuzz --locked
fi
echo "setup: done"
