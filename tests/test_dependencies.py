"""The one direction of dependency between the top-level packages, stated once and enforced by parsing imports.

config (settings, root URLs, WSGI) may import every app and no app imports it. dashboard (servers and
accounts) knows nothing of the others; alerts (channels and deliveries) knows only dashboard; backups (LTR
backup operations, their summary and alerts) on dashboard, armclient and alerts; checks depends on dashboard,
alerts, armclient and backups (the server list shows each server's last LTR backup through backups.summary:
backups is the lower layer, it reads Azure and keeps what it saw and knows nothing of pre-checks, so the edge
cannot close a cycle); schedules on checks, backups and below (a run also refreshes the LTR backups); evidence
(the report an auditor takes away) reads checks and backups, and nothing imports it. The Azure client
(armclient) imports no app and not config; the simulator (azuresim) imports nothing of ours.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"config", "dashboard", "checks", "schedules", "alerts", "armclient", "azuresim", "backups", "evidence"}

# package -> the packages of ours it must not import
FORBIDDEN = {
    "azuresim": OURS - {"azuresim"},
    "armclient": {"dashboard", "checks", "config", "backups", "evidence"},
    "dashboard": {"checks", "schedules", "alerts", "config", "backups", "evidence"},
    "alerts": {"checks", "schedules", "armclient", "config", "backups", "evidence"},
    "checks": {"schedules", "config", "evidence"},
    "schedules": {"config", "evidence"},
    "backups": {"checks", "schedules", "config", "evidence"},
    "evidence": {"schedules", "config"},
}

# (file, imported module) pairs allowed for now, each with its reason.
ALLOWED: set[tuple[str, str]] = {
    # SQLite's one writer (a database lock, not Azure's client): it lives in armclient, the lowest layer that writes
    # (pacing's leases), and a worker's alert deliveries take their turn on it like every other write of a worker.
    ("alerts/delivery.py", "armclient.onewriter"),
}


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
