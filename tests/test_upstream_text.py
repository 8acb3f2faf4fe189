"""Whatever Azure says is shown as text, never as markup, on every page; and a waiting check says why."""

import threading
import time

import pytest
from django.db import connections

from checks.models import Check
from checks.tasks import run_check
from dashboard.demo import PROD
from tests.conftest import ALICE, make_server

SCRIPT = "<script>alert('x')</script>"
IMG = '"><img src=x onerror=alert(1)>'


def test_markup_in_every_arm_error_field_is_inert_on_every_page(client, logged_in, sim, worker):
    evil = f"{SCRIPT}{IMG}"
    body = {"error": {"code": evil, "message": evil, "target": evil,
                      "details": [{"code": evil, "message": evil, "target": evil}],
                      "additionalInfo": [{"type": evil, "info": {"note": evil}}]}}
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-evil", outcome="payload", status=400, body=body)
    server = make_server(name="pg-evil")
    logged_in(ALICE["upn"])
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    worker()
    check = Check.objects.get()
    assert check.error_code == evil and check.error_details[0]["message"] == evil
    pages = ["/", f"/servers/{server.pk}/", f"/servers/{server.pk}/row/", "/checks/", f"/checks/{check.pk}/",
             f"/checks/{check.pk}/row/", f"/checks/?server={server.pk}&outcome=failed"]
    for page in pages:
        html = client.get(page).content.decode()
        assert "<script>alert" not in html, page
        assert "<img src=x" not in html, page
    detail = client.get(f"/checks/{check.pk}/").content.decode()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in detail


@pytest.mark.django_db(transaction=True)
def test_a_check_waiting_to_retry_says_so_on_its_row(client, logged_in, sim):
    sim.set_behaviour(PROD, "rg-payments-prod", "pg-wait", outcome="throttled", retry_after=2, fail_times=1)
    server = make_server(name="pg-wait")
    logged_in(ALICE["upn"])
    client.post(f"/servers/{server.pk}/run/", {"backup_name": "b-1"}, headers={"HX-Request": "true"})
    check = Check.objects.get()

    def work():
        try:
            run_check.call(check.pk)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    seen = ""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "retrying in" not in seen:
        seen = client.get(f"/servers/{server.pk}/row/").content.decode()
        time.sleep(0.1)
    thread.join()
    assert "throttled by Azure, retrying in 2 s" in seen
    check.refresh_from_db()
    assert (check.status, check.attempts) == ("succeeded", 2)
