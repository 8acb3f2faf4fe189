"""docs/security.md and the README's list of public URLs stay true: every URL served is in the threat model's
table with the role its view demands, every test it names exists, and the public URLs are exactly the
documented ones."""

import re
from pathlib import Path

import pytest
from django.urls import URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "security.md").read_text()
README = (ROOT / "README.md").read_text()
# The public URLs as the README's security model lists them.
PUBLIC = {"/auth/signin/", "/auth/callback/", "/auth/signed-out/", "/healthz", "/metrics", "/admin/login/"}


def routes(patterns=None, prefix="/"):
    """(URL pattern, view) of every route, not into Django's own admin (one row in the doc covers it)."""
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            if getattr(pattern, "app_name", None) != "admin":
                yield from routes(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


def doc_rows() -> dict[str, str]:
    """URL -> the "who" column of the entry-point table."""
    return {m[1]: m[2] for m in re.finditer(r"^\| `([^`]+)`[^|]*\| [^|]+ \| (\S+) \|", DOC, re.M)}


def expected_who(view) -> str:
    if not getattr(view, "login_required", True):
        return "public"
    return getattr(view, "required_role", None) or "signed-in"


ROUTES = sorted(routes(), key=lambda r: r[0])


@pytest.mark.parametrize(("url", "view"), ROUTES, ids=[r[0] for r in ROUTES])
def test_every_url_is_in_the_threat_model_with_the_role_its_view_demands(url, view):
    assert doc_rows().get(url) == expected_who(view), f"{url}: fix its row in docs/security.md"


def test_only_the_documented_urls_are_public():
    public = {url for url, view in ROUTES if not getattr(view, "login_required", True)}
    assert public == PUBLIC
    security_model = README.split("## Security model", 1)[1].split("\n## ", 1)[0]
    for url in PUBLIC:
        assert f"`{url}`" in security_model, f"the README's security model does not list {url}"


def test_every_test_the_threat_model_names_exists():
    named = set(re.findall(r"(tests/[\w/]+\.py)::(test_\w+)", DOC))
    assert len(named) > 40
    missing = [f"{path}::{name}" for path, name in sorted(named)
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)]
    assert missing == []
