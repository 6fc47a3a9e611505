"""Run Tandem's web process: `python -m server.web` (the CLI's `up` starts it for you)."""
from __future__ import annotations

import logging

from server.app import create_app
from core.settings import load_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s web %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO, and Rasa's API takes its token in the URL.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = load_settings()
    app = create_app(settings)
    app.run(host=settings.host, port=settings.web_port, workers=1, access_log=False, motd=False)


if __name__ == "__main__":
    main()
