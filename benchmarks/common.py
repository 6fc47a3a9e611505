"""Small helpers shared by the benchmark scripts: statistics, tables, memory, the results file.

Benchmarks are scripts, not tests: they print what they measured and write it into their own
`## ` section of docs/benchmarks.md, leaving every other section of that file untouched.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import sys
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RESULTS = DOCS / "benchmarks.md"
IMAGES = DOCS / "img"

if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from the project root imports Tandem's rooms
    sys.path.insert(0, str(ROOT))

INTRO = """# Benchmarks

Measurements of Tandem taken by the scripts in `benchmarks/`. Each section says the command
that produced it, when and on what machine; re-run the command to refresh the section (the
scripts rewrite only their own section). Numbers are from one run on a small shared machine:
read them as orders of magnitude and ratios, not as guarantees.
"""


def percentile(values: Sequence[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table; also readable as plain text on a terminal."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process in MiB; None if it is gone or unreadable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def children_of(pid: int) -> list[int]:
    """Direct children of a process (a server may fork helpers; their memory counts too)."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        found: list[int] = []
        for task in tasks:
            text = (task / "children").read_text().split()
            found.extend(int(c) for c in text)
        return found
    except OSError:
        return []


def machine() -> str:
    """One line that says where the numbers came from."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.MULTILINE)
        memory = f", {int(total.group(1)) / 1024 / 1024:.1f} GiB RAM" if total else ""
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model or platform.machine()}){memory}, Linux {platform.release()}, Python {platform.python_version()}"


def today() -> str:
    return _dt.datetime.now().strftime("%Y-%m-%d %H:%M")


def write_section(heading: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the `## heading` section of the results file, keeping the others.

    A section runs from its `## ` heading to the next `## ` heading or the end of the file.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else INTRO
    block = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: block + "\n", text, count=1).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (settings.rasa_instances uses port + i)."""
    import socket

    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                held.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports")


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_database(name: str) -> str:
    """A new, empty PostgreSQL database on the local server (trust auth), dropped first if it exists."""
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (all its threads); 0.0 if gone.

    CPU per message is a fairer cost figure than wall-clock latency on a busy, shared machine.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14 and 15 of stat)
