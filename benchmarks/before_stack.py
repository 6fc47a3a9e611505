"""An older commit of Tandem started next to today's, for before/after measurements in one run.

`git archive <ref>` is unpacked into a temporary folder (no worktree is registered, nothing in the
repository changes), the trained models are copied in (so a ref whose config matches a model there
does not retrain), and a child Python started in that folder runs *its own* `prepare()` and
`Supervisor`, prints its web URL and its processes' pids as JSON, and serves until its stdin
closes. The measuring process then talks to it exactly as to today's stack.
"""
from __future__ import annotations

import json
import os
import signal
import shutil
import subprocess
import sys
import tarfile
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import ROOT, free_port

SERVE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, str(Path.cwd()))
from core.settings import load_settings
from server.cli import prepare
from server.processes import Supervisor
args = json.loads(sys.argv[1])
settings = load_settings(var_dir=Path(args["var"]), web_port=args["web"], rasa_port=args["rasa"], action_port=args["action"],
                         secret_key="bench-secret", database_url="", redis_url="", rate_limits=False, faq_file=Path(args["faq"]))
supervisor = Supervisor(settings, model=prepare(settings))
supervisor.start()
try:
    print("TANDEM-BEFORE-READY " + json.dumps({"url": settings.web_url, "pids": {s.name: s.process.pid for s in supervisor.services if s.process}}), flush=True)
    sys.stdout = sys.stderr  # nobody reads the pipe after this line
    sys.stdin.read()
finally:
    supervisor.stop()
"""


READY = "TANDEM-BEFORE-READY "


def list_until_ready(process: subprocess.Popen) -> list[str]:
    """The child's stdout lines up to and including its ready line (or until it exits)."""
    assert process.stdout is not None
    seen: list[str] = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(READY):
            break
    return seen


@dataclass
class BeforeStack:
    """A running older Tandem: its web URL, its server pids, and the child that owns them."""

    ref: str
    url: str
    pids: dict[str, int]
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_before(ref: str, folder: Path, faq_name: str, log: Path) -> BeforeStack:
    """Unpack `ref` into `folder` and start its stack (prepare + Supervisor) on free ports."""
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=ROOT, capture_output=True, check=True).stdout
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder)  # noqa: S202 - our own repository's commit
    if (ROOT / "models").is_dir():
        shutil.copytree(ROOT / "models", folder / "models", dirs_exist_ok=True)
    args: dict[str, Any] = {"var": str(folder / "var"), "web": free_port(), "rasa": free_port(), "action": free_port(),
                            "faq": str(folder / "data" / faq_name)}
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANDEM_") and k != "PYTHONPATH"}
    process = subprocess.Popen([sys.executable, "-c", SERVE, json.dumps(args)], cwd=folder, env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=handle, text=True, start_new_session=True)
    assert process.stdout is not None
    try:
        lines = list_until_ready(process)
    except BaseException:
        os.killpg(process.pid, signal.SIGTERM)
        raise
    for line in lines:  # prepare() prints its progress; the last line names the stack
        if line.startswith(READY):
            ready = json.loads(line[len(READY):])
            return BeforeStack(ref, ready["url"], {k: int(v) for k, v in ready["pids"].items()}, process)
    process.wait(timeout=30)
    raise RuntimeError(f"the {ref} stack did not start:\n{log.read_text(errors='replace')[-2000:]}")
