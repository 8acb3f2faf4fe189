"""Import from Azure at fleet scale: a listing of thousands of servers is counted, not drawn whole; at most SHOWN
new servers are rows, a search finds the others, and "Import all" registers every new one (or a subscription's)
an import's worth at a time. The listing is the one the page keeps (dashboard.models.ImportListing), written
here as ARM's listing would leave it: how it is read from ARM is tests/test_server_import.py's."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.audit import Action
from dashboard.demo import CONTOSO, PROD, STAGING
from dashboard.import_listing import SHOWN
from dashboard.models import AuditEvent, ImportListing, Server
from tests.conftest import ALICE, CHARLIE, make_server

GONE_SUB = "0b5e0007-0000-4000-8000-000000000007"


def found(subscription_id: str, i: int, rg: str = "") -> dict:
    return {"subscription_id": subscription_id, "resource_group": rg or f"rg-{i % 7:02d}", "name": f"pg-fleet-{i:05d}",
            "location": "westeurope", "state": "Ready"}


def keep_listing(user, groups: dict[str, list[dict]], *, errors: dict[str, dict] | None = None) -> ImportListing:
    """The user's kept listing: each subscription (id -> its servers), as dashboard.inventory.list_fleet keeps it."""
    errors = errors or {}
    listing, _ = ImportListing.objects.update_or_create(user=user, defaults={"fetched_at": timezone.now(), "groups": [
        {"subscription": {"id": sub, "name": f"Sub {sub[:8]}", "state": "Enabled"}, "error": errors.get(sub),
         "servers": servers} for sub, servers in groups.items()]})
    return listing


def import_all(client, scope: str = "all", **extra):
    """Press an "Import all" button of the page as drawn (its form carries the listing's time)."""
    page = client.get("/servers/import/").content.decode()
    listed_at = page.split('name="listed_at" value="')[1].split('"')[0]
    return client.post("/servers/import/", {"everything": scope, "listed_at": listed_at, **extra}, follow=True)


def register(subscription_id: str, numbers) -> None:
    Server.objects.bulk_create([Server(tenant_id=CONTOSO, subscription_id=subscription_id,
                                       resource_group=f"rg-{i % 7:02d}", name=f"pg-fleet-{i:05d}") for i in numbers])


def test_registered_servers_are_counted_and_only_new_ones_drawn(client, logged_in):
    alice = logged_in(ALICE["upn"])
    register(PROD, range(0, 300))
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 1000)], STAGING: [found(STAGING, i) for i in
                                                                                      range(5000, 5010)]})
    html = client.get("/servers/import/").content.decode()
    assert "<strong>710</strong> new servers to import" in html
    assert "1,000 in Azure · 300 registered here · 700 new" in html
    assert "10 in Azure · 0 registered here · 10 new" in html
    assert html.count('name="server"') == SHOWN == 100, "the README's 100 rows, whatever the listing holds"
    assert 'value="0b5e0001-0000-4000-8000-000000000001|rg-00|pg-fleet-00007"' not in html, "registered: not a row"
    assert f"{700 - SHOWN:,} more new servers here not shown" in html
    assert "10 more new servers here not shown" in html, "the next subscription's rows are past SHOWN too"
    assert 'value="all"' in html and f'value="{STAGING}"' in html
    assert len(html) < 120_000


def test_the_page_reads_the_same_whatever_the_size_of_the_fleet(client, logged_in):
    alice = logged_in(ALICE["upn"])
    counts, sizes = [], []
    for n in (20, 3000):
        Server.objects.all().delete()
        register(PROD, range(0, n // 2))
        keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, n)]})
        client.get("/servers/import/")
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/servers/import/")
        counts.append(len(queries))
        sizes.append(len(response.content))
    assert counts[0] == counts[1], counts
    assert sizes[1] < 3 * sizes[0] + 80_000, sizes


def test_a_search_finds_new_servers_past_the_first_shown(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 1000)]})
    html = client.get("/servers/import/", {"q": "FLEET-0099"}).content.decode()
    assert html.count('name="server"') == 10 and "pg-fleet-00990" in html and "pg-fleet-00999" in html
    assert "10 matches." in html
    html = client.get("/servers/import/", {"q": "rg-03"}).content.decode()
    assert html.count('name="server"') == min(SHOWN, 143) and "143 matches." in html, "1,000 over 7 groups"
    html = client.get("/servers/import/", {"q": "fleet-00"}).content.decode()
    assert html.count('name="server"') == SHOWN and f"{1000 - SHOWN:,} more new servers here not shown" in html
    html = client.get("/servers/import/", {"q": "<b>nothing</b>"}).content.decode()
    assert "No new server matches “&lt;b&gt;nothing&lt;/b&gt;”." in html and 'name="server"' not in html


def test_import_all_registers_every_new_server_an_import_at_a_time(client, logged_in, settings):
    settings.IMPORT_MAX_PER_POST = 400
    alice = logged_in(ALICE["upn"])
    register(PROD, range(0, 100))
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 1000)], STAGING: [found(STAGING, i) for i in
                                                                                      range(0, 50)]})
    response = import_all(client, server=["ignored|x|y"])
    assert "Imported 950 servers." in response.content.decode()
    assert Server.objects.filter(tenant_id=CONTOSO, archived_at=None).count() == 1050
    events = AuditEvent.objects.filter(action=Action.SERVER_IMPORT).order_by("pk")
    assert [e.details["imported"] for e in events] == [400, 400, 150], "one event an import's worth"
    assert sum(len(e.details["servers"]) for e in events) == 950
    assert "Every server Azure lists here is registered already" in client.get("/servers/import/").content.decode()


def test_import_all_of_one_subscription_leaves_the_others(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 30)], STAGING: [found(STAGING, i) for i in
                                                                                    range(0, 20)]})
    response = import_all(client, STAGING.upper())
    assert "Imported 20 servers." in response.content.decode()
    assert set(Server.objects.values_list("subscription_id", flat=True)) == {STAGING}


def test_import_all_with_nothing_new_or_an_old_listing_registers_nothing(client, logged_in):
    alice = logged_in(ALICE["upn"])
    register(PROD, range(0, 5))
    listing = keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 5)]})
    response = import_all(client)
    assert "Nothing new to import" in response.content.decode()
    ImportListing.objects.filter(pk=listing.pk).update(fetched_at=timezone.now() - timezone.timedelta(hours=1))
    keep = Server.objects.count()
    response = client.post("/servers/import/", {"everything": "all", "listed_at": ""}, follow=True)
    assert "out of date" in response.content.decode()
    assert Server.objects.count() == keep


def test_import_all_registers_in_the_users_tenant_only(client, logged_in):
    alice = logged_in(ALICE["upn"])
    make_server(tenant_id=CHARLIE["tid"], subscription_id=PROD, resource_group="rg-00", name="pg-fleet-00000")
    keep_listing(alice, {PROD: [found(PROD, 0)]})
    import_all(client)
    assert Server.objects.filter(tenant_id=CONTOSO, name="pg-fleet-00000").count() == 1
    assert Server.objects.filter(tenant_id=CHARLIE["tid"]).count() == 1


def test_servers_azure_no_longer_lists_are_drawn_up_to_shown_and_all_can_be_archived(client, logged_in):
    alice = logged_in(ALICE["upn"])
    register(PROD, range(0, SHOWN + 50))  # SHOWN + 40 of them no longer listed
    register(GONE_SUB, range(0, 3))  # a subscription that failed to list: nothing is known of its servers
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(SHOWN + 40, SHOWN + 60)], GONE_SUB: []},
                 errors={GONE_SUB: {"message": "Forbidden", "code": "AuthorizationFailed", "request_id": ""}})
    html = client.get("/servers/import/").content.decode()
    section = html.split('id="orphans"')[1].split("</section>")[0]
    assert section.count('name="server"') == SHOWN
    assert f"The first {SHOWN} of {SHOWN + 40} are shown" in section
    last = Server.objects.get(subscription_id=PROD, name=f"pg-fleet-{SHOWN + 39:05d}")  # past the first SHOWN
    listed = Server.objects.get(subscription_id=PROD, name=f"pg-fleet-{SHOWN + 45:05d}")
    unknown = Server.objects.get(subscription_id=GONE_SUB, name="pg-fleet-00001")
    response = client.post("/servers/import/archive/", {"server": [last.pk, listed.pk, unknown.pk, "x", "²"]}, follow=True)
    assert "Archived 1 server Azure no longer lists." in response.content.decode()
    assert list(Server.objects.filter(archived_at__isnull=False)) == [last]


def test_a_name_azure_lists_that_breaks_its_rules_is_counted_apart_and_never_offered(client, logged_in):
    alice = logged_in(ALICE["upn"])
    bad = {**found(PROD, 1), "name": "Not_A|Valid name"}
    keep_listing(alice, {PROD: [found(PROD, 0), bad]})
    html = client.get("/servers/import/").content.decode()
    assert "<strong>1</strong> new server to import" in html and "1 under a name this dashboard cannot" in html
    assert html.count('name="server"') == 1
    assert "Imported 1 server." in import_all(client).content.decode()
    assert list(Server.objects.values_list("name", flat=True)) == ["pg-fleet-00000"]
    assert "Every server Azure lists here is registered already" in client.get("/servers/import/").content.decode()


def test_import_all_of_a_subscription_not_listed_or_of_nothing_is_refused(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 3)]})
    for scope in (STAGING, "", "0b5e0001"):
        response = import_all(client, scope)
        assert "That subscription is not in your listing from Azure: nothing was imported." in (
            response.content.decode()), scope
    assert not Server.objects.exists()


def test_import_all_from_a_page_drawn_before_a_refresh_imports_nothing(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, 0)]})
    page = client.get("/servers/import/").content.decode()
    drawn_at = page.split('name="listed_at" value="')[1].split('"')[0]
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 500)]})  # another tab's "Refresh from Azure"
    response = client.post("/servers/import/", {"everything": "all", "listed_at": drawn_at}, follow=True)
    assert "changed since this page was drawn" in response.content.decode()
    assert not Server.objects.exists()


def test_the_one_import_notice_counts_the_rows_drawn(client, logged_in, settings):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 1500)]})
    html = client.get("/servers/import/").content.decode()
    assert html.count(" checked>") == SHOWN and "One import takes at most" not in html
    settings.IMPORT_MAX_PER_POST = SHOWN // 2
    html = client.get("/servers/import/").content.decode()
    assert html.count(" checked>") == SHOWN // 2 and f"the first {SHOWN // 2} are picked" in html


def test_a_search_of_spaces_is_no_search(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, SHOWN + 5)]})
    html = client.get("/servers/import/", {"q": "   "}).content.decode()
    assert ">Clear</a>" not in html and "matches." not in html and html.count('name="server"') == SHOWN


def test_the_import_forms_default_button_is_import_selected(client, logged_in):
    # Enter on a checkbox presses the form's first submit button: never an "Import all" (tests/e2e proves it).
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, i) for i in range(0, 3)], STAGING: [found(STAGING, 9)]})
    html = client.get("/servers/import/").content.decode()
    form = html.split('id="import-form">')[1].split("</form>")[0]
    own = [b for b in re.findall(r"<button[^>]*>", form) if 'form="' not in b]
    assert own == ['<button type="submit">'] and "Import selected servers" in form
    assert html.count('form="import-all" name="everything"') == 3


def test_a_listed_name_is_judged_by_the_add_forms_rules():
    from django.core.exceptions import ValidationError

    from dashboard.registry import valid
    from dashboard.validators import validate_resource_group, validate_server_name, validate_subscription_id

    def by_the_rules(s, rg, n):
        try:
            validate_subscription_id(s), validate_resource_group(rg), validate_server_name(n)
        except ValidationError:
            return False
        return True

    for s in (PROD, PROD.upper(), "x", "{" + PROD + "}"):
        for rg in ("rg-payments-prod", "rg.", "rg (1)", "r" * 91, ""):
            for n in ("pg-ok", "pg", "-pg", "pg--x", "p" * 64, "pg_x", "PG-OK-01"):
                assert valid(s, rg, n) == by_the_rules(s, rg, n), (s, rg, n)
    assert not valid(PROD, "rg", "pg-ok\n"), "matched whole: a line feed is not part of a name"


def test_import_selected_with_nothing_picked_stays_on_the_page_and_says_so(client, logged_in):
    alice = logged_in(ALICE["upn"])
    keep_listing(alice, {PROD: [found(PROD, 0)]})
    response = client.post("/servers/import/", {})
    assert response.status_code == 302 and response["Location"] == "/servers/import/"
    assert "Nothing was imported: pick servers to import" in client.get("/servers/import/").content.decode()
    assert not Server.objects.exists()
