"""Tandem's command line: `./tandem <command>` (the shell wrapper installs the venv first).

    up             prepare everything and run Rasa, the action server and the web process
    train          train the Rasa model (skipped when data and config are unchanged)
    index          rebuild the FAQ index from the store, with a progress bar
    seed           load data/faq.yml into an empty knowledge base
    create-user    create or reset a staff account (agent, supervisor, editor)
    calibrate      choose the escalation thresholds from labelled data and write them to tandem.yml
"""
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
import time
from pathlib import Path

from server.processes import PRIVATE_UMASK
from core.db import async_engine, sync_engine
from server.schema import create_schema
from core.settings import Settings, load_settings

DEMO_ACCOUNTS = (("agent", "agent", "agent", "Alex Agent"), ("agent2", "agent2", "agent", "Sam Support"),
                 ("supervisor", "supervisor", "supervisor", "Pat Supervisor"), ("editor", "editor", "editor", "Eddie Editor"),
                 ("manager", "manager", "manager", "Morgan Manager"))


def _progress_bar(label: str):  # type: ignore[no-untyped-def]
    """A tqdm bar fed by (done, total) callbacks."""
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=label, unit="entries")
        bar["bar"].n = done
        bar["bar"].refresh()
        if done >= total:
            bar["bar"].close()

    return update


def knowledge_base(settings: Settings):  # type: ignore[no-untyped-def]
    from knowledge.base import AdaptPolicy, KnowledgeBase
    from knowledge.store import FaqStore

    return KnowledgeBase(FaqStore(sync_engine(settings)), settings.index_dir, language=settings.knowledge_language,
                         head=settings.faq_head, index_kind=settings.index_kind, adapt=AdaptPolicy.from_settings(settings, train=False))


def cmd_seed(settings: Settings) -> int:
    from knowledge.base import seed_if_empty

    create_schema(settings)
    added = seed_if_empty(knowledge_base(settings).store, settings.faq_file)
    print(f"knowledge base: {added} entries loaded from {settings.faq_file}" if added else "knowledge base: already has entries; not seeding")
    return added


def cmd_index(settings: Settings) -> None:
    create_schema(settings)
    started = time.monotonic()
    count = knowledge_base(settings).rebuild(progress=_progress_bar("indexing FAQs"))
    print(f"index: {count} entries in {time.monotonic() - started:.1f}s -> {settings.index_dir}")


def prepare_index(settings: Settings) -> None:
    """Open the saved index (rebuilding if missing, damaged or stale) so servers start warm."""
    kb = knowledge_base(settings)
    kb.open(progress=_progress_bar("indexing FAQs"))
    print(f"index: {len(kb.index)} entries ready")


async def _create_user(settings: Settings, username: str, password: str, role: str, name: str) -> None:
    from handoff.accounts import Accounts

    engine = async_engine(settings)
    try:
        account = await Accounts(engine, settings.agent_session_hours).create(username, password, role, name)
        print(f"account '{account.username}' ({account.role}) ready")
    finally:
        await engine.dispose()


async def _demo_accounts(settings: Settings) -> None:
    """demo_accounts on: create the published logins. Off: lock any that still have them."""
    import secrets

    import bcrypt
    import sqlalchemy as sa

    from handoff.accounts import Accounts
    from handoff.schema import accounts as accounts_table
    from handoff.schema import sessions

    engine = async_engine(settings)
    try:
        accounts = Accounts(engine, settings.agent_session_hours)
        for username, password, role, name in DEMO_ACCOUNTS:
            if settings.demo_accounts:
                if await accounts.by_username(username) is None:
                    await accounts.create(username, password, role, name)
                continue
            async with engine.connect() as conn:
                row = (await conn.execute(sa.select(accounts_table.c.id, accounts_table.c.password_hash)
                                          .where(accounts_table.c.username == username))).first()
            if row is None or not await asyncio.to_thread(bcrypt.checkpw, password.encode(), row[1].encode()):
                continue  # never created, or its password was changed: a real account now
            await accounts.create(username, secrets.token_urlsafe(24), role, name)  # nobody knows this one
            async with engine.begin() as conn:
                await conn.execute(sessions.delete().where(sessions.c.account_id == row[0]))
            print(f"demo account '{username}' locked (demo_accounts is off); ./tandem create-user {username} to reuse it")
    finally:
        await engine.dispose()


class UnsafeSettings(Exception):
    """Settings `up` refuses to run with; the text says what to change."""


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_demo_exposure(settings: Settings) -> None:
    """The demo logins are published in the README: never serve them beyond this machine."""
    from urllib.parse import urlsplit

    if not settings.demo_accounts:
        return
    exposed = [where for where, host in (("host", settings.host), ("public_url", urlsplit(settings.public_url).hostname or ""))
               if not _is_loopback(host)]
    if exposed:
        raise UnsafeSettings(
            f"demo_accounts is on (agent/agent, supervisor/supervisor, editor/editor: published passwords) and Tandem "
            f"would be reachable beyond this machine ({', '.join(exposed)}). Set demo_accounts: false in tandem.yml "
            "(or TANDEM_DEMO_ACCOUNTS=false) and create real staff with ./tandem create-user."
        )


DEMO_BANNER = """\
!!! DEMO ACCOUNTS ARE ON: agent/agent, agent2/agent2, supervisor/supervisor, editor/editor.
!!! Anyone who can open the console can log in with them. This is for trying Tandem on this
!!! machine only: for real use set `demo_accounts: false` in tandem.yml (the demo logins are
!!! then locked) and create staff with ./tandem create-user."""


def prepare(settings: Settings, train: bool = True) -> Path | None:
    """Everything `up` and the tests need before the servers start."""
    from server.processes import private_var_dir, train_model

    check_demo_exposure(settings)
    private_var_dir(settings)
    old_umask = os.umask(PRIVATE_UMASK)  # databases, index and secret created here: owner only
    try:
        create_schema(settings)
        settings.secret()
        cmd_seed(settings)
        asyncio.run(_demo_accounts(settings))
        model = train_model(settings) if train else None
        prepare_index(settings)
    finally:
        os.umask(old_umask)
    return model


def cmd_up(settings: Settings) -> int:
    from server.processes import Supervisor

    started = time.monotonic()
    model = prepare(settings)

    def say(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] supervisor: {message}", flush=True)

    supervisor = Supervisor(settings, model=model, notify=say)
    print("starting the action server, Rasa and the web process ...", flush=True)
    stopping = {"now": False}

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    def stop(*_: object) -> None:
        stopping["now"] = True

    # While starting, Ctrl-C (or SIGTERM) aborts the start; once running, it ends the loop below.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    status = 0
    try:
        supervisor.start()
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        staff = "(agent/agent, agent2/agent2, supervisor/supervisor)" if settings.demo_accounts else "(./tandem create-user)"
        print(
            f"\nTandem is running ({time.monotonic() - started:.0f}s to start).\n"
            f"  Customers, web widget demo:  {settings.web_url}/demo\n"
            f"  Agents, console:             {settings.web_url}/console   {staff}\n"
            f"  Editors, knowledge base:     {settings.web_url}/editor    {'(editor/editor)' if settings.demo_accounts else ''}\n"
            f"  REST channel:                POST {settings.web_url}/api/conversations\n"
            f"  Telegram:                    {'on (' + settings.telegram_mode + ')' if settings.telegram_token else 'off (set TANDEM_TELEGRAM_TOKEN)'}\n"
            f"  Rasa {', '.join(settings.rasa_urls)}, action server{'s' if settings.rasa_instances > 1 else ''} "
            f"{', '.join(u.removesuffix('/health') for u in settings.action_health_urls)}, logs {settings.var_dir / 'logs'}\n"
            "A process that dies is restarted; the others keep serving meanwhile.\n"
            "Press Ctrl-C to stop everything.",
            flush=True,
        )
        if settings.demo_accounts:
            print("\n" + DEMO_BANNER + "\n", flush=True)
        while not stopping["now"]:
            if "web" in supervisor.gave_up:  # nothing left that customers or agents can reach
                print("the web process cannot be kept running; stopping Tandem (exit status 1).", flush=True)
                status = 1
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping ...", flush=True)
        supervisor.stop()
        print("stopped.")
    return status


def cmd_calibrate(settings: Settings, target: float, escalation_target: float, dry_run: bool) -> None:
    """Thresholds from data/eval (actions/calibration.py), written into the settings file."""
    import os

    from actions.calibration import calibrate
    from server.processes import train_model

    create_schema(settings)
    cmd_seed(settings)
    kb = knowledge_base(settings)
    kb.open()
    settings_file = Path(os.environ.get("TANDEM_CONFIG", settings.root / "tandem.yml"))
    result = calibrate(settings, kb, train_model(settings), target, escalation_target, settings_file=None if dry_run else settings_file)
    faq, esc = result["faq"], result["escalation"]
    print(f"faq_threshold {faq['threshold']:.2f}: answer precision {faq['precision']:.3f}, {faq['coverage']:.1%} of answerable "
          f"questions answered right ({result['heldout']} held-out questions, target {target})")
    print(f"sentiment_threshold {esc['sentiment_threshold']}, frustration_threshold {esc['frustration_threshold']}: escalation precision "
          f"{esc['precision']:.3f}, recall {esc['recall']:.3f}, {esc['on_time']:.0%} within one turn ({result['conversations']} conversations)")
    print("plots: docs/img/calibration-faq-threshold.png, docs/img/calibration-escalation.png")
    print("not written (--dry-run)" if dry_run else f"written to {settings_file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tandem", description="Tandem: a support assistant where the bot and the people work in tandem")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("up", help="prepare and run everything (default)")
    sub.add_parser("train", help="train the Rasa model if data or config changed")
    sub.add_parser("index", help="rebuild the FAQ index from the store")
    sub.add_parser("seed", help="load data/faq.yml into an empty knowledge base")
    user = sub.add_parser("create-user", help="create or reset a staff account")
    user.add_argument("username")
    user.add_argument("--role", choices=("agent", "supervisor", "editor", "manager"), default="agent")
    user.add_argument("--name", default="", help="display name shown to customers")
    user.add_argument("--password", help="omit to be asked")
    calibrate = sub.add_parser("calibrate", help="calibrate faq/sentiment/frustration thresholds on data/eval (writes tandem.yml)")
    calibrate.add_argument("--target", type=float, default=0.75, help="answer precision the FAQ threshold must reach")
    calibrate.add_argument("--escalation-target", type=float, default=0.85, help="precision escalations must reach")
    calibrate.add_argument("--dry-run", action="store_true", help="print the values, do not write tandem.yml")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.umask(PRIVATE_UMASK)  # everything Tandem writes (var/, logs, index, models) is its owner's only
    settings = load_settings()
    command = args.command or "up"
    if command == "up":
        try:
            return cmd_up(settings)
        except UnsafeSettings as exc:
            print(f"tandem: refusing to start: {exc}", file=sys.stderr)
            return 2
    elif command == "train":
        from server.processes import train_model

        print(f"model: {train_model(settings)}")
    elif command == "index":
        cmd_index(settings)
    elif command == "seed":
        cmd_seed(settings)
    elif command == "calibrate":
        cmd_calibrate(settings, args.target, args.escalation_target, args.dry_run)
    elif command == "create-user":
        create_schema(settings)
        password = args.password or getpass.getpass(f"password for {args.username}: ")
        asyncio.run(_create_user(settings, args.username, password, args.role, args.name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
