"""Rules that keep the code and the templates readable: no template line over 120 characters (in every template
directory of ours), and no function of the app (not tests, not migrations, not the simulator) over 50 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LONGEST_TEMPLATE_LINE = 120
LONGEST_FUNCTION = 50
APP_PACKAGES = ("config", "dashboard", "checks", "armclient", "alerts", "schedules", "backups", "evidence")
# Python packages at the top that are not the app: they keep their own style.
NOT_THE_APP = {"tests", "azuresim"}


def template_directories() -> list[Path]:
    """The project's templates/ and every app's <package>/templates/ (not the virtualenv's)."""
    found = [ROOT / "templates", *sorted(ROOT.glob("*/templates"))]
    return [path for path in found if path.is_dir() and not path.relative_to(ROOT).as_posix().startswith(".")]


def test_the_rules_see_every_package_and_template_directory():
    """A new app is under the rules the day it lands: it is either in APP_PACKAGES or named as not the app."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - NOT_THE_APP == set(APP_PACKAGES)
    assert {path.relative_to(ROOT).as_posix() for path in template_directories()} >= {
        "templates", "alerts/templates", "schedules/templates",
    }


def test_no_template_line_is_longer_than_120_characters():
    long_lines = [
        f"{path.relative_to(ROOT)}:{number} ({len(line)})"
        for directory in template_directories()
        for path in sorted(directory.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if len(line) > LONGEST_TEMPLATE_LINE
    ]
    assert long_lines == []


def app_modules():
    for package in APP_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in relative:
                yield relative


@pytest.mark.parametrize("module", list(app_modules()))
def test_no_function_of_the_app_is_longer_than_50_lines(module):
    tree = ast.parse((ROOT / module).read_text(), module)
    long_functions = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert long_functions == []
