"""ARM's naming rules, as the registration and run forms apply them."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from dashboard.validators import (
    validate_backup_name,
    validate_resource_group,
    validate_server_name,
    validate_subscription_id,
)


def ok(validator, value) -> bool:
    try:
        validator(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("value", ["0b5e0001-0000-4000-8000-000000000001", "0B5E0001-0000-4000-8000-00000000000A"])
def test_it_accepts_a_uuid_subscription_id(value):
    assert ok(validate_subscription_id, value)


@pytest.mark.parametrize("value", ["", "not-a-uuid", "0b5e00010000400080000000000000001",
                                   "{0b5e0001-0000-4000-8000-000000000001}",
                                   "urn:uuid:0b5e0001-0000-4000-8000-000000000001",
                                   "0b5e0001-0000-4000-8000-00000000000g"])
def test_it_refuses_anything_but_a_canonical_uuid(value):
    assert not ok(validate_subscription_id, value)


@pytest.mark.parametrize("value", ["rg", "a", "rg-payments_prod.v2", "(rg)", "x" * 90, "rg.é"])
def test_it_accepts_resource_group_names_arm_accepts(value):
    assert ok(validate_resource_group, value)


@pytest.mark.parametrize("value", ["", "x" * 91, "rg.", "rg/other", "rg name", "rg%2f", "rg?x"])
def test_it_refuses_resource_group_names_arm_refuses(value):
    assert not ok(validate_resource_group, value)


@pytest.mark.parametrize("value", ["pg1", "pg-payments-01", "a" * 63, "PG-Upper-9"])
def test_it_accepts_server_names(value):
    assert ok(validate_server_name, value)


@pytest.mark.parametrize("value", ["pg", "a" * 64, "-pg", "pg-", "pg--x", "pg_x", "pg.x", "pg x", "ṕg1"])
def test_it_refuses_bad_server_names(value):
    assert not ok(validate_server_name, value)


@pytest.mark.parametrize("value", ["b", "backup-2026-11-26", "a" * 128])
def test_it_accepts_backup_names(value):
    assert ok(validate_backup_name, value)


@pytest.mark.parametrize("value", ["", "a" * 129, "-b", "b-", "b--c", "b_c", "b.c", "<script>"])
def test_it_refuses_bad_backup_names(value):
    assert not ok(validate_backup_name, value)


@given(st.text(max_size=200))
def test_validators_never_crash_on_arbitrary_text(text):
    for validator in (validate_subscription_id, validate_resource_group, validate_server_name, validate_backup_name):
        ok(validator, text)


@given(st.from_regex(r"\A[a-z0-9]{1,10}(-[a-z0-9]{1,10}){0,5}\Z"))
def test_hyphenated_names_of_letters_and_digits_are_valid_backup_names(text):
    assert ok(validate_backup_name, text)
