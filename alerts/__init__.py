"""Alerts: tell a tenant's people when something needs them, by e-mail and webhooks (Teams, Slack, signed JSON).

The rest of the dashboard calls one function with one value:

    from alerts import Alert, raise_alert

    raise_alert(Alert(
        tenant_id=server.tenant_id,
        kind=AlertKind.READINESS_CHANGED,
        title="pg-ledger is not ready for long-term backups",
        text="Ready → not ready: Azure reports the server is busy with another operation.",
        url="https://ltr.example.com/servers/12/",
        facts={"Server": "pg-ledger", "Resource group": "rg-ledger", "Since": "02:10 UTC"},
    ))

`raise_alert` records one Delivery per enabled channel of the tenant and queues a task for each; it returns
the deliveries (possibly none) and never sends anything itself, so it is safe to call from a request or a
worker, inside a transaction (the task rows commit or roll back with it). A failed send is retried after
each of ALERT_RETRY_DELAYS seconds, then marked failed; the delivery log at /alerts/ shows every outcome.

Nothing in an Alert may be a secret: it is stored in the delivery log and sent to third parties.
"""

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType


class AlertKind(StrEnum):
    READINESS_CHANGED = "readiness_changed"  # a server became not ready, or ready again
    OWNER_MUST_SIGN_IN = "owner_must_sign_in"  # a schedule stopped until its owner signs in again
    LTR_BACKUP_FAILED = "ltr_backup_failed"  # Azure lists a failed LTR backup of a server
    LTR_BACKUP_GAP = "ltr_backup_gap"  # no successful LTR backup of a server in N days, or one again
    SUMMARY = "summary"  # the alerts a channel held back in a burst, sent together (alerts/bursts.py)
    TEST = "test"  # "Send a test message" on a channel


@dataclass(frozen=True)
class Alert:
    tenant_id: str
    kind: str  # an AlertKind value
    title: str  # one line: the subject of the e-mail, the heading of the card
    text: str  # a sentence or two: what changed and why
    url: str = ""  # absolute link to the page that explains it
    facts: dict[str, str] = field(default_factory=dict)  # label → value, shown as a table, in this order

    def __post_init__(self):
        if self.kind not in set(AlertKind):
            raise ValueError(f"Unknown alert kind {self.kind!r}; one of {', '.join(AlertKind)}")
        object.__setattr__(self, "facts", MappingProxyType({str(k): str(v) for k, v in self.facts.items()}))

    def as_payload(self) -> dict:
        # Facts as pairs: PostgreSQL's jsonb does not keep an object's key order, and the order is the message's.
        return {"tenant_id": self.tenant_id, "kind": str(self.kind), "title": self.title, "text": self.text,
                "url": self.url, "facts": [[k, v] for k, v in self.facts.items()]}

    @classmethod
    def from_payload(cls, payload: dict) -> "Alert":
        return cls(**{**payload, "facts": dict(payload.get("facts") or [])})


def raise_alert(alert: Alert) -> list:
    """Queue `alert` to every enabled channel of `alert.tenant_id`; the Delivery rows created."""
    from alerts.delivery import raise_alert as _raise

    return _raise(alert)


__all__ = ["Alert", "AlertKind", "raise_alert"]
