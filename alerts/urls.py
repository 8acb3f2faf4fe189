from django.urls import path

from alerts import views

app_name = "alerts"

urlpatterns = [
    path("", views.index, name="index"),
    path("channels/add/", views.channel_add, name="channel_add"),
    path("channels/<int:pk>/", views.channel_edit, name="channel_edit"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel_delete"),
    path("channels/<int:pk>/test/", views.channel_test, name="channel_test"),
    path("deliveries/<int:pk>/", views.delivery_row, name="delivery_row"),
]
