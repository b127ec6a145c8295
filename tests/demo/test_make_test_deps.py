"""`make test` gets what the tests need: hack/ensure-test-deps.sh installs Prometheus when it can, else says how.

The script runs with a PATH of fakes only (`id`, `apt-get`, maybe `prometheus`), so nothing is installed for real:
the fake apt-get records its arguments and environment, and on `install` puts stub binaries on that PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "hack" / "ensure-test-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"
CHMOD = shutil.which("chmod") or "/bin/chmod"
INSTRUCTION = "sudo apt-get update && sudo apt-get install -y prometheus"


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _run(tmp_path: Path, *, uid: int = 0, apt: bool = True, installs: bool = True, fails: bool = False,
         present: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir, log = tmp_path / "bin", tmp_path / "apt-get.log"
    bin_dir.mkdir()
    _fake(bin_dir, "id", f'[ "$1" = "-u" ] && echo {uid}')
    for tool in present:
        _fake(bin_dir, tool, "exit 0")
    if apt:
        stubs = "\n".join(f'printf "#!/bin/sh\\n" > "{bin_dir}/{t}"\n{CHMOD} +x "{bin_dir}/{t}"'
                          for t in ("prometheus", "promtool"))
        _fake(bin_dir, "apt-get", f'echo "$DEBIAN_FRONTEND $*" >> "{log}"\necho "Unpacking prometheus ..."\n'
                                  f'if [ "$1" = "install" ]; then\n'
                                  f'{"echo E: Unable to locate package prometheus; exit 100" if fails else ""}\n'
                                  f'{stubs if installs else ":"}\nfi')
    done = subprocess.run([BASH, str(SCRIPT)], env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                          timeout=30, check=False)
    return done, log.read_text().splitlines() if log.exists() else []


def test_nothing_happens_when_prometheus_and_promtool_are_on_path(tmp_path: Path) -> None:
    done, apt_calls = _run(tmp_path, present=("prometheus", "promtool"))
    assert (done.returncode, apt_calls, done.stderr) == (0, [], "")


@pytest.mark.parametrize("present", [(), ("prometheus",)])
def test_as_root_with_apt_get_the_debian_package_is_installed_quietly(tmp_path: Path,
                                                                      present: tuple[str, ...]) -> None:
    done, apt_calls = _run(tmp_path, present=present)
    assert done.returncode == 0, done.stderr
    assert apt_calls == ["noninteractive update -qq",
                         "noninteractive install -y -qq --no-install-recommends prometheus"]
    assert "installing the Debian package prometheus" in done.stderr
    assert "Unpacking" not in done.stdout + done.stderr  # apt's progress stays out of a passing run


@pytest.mark.parametrize(("uid", "apt"), [(1000, True), (0, False)], ids=["not-root", "no-apt-get"])
def test_without_root_or_apt_get_it_fails_at_once_with_the_one_command_to_run(tmp_path: Path, uid: int,
                                                                              apt: bool) -> None:
    done, apt_calls = _run(tmp_path, uid=uid, apt=apt)
    assert done.returncode == 1 and apt_calls == []
    assert INSTRUCTION in done.stderr and "prometheus" in done.stderr.splitlines()[0]


def test_an_install_that_leaves_promtool_missing_fails(tmp_path: Path) -> None:
    done, apt_calls = _run(tmp_path, installs=False)
    assert done.returncode == 1 and len(apt_calls) == 2
    assert "still not on PATH" in done.stderr


def test_a_failing_apt_get_shows_its_output_and_stops(tmp_path: Path) -> None:
    done, apt_calls = _run(tmp_path, fails=True)
    assert done.returncode == 1 and len(apt_calls) == 2
    assert "E: Unable to locate package prometheus" in done.stderr
    assert "`apt-get install -y -qq --no-install-recommends prometheus` failed" in done.stderr


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_runs_the_script_before_pytest() -> None:
    done = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    lines = done.stdout.splitlines()
    script = lines.index("bash hack/ensure-test-deps.sh")
    assert any("-m pytest" in line for line in lines[script + 1:]), done.stdout
