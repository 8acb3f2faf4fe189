from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = "Scheduled checks"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from schedules.firing import reactivate_after_sign_in

        # The owner's fresh sign-in is what a schedule in "owner must sign in" waits for.
        user_logged_in.connect(reactivate_after_sign_in, dispatch_uid="schedules.reactivate_after_sign_in")

        from schedules.alerting import on_schedule_needs_owner
        from schedules.signals import schedule_needs_owner

        schedule_needs_owner.connect(on_schedule_needs_owner, dispatch_uid="schedules.alerting")
