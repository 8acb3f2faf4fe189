"""The CSV and JSON Lines exports on PostgreSQL: the database writes the rows (COPY ... TO STDOUT) and the view
only passes them on, in large pieces, between the same header and end line as the Python export
(checks.views.history).

Building a million CSV rows in Python took about 7 times as long as `psql \\copy` of the same join. Here the
filtered, tenant-scoped queryset of the history is turned into a SELECT of the exported columns, each
formatted in SQL exactly as the Python export formats it (ISO times, seconds to the millisecond, 0 as no HTTP
status, spreadsheet formulas defused; in JSON, times as to_json writes them), so both exports are the same bytes
(tests/test_export_copy.py compares them). A JSON line is built the same way, as one text value per row:
`to_json` escapes text exactly as Python's json.dumps(ensure_ascii=False) does, and COPY's CSV format with a
quote and a delimiter that JSON text never holds unescaped (control characters 1 and 2) passes the line through
untouched (the text format would double every backslash). SQLite keeps the Python export.
"""

import json
import logging

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import Case, F, Func, IntegerField, TextField, Value, When
from django.db.models.functions import Cast, Coalesce, Concat, Lower, NullIf
from django.db.models.lookups import In

log = logging.getLogger("checks.export")

# A cell starting with one of these is a formula in Excel (checks.views.history.FORMULA_STARTS), as code points:
# ascii() of the first character is a cheaper test than a regex, run on a dozen columns of a million rows.
FORMULA_STARTS = (ord("\t"), ord("\r"), ord("+"), ord("-"), ord("="), ord("@"))


class FirstCodePoint(Func):
    function = "ascii"
    output_field = IntegerField()


class IsoTime(Func):
    """datetime.isoformat(timespec="microseconds") of an aware time in UTC, in one call per value."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    output_field = TextField()


class Seconds(Func):
    """finished - started in seconds, rounded to the millisecond (half away from zero), a negative one defused."""

    template = "CASE WHEN %(expressions)s < 0 THEN '''' || %(expressions)s ELSE %(expressions)s::text END"
    output_field = TextField()

    def __init__(self, finished, started):
        rounded = Func(finished, started, arg_joiner=" - ", template="round(extract(epoch FROM %(expressions)s), 3)")
        super().__init__(rounded)


def defused(value):
    value = F(value) if isinstance(value, str) else value
    quoted = Concat(Value("'"), value, output_field=TextField())
    return Case(When(In(FirstCodePoint(value), FORMULA_STARTS), then=quoted), default=value, output_field=TextField())


class NameOf(Func):
    """The display name of a subscription id (any case) in a {lower-case id: name} JSON object sent with the
    statement, or NULL: one lookup a row. A correlated subquery of the names table was an index probe a row
    (3.7 s of a 900,000-row export once the tenant had names)."""

    template = "(%(expressions)s)"
    arg_joiner = "::jsonb ->> "
    output_field = TextField()

    def __init__(self, names: dict[str, str], field: str):
        super().__init__(Value(json.dumps(names)), Lower(F(field)))


def subscription_name(field: str, names: dict[str, str], *, defuse: bool = True):
    """The tenant's display name of the check's subscription, empty where none is known (as names_for_tenant)."""
    named = Coalesce(NameOf(names, field), Value(""), output_field=TextField())
    return defused(named) if defuse else JsonText(named, string=True)


def column(name: str, field: str, names: dict[str, str]):
    """The SQL of one exported column, formatted as checks.views.history's Python export formats it (`names`:
    the tenant's subscription names, dashboard.subscriptions.names_for_tenant)."""
    if name == "subscription_name":
        return subscription_name(field, names)
    model_field = _field(field)
    if name == "duration_seconds":
        return Seconds(F("finished_at"), F("started_at"))
    if name == "http_status":
        return NullIf(F(field), Value(0))
    if name == "number_of_containers":  # a negative count is ARM's text, not ours: defused like text
        text = Cast(F(field), TextField())
        return Case(When(**{f"{field}__lt": 0}, then=Concat(Value("'"), text)), default=text, output_field=TextField())
    if model_field.get_internal_type() == "DateTimeField":
        return IsoTime(F(field))
    if model_field.choices:  # our own words (status, category): never a formula
        return F(field)
    if model_field.get_internal_type() in ("CharField", "TextField"):
        return defused(field)
    return F(field)


class JsonText(Func):
    """A value as JSON text (null for no value): strings escaped by to_json, numbers as they are."""

    output_field = TextField()

    def __init__(self, expression, *, string: bool):
        value = "to_json((%(expressions)s)::text)::text" if string else "(%(expressions)s)::text"
        super().__init__(expression, template=f"COALESCE({value}, 'null')")


class JsonSeconds(Func):
    """finished - started in seconds to the millisecond as Python writes the float: no trailing zeros, but at
    least one decimal (2.0, 1.235, -0.001); null if the check never started or finished. Numeric functions, not
    a regular expression on the text (which cost 3 s of a million-row export)."""

    arg_joiner = " - "
    output_field = TextField()

    def as_sql(self, compiler, connection, **extra):
        sql, params = super().as_sql(compiler, connection, template="%(expressions)s", **extra)
        trimmed = f"trim_scale(round(extract(epoch FROM {sql}), 3))"
        return f"COALESCE(round({trimmed}, greatest(1, scale({trimmed})))::text, 'null')", params * 2


class Joined(Func):
    template, arg_joiner, output_field = "(%(expressions)s)", " || ", TextField()


def json_value(name: str, field: str, names: dict[str, str]):
    """The SQL of one exported value as JSON text, as checks.views.history's JSON Lines export writes it."""
    if name == "subscription_name":
        return subscription_name(field, names, defuse=False)
    if name == "duration_seconds":
        return JsonSeconds(F("finished_at"), F("started_at"))
    if name == "http_status":
        return JsonText(NullIf(F(field), Value(0)), string=False)
    model_field = _field(field)
    if model_field.get_internal_type() == "DateTimeField":  # JSON's own time format (the session is in UTC)
        return Func(F(field), template="COALESCE(to_json(%(expressions)s)::text, 'null')", output_field=TextField())
    if model_field.choices:  # our own words (status, category): nothing in them to escape
        return Concat(Value('"'), F(field), Value('"'), output_field=TextField())
    return JsonText(F(field), string=model_field.get_internal_type() in ("CharField", "TextField"))


def json_line(columns, names: dict[str, str]):
    """One JSON object per row, its keys in the columns' order, spaced as json.dumps spaces them."""
    parts = []
    for i, (name, field) in enumerate(columns):
        parts += [Value(("{" if i == 0 else ", ") + json.dumps(name) + ": "), json_value(name, field, names)]
    return Joined(*parts, Value("}"))


def _field(path: str):
    from checks.models import Check

    model, *hops, last = [Check, *path.split("__")]
    for hop in hops:
        model = model._meta.get_field(hop).related_model
    return model._meta.get_field(last)


# Every value quoted, as the Python CSV export writes them; for JSON, a quote and a delimiter that never occur
# unescaped in JSON text, so COPY writes each line as it is.
CSV_OPTIONS = "FORMAT csv, FORCE_QUOTE *"
JSON_OPTIONS = "FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02'"


def stream(checks, lines, columns, buffer_bytes: int, *, names: dict[str, str], as_json: bool = False):
    """The export of `checks` (ordered, filtered) as bytes, CSV or JSON Lines: `lines`' header, the rows COPY
    writes, then its end line, or its failed line if the database stopped midway (a file cut off before the end
    has neither)."""
    lines.head()
    yield lines.buffer.getvalue().encode()
    lines.buffer.seek(0)
    lines.buffer.truncate()
    rows, pieces, size = 0, [], 0
    try:
        selected = [json_line(columns, names)] if as_json else [column(name, field, names) for name, field in columns]
        sql, params = checks.values_list(*selected).query.sql_with_params()
    except EmptyResultSet:  # filters that match nothing (an unknown server): no query to run
        lines.end(0)
        yield lines.buffer.getvalue().encode()
        return
    try:
        # A savepoint inside a transaction (tests), a short transaction of one statement otherwise.
        with transaction.atomic(), connection.cursor() as cursor:
            if as_json:
                # One narrow text column makes a sort of every row look cheap to the planner, which then sorts
                # (nothing is sent until all rows are built: 30 s of silence at a million) where the CSV's
                # plan reads the rows in order off the index and streams at once. Scoped to this transaction.
                cursor.execute("SET LOCAL enable_sort = off")
            copy_sql = f"COPY ({sql}) TO STDOUT WITH ({JSON_OPTIONS if as_json else CSV_OPTIONS})"
            with cursor.cursor.copy(copy_sql, params) as copy:
                for row in copy:  # one row a piece, as libpq hands them over
                    pieces.append(row)
                    size += len(row)
                    rows += 1
                    if size >= buffer_bytes:
                        yield b"".join(pieces)
                        pieces, size = [], 0
        lines.end(rows)
    except Exception:
        log.exception("The export failed after %s rows", rows)
        lines.failed(rows)
    yield b"".join(pieces) + lines.buffer.getvalue().encode()
