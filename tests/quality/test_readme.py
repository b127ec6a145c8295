"""The README tells the truth: its CLI reference is the parser's, and its two commands exist."""

from __future__ import annotations

from pathlib import Path

from aihpa.cli import markdown_reference

ROOT = Path(__file__).resolve().parents[2]


def test_cli_reference_in_the_readme_is_current() -> None:
    text = (ROOT / "README.md").read_text()
    start, end = "<!-- cli-reference:start -->\n", "<!-- cli-reference:end -->"
    section = text.split(start, 1)[1].split(end, 1)[0]
    assert section == markdown_reference(), "README CLI reference is stale: run `make docs`"


def test_the_first_screen_gives_the_two_commands() -> None:
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:12])
    assert "make demo" in first_screen and "make test" in first_screen
    makefile = (ROOT / "Makefile").read_text()
    assert "\ndemo: install" in makefile and "\ntest: install" in makefile


def test_the_readme_library_example_is_the_file_the_example_test_runs() -> None:
    example = (ROOT / "examples" / "library_example.py").read_text()
    assert f"```python\n{example}```" in (ROOT / "README.md").read_text()
