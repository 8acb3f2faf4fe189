"""The users of `make bench-load` (bench/load.py starts everything and runs this with locust, headless).

Each locust user is one person of the bench's tenant. It signs in for real, through the dashboard's
/auth/signin/ and the simulator's Entra sign-in page (login_hint picks the account, as a browser that remembers
it would), then browses and runs checks without think time: the server list, the history, a server's page, a
check's page, the poll of a batch and of a server's row, "Run" on one server (htmx, as the page posts it) and
"Run check on selected" on a few. Behind the bench's proxy settings (BEHIND_PROXY=1) each user comes from an
address of its own (X-Forwarded-For), as people behind a real proxy would.

A 429 from the rate limiter is not an error: it is counted apart, as a request named "429: <what>". Anything
else of 400 or more, and a redirect to sign in (a lost session), is a failure.
"""

import itertools
import json
import os
import random
import re

import requests
from locust import HttpUser, task
from locust.exception import StopUser

FIXTURE = json.loads(open(os.environ["LOAD_FIXTURE"]).read())
_numbers = itertools.count()
CSRF = re.compile(r'"x-csrftoken": "([^"]+)"')
CHECK_LINK = re.compile(r"/checks/(\d+)/")


class Person(HttpUser):
    # No think time: each user asks again as soon as it has its answer.

    def on_start(self) -> None:
        n = next(_numbers)
        self.upn = FIXTURE["upns"][n % len(FIXTURE["upns"])]
        self.client.headers["X-Forwarded-For"] = f"10.1.{n // 250}.{n % 250 + 1}"
        self.servers = FIXTURE["servers"]
        self.checks: list[int] = []
        self.batch: int | None = None
        self.ran: int | None = None
        self.sign_in()

    def sign_in(self) -> None:
        start = self.client.get("/auth/signin/", params={"login_hint": self.upn, "next": "/"},
                                allow_redirects=False, name="sign-in: start")
        if start.status_code != 302:
            raise StopUser()
        # The identity provider's page is the simulator's, not the dashboard's: not one of our figures.
        authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=30)
        callback = authorize.headers["Location"]
        back = self.get(callback[callback.index("/auth/callback/"):], "sign-in: callback")
        if back.status_code != 302:
            raise StopUser()
        self.csrf = CSRF.search(self.get("/", "list").text or "").group(1)

    def get(self, path: str, name: str, **kwargs):
        with self.client.get(path, name=name, allow_redirects=False, catch_response=True, **kwargs) as response:
            if self.closed_while_idle(response, name):
                return self.get(path, name, **kwargs)
            self.judge(response, name)
        return response

    def closed_while_idle(self, response, name: str) -> bool:
        """A kept-alive connection the server closed (gunicorn's keep-alive is 2 s) just as it was reused, before
        any answer: a browser sends such a GET again on a new connection, and so do we, once, counted apart as
        "reconnected: <what>". Only after a pause (a person back from the identity provider's page)."""
        error = str(response.error or "")
        if response.status_code or "Remote end closed connection without response" not in error:
            return False
        if getattr(self, "_reconnected", False):
            self._reconnected = False
            return False
        response.success()
        self._reconnected = True
        self.environment.events.request.fire(request_type="GET", name=f"reconnected: {name}", response_time=0,
                                             response_length=0, exception=None, context={})
        return True

    def post(self, path: str, name: str, data: dict, **kwargs):
        headers = {"X-CSRFToken": self.csrf, **kwargs.pop("headers", {})}
        with self.client.post(path, data=data, name=name, headers=headers, allow_redirects=False,
                              catch_response=True, **kwargs) as response:
            self.judge(response, name)
        return response

    def judge(self, response, name: str) -> None:
        self._reconnected = False
        if response.status_code == 429:
            response.success()
            self.environment.events.request.fire(
                request_type="429", name=f"429: {name}", response_time=response.elapsed.total_seconds() * 1000,
                response_length=0, exception=None, context={})
        elif response.status_code >= 400 or response.status_code == 0:
            response.failure(f"HTTP {response.status_code}")
        elif "/auth/signin/" in response.headers.get("Location", ""):
            response.failure("sent to sign in again")

    @task(4)
    def server_list(self) -> None:
        self.get("/", "list")

    @task(2)
    def history(self) -> None:
        self.get("/checks/", "history")

    @task(2)
    def server_page(self) -> None:
        self.get(f"/servers/{random.choice(self.servers)}/", "server page")

    @task(2)
    def check_page(self) -> None:
        if self.checks:
            self.get(f"/checks/{random.choice(self.checks[-20:])}/", "check page")

    @task(2)
    def row_poll(self) -> None:
        if self.ran is not None:  # what the list's row asks every second while its check runs
            self.get(f"/servers/{self.ran}/row/", "row poll", headers={"HX-Request": "true"})

    @task(2)
    def batch_poll(self) -> None:
        if self.batch is not None:
            self.get(f"/batches/{self.batch}/progress/?page=1", "batch poll", headers={"HX-Request": "true"})

    @task(3)
    def run_check(self) -> None:
        server = random.choice(self.servers)
        response = self.post(f"/servers/{server}/run/", "run (POST)", {"backup_name": "load-test"},
                             headers={"HX-Request": "true", "HX-Current-URL": f"{self.host}/"})
        if response.status_code == 200:
            self.ran = server
            self.checks += [int(pk) for pk in CHECK_LINK.findall(response.text)][-1:]  # the newest

    @task(1)
    def run_selected(self) -> None:
        picked = random.sample(self.servers, 5)
        response = self.post("/batches/", "batch (POST)", {"scope": "selected", "server": picked})
        location = response.headers.get("Location", "")
        if response.status_code == 302 and "/batches/" in location:
            self.batch = int(location.rstrip("/").rsplit("/", 1)[1])
