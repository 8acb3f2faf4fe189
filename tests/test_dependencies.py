"""The one direction of dependency between the top-level packages, stated once and enforced by parsing imports.

config (settings, root URLs, WSGI) may import every app and no app imports it. dashboard (servers and
accounts) knows nothing of the others; alerts (channels and deliveries) knows only dashboard; checks depends
on dashboard, alerts and armclient; schedules on checks and below; backups (LTR backup operations) on dashboard,
armclient (and alerts if it must), and none of those nor checks imports it. The Azure client (armclient) imports no app
and not config; the simulator (azuresim) imports nothing of ours.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"config", "dashboard", "checks", "schedules", "alerts", "armclient", "azuresim", "backups"}

# package -> the packages of ours it must not import
FORBIDDEN = {
    "azuresim": OURS - {"azuresim"},
    "armclient": {"dashboard", "checks", "config", "backups"},
    "dashboard": {"checks", "schedules", "alerts", "config", "backups"},
    "alerts": {"checks", "schedules", "armclient", "config", "backups"},
    "checks": {"schedules", "config", "backups"},
    "schedules": {"config"},
    "backups": {"checks", "schedules", "config"},
}

# (file, imported module) pairs allowed for now, each with its reason.
ALLOWED: set[tuple[str, str]] = set()


def imports_of(path: Path) -> set[str]:
    """Every absolute module name `path` imports, at any depth (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            # `from checks import tasks` names the module checks.tasks.
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def offenders(package: str) -> list[str]:
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for name in sorted(imports_of(path)):
            top = name.split(".")[0]
            allowed = any(relative == file and (name == module or name.startswith(module + "."))
                          for file, module in ALLOWED)
            if top in FORBIDDEN[package] and not allowed:
                found.append(f"{relative} imports {name}")
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_each_package_imports_only_in_the_one_direction(package):
    if not (ROOT / package).is_dir():
        pytest.skip(f"{package}/ does not exist yet")
    assert offenders(package) == []


def test_the_rule_would_catch_a_wrong_way_import(tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text("def f():\n    from checks import tasks\n    import config.settings\n")
    assert {"checks", "checks.tasks", "config.settings"} <= imports_of(wrong)
