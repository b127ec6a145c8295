"""Profiles from a mounted ConfigMap directory: loaded, reloaded when kubelet swaps the files, bad entries skipped."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aihpa.clock import VirtualClock
from aihpa.profiles import ProfileSource
from aihpa.webhook.profile_files import DirectoryProfileSource
from tests.webhook.conftest import NOW, profile


def mount(directory: Path, data: dict[str, str], *, version: int) -> None:
    """Lay out files as kubelet does: a timestamped dir, a `..data` symlink to it, and one symlink per key."""
    directory.mkdir(exist_ok=True)
    target = directory / f"..2026_11_24_{version:02d}"
    target.mkdir()
    for key, value in data.items():
        (target / key).write_text(value)
    tmp_link = directory / "..data_tmp"
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, directory / "..data")
    for key in data:
        link = directory / key
        if not link.is_symlink():
            link.symlink_to(f"..data/{key}")
    for stale in directory.iterdir():
        if stale.is_symlink() and stale.name not in data and not stale.name.startswith("."):
            stale.unlink()


def test_profiles_are_served_from_the_mounted_files_and_follow_an_atomic_update(tmp_path: Path) -> None:
    web = profile(peak=12)
    mount(tmp_path, {"shop.web": web.to_json()}, version=1)
    source = DirectoryProfileSource(tmp_path, clock=VirtualClock(NOW))
    assert isinstance(source, ProfileSource)
    assert source.by_workload("shop", "web") == web and source.by_app("shop", "web") == web
    assert source.check() is False
    busier = profile(peak=20)
    mount(tmp_path, {"shop.web": busier.to_json(), "shop.api": profile(name="api", app="api").to_json()}, version=2)
    assert source.check() is True
    assert source.by_workload("shop", "web") == busier and len(source) == 2
    mount(tmp_path, {"shop.api": profile(name="api", app="api").to_json()}, version=3)
    assert source.check() is True
    assert source.by_workload("shop", "web") is None


def test_bad_entries_are_skipped_and_reported_and_a_missing_directory_is_empty(tmp_path: Path) -> None:
    mount(tmp_path, {"shop.web": profile().to_json(), "shop.bad": "{", "shop.binary": "x"}, version=1)
    (tmp_path / "..2026_11_24_01" / "shop.binary").write_bytes(b"\xff\xfe")
    source = DirectoryProfileSource(tmp_path)
    assert len(source) == 1
    assert sorted(e.split(":")[0] for e in source.errors) == ["shop.bad", "shop.binary"]
    assert len(DirectoryProfileSource(tmp_path / "absent")) == 0


async def test_run_rereads_on_the_clock(tmp_path: Path) -> None:
    clock = VirtualClock(NOW)
    mount(tmp_path, {"shop.web": profile(peak=3).to_json()}, version=1)
    source = DirectoryProfileSource(tmp_path, clock=clock)
    task = asyncio.create_task(source.run(interval_s=15.0, max_iterations=1))
    await asyncio.sleep(0)
    mount(tmp_path, {"shop.web": profile(peak=9).to_json()}, version=2)
    clock.advance(15.0)
    await asyncio.wait_for(task, timeout=10)
    found = source.by_workload("shop", "web")
    assert found is not None and found.replicas_at(NOW) == 9
