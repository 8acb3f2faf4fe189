"""The README's pictures (issue 15): every one it shows is in docs/screenshots/, every one there is shown, and each
is written by a browser journey (`snap(..., docs=...)` or the charts' `shot_down_to`), none copied by hand."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _shown() -> set[str]:
    return set(re.findall(r"\(docs/screenshots/([\w-]+)\.png\)", (ROOT / "README.md").read_text()))


def _taken_by_journeys() -> set[str]:
    names = set()
    for journey in (ROOT / "tests" / "e2e").glob("test_*.py"):
        text = journey.read_text()
        for docs in re.findall(r"docs=([^)\n]+)", text):  # docs="batch" if width == 1366 else "batch-phone"
            names |= set(re.findall(r'"([\w-]+)"', docs))
        names |= set(re.findall(r'shot_down_to\(page, "[^"]+", f"[^"]+", "([\w-]+)"\)', text))
    return names


def test_the_readme_shows_every_screenshot_and_only_those_there():
    there = {p.stem for p in (ROOT / "docs" / "screenshots").glob("*.png")}
    assert _shown() == there


def test_every_screenshot_is_taken_by_a_journey():
    assert _shown() <= _taken_by_journeys(), _shown() - _taken_by_journeys()
