"""Sending one alert to one channel: the message shapes and the two transports (SMTP, HTTPS POST).

Hand-written rather than through a notification library such as apprise: the webhook send must connect to
the address alerts.targets checked (DNS rebinding), never follow redirects, sign the generic body, and report
an error that names neither the URL nor the secret; apprise does none of that and would add a large
dependency for two POSTs and an e-mail.

`send(channel, alert, delivery_id)` returns normally when the peer took the message and raises SendFailed
otherwise; `SendFailed.retry` says whether trying again later can help.
"""

import json

import requests
import urllib3
from django.conf import settings
from django.core.mail import EmailMessage
from requests.adapters import HTTPAdapter

from alerts.models import Channel
from alerts.signing import sign
from alerts.targets import CheckedTarget, TargetRefused, check_url

DELIVERY_HEADER = "X-LTR-Delivery"
EXCERPT_CHARS = 120


class SendFailed(Exception):
    def __init__(self, message: str, *, retry: bool):
        super().__init__(message[:300])
        self.retry = retry


def send(channel: Channel, alert, delivery_id: int) -> None:
    if channel.kind == Channel.Kind.EMAIL:
        _send_email(channel.target, alert)
        return
    body = json.dumps(_payload(channel.kind, alert, delivery_id), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "ltr-dashboard-alerts/1",
               DELIVERY_HEADER: str(delivery_id)}
    if channel.kind == Channel.Kind.WEBHOOK:
        headers.update(sign(channel.secret, body))
    try:
        target = check_url(channel.target)
    except TargetRefused as refused:
        raise SendFailed(f"Not sent: {refused}", retry=False) from None
    _post(target, body, headers)


# ---- message shapes -------------------------------------------------------------------------------------

def _payload(kind: str, alert, delivery_id: int) -> dict:
    if kind == Channel.Kind.SLACK:
        return slack_payload(alert)
    if kind == Channel.Kind.TEAMS:
        return teams_payload(alert)
    return {"delivery_id": delivery_id, "kind": alert.kind, "tenant_id": alert.tenant_id, "title": alert.title,
            "text": alert.text, "url": alert.url, "facts": dict(alert.facts)}


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert) -> dict:
    """Slack incoming webhook: `text` is the notification fallback, `blocks` the message (Block Kit)."""
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.text)[:3000] or " "}},
    ]
    fields = [{"type": "mrkdwn", "text": f"*{_slack_escape(k)}*\n{_slack_escape(v)}"[:2000]}
              for k, v in list(alert.facts.items())[:10]]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    if alert.url:
        blocks.append({"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Open in the dashboard"}, "url": alert.url}]})
    text = f"{_slack_escape(alert.title)}: {_slack_escape(alert.text)}"
    if alert.url:
        text += f" <{alert.url}|Open>"
    return {"text": text, "blocks": blocks}


def teams_payload(alert) -> dict:
    """Teams: a message with one Adaptive Card, the shape both a Workflows "When a Teams webhook request is
    received" flow and the older incoming-webhook connector accept.

    Every text is a RichTextBlock of TextRuns, which Adaptive Cards never read as Markdown: a TextBlock or a
    FactSet would turn "[Reset your password](https://evil.example)" in a channel, schedule or server name, a
    display name or Azure's own error text into a link. A block a line: a summary's lines, one a held alert."""
    body = [_rich({"text": alert.title, "weight": "Bolder", "size": "Medium"})]
    lines = alert.text.splitlines() or [""]
    body += [_rich({"text": lines[0]})]
    body += [_rich({"text": line}, spacing="None") for line in lines[1:]]
    body += [_rich({"text": f"{name}: ", "weight": "Bolder"}, {"text": str(value)}, spacing="None" if n else "Medium")
             for n, (name, value) in enumerate(alert.facts.items())]
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body}
    if alert.url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open in the dashboard", "url": alert.url}]
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


def _rich(*runs: dict, **block) -> dict:
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", **run} for run in runs], **block}


def email_text(alert) -> str:
    lines = [alert.text, ""]
    lines += [f"{k}: {v}" for k, v in alert.facts.items()]
    if alert.url:
        lines += ["", f"Open in the dashboard: {alert.url}"]
    return "\n".join(lines) + "\n"


# ---- transports -----------------------------------------------------------------------------------------

def _send_email(addresses: str, alert) -> None:
    recipients = [a.strip() for a in addresses.split(",") if a.strip()]
    subject = " ".join(f"[LTR] {alert.title}".split())  # no line breaks in a header
    message = EmailMessage(subject=subject[:200], body=email_text(alert), to=recipients)
    try:
        message.send(using="default")
    except Exception as error:  # smtplib, ssl and socket errors alike; their text names no secret
        raise SendFailed(f"E-mail not sent: {type(error).__name__}: {str(error)[:150]}", retry=True) from None


def _post(target: CheckedTarget, body: bytes, headers: dict) -> None:
    timeout = settings.ALERT_WEBHOOK_TIMEOUT
    with requests.Session() as session:
        session.trust_env = False  # no proxy or .netrc from the environment: the checked address is the peer
        session.mount("https://", _PinnedAdapter(target.address))
        session.mount("http://", _PinnedAdapter(target.address))
        try:
            response = session.post(target.url, data=body, headers=headers, timeout=(min(5.0, timeout), timeout),
                                    allow_redirects=False, stream=True,
                                    verify=settings.ALERT_WEBHOOK_CA_BUNDLE or True)
        except requests.Timeout:
            raise SendFailed(f"No answer within {timeout:g} s.", retry=True) from None
        except requests.exceptions.SSLError:
            raise SendFailed("TLS failed (certificate not trusted or not for this host).", retry=True) from None
        except requests.ConnectionError:
            raise SendFailed("Could not connect to the webhook's host.", retry=True) from None
        with response:
            if 200 <= response.status_code < 300:
                return
            excerpt = _excerpt(response)
    status = response.status_code
    if 300 <= status < 400:
        raise SendFailed(f"HTTP {status}: redirects are not followed; use the final URL.", retry=False)
    retry = status >= 500 or status in (408, 425, 429)
    raise SendFailed(f"HTTP {status}{': ' + excerpt if excerpt else ''}", retry=retry)


def _excerpt(response) -> str:
    try:
        raw = response.raw.read(EXCERPT_CHARS * 4, decode_content=True) or b""
    except Exception:
        return ""
    return " ".join(raw.decode("utf-8", "replace").split())[:EXCERPT_CHARS]


class _PinnedAdapter(HTTPAdapter):
    """Connects to one checked address while keeping the URL's host for the Host header, SNI and the
    certificate check."""

    def __init__(self, address: str):
        self.address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        address = self.address

        class Pinned:
            def _new_conn(self):
                host, self._dns_host = self._dns_host, address
                try:
                    return super()._new_conn()
                finally:
                    self._dns_host = host

        http = type("PinnedHTTPConnection", (Pinned, urllib3.connection.HTTPConnection), {})
        https = type("PinnedHTTPSConnection", (Pinned, urllib3.connection.HTTPSConnection), {})
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
