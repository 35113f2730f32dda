#!/usr/bin/env bash
# Host set-up for running the benchmarks in Docker on an NVIDIA GPU: driver, Docker Engine and the
# NVIDIA Container Toolkit, on Ubuntu 22.04 or 24.04. Idempotent: each step checks first and changes
# nothing that is already in place. Run it with sudo; --dry-run prints what it would do.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: sudo ./install_cuda_docker.sh [--dry-run] [--no-check]

Prepares an Ubuntu 22.04 / 24.04 host to run the benchmarks' Docker images on NVIDIA GPUs:
  1. NVIDIA driver: kept if nvidia-smi works; otherwise installed with `ubuntu-drivers install`
     (a reboot is then needed before the GPU can be used).
  2. Docker Engine: kept if `docker version` reaches a server; otherwise installed from Docker's
     official apt repository (docker-ce, containerd.io, buildx and compose plugins).
  3. NVIDIA Container Toolkit: kept if installed; otherwise installed from NVIDIA's apt repository
     and registered as a Docker runtime with `nvidia-ctk runtime configure --runtime=docker`.
  4. Check: `docker run --rm --gpus all ubuntu:24.04 nvidia-smi` (skip with --no-check).
The user who ran sudo is added to the docker group (log in again for it to take effect).

Options:
  --dry-run   print the commands that would change the system, change nothing
  --no-check  skip the final GPU-in-Docker check
  -h, --help  this text

Environment: OS_RELEASE (default /etc/os-release) is read to identify the host.
EOF
}

DRY_RUN=0
CHECK=1
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --dry-run) DRY_RUN=1 ;;
    --no-check) CHECK=0 ;;
    *) echo "install_cuda_docker.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "[install_cuda_docker] $*"; }
die() { echo "[install_cuda_docker] error: $*" >&2; exit 1; }
# Every command that changes the system goes through run, so --dry-run shows the whole plan.
run() {
  if [ "$DRY_RUN" = 1 ]; then echo "+ $*"; else "$@"; fi
}

# --- the host must be a supported Ubuntu ---------------------------------------------------------
OS_RELEASE=${OS_RELEASE:-/etc/os-release}
[ -r "$OS_RELEASE" ] || die "cannot read $OS_RELEASE to identify this system"
# shellcheck disable=SC1090
. "$OS_RELEASE"
case "${ID:-}:${VERSION_ID:-}" in
  ubuntu:22.04|ubuntu:24.04) say "host: ${PRETTY_NAME:-Ubuntu $VERSION_ID}" ;;
  *) die "this script supports Ubuntu 22.04 and 24.04 only; this host is '${PRETTY_NAME:-${ID:-unknown}}'.
  On other systems install the NVIDIA driver, Docker Engine (https://docs.docker.com/engine/install/)
  and the NVIDIA Container Toolkit (https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/)
  by hand. Nothing was changed." ;;
esac
CODENAME=${VERSION_CODENAME:-}
[ -n "$CODENAME" ] || die "$OS_RELEASE has no VERSION_CODENAME"
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo ./install_cuda_docker.sh); use --dry-run to see the plan without root"
fi
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)

# --- 1. NVIDIA driver ----------------------------------------------------------------------------
NEED_REBOOT=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  say "NVIDIA driver present: $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
else
  if command -v lspci >/dev/null 2>&1 && ! lspci | grep -qi nvidia; then
    die "no NVIDIA GPU found by lspci; the benchmarks' Docker images need one. Nothing was changed."
  fi
  say "installing the NVIDIA driver recommended by ubuntu-drivers"
  run apt-get update
  run apt-get install -y ubuntu-drivers-common
  run ubuntu-drivers install
  NEED_REBOOT=1
fi

# --- 2. Docker Engine ----------------------------------------------------------------------------
if command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
  say "Docker Engine present: $(docker version --format '{{.Server.Version}}')"
else
  say "installing Docker Engine from download.docker.com"
  run apt-get update
  run apt-get install -y ca-certificates curl gnupg
  run install -m 0755 -d /etc/apt/keyrings
  run curl -fsSL https://download.docker.com/linux/ubuntu/gpg -o /etc/apt/keyrings/docker.asc
  run chmod a+r /etc/apt/keyrings/docker.asc
  line="deb [arch=$ARCH signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/ubuntu $CODENAME stable"
  if [ "$DRY_RUN" = 1 ]; then echo "+ echo '$line' > /etc/apt/sources.list.d/docker.list"
  else echo "$line" > /etc/apt/sources.list.d/docker.list; fi
  run apt-get update
  run apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin
  run systemctl enable --now docker
fi
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && ! id -nG "$SUDO_USER" 2>/dev/null | grep -qw docker; then
  run usermod -aG docker "$SUDO_USER"
  say "added $SUDO_USER to the docker group (log in again to use docker without sudo)"
fi

# --- 3. NVIDIA Container Toolkit -----------------------------------------------------------------
if dpkg -s nvidia-container-toolkit >/dev/null 2>&1; then
  say "NVIDIA Container Toolkit present: $(dpkg-query -W -f='${Version}' nvidia-container-toolkit)"
else
  say "installing the NVIDIA Container Toolkit from nvidia.github.io"
  keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  list_url=https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list
  if [ "$DRY_RUN" = 1 ]; then
    echo "+ curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o $keyring"
    echo "+ curl -fsSL $list_url | sed 's#deb https://#deb [signed-by=$keyring] https://#g' > /etc/apt/sources.list.d/nvidia-container-toolkit.list"
  else
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --batch --yes --dearmor -o "$keyring"
    curl -fsSL "$list_url" | sed "s#deb https://#deb [signed-by=$keyring] https://#g" \
      > /etc/apt/sources.list.d/nvidia-container-toolkit.list
  fi
  run apt-get update
  run apt-get install -y nvidia-container-toolkit
fi
# Registering the runtime is idempotent; restart Docker only when the configuration changed.
if ! grep -q '"nvidia"' /etc/docker/daemon.json 2>/dev/null; then
  run nvidia-ctk runtime configure --runtime=docker
  run systemctl restart docker
else
  say "Docker already knows the nvidia runtime"
fi

# --- 4. check --------------------------------------------------------------------------------------
if [ "$NEED_REBOOT" = 1 ]; then
  say "the NVIDIA driver was installed: reboot, then run this script again to check the set-up"
  exit 0
fi
if [ "$CHECK" = 1 ]; then
  say "checking: docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L"
  run docker run --rm --gpus all ubuntu:24.04 nvidia-smi -L
fi
say "done"
