# The aihpa image for builders with a registry: `docker build -t aihpa:0.1.0 .` (or `podman build`, `buildah bud`).
# Without a registry, `make image` (hack/build-image.sh) builds the same image from Debian and PyPI packages.
# Contract of both: user 65532, ENTRYPOINT ["aihpa"], no compiler, the default model inside (package data), and
# nothing written outside /tmp at run time, so the root filesystem can be read-only (the Helm chart's is).
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
# every dependency ships manylinux wheels: --only-binary keeps a compiler out of the build as well
RUN python3 -m venv /opt/aihpa
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/aihpa/bin/pip install --no-cache-dir --disable-pip-version-check --only-binary=:all: /src \
 && /opt/aihpa/bin/pip uninstall --yes --quiet pip setuptools \
 && find /opt/aihpa/lib -depth -type d \( -name tests -o -name test \) -path '*/site-packages/*' -exec rm -rf {} + \
 && /opt/aihpa/bin/aihpa --version

FROM ${BASE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title=aihpa \
      org.opencontainers.image.description="A predictive Horizontal Pod Autoscaler for Kubernetes" \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.licenses=Apache-2.0
# the base image's pip, setuptools and wheel go too: nothing installs packages at run time
RUN python3 -m pip uninstall --yes --quiet pip setuptools wheel 2>/dev/null || true \
 && echo 'nonroot:x:65532:65532:aihpa:/tmp:/usr/sbin/nologin' >> /etc/passwd \
 && echo 'nonroot:x:65532:' >> /etc/group
COPY --from=build /opt/aihpa /opt/aihpa
# HOME and MPLCONFIGDIR in /tmp, and no bytecode written: the root filesystem may be read-only
ENV PATH=/opt/aihpa/bin:$PATH \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 8443
ENTRYPOINT ["aihpa"]
CMD ["--help"]
