from django.apps import AppConfig


class ArmClientConfig(AppConfig):
    name = "armclient"
    verbose_name = "Azure Resource Manager client"
