"""The container image that `make image` (hack/build-image.sh) builds from Debian and PyPI packages: its contract with
the Helm chart (user 65532, `aihpa` as the entrypoint, no compiler, the default model inside), `aihpa --version` and
the webhook's /healthz run inside it (with podman, or with buildah's chroot isolation where podman cannot start a
container), and the Dockerfile kept in step.

Building needs root, mmdebstrap, buildah and the network (a Debian mirror and PyPI); without the tools or root the
build tests skip, naming what is missing."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import ssl
import subprocess
import sys
import tarfile
import threading
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
SITE_PACKAGES = re.compile(r"^opt/aihpa/lib/python3\.\d+/site-packages/")
#: Executables that would mean a toolchain in the image.
COMPILERS = frozenset({"cc", "c++", "gcc", "g++", "cpp", "clang", "clang++", "tcc", "as", "ld", "ld.bfd", "ld.gold",
                       "cc1", "cc1plus", "x86_64-linux-gnu-gcc", "aarch64-linux-gnu-gcc"})
#: Where programs live (bin and sbin are links into usr on Debian since bookworm).
PROGRAM_DIRS = ("bin/", "sbin/", "usr/bin/", "usr/sbin/", "usr/local/bin/", "usr/local/sbin/", "opt/aihpa/bin/")
BUILD_TIMEOUT_S = 1100
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Image:
    """The image built for this module: its name in the local containers storage and its docker-archive."""

    name: str
    archive: Path
    build_output: str


@dataclass(frozen=True)
class Contents:
    """What the archive holds: the image config, the entries of its layers by path, and /etc/passwd."""

    config: dict[str, Any]
    repo_tags: list[str]
    files: dict[str, tarfile.TarInfo]
    passwd: str


def missing_build_requirements() -> str | None:
    tools = [tool for tool in ("mmdebstrap", "buildah") if shutil.which(tool) is None]
    if tools:
        return f"building the image needs {' and '.join(tools)} (apt-get install mmdebstrap buildah)"
    if os.geteuid() != 0:
        return "building the image needs root (mmdebstrap's root mode, buildah's storage)"
    return None


def run(*command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    reason = missing_build_requirements()
    if reason:
        pytest.skip(reason)
    name = f"localhost/aihpa-test:{VERSION}"
    archive = tmp_path_factory.mktemp("image") / "aihpa.tar"
    env = {**os.environ, "IMAGE": name, "ARCHIVE": str(archive), "PYTHON": sys.executable}
    build = subprocess.run([str(ROOT / "hack" / "build-image.sh")], capture_output=True, text=True, env=env,
                           timeout=BUILD_TIMEOUT_S, check=False)
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-4000:]
    try:
        yield Image(name, archive, output)
    finally:
        run("buildah", "rmi", name)


@pytest.fixture(scope="module")
def contents(image: Image) -> Contents:
    with tarfile.open(image.archive) as outer:
        (manifest,) = json.load(extract(outer, "manifest.json"))
        config = json.load(extract(outer, manifest["Config"]))
        files: dict[str, tarfile.TarInfo] = {}
        passwd = ""
        for layer in manifest["Layers"]:
            with tarfile.open(fileobj=extract(outer, layer), mode="r|*") as inner:
                for member in inner:
                    path = member.name.removeprefix("./")
                    files[path] = member
                    if path == "etc/passwd":
                        passwd = extract(inner, member).read().decode()
    return Contents(config["config"], manifest.get("RepoTags") or [], files, passwd)


def extract(archive: tarfile.TarFile, name: str | tarfile.TarInfo) -> IO[bytes]:
    member = archive.extractfile(name)
    assert member is not None, name
    return member


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_the_image_runs_aihpa_as_user_65532_with_the_versions_labels(image: Image, contents: Contents) -> None:
    assert f"build-image: built {image.name}" in image.build_output
    assert image.name in contents.repo_tags
    config = contents.config
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["aihpa"]
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].split(":")[0] == "/opt/aihpa/bin"
    # the chart's root filesystem is read-only: caches and bytecode must not be written outside /tmp
    assert (env["HOME"], env["MPLCONFIGDIR"], env["PYTHONDONTWRITEBYTECODE"]) == ("/tmp", "/tmp", "1")
    assert "\nnonroot:x:65532:65532:" in contents.passwd


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_the_user_cannot_change_the_installed_code(contents: Contents) -> None:
    installed = {path: entry for path, entry in contents.files.items() if path.startswith("opt/aihpa/")}
    assert len(installed) > 1000
    assert {entry.uid for entry in installed.values()} == {0}
    assert not [path for path, entry in installed.items() if not entry.issym() and entry.mode & 0o022]


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_the_image_holds_the_default_model_and_no_compiler_or_pip(contents: Contents) -> None:
    packaged = {SITE_PACKAGES.sub("", path) for path in contents.files if SITE_PACKAGES.match(path)}
    model = ROOT / "src" / "aihpa" / "models" / "default"
    shipped = {f"aihpa/models/default/{p.relative_to(model).as_posix()}" for p in model.rglob("*") if p.is_file()}
    assert shipped and shipped <= packaged
    assert "aihpa/cli.py" in packaged
    programs = {PurePosixPath(path).name for path, entry in contents.files.items()
                if path.startswith(PROGRAM_DIRS) and not entry.isdir()}
    assert "python3" in programs and "aihpa" in programs
    assert programs & COMPILERS == set()
    assert not [name for name in programs if name.startswith(("gcc-", "g++-", "clang-", "x86_64-linux-gnu-"))]
    assert not any(path.startswith(("usr/lib/gcc/", "usr/libexec/gcc/")) for path in contents.files)
    assert "opt/aihpa/bin/pip" not in contents.files
    assert not any("/site-packages/pip/" in path for path in contents.files)
    assert "usr/bin/apt-get" not in contents.files
    # the dependencies' test suites are left out
    assert not any(re.search(r"/site-packages/(numpy|scipy|pandas)/(.+/)?tests/", path) for path in contents.files)


@dataclass(frozen=True)
class Runtime:
    """How to run the image's `aihpa` with arguments: the command up to them."""

    name: str
    prefix: list[str]

    def command(self, *args: str) -> list[str]:
        return [*self.prefix, *args]


@pytest.fixture(scope="module")
def runtime(image: Image) -> Iterator[Runtime]:
    """podman (read-only root, /tmp a tmpfs, the host's network for 127.0.0.1) where it can start a container, else
    buildah's chroot isolation (no cgroups, no OCI runtime) on a working container of the image."""
    reasons = []
    if shutil.which("podman"):
        podman = ["podman", "run", "--rm", "--read-only", "--tmpfs", "/tmp:rw,mode=1777", "--network", "host",
                  "--user", "65532:65532"]
        probe = run(*podman, "--entrypoint", "/bin/true", image.name)
        if probe.returncode == 0:
            yield Runtime("podman", [*podman, image.name])
            return
        reasons.append(f"podman cannot start a container here: {probe.stderr.strip()[-300:]}")
    else:
        reasons.append("podman is not installed")
    container = run("buildah", "from", image.name)
    if container.returncode != 0:
        pytest.skip("; ".join([*reasons, f"buildah from failed: {container.stderr.strip()[-300:]}"]))
    name = container.stdout.strip()
    try:
        buildah = ["buildah", "run", "--isolation", "chroot", "--user", "65532:65532", name, "--", "aihpa"]
        probe = run(*buildah[:-1], "/bin/true")
        if probe.returncode != 0:
            pytest.skip("; ".join([*reasons, f"buildah run cannot start it either: {probe.stderr.strip()[-300:]}"]))
        print(f"runtime: buildah run --isolation chroot ({'; '.join(reasons)})")
        yield Runtime("buildah", buildah)
    finally:
        run("buildah", "rm", name)


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_aihpa_version_runs_inside_the_image(runtime: Runtime) -> None:
    result = run(*runtime.command("--version"), timeout=START_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-2000:]
    print(f"{runtime.name}: {result.stdout.strip()}")
    assert result.stdout.strip() == f"aihpa {VERSION}"


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 120)
def test_the_webhook_inside_the_image_serves_healthz_on_127_0_0_1(runtime: Runtime) -> None:
    command = runtime.command("webhook", "--host", "127.0.0.1", "--port", "0", "--cert-dir", "/tmp/tls",
                              "--self-signed")
    lines: queue.Queue[str | None] = queue.Queue()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as server:
        assert server.stderr is not None
        reader = threading.Thread(target=forward_lines, args=(server.stderr, lines), daemon=True)
        reader.start()
        try:
            port = serving_port(lines)
            context = ssl.create_default_context()
            # the certificate is self-signed inside the container, and its CA stays there: the listener is the point
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=10) as response:
                health = json.load(response)
            assert health["status"] == "ok"
            assert health["certificate"]["selfManaged"] is True
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
            reader.join(timeout=10)


def forward_lines(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def serving_port(lines: queue.Queue[str | None]) -> int:
    """The port from the webhook's "serving https://127.0.0.1:PORT/mutate" line, read within START_TIMEOUT_S."""
    seen: list[str] = []
    for _ in range(1000):  # bounded: the webhook prints a handful of lines before it serves
        try:
            line = lines.get(timeout=START_TIMEOUT_S)
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        found = re.search(r"serving https://127\.0\.0\.1:(\d+)/mutate", line)
        if found:
            return int(found.group(1))
    raise AssertionError("the webhook did not start serving:\n" + "".join(seen[-40:]))


def test_the_dockerfile_keeps_the_same_contract() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"ARG VERSION={VERSION}\n" in dockerfile
    assert "USER 65532:65532\n" in dockerfile
    assert 'ENTRYPOINT ["aihpa"]\n' in dockerfile
    assert "--only-binary=:all:" in dockerfile
    final_stage = dockerfile.rpartition("\nFROM ")[2]
    assert "COPY --from=build /opt/aihpa /opt/aihpa" in final_stage
    assert "HOME=/tmp" in final_stage and "PYTHONDONTWRITEBYTECODE=1" in final_stage
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"*", "!pyproject.toml", "!README.md", "!src/"} <= set(ignored)
