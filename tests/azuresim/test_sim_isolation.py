"""azuresim stands alone: it must import nothing from the app (dashboard, checks) nor Django."""

import ast
import pathlib

import azuresim

FORBIDDEN = ("dashboard", "checks", "django")


def test_azuresim_imports_nothing_from_the_app_or_django():
    package = pathlib.Path(azuresim.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
