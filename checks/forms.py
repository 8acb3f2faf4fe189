"""The run form (a backup name, proposed when left out), the server list's filters and sorts, and the history's
filters."""

from django import forms
from django.db.models import Q
from django.forms.utils import flatatt
from django.urls import reverse_lazy
from django.utils.html import escape
from django.utils.safestring import mark_safe

from armclient.outcomes import Category
from backups import summary
from checks.models import Check, proposed_backup_name
from dashboard.forms import subscription_choices
from dashboard.models import Server
from dashboard.validators import validate_backup_name


class RunCheckForm(forms.Form):
    """The list's small "Run" posts no name: the server's proposed one is used (the server page lets a user
    choose it)."""

    backup_name = forms.CharField(label="Backup name", max_length=128, required=False,
                                  validators=[validate_backup_name])

    def __init__(self, *args, server: Server | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.server = server

    def clean_backup_name(self) -> str:
        name = self.cleaned_data["backup_name"].strip()
        if not name and self.server is not None:
            return proposed_backup_name(self.server.name)
        if not name:
            raise forms.ValidationError("Enter a backup name.")
        return name


# Filter errors in the words a user reads next to the field's label: "Search: at most 100 characters (this has 300)."
FILTER_ERRORS = {
    "max_length": "at most %(limit_value)d characters (this has %(show_value)d).",
}


def _history_status_choices() -> list:
    """The statuses a check of the history can have, those still in progress apart from those finished (the
    history lists checks as they run, so "Queued" and "Running" find the ones waiting or under way)."""
    active = [(value, label) for value, label in Check.Status.choices if value in Check.ACTIVE_STATUSES]
    finished = [(value, label) for value, label in Check.Status.choices if value not in Check.ACTIVE_STATUSES]
    return [("", "Any status"), ("In progress", active), ("Finished", finished)]


def _history_category_choices() -> list:
    """The categories, those that say something about the server apart from those about the caller or the
    path to Azure (as the README's readiness table has them)."""
    about_server = [(c.value, c.label) for c in Category if c.is_about_the_server]
    about_caller = [(c.value, c.label) for c in Category if not c.is_about_the_server]
    return [("", "Any category"), ("About the server", about_server),
            ("About the caller or the path to Azure", about_caller)]


def _not_offered(what: str) -> dict:
    return {"invalid_choice": f"“%(value)s” is not {what} the history knows: pick one from the list."}


class QuickSelect(forms.Select):
    """A <select> written in f-strings: Django renders each option through a template (~40 µs each), and the
    server list and the history draw their filters' dozens of options on every request. The same markup as
    forms.Select, groups (<optgroup>) included."""

    def option_title(self, value: str, label: str) -> str:
        return ""

    def render(self, name, value, attrs=None, renderer=None):
        wanted, lines, chosen = self.format_value(value), [], False
        for option, label in self.choices:
            group = label if isinstance(label, list | tuple) else None
            if group is not None:
                lines.append(f'<optgroup label="{escape(option)}">')
            for value_, label_ in group if group is not None else [(option, label)]:
                value_, label_ = str(value_), str(label_)
                selected = not chosen and value_ in wanted
                chosen = chosen or selected
                lines.append(f'<option value="{escape(value_)}"{self.option_title(value_, label_)}'
                             f'{" selected" if selected else ""}>{escape(label_)}</option>')
            if group is not None:
                lines.append("</optgroup>")
        attrs = flatatt(self.build_attrs(self.attrs, attrs))
        return mark_safe(f'<select name="{escape(name)}"{attrs}>\n' + "\n".join(lines) + "\n</select>")  # noqa: S308


class QuickSubscriptionSelect(QuickSelect):
    """dashboard.forms.SubscriptionSelect's options (a named subscription's GUID as its title), written quickly."""

    def option_title(self, value: str, label: str) -> str:
        return f' title="{escape(value)}"' if value and label != value else ""


class HistoryFilterForm(forms.Form):
    """GET filters for the history; bad values are reported and match nothing rather than failing the page.

    The server is typed (a name, any case, or an id) with suggestions from /checks/servers.json, rather than
    picked from a list of every server in the tenant. The page shows each field by its label, and its errors
    under the same words (issue 15: never "Outcome" for what reads "Status").
    """

    server = forms.CharField(
        required=False, max_length=100, label="Server",
        error_messages={"max_length": "Type at most %(limit_value)d characters of a server's name."},
        widget=forms.SearchInput(attrs={"list": "server-names", "autocomplete": "off",
                                        "data-suggest": reverse_lazy("history_server_names")}),
    )
    # "outcome" in the URL, as links and exports made before have it; the page's column reads "Status".
    outcome = forms.ChoiceField(required=False, label="Status", choices=_history_status_choices, widget=QuickSelect,
                                error_messages=_not_offered("a status"))
    category = forms.ChoiceField(required=False, label="Category", choices=_history_category_choices,
                                 widget=QuickSelect, error_messages=_not_offered("a category"))
    by = forms.ChoiceField(required=False, label="Run by", choices=[("", "Anyone"), ("me", "Me")], widget=QuickSelect,
                           error_messages={"invalid_choice": "“%(value)s” is not a choice here: Anyone or Me."})

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_server(self) -> list[int]:
        text = self.cleaned_data["server"].strip()
        if not text:
            return []
        matches = Q(name__iexact=text)
        if text.isascii() and text.isdigit() and int(text) < 2**62:  # "¹" is a digit, but no int
            matches |= Q(pk=int(text))
        ids = list(Server.objects.for_tenant(self.user.tenant_id).filter(matches).values_list("pk", flat=True)[:50])
        if not ids:
            raise forms.ValidationError(f"no server is named “{text}” in your tenant.")
        return ids

    def filter(self, checks):
        if not self.is_valid():
            return checks.none() if self.data else checks
        data = self.cleaned_data
        if data["server"]:
            checks = checks.filter(server_id__in=data["server"])
        if data["outcome"]:
            checks = checks.filter(status=data["outcome"])
        if data["category"]:
            checks = checks.filter(category=data["category"])
        if data["by"] == "me":
            checks = checks.filter(requested_by_oid=self.user.object_id)
        return checks


class ServerFilterForm(forms.Form):
    """The server list's search and filters (GET). Bad values are reported and match nothing."""

    OUTCOMES = [
        ("", "Any state"),
        ("ready", "Ready"),
        ("not_ready", "Not ready"),
        ("never", "Not known yet (never checked, or no check said)"),
        ("stale", "Stale (last conclusive check too old)"),
        ("active", "Checking now"),
    ]
    q = forms.CharField(required=False, max_length=100, label="Search", error_messages=FILTER_ERRORS)
    subscription = forms.ChoiceField(required=False, label="Subscription", error_messages=FILTER_ERRORS,
                                     widget=QuickSubscriptionSelect)
    resource_group = forms.ChoiceField(required=False, label="Resource group", error_messages=FILTER_ERRORS,
                                       widget=QuickSelect)
    state = forms.ChoiceField(required=False, label="State", choices=OUTCOMES, error_messages=FILTER_ERRORS,
                              widget=QuickSelect)
    backup = forms.ChoiceField(required=False, label="Last LTR backup", choices=summary.FILTER_CHOICES,
                               error_messages=FILTER_ERRORS, widget=QuickSelect)

    def __init__(self, *args, places, subscription_names: dict[str, str] | None = None, **kwargs):
        """`places`: the (subscription id, resource group) pairs the tenant's servers are in."""
        super().__init__(*args, **kwargs)
        ids = {subscription for subscription, _ in places}
        groups = sorted({group for _, group in places}, key=str.lower)
        # A callable: the names are read only if the choices are (the counts fragment reads none).
        self.fields["subscription"].choices = lambda: subscription_choices(ids, subscription_names or {},
                                                                           "All subscriptions")
        self.fields["resource_group"].choices = [("", "All resource groups"), *((g, g) for g in groups)]
