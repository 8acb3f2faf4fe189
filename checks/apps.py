from django.apps import AppConfig


class ChecksConfig(AppConfig):
    name = "checks"
    verbose_name = "Pre-backup checks"

    def ready(self) -> None:
        # Connects the receiver that re-runs a parked check once the user has signed in again.
        from checks import resume  # noqa: F401
        from checks.alerting import on_readiness_changed
        from checks.readiness import readiness_changed

        readiness_changed.connect(on_readiness_changed, dispatch_uid="checks.alerting")
