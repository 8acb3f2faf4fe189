from django.urls import path

from schedules import views

urlpatterns = [
    path("", views.schedule_list, name="schedule_list"),
    path("new/", views.schedule_create, name="schedule_create"),
    path("<int:pk>/edit/", views.schedule_edit, name="schedule_edit"),
    path("<int:pk>/pause/", views.schedule_pause, name="schedule_pause"),
    path("<int:pk>/resume/", views.schedule_resume, name="schedule_resume"),
    path("<int:pk>/run/", views.schedule_run_now, name="schedule_run_now"),
    path("<int:pk>/delete/", views.schedule_delete, name="schedule_delete"),
]
