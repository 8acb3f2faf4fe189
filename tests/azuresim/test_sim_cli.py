"""``python -m azuresim`` serves until SIGTERM, writes ca.pem, and logs requests without their
query strings, bodies, codes, secrets or tokens."""

import os
import re
import signal
import subprocess
import sys

import requests
from sim_helpers import ALICE, CLIENT_ID, REDIRECT, SCENARIO, SECRET, pkce_pair

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_cli_serves_and_logs_no_secrets(tmp_path):
    state = tmp_path / "state"
    cmd = [
        sys.executable,
        "-m",
        "azuresim",
        "--scenario",
        SCENARIO,
        "--https-port",
        "0",
        "--http-port",
        "0",
        "--state-dir",
        str(state),
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)  # noqa: S603 - our own argv
    try:
        first = proc.stderr.readline()
        https_url, http_url = re.search(r"(https://\S+).*(http://\S+)", first).groups()
        ca = str(state / "ca.pem")
        verifier, challenge = pkce_pair()
        answer = requests.get(
            f"{http_url}/organizations/oauth2/v2.0/authorize",
            allow_redirects=False,
            timeout=5,
            params={
                "client_id": CLIENT_ID,
                "response_type": "code",
                "redirect_uri": REDIRECT,
                "scope": "https://management.azure.com/.default offline_access",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "login_hint": ALICE,
                "state": "st4te",
            },
        )
        code = answer.headers["Location"].split("code=")[1].split("&")[0]
        tokens = requests.post(
            f"{https_url}/organizations/oauth2/v2.0/token",
            verify=ca,
            timeout=5,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
                "code_verifier": verifier,
            },
        ).json()
        assert tokens["access_token"] and tokens["refresh_token"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, log = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "POST /organizations/oauth2/v2.0/token 200" in log
    for secret in (
        code,
        SECRET,
        tokens["access_token"][:40],
        tokens["refresh_token"][:20],
        "st4te",
        verifier,
    ):
        assert secret not in log
