"""ARM's naming rules for what a user types, from the Microsoft.DBforPostgreSQL spec and ARM itself."""

import re
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

RESOURCE_GROUP_RE = re.compile(r"^[-\w._()]{1,90}$")
# 3-63 letters, digits and single hyphens, not starting or ending with a hyphen.
SERVER_NAME_RE = re.compile(r"^(?=.{3,63}$)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$")
BACKUP_NAME_RE = re.compile(r"^(?=.{1,128}$)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$")


def validate_subscription_id(value: str) -> None:
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError):
        parsed = None
    # uuid.UUID() also takes braces, "urn:uuid:" and no hyphens; ARM wants the canonical 8-4-4-4-12 form.
    if parsed is None or str(parsed) != value.lower():
        raise ValidationError(
            "Enter the subscription id as a UUID, like 0b5e0001-0000-4000-8000-000000000001.", code="invalid"
        )


def validate_resource_group(value: str) -> None:
    if not RESOURCE_GROUP_RE.fullmatch(value):
        raise ValidationError(
            "A resource group name is 1 to 90 letters, digits, underscores, hyphens, periods or parentheses.",
            code="invalid",
        )
    if value.endswith("."):
        raise ValidationError("A resource group name cannot end with a period.", code="trailing_period")


validate_server_name = RegexValidator(
    SERVER_NAME_RE,
    "A server name is 3 to 63 letters, digits and single hyphens, and cannot start or end with a hyphen.",
)

validate_backup_name = RegexValidator(
    BACKUP_NAME_RE,
    "A backup name is 1 to 128 letters, digits and single hyphens, and cannot start or end with a hyphen.",
)
