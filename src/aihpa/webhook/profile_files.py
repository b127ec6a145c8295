"""Replica profiles read from files: a mounted ConfigMap directory (one file per key), or one JSON/YAML file.

The controller publishes profiles into a ConfigMap; mounted into the webhook's pod, each key is a file named
`namespace.name`. `DirectoryProfileSource` serves them from memory and re-reads the directory when it changes (polled
on an injectable clock), so an admission never waits on the disk or the controller.

Lookups never do I/O; only `check()` reads files. A bad entry is skipped and reported, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aihpa.clock import Clock, SystemClock
from aihpa.profiles import InMemoryProfileSource, ReplicaProfile

__all__ = ["DirectoryProfileSource"]

log = logging.getLogger(__name__)

# A mounted ConfigMap also holds kubelet's bookkeeping entries (`..data`, `..2026_11_24...`); they start with a dot.
_HIDDEN = "."
# A profile is well under 1 KiB; anything far larger is not one.
_MAX_FILE_BYTES = 1 << 20


class DirectoryProfileSource:
    """A `ProfileSource` over the files of one directory, reloaded by `check()` when they change."""

    def __init__(self, directory: Path, *, clock: Clock | None = None) -> None:
        self.directory = Path(directory)
        self._clock: Clock = clock or SystemClock()
        self._current = InMemoryProfileSource()
        self._signature: tuple[tuple[str, int, int, int], ...] | None = None
        self.errors: list[str] = []
        self.check()

    def by_workload(self, namespace: str, name: str) -> ReplicaProfile | None:
        return self._current.by_workload(namespace, name)

    def by_app(self, namespace: str, app: str) -> ReplicaProfile | None:
        return self._current.by_app(namespace, app)

    def __len__(self) -> int:
        return len(self._current)

    def _files(self) -> list[Path]:
        try:
            entries = sorted(self.directory.iterdir())
        except FileNotFoundError:
            return []
        return [p for p in entries if not p.name.startswith(_HIDDEN) and p.is_file()]

    def _stat(self, files: list[Path]) -> tuple[tuple[str, int, int, int], ...]:
        out = []
        for path in files:
            st = path.stat()  # follows kubelet's symlinks, so an atomic swap shows as a new inode
            out.append((path.name, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def check(self) -> bool:
        """Re-read the directory if any file changed, appeared or vanished; True if the profiles were replaced."""
        try:
            files = self._files()
            signature = self._stat(files)
        except OSError as exc:
            self.errors = [f"cannot list {self.directory}: {exc.strerror}"]
            return False
        if signature == self._signature:
            return False
        data: dict[str, str] = {}
        errors: list[str] = []
        for path in files:
            try:
                if path.stat().st_size > _MAX_FILE_BYTES:
                    errors.append(f"{path.name}: larger than {_MAX_FILE_BYTES} bytes")
                    continue
                data[path.name] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{path.name}: {exc}")
        source, decode_errors = InMemoryProfileSource.from_configmap_data(data)
        errors += decode_errors
        # One assignment: a concurrent lookup sees the old set or the new one, never a mix.
        self._current = source
        self._signature = signature
        self.errors = errors
        for line in errors:
            log.warning("skipping profile %s", line)
        log.info("loaded %d replica profiles from %s", len(source), self.directory)
        return True

    async def run(self, *, interval_s: float, max_iterations: int | None = None) -> None:
        """Check every `interval_s` seconds on the clock, forever or `max_iterations` times.

        Reading runs in a worker thread, off the event loop; the swap it ends with is one assignment, safe from there.
        """
        done = 0
        while max_iterations is None or done < max_iterations:
            await self._clock.sleep(interval_s)
            try:
                await asyncio.to_thread(self.check)
            except Exception:  # one bad round must not end the watch
                log.exception("reading replica profiles failed")
            done += 1
