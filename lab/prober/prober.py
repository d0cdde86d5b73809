#!/usr/bin/env python3
"""Downtime prober of the hosting lab.

Requests every hosting account's website every interval, through each service address and
through the account's DNS name, and appends one JSON line per request to a timeline; `summary`
turns a timeline into failed requests and longest outages per account and per address.
See docs/prober.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

DEFAULT_INTERVAL = 0.1
DEFAULT_TIMEOUT = 1.0
# Every request runs PHP and opens both databases: on a 2-core host the lab serves about this
# many a second before the prober itself becomes the outage it measures.
DEFAULT_MAX_RATE = 200.0
# The timeline is promised to be on disk at most a second after a request; flush twice as often.
FLUSH_PERIOD = 0.5
STOP_WAIT = 5.0
# Long enough for the daemon to fail on a bad accounts file or an unwritable timeline.
START_CHECK = 0.5


def state_dir() -> Path:
    return Path(os.environ.get("HOSTING_LAB_STATE", "/var/lib/hosting-lab"))


def pid_file() -> Path:
    return state_dir() / "prober" / "prober.pid"


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} prober: {message}", file=sys.stderr, flush=True)


# --- what to probe ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One series of requests: an account's site through one service address or one DNS lookup."""

    account: str
    via: str  # "ip": fixed service address; "dns": address resolved from `host` at each request
    label: str  # "10.77.0.21" or "alice.hosted.test/A"
    host: str  # Host header, and the name resolved for "dns" targets
    digest: str
    address: str | None = None  # "ip" targets only
    rdtype: str | None = None  # "dns" targets only: "A" or "AAAA"


def load_accounts(path: Path) -> dict:
    """The accounts file written by the lab setup, checked enough to fail before probing."""
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path} not found (`make lab-up` writes it)") from None
    for key in ("name_server", "accounts"):
        if key not in config:
            raise ValueError(f"{path}: missing field {key!r}")
    for account in config["accounts"]:
        for key in ("name", "digest"):
            if key not in account:
                raise ValueError(f"{path}: an account has no field {key!r}")
        if not account.get("external_domains") and not account.get("dns_domains"):
            raise ValueError(f"{path}: account {account['name']!r} has no domain for the Host header")
    return config


def ip_targets(accounts: list[dict]) -> list[Target]:
    targets = []
    for account in accounts:
        # Clients reach a site by its external name; the hosted.test names are the provider's.
        host = (account.get("external_domains") or account["dns_domains"])[0]
        for address in account.get("service_addresses", []):
            targets.append(Target(account["name"], "ip", address, host, account["digest"], address=address))
    return targets


def dns_targets(accounts: list[dict], aaaa_domains: set[str]) -> list[Target]:
    targets = []
    for account in accounts:
        if not account.get("dns_domains"):
            continue
        domain = account["dns_domains"][0]
        for rdtype in ("A", "AAAA") if domain in aaaa_domains else ("A",):
            targets.append(Target(account["name"], "dns", f"{domain}/{rdtype}", domain, account["digest"],
                                  rdtype=rdtype))
    return targets


# --- DNS -------------------------------------------------------------------------------------

class DnsFailure(Exception):
    """A lookup that gave no address; its text becomes the request's reason."""


class NoRecord(DnsFailure):
    """The name or the record type does not exist (NXDOMAIN, or an empty answer)."""


def make_resolver(name_server: str, port: int, timeout: float):
    """An async `resolve(name, rdtype) -> (address, ttl)` that asks the lab's name server only."""
    # Imported here so that summary, status and stop also run on a Python without dnspython.
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [name_server]
    resolver.port = port
    resolver.lifetime = timeout

    async def resolve(name: str, rdtype: str) -> tuple[str, int]:
        try:
            answer = await resolver.resolve(name, rdtype)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer) as exc:
            raise NoRecord(str(exc)) from exc
        except dns.exception.DNSException as exc:
            raise DnsFailure(str(exc) or type(exc).__name__) from exc
        return answer[0].address, answer.rrset.ttl

    return resolve


class DnsCache:
    """Answers kept for exactly their TTL, like a client's resolver: after a record changes, the
    prober moves to the new address no earlier and no later than a well-behaved client would."""

    def __init__(self, resolve, clock=time.monotonic):
        self._resolve = resolve
        self._clock = clock
        self._answers: dict[tuple[str, str], tuple[str, float]] = {}

    async def address(self, name: str, rdtype: str) -> str:
        cached = self._answers.get((name, rdtype))
        if cached is not None and self._clock() < cached[1]:
            return cached[0]
        address, ttl = await self._resolve(name, rdtype)
        self._answers[(name, rdtype)] = (address, self._clock() + ttl)
        return address


async def domains_with_aaaa(domains: list[str], resolve) -> set[str]:
    """The domains whose zone has an AAAA record, asked once at start. A lookup failing for another
    reason than a missing record keeps the AAAA target, so that the failure shows in the timeline."""

    async def has_aaaa(domain: str) -> bool:
        try:
            await resolve(domain, "AAAA")
        except NoRecord:
            return False
        except DnsFailure:
            pass
        return True

    found = await asyncio.gather(*(has_aaaa(domain) for domain in domains))
    return {domain for domain, yes in zip(domains, found) if yes}


# --- HTTP ------------------------------------------------------------------------------------

def http_request(host: str) -> bytes:
    return (f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: hosting-lab-prober\r\n"
            "Connection: close\r\n\r\n").encode("ascii")


def parse_response(raw: bytes) -> tuple[int, bytes]:
    """Status and body of a complete HTTP/1.x response; ValueError if it is not one."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    if not separator:
        raise ValueError("no end of headers")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ValueError(f"bad status line {status_line[:60]!r}")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = dechunk(body)
    elif b"content-length" in headers:
        length = int(headers[b"content-length"])
        if len(body) < length:
            raise ValueError(f"body of {len(body)} bytes, {length} announced")
        body = body[:length]
    return int(parts[1]), body


def dechunk(data: bytes) -> bytes:
    """The body of a chunked response (nginx answers PHP output of unknown length so)."""
    body = bytearray()
    while True:
        size_line, separator, data = data.partition(b"\r\n")
        if not separator:
            raise ValueError("truncated chunked body")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(body)
        if len(data) < size + 2:
            raise ValueError("truncated chunked body")
        body += data[:size]
        data = data[size + 2:]


def failure_reason(status: int, body: bytes, digest: str) -> str | None:
    """Why a response is not the account's own site working, or None if it is."""
    if status != 200:
        return f"http {status}"
    if f"digest: {digest}".encode() in body:
        return None
    # Another account's digest means the request reached the wrong site (vhost or address mix-up).
    _, found, rest = body.partition(b"digest: ")
    if not found:
        return "no digest in body"
    return f"wrong digest {rest[:12].decode(errors='replace')}"


async def fetch(address: str, port: int, host: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        writer.write(http_request(host))
        await writer.drain()
        return parse_response(await reader.read())
    finally:
        writer.close()


# --- probing ---------------------------------------------------------------------------------

async def probe(target: Target, *, port: int, timeout: float, dns: DnsCache) -> dict:
    """One request to `target`, as its timeline record; the timeout covers DNS and HTTP."""
    record = {"t": round(time.time(), 4), "account": target.account, "via": target.via,
              "target": target.label, "address": target.address, "host": target.host,
              "ok": False, "status": None, "ms": None, "reason": None}
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            if target.rdtype:
                record["address"] = await dns.address(target.host, target.rdtype)
            record["status"], body = await fetch(record["address"], port, target.host)
        record["reason"] = failure_reason(record["status"], body, target.digest)
    except DnsFailure as exc:
        record["reason"] = f"dns: {exc}"
    except TimeoutError:  # before OSError, of which it is a subclass
        record["reason"] = f"timeout after {timeout:g} s"
    except ValueError as exc:
        record["reason"] = f"bad response: {exc}"
    except OSError as exc:
        record["reason"] = f"connection: {exc.strerror or exc}"
    record["ok"] = record["reason"] is None
    record["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return record


def effective_interval(interval: float, targets: int, max_rate: float | None) -> float:
    """The interval per target, stretched so that all targets together stay under max_rate."""
    if not max_rate or not targets:
        return interval
    return max(interval, targets / max_rate)


def next_slot(previous: float, now: float, interval: float) -> float:
    """The first slot after `previous` that has not started yet. Slots that passed while the
    previous request was running are skipped, so a slow target never queues up requests."""
    return previous + interval * max(1, math.ceil((now - previous) / interval))


async def probe_forever(target: Target, first_slot: float, interval: float, probe_once, write) -> None:
    loop = asyncio.get_running_loop()
    slot = first_slot
    while True:
        await asyncio.sleep(slot - loop.time())
        write(await probe_once(target))
        slot = next_slot(slot, loop.time(), interval)


class Timeline:
    """The append-only JSON-lines file of requests."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")
        self.count = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self.count += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


async def flush_periodically(timeline: Timeline) -> None:
    while True:
        await asyncio.sleep(FLUSH_PERIOD)
        timeline.flush()


async def run_prober(config: dict, out: Path, interval: float = DEFAULT_INTERVAL,
                     timeout: float = DEFAULT_TIMEOUT, duration: float | None = None,
                     resolve=None, max_rate: float | None = None) -> int:
    """Probe every target of `config` until `duration` has passed or SIGTERM/SIGINT; returns the
    number of records written. `resolve` replaces the lab name server (tests)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if duration is not None:
        loop.call_later(duration, stop.set)  # counted from here, so start-up lookups are bounded too

    resolve = resolve or make_resolver(config["name_server"], config.get("name_server_port", 53), timeout)
    accounts = config["accounts"]
    domains = [account["dns_domains"][0] for account in accounts if account.get("dns_domains")]
    targets = ip_targets(accounts) + dns_targets(accounts, await domains_with_aaaa(domains, resolve))
    probe_once = partial(probe, port=config.get("port", 80), timeout=timeout, dns=DnsCache(resolve))
    timeline = Timeline(out)
    interval = effective_interval(interval, len(targets), max_rate)
    log(f"probing {len(targets)} targets of {len(accounts)} accounts every {interval:g} s into {out}")

    # Start times are spread over one interval so that the requests do not all leave at once.
    start = loop.time()
    tasks = [asyncio.create_task(probe_forever(target, start + interval * i / len(targets), interval,
                                               probe_once, timeline.write))
             for i, target in enumerate(targets)]
    tasks.append(asyncio.create_task(flush_periodically(timeline)))
    stopped = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in [stopped, *tasks]:
            task.cancel()
        await asyncio.gather(stopped, *tasks, return_exceptions=True)
        timeline.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    for task in done - {stopped}:
        task.result()  # the probe loops never end, so this one crashed: fail loudly
    return timeline.count


# --- summary (pure functions over records) ---------------------------------------------------

class SeriesStats:
    """Requests, failures and longest outage of one series of records, fed in start-time order."""

    def __init__(self):
        self.requests = 0
        self.failed = 0
        self.first_failure: float | None = None
        self.last_failure: float | None = None
        self._longest = 0.0
        self._run_start: float | None = None  # first failed request of the current run of failures

    def add(self, t: float, ok: bool) -> None:
        self.requests += 1
        if ok:
            if self._run_start is not None:
                self._longest = max(self._longest, t - self._run_start)
                self._run_start = None
            return
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = t
        self.last_failure = t
        if self._run_start is None:
            self._run_start = t

    def longest_outage(self) -> float:
        # A run not followed by a success lasts until its last failed request.
        if self._run_start is None:
            return self._longest
        return max(self._longest, self.last_failure - self._run_start)

    def as_dict(self) -> dict:
        return {"requests": self.requests, "failed": self.failed,
                "longest_outage_s": round(self.longest_outage(), 3),
                "first_failure": self.first_failure, "last_failure": self.last_failure}


def merge_stats(stats: list[dict]) -> dict:
    """Totals of several series: sums of requests and failures, the longest of their outages."""
    failing = [s for s in stats if s["failed"]]
    return {"requests": sum(s["requests"] for s in stats), "failed": sum(s["failed"] for s in stats),
            "longest_outage_s": max((s["longest_outage_s"] for s in stats), default=0.0),
            "first_failure": min((s["first_failure"] for s in failing), default=None),
            "last_failure": max((s["last_failure"] for s in failing), default=None)}


def summarize(records) -> dict:
    """Statistics per (account, target) and per address of timeline records. The records of one
    target must come in start-time order, as the prober writes them. A request that got no address
    (failed DNS lookup) counts for its target only."""
    by_target: dict[tuple[str, str, str], SeriesStats] = {}
    # A DNS target may move between addresses; each address gets its own series of it.
    by_address: dict[tuple[str, str, str], SeriesStats] = {}
    count, first, last = 0, None, None
    for record in records:
        t, ok = record["t"], record["ok"]
        count += 1
        first = t if first is None else min(first, t)
        last = t if last is None else max(last, t)
        by_target.setdefault((record["account"], record["via"], record["target"]), SeriesStats()).add(t, ok)
        if record.get("address"):
            key = (record["address"], record["account"], record["target"])
            by_address.setdefault(key, SeriesStats()).add(t, ok)

    series_of_address: dict[str, list[tuple[str, dict]]] = {}
    for (address, account, _), stats in by_address.items():
        series_of_address.setdefault(address, []).append((account, stats.as_dict()))
    return {
        "requests": count, "from": first, "to": last,
        "targets": [{"account": account, "via": via, "target": target, **stats.as_dict()}
                    for (account, via, target), stats in sorted(by_target.items())],
        "addresses": [{"address": address, "accounts": len({account for account, _ in series}),
                       **merge_stats([stats for _, stats in series])}
                      for address, series in sorted(series_of_address.items())],
    }


def read_timeline(path: Path):
    """The records of a timeline file. A line that is not complete JSON is skipped: the prober
    may be writing it right now."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def clock(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-5]


def format_table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
                     for row in cells)


def format_summary(summary: dict, timeline: Path) -> str:
    if not summary["requests"]:
        return f"{timeline}: no requests"
    day = "%Y-%m-%d %H:%M:%S"
    title = (f"{timeline}: {summary['requests']} requests from "
             f"{time.strftime(day, time.localtime(summary['from']))} to "
             f"{time.strftime(day, time.localtime(summary['to']))}")
    stats_header = ["requests", "failed", "longest outage s", "first failure", "last failure"]

    def stats_cells(s: dict) -> list:
        return [s["requests"], s["failed"], f"{s['longest_outage_s']:.2f}",
                clock(s["first_failure"]), clock(s["last_failure"])]

    targets = format_table(["account", "via", "target"] + stats_header,
                           [[s["account"], s["via"], s["target"]] + stats_cells(s) for s in summary["targets"]])
    addresses = format_table(["address", "accounts"] + stats_header,
                             [[s["address"], s["accounts"]] + stats_cells(s) for s in summary["addresses"]])
    return f"{title}\n\n{targets}\n\nper address\n{addresses}"


# --- daemon ----------------------------------------------------------------------------------

def running_pid() -> int | None:
    """The pid in the pid file if that process is still a prober."""
    try:
        pid = int(pid_file().read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # The pid may have been reused since the prober died; a dead, unreaped one has no cmdline.
    return pid if any(arg.endswith(b"prober.py") for arg in argv) else None


def running_options(pid: int) -> argparse.Namespace:
    """The options the prober `pid` was started with, read back from its command line."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    script = next(i for i, arg in enumerate(argv) if arg.endswith("prober.py"))
    return build_parser().parse_args(argv[script + 1:])


def count_lines(path: Path) -> int | None:
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return None


def cmd_run(args: argparse.Namespace) -> int:
    config = load_accounts(args.accounts)
    count = asyncio.run(run_prober(config, args.out, args.interval, args.timeout, args.duration,
                                   max_rate=args.max_rate))
    log(f"stopped, {count} requests recorded")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    pid = running_pid()
    if pid is not None:
        print(f"prober already running (pid {pid}); not starting another, stop it first to change options")
        return 0
    load_accounts(args.accounts)  # a bad file fails here, in front of the user, not in the log
    out = args.out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / "prober.log"
    argv = [sys.executable, str(Path(__file__).resolve()), "run", "--accounts", str(args.accounts.resolve()),
            "--out", str(out), "--interval", repr(args.interval), "--timeout", repr(args.timeout),
            "--max-rate", repr(args.max_rate)]
    if args.duration is not None:
        argv += ["--duration", repr(args.duration)]
    with open(log_path, "a", encoding="utf-8") as log_file:
        daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                                  cwd="/", start_new_session=True)
    pid_file().parent.mkdir(parents=True, exist_ok=True)
    pid_file().write_text(f"{daemon.pid}\n")
    try:
        code = daemon.wait(START_CHECK)
    except subprocess.TimeoutExpired:
        print(f"prober started (pid {daemon.pid}), timeline {out}, log {log_path}")
        return 0
    pid_file().unlink(missing_ok=True)
    print(f"prober exited at once with code {code}, see {log_path}", file=sys.stderr)
    return 1


def cmd_stop(args: argparse.Namespace) -> int:
    pid = running_pid()
    if pid is None:
        pid_file().unlink(missing_ok=True)
        print("prober not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT
    while running_pid() == pid:
        if time.monotonic() > deadline:
            # The pid file stays, so that another stop can be tried.
            print(f"prober (pid {pid}) still running {STOP_WAIT:g} s after SIGTERM", file=sys.stderr)
            return 1
        time.sleep(0.1)
    pid_file().unlink(missing_ok=True)
    print(f"prober stopped (pid {pid})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    pid = running_pid()
    timeline = running_options(pid).out if pid is not None else args.out
    lines = count_lines(timeline)
    print(f"prober: running (pid {pid})" if pid is not None else "prober: not running")
    print(f"timeline: {timeline} ({'absent' if lines is None else f'{lines} lines'})")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    records = read_timeline(args.timeline)
    if args.since is not None:
        records = (record for record in records if record["t"] >= args.since)
    summary = summarize(records)
    if args.json:
        print(json.dumps({"timeline": str(args.timeline), "since": args.since, **summary}, indent=2))
    else:
        print(format_summary(summary, args.timeline))
    return 0


def failures_outside(records, windows: dict) -> list:
    """Failed requests outside the allowed windows ({account: [[start, end], ...]}, unix times):
    what a test expects to be empty (an account may fail only during its freeze)."""
    return [record for record in records if not record["ok"]
            and not any(start <= record["t"] <= end for start, end in windows.get(record["account"], ()))]


def _unix_time(value) -> float:
    """A window bound: unix time, or ISO 8601 text as the state store records times."""
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cmd_outside(args: argparse.Namespace) -> int:
    windows = {account: [[_unix_time(start), _unix_time(end)] for start, end in spans]
               for account, spans in json.loads(args.windows.read_text()).items()}
    records = read_timeline(args.timeline)
    if args.since is not None:
        records = (record for record in records if record["t"] >= args.since)
    if args.via is not None:
        records = (record for record in records if record["via"] == args.via)
    outside = failures_outside(records, windows)
    print(json.dumps({"failures_outside": len(outside), "first": outside[:10]}, indent=2))
    return 0


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def build_parser() -> argparse.ArgumentParser:
    timeline = state_dir() / "prober" / "timeline.jsonl"
    probing = argparse.ArgumentParser(add_help=False)
    probing.add_argument("--accounts", type=Path, default=state_dir() / "accounts.json",
                         help="accounts file written by the lab setup (default: %(default)s)")
    probing.add_argument("--out", type=Path, default=timeline, help="timeline to append to (default: %(default)s)")
    probing.add_argument("--interval", type=positive, default=DEFAULT_INTERVAL,
                         help="seconds between request starts per target (default: %(default)s)")
    probing.add_argument("--max-rate", type=positive, default=DEFAULT_MAX_RATE,
                         help="requests per second over all targets; the interval is stretched to stay under it "
                              "(default: %(default)s)")
    probing.add_argument("--timeout", type=positive, default=DEFAULT_TIMEOUT,
                         help="seconds per request, DNS lookup included (default: %(default)s)")
    probing.add_argument("--duration", type=positive,
                         help="stop after this many seconds (default: run until signalled)")

    parser = argparse.ArgumentParser(description="Measure the downtime of the lab's hosting accounts.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[probing], help="probe in the foreground").set_defaults(func=cmd_run)
    commands.add_parser("start", parents=[probing], help="probe in the background").set_defaults(func=cmd_start)
    commands.add_parser("stop", help="stop the background prober").set_defaults(func=cmd_stop)
    status = commands.add_parser("status", help="is the background prober running")
    status.add_argument("--out", type=Path, default=timeline, help="timeline shown when not running")
    status.set_defaults(func=cmd_status)
    summary = commands.add_parser("summary", help="failed requests and longest outages of a timeline")
    summary.add_argument("--timeline", type=Path, default=timeline, help="(default: %(default)s)")
    summary.add_argument("--since", type=float, metavar="UNIX_T", help="only requests started at or after this time")
    summary.add_argument("--json", action="store_true", help="print a JSON object instead of tables")
    summary.set_defaults(func=cmd_summary)
    outside = commands.add_parser("outside", help="failed requests outside allowed windows per account, as JSON")
    outside.add_argument("--timeline", type=Path, default=timeline, help="(default: %(default)s)")
    outside.add_argument("--since", type=float, metavar="UNIX_T", help="only requests started at or after this time")
    outside.add_argument("--windows", type=Path, required=True,
                         help='JSON file {"account": [[start, end], ...]}: when failures are allowed (unix times or ISO 8601)')
    outside.add_argument("--via", choices=["ip", "dns"], help="only requests by service address (ip) or by DNS name (dns)")
    outside.set_defaults(func=cmd_outside)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as exc:
        print(f"prober: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
