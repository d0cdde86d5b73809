"""Tests of the lab's downtime prober (lab/prober/prober.py). Network traffic goes to 127.0.0.1 only;
DNS is always a fake resolver."""

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

PROBER_PATH = Path(__file__).resolve().parents[3] / "lab" / "prober" / "prober.py"


def load_prober():
    spec = importlib.util.spec_from_file_location("hosting_lab_prober", PROBER_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


prober = load_prober()

DIGEST = "ab" * 32


def rec(t, ok, account="alice", target="10.77.0.21", via="ip", address="10.77.0.21"):
    return {"t": t, "account": account, "via": via, "target": target, "address": address,
            "host": "alice.example", "ok": ok, "status": 200 if ok else 503, "ms": 1.0,
            "reason": None if ok else "http 503"}


def target_row(summary, account, target):
    return next(row for row in summary["targets"] if row["account"] == account and row["target"] == target)


# --- outages ---------------------------------------------------------------------------------

def test_outage_of_consecutive_failures_runs_to_next_success():
    other = "alice.hosted.test/A"
    records = [rec(10.0, True), rec(10.1, False), rec(10.2, False),
               # another target's success does not end alice's run on 10.77.0.21
               rec(10.25, True, target=other, via="dns"),
               rec(10.3, False), rec(10.45, True),
               rec(11.0, False), rec(11.1, True)]
    row = target_row(prober.summarize(records), "alice", "10.77.0.21")
    assert row["requests"] == 7
    assert row["failed"] == 4
    assert row["longest_outage_s"] == pytest.approx(0.35)
    assert row["first_failure"] == 10.1
    assert row["last_failure"] == 11.0


def test_outage_at_the_end_lasts_until_the_last_failure():
    records = [rec(5.0, True), rec(5.1, False), rec(5.2, False), rec(5.6, False)]
    row = target_row(prober.summarize(records), "alice", "10.77.0.21")
    assert row["failed"] == 3
    assert row["longest_outage_s"] == pytest.approx(0.5)


def test_single_failure_at_the_end_is_an_outage_of_zero():
    row = target_row(prober.summarize([rec(1.0, True), rec(1.1, False)]), "alice", "10.77.0.21")
    assert (row["failed"], row["longest_outage_s"]) == (1, 0.0)


def test_no_failures_gives_no_outage():
    summary = prober.summarize([rec(1.0 + i / 10, True) for i in range(20)])
    row = target_row(summary, "alice", "10.77.0.21")
    assert row == {"account": "alice", "via": "ip", "target": "10.77.0.21", "requests": 20, "failed": 0,
                   "longest_outage_s": 0.0, "first_failure": None, "last_failure": None}
    assert summary["addresses"][0]["failed"] == 0
    assert summary["requests"] == 20


def test_totals_per_address_across_accounts():
    shared, bob_only = "10.77.0.21", "10.77.0.22"
    records = [
        rec(1.0, True), rec(1.1, False), rec(1.2, False), rec(1.3, True),  # alice, outage 0.2
        rec(1.0, True, account="bob", address=shared, target=shared),
        rec(1.1, False, account="bob", address=shared, target=shared),
        rec(1.6, True, account="bob", address=shared, target=shared),  # bob, outage 0.5
        rec(1.0, False, account="bob", address=bob_only, target=bob_only),
        # by DNS: counted for the address it resolved to; a failed lookup has no address
        rec(1.05, True, via="dns", target="alice.hosted.test/A", address=shared),
        rec(1.15, False, via="dns", target="alice.hosted.test/A", address=None),
    ]
    summary = prober.summarize(records)
    by_address = {row["address"]: row for row in summary["addresses"]}
    assert set(by_address) == {shared, bob_only}
    assert by_address[shared]["accounts"] == 2
    assert by_address[shared]["requests"] == 8
    assert by_address[shared]["failed"] == 3
    assert by_address[shared]["longest_outage_s"] == pytest.approx(0.5)
    assert by_address[shared]["first_failure"] == 1.1
    assert by_address[shared]["last_failure"] == 1.2
    assert by_address[bob_only]["failed"] == 1
    assert target_row(summary, "alice", "alice.hosted.test/A")["failed"] == 1


def test_a_dns_target_moving_address_gives_each_address_its_own_series():
    dns = dict(via="dns", target="alice.hosted.test/A")
    records = [rec(1.0, True, address="10.77.0.21", **dns), rec(1.1, False, address="10.77.0.21", **dns),
               rec(1.2, True, address="10.77.1.21", **dns), rec(1.3, True, address="10.77.0.21", **dns)]
    summary = prober.summarize(records)
    assert {row["address"]: row["longest_outage_s"] for row in summary["addresses"]} == \
        {"10.77.0.21": pytest.approx(0.2), "10.77.1.21": 0.0}
    assert target_row(summary, "alice", "alice.hosted.test/A")["longest_outage_s"] == pytest.approx(0.1)


def test_read_timeline_skips_a_line_being_written(tmp_path):
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_text(json.dumps(rec(1.0, True)) + "\n" + '{"t": 1.1, "acc')
    assert [r["t"] for r in prober.read_timeline(timeline)] == [1.0]


# --- scheduling and DNS ----------------------------------------------------------------------

def test_next_slot_is_fixed_rate_and_skips_slots_missed_by_a_slow_request():
    assert prober.next_slot(10.0, 10.03, 0.1) == pytest.approx(10.1)
    assert prober.next_slot(10.0, 10.1, 0.1) == pytest.approx(10.1)
    assert prober.next_slot(10.0, 10.35, 0.1) == pytest.approx(10.4)


class FakeResolver:
    def __init__(self, answers):
        self.answers = answers  # (name, rdtype) -> (address, ttl) or an exception to raise
        self.calls = []

    async def __call__(self, name, rdtype):
        self.calls.append((name, rdtype))
        answer = self.answers[(name, rdtype)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_dns_answers_are_cached_for_exactly_their_ttl():
    resolve = FakeResolver({("a.test", "A"): ("10.0.0.1", 30), ("z.test", "A"): ("10.0.0.2", 0)})
    now = [100.0]
    cache = prober.DnsCache(resolve, clock=lambda: now[0])

    def lookup(name):
        return asyncio.run(cache.address(name, "A"))

    assert lookup("a.test") == "10.0.0.1"
    now[0] = 129.9
    lookup("a.test")
    assert len(resolve.calls) == 1
    now[0] = 130.0
    resolve.answers[("a.test", "A")] = ("10.0.0.9", 30)
    assert lookup("a.test") == "10.0.0.9"
    assert len(resolve.calls) == 2
    # a TTL of 0 is asked every time
    lookup("z.test")
    lookup("z.test")
    assert resolve.calls.count(("z.test", "A")) == 2


def test_failed_lookups_are_not_cached_and_give_a_dns_reason():
    resolve = FakeResolver({("a.test", "A"): prober.DnsFailure("the resolution lifetime expired")})
    cache = prober.DnsCache(resolve)
    target = prober.Target("alice", "dns", "a.test/A", "a.test", DIGEST, rdtype="A")
    for _ in range(2):
        record = asyncio.run(prober.probe(target, port=80, timeout=1.0, dns=cache))
        assert record["ok"] is False
        assert record["reason"] == "dns: the resolution lifetime expired"
        assert record["address"] is None and record["status"] is None
    assert len(resolve.calls) == 2


def test_aaaa_targets_only_for_zones_with_aaaa():
    resolve = FakeResolver({("a.test", "AAAA"): ("fd77::1", 60),
                            ("b.test", "AAAA"): prober.NoRecord("no AAAA"),
                            ("c.test", "AAAA"): prober.DnsFailure("timeout")})
    found = asyncio.run(prober.domains_with_aaaa(["a.test", "b.test", "c.test"], resolve))
    assert found == {"a.test", "c.test"}


def test_targets_use_the_external_domain_as_host_header():
    accounts = [{"name": "alice", "digest": DIGEST, "dns_domains": ["alice.hosted.test", "www.alice.hosted.test"],
                 "external_domains": ["alice.example"], "service_addresses": ["10.77.0.21", "fd77:7::21"]},
                {"name": "bob", "digest": DIGEST, "dns_domains": ["bob.hosted.test"],
                 "service_addresses": ["10.77.0.22"]}]
    ip = prober.ip_targets(accounts)
    assert [(t.account, t.label, t.host) for t in ip] == [
        ("alice", "10.77.0.21", "alice.example"), ("alice", "fd77:7::21", "alice.example"),
        ("bob", "10.77.0.22", "bob.hosted.test")]
    dns = prober.dns_targets(accounts, {"alice.hosted.test"})
    assert [(t.label, t.host, t.rdtype) for t in dns] == [
        ("alice.hosted.test/A", "alice.hosted.test", "A"), ("alice.hosted.test/AAAA", "alice.hosted.test", "AAAA"),
        ("bob.hosted.test/A", "bob.hosted.test", "A")]


# --- HTTP ------------------------------------------------------------------------------------

def test_parse_response_with_content_length():
    raw = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\n\r\n"
           b"<p>hi</p>\ndigest: ab\nextra bytes")
    assert prober.parse_response(raw) == (200, b"<p>hi</p>\ndigest: ab")


def test_parse_chunked_response():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\ndiges\r\n6;x=y\r\nt: abc\r\n0\r\n\r\n"
    assert prober.parse_response(raw) == (200, b"digest: abc")


@pytest.mark.parametrize("raw", [b"", b"HTTP/1.1 200 OK\r\nServer: x\r\n", b"SSH-2.0-OpenSSH\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",
                                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc"])
def test_parse_response_refuses_broken_responses(raw):
    with pytest.raises(ValueError):
        prober.parse_response(raw)


def test_failure_reason_checks_status_and_digest():
    page = f"<html><body>\ndigest: {DIGEST}\n</body></html>".encode()
    assert prober.failure_reason(200, page, DIGEST) is None
    assert prober.failure_reason(503, b"<h1>Maintenance</h1>", DIGEST) == "http 503"
    assert prober.failure_reason(503, page, DIGEST) == "http 503"
    assert prober.failure_reason(200, b"digest: " + b"cd" * 32, DIGEST) == "wrong digest cdcdcdcdcdcd"
    assert prober.failure_reason(200, b"Welcome to nginx!", DIGEST) == "no digest in body"


def test_http_request_closes_the_connection():
    assert prober.http_request("alice.example") == (
        b"GET / HTTP/1.1\r\nHost: alice.example\r\nUser-Agent: hosting-lab-prober\r\nConnection: close\r\n\r\n")


# --- end to end on loopback ------------------------------------------------------------------

class Site(BaseHTTPRequestHandler):
    """Answers the account's page, except between `down_from` and `down_until` seconds after the
    first request (not after server start, so that a slow prober start-up does not shift them)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        server.hosts.add(self.headers["Host"])
        with server.lock:
            server.started = server.started or time.monotonic()
        elapsed = time.monotonic() - server.started
        if server.down_from <= elapsed < server.down_until:
            status, body = 503, b"<h1>Maintenance</h1>\n"
        else:
            status, body = 200, f"<p>alice</p>\ndigest: {DIGEST}\n".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    server.hosts = set()
    server.down_from, server.down_until = 0.5, 1.0
    server.started, server.lock = None, threading.Lock()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def accounts_file(tmp_path, port, dns_domains):
    config = {"name_server": "127.0.0.1", "name_server_port": 1, "port": port,
              "accounts": [{"name": "alice", "digest": DIGEST, "dns_domains": dns_domains,
                            "external_domains": ["alice.example"], "service_addresses": ["127.0.0.1"]}]}
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(config))
    return path


def test_run_loop_records_the_outage_of_a_site_in_maintenance(tmp_path, site, capsys):
    config = prober.load_accounts(accounts_file(tmp_path, site.server_address[1], ["alice.hosted.test"]))
    resolve = FakeResolver({("alice.hosted.test", "A"): ("127.0.0.1", 0),
                            ("alice.hosted.test", "AAAA"): prober.NoRecord("no AAAA")})
    out = tmp_path / "prober" / "timeline.jsonl"
    started = time.monotonic()
    count = asyncio.run(prober.run_prober(config, out, interval=0.05, timeout=0.5, duration=1.5, resolve=resolve))
    assert time.monotonic() - started < 2.5

    records = list(prober.read_timeline(out))
    assert len(records) == count
    assert site.hosts == {"alice.example", "alice.hosted.test"}
    assert {r["target"] for r in records} == {"127.0.0.1", "alice.hosted.test/A"}
    assert {r["reason"] for r in records if not r["ok"]} == {"http 503"}
    first = records[0]
    assert set(first) == {"t", "account", "via", "target", "address", "host", "ok", "status", "ms", "reason"}

    assert prober.main(["summary", "--timeline", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    for row in summary["targets"]:
        # 1.5 s at 20 a second, 0.5 s of them 503; loose bounds for a busy test machine
        assert 15 <= row["requests"] <= 31, row
        assert 5 <= row["failed"] <= 12, row
        assert 0.4 <= row["longest_outage_s"] <= 0.7, row
    [address] = summary["addresses"]
    assert address["address"] == "127.0.0.1"
    assert address["requests"] == count

    assert prober.main(["summary", "--timeline", str(out)]) == 0
    table = capsys.readouterr().out
    assert [line.split()[:3] for line in table.splitlines() if line.startswith("alice")] == [
        ["alice", "dns", "alice.hosted.test/A"], ["alice", "ip", "127.0.0.1"]]
    assert "per address" in table


def test_run_loop_stops_on_sigterm(tmp_path, site):
    config = prober.load_accounts(accounts_file(tmp_path, site.server_address[1], []))
    out = tmp_path / "timeline.jsonl"

    async def run_then_terminate():
        asyncio.get_running_loop().call_later(0.3, os.kill, os.getpid(), prober.signal.SIGTERM)
        return await prober.run_prober(config, out, interval=0.05, duration=10, resolve=FakeResolver({}))

    started = time.monotonic()
    count = asyncio.run(run_then_terminate())
    assert time.monotonic() - started < 1.0
    assert count == len(out.read_text().splitlines()) > 0


def test_start_status_stop_in_the_background(tmp_path, site):
    env = dict(os.environ, HOSTING_LAB_STATE=str(tmp_path))
    accounts_file(tmp_path, site.server_address[1], [])

    def cli(*args):
        return subprocess.run([sys.executable, str(PROBER_PATH), *args], env=env, capture_output=True,
                              text=True, timeout=20)

    started = cli("start", "--interval", "0.05", "--duration", "30")
    assert started.returncode == 0, started.stderr
    pid = int((tmp_path / "prober" / "prober.pid").read_text())
    try:
        assert "already running" in cli("start").stdout
        time.sleep(0.5)
        status = cli("status")
        assert status.returncode == 0
        assert f"running (pid {pid})" in status.stdout
        assert str(tmp_path / "prober" / "timeline.jsonl") in status.stdout
        assert " 0 lines" not in status.stdout
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not (tmp_path / "prober" / "prober.pid").exists()
    assert "probing 1 targets" in (tmp_path / "prober" / "prober.log").read_text()
    assert cli("status").stdout.startswith("prober: not running\n")
    assert cli("stop").stdout == "prober not running\n"


def test_interval_is_stretched_to_keep_the_total_rate():
    assert prober.effective_interval(0.1, 20, 200.0) == 0.1
    assert prober.effective_interval(0.1, 400, 200.0) == 2.0
    assert prober.effective_interval(0.1, 400, None) == 0.1


def test_failures_outside_the_allowed_windows():
    records = [
        {"t": 10.0, "account": "alice", "ok": False},
        {"t": 15.0, "account": "alice", "ok": False},
        {"t": 16.0, "account": "alice", "ok": True},
        {"t": 12.0, "account": "bob", "ok": False},
    ]
    outside = prober.failures_outside(records, {"alice": [[9.0, 11.0]]})
    assert [(r["account"], r["t"]) for r in outside] == [("alice", 15.0), ("bob", 12.0)]


def test_outside_can_count_only_the_requests_by_name(tmp_path, capsys):
    timeline = tmp_path / "timeline.jsonl"
    timeline.write_text("\n".join(json.dumps(record) for record in [
        {"t": 10.0, "account": "alice", "via": "ip", "ok": False},
        {"t": 11.0, "account": "alice", "via": "dns", "ok": False},
        {"t": 12.0, "account": "alice", "via": "dns", "ok": True},
    ]) + "\n")
    windows = tmp_path / "windows.json"
    windows.write_text(json.dumps({"alice": [[10.5, 10.9]]}))
    for via, expected in ((None, 2), ("dns", 1), ("ip", 1)):
        argv = ["outside", "--timeline", str(timeline), "--windows", str(windows)] + (["--via", via] if via else [])
        assert prober.main(argv) == 0
        assert json.loads(capsys.readouterr().out)["failures_outside"] == expected
