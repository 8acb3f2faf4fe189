"""The evidence report: the page (which prints cleanly), and the same rows as CSV and JSON."""

from django.urls import path

from evidence import views

urlpatterns = [
    path("", views.report_page, name="evidence"),
    path("report.csv", views.report_csv, name="evidence_csv"),
    path("report.json", views.report_json, name="evidence_json"),
]
