"""`make run`: the whole dashboard in one command, on its embedded default.

Migrates SQLite, registers the demo fleet, then starts three processes and stops them together on
Ctrl-C: the Azure simulator (azuresim, on loopback), a task worker (checks_worker) and the
web server. The simulator runs as its own process, exactly as Azure would be: nothing is shared in memory.
"""

import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def _wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CommandError(f"The simulator exited with code {proc.returncode}; see its output above.")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"The simulator did not start listening on {host}:{port} within {timeout:.0f} s.")


class Command(BaseCommand):
    help = "Run the dashboard in demo mode: simulator, worker and web server, stopped together by Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def handle(self, *args, host, port, **options):
        if not settings.DEMO_MODE:
            raise CommandError("rundemo is for demo mode (DEMO_MODE=1); in production run gunicorn and checks_worker.")
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        python = sys.executable
        processes: list[tuple[str, subprocess.Popen]] = []

        def stop_on_sigterm(signum, frame):
            raise KeyboardInterrupt  # run the same clean-up as Ctrl-C

        signal.signal(signal.SIGTERM, stop_on_sigterm)

        def start(name: str, argv: list[str]) -> subprocess.Popen:
            proc = subprocess.Popen(argv, env=os.environ.copy())
            processes.append((name, proc))
            return proc

        try:
            sim = start("azuresim", [
                python, "-m", "azuresim",
                "--scenario", str(settings.AZURESIM_SCENARIO),
                "--host", settings.AZURESIM_HOST,
                "--https-port", str(settings.AZURESIM_HTTPS_PORT),
                "--http-port", str(settings.AZURESIM_HTTP_PORT),
                "--state-dir", str(settings.AZURESIM_STATE_DIR),
            ])
            _wait_for_port(settings.AZURESIM_HOST, settings.AZURESIM_HTTPS_PORT, 30, sim)
            start("worker", [python, "manage.py", "checks_worker", "--interval", "0.2"])
            start("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload", "--skip-checks"])
            self.stdout.write(self.style.SUCCESS(
                f"\nDashboard: http://{host}:{port}/  (sign in as Alice or Bob of Contoso, or Charlie of Fabrikam)\n"
                "Press Ctrl-C to stop.\n"
            ))
            while all(proc.poll() is None for _, proc in processes):
                time.sleep(0.5)
            stopped = [name for name, proc in processes if proc.poll() is not None]
            raise CommandError(f"{', '.join(stopped)} stopped unexpectedly; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for _, proc in reversed(processes):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for _, proc in processes:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
