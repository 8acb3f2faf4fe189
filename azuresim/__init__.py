"""azuresim: a local simulator of Microsoft Entra ID (sign-in, tokens) and of the Azure Resource Manager
calls the dashboard makes (PostgreSQL flexible server ltrPreBackup; the subscription and server reads;
the provider's registration), for tests and demos. simulator.py says where each part lives.

It depends on the standard library, ``cryptography`` and PyJWT only.
"""

from .simulator import Simulator

__all__ = ["Simulator"]
