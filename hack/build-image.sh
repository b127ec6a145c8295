#!/usr/bin/env bash
# Build the aihpa container image from Debian and PyPI packages alone, with no registry base image: mmdebstrap makes a
# minimal Debian rootfs with python3, the wheel built from this repository is pip-installed with its dependencies into
# the venv /opt/aihpa inside it, and buildah commits that rootfs as a one-layer OCI image.
#
# The image keeps the Dockerfile's contract: user 65532, ENTRYPOINT ["aihpa"], no compiler, the default model inside
# (package data of the wheel), and nothing written outside /tmp at run time (read-only root filesystem).
#
# Usage: hack/build-image.sh            (or `make image`)
# Environment:
#   IMAGE      name of the image in the local containers storage (default aihpa:<version in pyproject.toml>)
#   ARCHIVE    also write the image to this file as a docker-archive (`docker load`, `podman load`,
#              `kind load image-archive`, `ctr images import`)
#   SUITE      Debian release of the rootfs (default bookworm, whose python3 is 3.11)
#   MIRROR     Debian mirror (default: mmdebstrap's, deb.debian.org)
#   CACHE_DIR  pip's download cache across builds (default build/image/pip-cache)
#   PYTHON     Python on this machine that builds the wheel (default python3)
# Needs: mmdebstrap and buildah, run as root (or where mmdebstrap's unshare mode and rootless buildah work), and
# network access to the Debian mirror and to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=/opt/aihpa

# --install-into ROOTFS WHEEL WHEELS PYTHON CACHE_DIR: the mmdebstrap customize hook. This machine's pip downloads the
# wheels for the rootfs's Python and glibc (so that this machine's proxy, certificates and mirrors apply), and the
# rootfs's own pip installs exactly those, offline, into the venv; pip itself is then removed.
install_into() {
  local root=$1 wheel=$2 wheels=$3 PYTHON=$4 CACHE_DIR=$5
  local in_root=(chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp)
  local python glibc arch
  python=$("${in_root[@]}" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  glibc=$("${in_root[@]}" python3 -c 'import platform; print(platform.libc_ver()[1])')
  arch=$("${in_root[@]}" python3 -c 'import sysconfig; print(sysconfig.get_platform().split("-", 1)[1])')
  local platforms=(--platform "manylinux2014_$arch")
  for ((minor = 17; minor <= ${glibc#2.}; minor++)); do platforms+=(--platform "manylinux_2_${minor}_$arch"); done
  "$PYTHON" -m pip download --quiet --only-binary=:all: --dest "$wheels" --cache-dir "$CACHE_DIR" \
    --python-version "$python" --implementation cp --abi "cp${python/./}" "${platforms[@]}" "$wheel"
  mkdir -p "$root/tmp/wheels"
  cp "$wheels"/*.whl "$root/tmp/wheels/"
  "${in_root[@]}" python3 -m venv "$VENV"
  "${in_root[@]}" "$VENV/bin/python" -m pip install --quiet --no-index --no-cache-dir --disable-pip-version-check \
    --find-links /tmp/wheels "/tmp/wheels/$(basename "$wheel")"
  "${in_root[@]}" "$VENV/bin/python" -m pip uninstall --quiet --yes pip setuptools
  rm -rf "$root/tmp/wheels"
  # the dependencies' own test suites (numpy, scipy, pandas, statsmodels, matplotlib): a tenth of the image, never run
  find "$root$VENV/lib" -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*' -exec rm -rf {} +
  "${in_root[@]}" "$VENV/bin/aihpa" --version
  echo 'nonroot:x:65532:65532:aihpa:/tmp:/usr/sbin/nologin' >>"$root/etc/passwd"
  echo 'nonroot:x:65532:' >>"$root/etc/group"
  rm -rf "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*
}
if [[ ${1:-} == --install-into ]]; then
  install_into "$2" "$3" "$4" "$5" "$6"
  exit
fi

PYTHON=$(command -v "${PYTHON:-python3}")
SUITE=${SUITE:-bookworm}
CACHE_DIR=$(mkdir -p "${CACHE_DIR:-build/image/pip-cache}" && cd "${CACHE_DIR:-build/image/pip-cache}" && pwd)
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE=${IMAGE:-aihpa:$VERSION}

for tool in mmdebstrap buildah; do
  if ! command -v "$tool" >/dev/null; then
    echo "build-image: $tool is not installed (apt-get install mmdebstrap buildah)" >&2
    exit 1
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/aihpa-image.XXXXXX")
container=""
cleanup() {
  if [[ -n $container ]]; then buildah rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

started=$SECONDS
echo "build-image: the aihpa $VERSION wheel"
# from a clean copy of the sources, so that no stale build/ or egg-info of the checkout ends up in the wheel
mkdir -p "$work/src" "$work/wheel"
tar --exclude=__pycache__ --exclude='*.egg-info' -cf - pyproject.toml README.md src | tar -xf - -C "$work/src"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$work/wheel" "$work/src"
wheel=$(cd "$work/wheel" && ls aihpa-*.whl)

echo "build-image: the Debian $SUITE rootfs with the package in $VENV ($((SECONDS - started)) s)"
# Essential packages only (no apt in the image), documentation and translations left out (copyrights kept); /usr
# merged by mmdebstrap's hook, so that usrmerge (and the whole of perl with it) stays out. The customize hook (this
# script again, --install-into) installs the package into the rootfs.
mmdebstrap --variant=essential --include=python3,python3-venv,libstdc++6,ca-certificates,tzdata \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="'$PWD/hack/build-image.sh' --install-into \"\$1\" \
    '$work/wheel/$wheel' '$work/wheels' '$PYTHON' '$CACHE_DIR'" \
  "$SUITE" "$work/rootfs.tar" ${MIRROR:+"$MIRROR"}

echo "build-image: committing $IMAGE ($((SECONDS - started)) s)"
container=$(buildah from scratch)
buildah add --quiet "$container" "$work/rootfs.tar" / >/dev/null
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# HOME and MPLCONFIGDIR in /tmp, and no bytecode written: the root filesystem may be read-only (the chart's is)
buildah config \
  --user 65532:65532 \
  --workingdir /tmp \
  --entrypoint '["aihpa"]' \
  --cmd '["--help"]' \
  --env PATH=$VENV/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env HOME=/tmp \
  --env MPLCONFIGDIR=/tmp \
  --env PYTHONDONTWRITEBYTECODE=1 \
  --env PYTHONUNBUFFERED=1 \
  --port 8080/tcp --port 8443/tcp \
  --label org.opencontainers.image.title=aihpa \
  --label org.opencontainers.image.description="A predictive Horizontal Pod Autoscaler for Kubernetes" \
  --label org.opencontainers.image.version="$VERSION" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  --label org.opencontainers.image.created="$created" \
  --label org.opencontainers.image.base.name="debian:$SUITE (mmdebstrap, essential)" \
  "$container"
buildah commit --quiet --rm "$container" "$IMAGE" >/dev/null
container=""
if [[ -n ${ARCHIVE:-} ]]; then
  rm -f "$ARCHIVE"
  buildah push --quiet "$IMAGE" "docker-archive:$ARCHIVE:$IMAGE" >/dev/null
  echo "build-image: wrote $ARCHIVE"
fi
echo "build-image: built $IMAGE in $((SECONDS - started)) s ($(buildah images --format '{{.Size}}' "$IMAGE"))"
