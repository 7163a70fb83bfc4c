#!/usr/bin/env bash
# Installs every Debian package moescope builds and tests with. Idempotent: when all are present it
# only checks and returns. The CUDA toolkit (cuBLAS, CUPTI, NCCL, NVTX) is not a Debian package here;
# it is used from /usr/local/cuda when present and the GPU parts are left out otherwise.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libsqlite3-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev
  libpcre2-dev zlib1g-dev
  openmpi-bin libopenmpi-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  qt6-base-dev qt6-svg-dev libqt6opengl6-dev libgl-dev libxkbcommon-dev
  python3 clang-format
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
