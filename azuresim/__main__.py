"""Command line: ``python -m azuresim --scenario azuresim/scenarios/demo.json`` serves the simulator
until SIGINT/SIGTERM, logging one line per request (method, path, status; never query strings,
bodies, tokens, secrets or codes) to stderr."""

import argparse
import logging
import os
import signal
import threading

from .simulator import Simulator

DEFAULT_SCENARIO = os.path.join(os.path.dirname(__file__), "scenarios", "demo.json")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m azuresim", description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default=DEFAULT_SCENARIO, help="scenario JSON file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--https-port", type=int, default=8441, help="discovery, token endpoint, ARM")
    parser.add_argument("--http-port", type=int, default=8440, help="browser sign-in pages")
    parser.add_argument("--state-dir", default="var/azuresim", help="where ca.pem and keys are kept")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s azuresim %(message)s"
    )
    log = logging.getLogger("azuresim")
    sim = Simulator(
        args.scenario,
        host=args.host,
        https_port=args.https_port,
        http_port=args.http_port,
        state_dir=args.state_dir,
    )
    sim.start()
    log.info("identity + ARM (TLS): %s   sign-in pages: %s", sim.https_url, sim.http_url)
    log.info("trust this CA: %s   authority: %s", os.path.abspath(sim.ca_path), sim.authority())
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    log.info("stopping")
    sim.stop()


if __name__ == "__main__":
    main()
