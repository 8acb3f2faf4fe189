"""azuresim: a local simulator of Microsoft Entra ID (sign-in, tokens) and of the one Azure Resource
Manager operation the dashboard calls (PostgreSQL flexible server ltrPreBackup), for tests and demos.

It depends on the standard library, ``cryptography`` and PyJWT only.
"""

from .simulator import Simulator

__all__ = ["Simulator"]
