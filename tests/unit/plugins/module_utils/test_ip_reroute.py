"""IP reroute: packets byte for byte, interfaces from ip's JSON, the drivers' steps with a fake
runner and fake sockets, verification, and every refusal of bad input."""
import ipaddress
import json
import socket
import stat
import struct

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import ip_reroute
from ansible_collections.hosting.migration.plugins.module_utils.ip_reroute import (
    CommandDriver, Host, IpRerouteError, Link, OnlinkDriver, Settings, Vantage)

OLD_MAC = "02:77:00:00:00:31"
NEW_MAC = "02:77:00:00:00:40"
THIRD_MAC = "02:77:00:00:00:50"
V4 = ipaddress.ip_address("10.77.0.99")
V6 = ipaddress.ip_address("fd77:7::99")


def ip(text):
    return ipaddress.ip_address(text)


def addr_json(mac=NEW_MAC, extra=(), name="eth0"):
    """``ip -j address show`` of a lab server, with EXTRA (local, prefixlen, family, secondary)."""
    infos = [{"family": "inet", "local": "10.77.0.40", "prefixlen": 24, "scope": "global"},
             {"family": "inet6", "local": "fd77:7::40", "prefixlen": 64, "scope": "global"},
             {"family": "inet6", "local": "fe80::77:ff:fe00:40", "prefixlen": 64, "scope": "link"}]
    for local, prefixlen, family, secondary in extra:
        info = {"family": family, "local": local, "prefixlen": prefixlen, "scope": "global"}
        if secondary:
            info["secondary"] = True
        infos.append(info)
    return json.dumps([
        {"ifindex": 1, "ifname": "lo", "address": "00:00:00:00:00:00",
         "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8, "scope": "host"},
                       {"family": "inet6", "local": "::1", "prefixlen": 128, "scope": "host"}]},
        {"ifindex": 2, "ifname": name, "address": mac, "addr_info": infos}])


HELD = ((str(V4), 24, "inet", True), (str(V6), 64, "inet6", False))


class Runner:
    """Plays ``ip``: answers ``address show`` from the addresses it holds, applies add and del."""

    def __init__(self, mac=NEW_MAC, held=(), fail=None):
        self.mac = mac
        self.held = list(held)
        self.calls = []
        self.fail = fail

    def __call__(self, argv):
        self.calls.append(argv)
        if self.fail and self.fail in argv:
            return 2, "", "RTNETLINK answers: Operation not permitted"
        if argv[1:] == ["-j", "address", "show"]:
            return 0, addr_json(self.mac, self.held), ""
        if argv[1:3] == ["address", "add"]:
            text, prefixlen = argv[3].split("/")
            self.held.append((text, int(prefixlen), "inet6" if ":" in text else "inet", ":" not in text))
            return 0, "", ""
        if argv[1:3] == ["address", "del"]:
            text = argv[3].split("/")[0]
            self.held = [item for item in self.held if item[0] != text]
            return 0, "", ""
        raise AssertionError("unexpected command %r" % argv)

    def changes(self):
        return [argv[1:] for argv in self.calls if argv[1] == "address" and argv[2] in ("add", "del")]


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeSocket:
    """A raw socket: records what is sent; answers each send with frames made by ``reply``."""

    def __init__(self, clock, reply=None):
        self.clock = clock
        self.reply = reply or (lambda data: [])
        self.sent = []
        self.options = []
        self.bound = None
        self.queue = []
        self.timeout = None
        self.closed = False

    def bind(self, address):
        self.bound = address

    def setsockopt(self, level, name, value):
        self.options.append((level, name, value))

    def settimeout(self, value):
        self.timeout = value

    def send(self, data):
        self.sent.append((data, None))
        self.queue.extend(self.reply(data))

    def sendto(self, data, destination):
        self.sent.append((data, destination))
        self.queue.extend(self.reply(data))

    def recv(self, _size):
        if self.queue:
            return self.queue.pop(0)
        self.clock.sleep(self.timeout)
        raise socket.timeout()

    def close(self):
        self.closed = True


class SocketFactory:
    def __init__(self, clock, reply=None):
        self.clock = clock
        self.reply = reply
        self.sockets = []

    def __call__(self, family, kind, protocol=0):
        sock = FakeSocket(self.clock, self.reply)
        sock.family, sock.kind, sock.protocol = family, kind, protocol
        self.sockets.append(sock)
        return sock


def arp_reply(mac, address):
    return ip_reroute.arp_frame(ip_reroute.ARP_REPLY, mac, address, NEW_MAC, "0.0.0.0", NEW_MAC)


def na(mac, target, flags=0x60000000):
    return (struct.pack("!BBHI", 136, 0, 0, flags) + target.packed
            + bytes([2, 1]) + ip_reroute.mac_bytes(mac))


def answering(*macs):
    """A link where MACS answer every probe: ARP replies and neighbour advertisements."""
    def reply(data):
        if data[:6] == b"\xff" * 6 and data[12:14] == b"\x08\x06":
            target = ipaddress.IPv4Address(data[38:42])
            return [arp_reply(mac, target) for mac in macs]
        if data[0] == 135:
            target = ipaddress.IPv6Address(data[8:24])
            return [na(mac, target) for mac in macs]
        return []
    return reply


def settings(**overrides):
    params = dict(step="check", driver="onlink", addresses=[str(V4), str(V6)], owned=[str(V4), str(V6), "10.77.0.98"],
                  from_server="transit2", to_server="dbtest1", from_mac=OLD_MAC, to_mac=NEW_MAC, interface=None,
                  command=None, command_timeout=120, announcements=3, since=None, timeout=30.0, port=80)
    params.update(overrides)
    return Settings(params)


def onlink(runner, clock, reply=None, **overrides):
    factory = SocketFactory(clock, reply)

    def link(interface):
        return Link(interface, socket_factory=factory, clock=clock, sleep=clock.sleep)

    host = Host(runner, overrides.get("to_server", "dbtest1"), "ip")
    return OnlinkDriver(settings(**overrides), host, link_factory=link, clock=clock), factory


# --- packets ---------------------------------------------------------------------------------

def test_unsolicited_neighbour_advertisement_bytes():
    packet = ip_reroute.neighbour_advertisement(V6, NEW_MAC)
    assert packet == bytes.fromhex(
        "88" "00" "0000"            # type 136, code 0, checksum left to the kernel
        "20000000"                  # flags: override only (not router, not solicited)
        "fd770007000000000000000000000099"  # target
        "02" "01" "027700000040")   # target link-layer address option, 8 bytes
    assert ip_reroute.parse_neighbour_advertisement(packet) == (V6, NEW_MAC)


def test_neighbour_solicitation_bytes_and_solicited_node_address():
    packet = ip_reroute.neighbour_solicitation(V6, NEW_MAC)
    assert packet == bytes.fromhex("87000000" "00000000" "fd770007000000000000000000000099" "0101027700000040")
    assert str(ip_reroute.solicited_node_address(ip("2001:db8::1:2345:6789"))) == "ff02::1:ff45:6789"


def test_gratuitous_arp_request_and_reply():
    request, reply = ip_reroute.gratuitous_arp_frames(NEW_MAC, V4)
    mac, address = bytes.fromhex("027700000040"), bytes([10, 77, 0, 99])
    assert request == b"\xff" * 6 + mac + b"\x08\x06" + bytes.fromhex("000108000604" "0001") + mac + address \
        + b"\x00" * 6 + address
    # Linux takes a reply as gratuitous only when the target hardware address is the sender's.
    assert reply == b"\xff" * 6 + mac + b"\x08\x06" + bytes.fromhex("000108000604" "0002") + mac + address \
        + mac + address
    assert ip_reroute.parse_arp_frame(reply) == (2, NEW_MAC, V4)


def test_arp_probe_asks_from_the_unspecified_address():
    frame = ip_reroute.arp_probe_frame(NEW_MAC, V4)
    assert len(frame) == 42
    assert frame[28:32] == b"\x00" * 4 and frame[32:38] == b"\x00" * 6 and frame[38:42] == V4.packed


@pytest.mark.parametrize("payload", [b"", b"\x87" + b"\x00" * 31, na(OLD_MAC, V6)[:20]])
def test_parse_refuses_what_is_not_an_advertisement(payload):
    assert ip_reroute.parse_neighbour_advertisement(payload) is None


def test_advertisement_without_link_layer_option():
    assert ip_reroute.parse_neighbour_advertisement(na(OLD_MAC, V6)[:24]) == (V6, None)


def test_parse_arp_frame_refuses_other_frames():
    assert ip_reroute.parse_arp_frame(b"\x00" * 60) is None
    assert ip_reroute.parse_arp_frame(b"\x00" * 12 + b"\x08\x06" + b"\x00" * 28) is None


# --- input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("address, message", [
    ("10.77.0.300", "'10.77.0.300' is not an IP address"),
    ("dedicated1", "'dedicated1' is not an IP address"),
    ("10.77.0.21/24", "give it without a prefix length"),
    ("127.0.0.1", "127.0.0.1 is a loopback address"),
    ("fe80::1", "fe80::1 is a link-local address"),
    ("10.77.0.21", "10.77.0.21 is not one of transit2's service addresses (10.77.0.98, 10.77.0.99, fd77:7::99)"),
])
def test_bad_addresses_are_refused(address, message):
    with pytest.raises(IpRerouteError) as error:
        settings(addresses=[address])
    assert message in str(error.value)


def test_addresses_normalised_and_deduplicated():
    assert settings(addresses=["FD77:7:0::99", "10.77.0.99", "fd77:7::99"]).addresses == [V6, V4]


@pytest.mark.parametrize("overrides, message", [
    ({"addresses": []}, "addresses must list at least one address"),
    ({"to_mac": "02:77:00:00:00"}, "to_mac '02:77:00:00:00' is not a MAC address"),
    ({"to_mac": OLD_MAC}, "from_mac and to_mac are both 02:77:00:00:00:31"),
    ({"to_server": "transit2"}, "from_server and to_server are both transit2"),
    ({"step": "verify", "to_mac": None}, "step=verify with driver=onlink needs to_mac"),
    ({"timeout": 0}, "timeout must be at least 1"),
    ({"port": 70000}, "port 70000 is not a TCP port"),
])
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(IpRerouteError) as error:
        settings(**overrides)
    assert message in str(error.value)


def test_mac_written_with_dashes_and_capitals():
    assert settings(from_mac="02-77-00-00-00-3F").from_mac == "02:77:00:00:00:3f"


# --- interfaces ------------------------------------------------------------------------------

def test_interfaces_from_ip_json():
    eth0 = ip_reroute.parse_interfaces(addr_json(extra=HELD))[1]
    assert (eth0.name, eth0.index, eth0.mac) == ("eth0", 2, NEW_MAC)
    assert [str(network) for network in eth0.prefixes()] == ["10.77.0.0/24", "fd77:7::/64"]
    assert eth0.secondary == {V4}
    assert str(eth0.held(V6)) == "fd77:7::99/64"


def test_address_outside_every_prefix():
    host = Host(Runner(), "transit1")
    with pytest.raises(IpRerouteError) as error:
        host.interface_for(ip("10.78.0.99"))
    assert str(error.value) == ("10.78.0.99 is not in any prefix of transit1's interfaces "
                                "(eth0: 10.77.0.0/24, fd77:7::/64)")


def test_interface_that_does_not_exist():
    host = Host(Runner(), "dbtest1")
    with pytest.raises(IpRerouteError) as error:
        host.interface_named("eth9")
    assert str(error.value) == "there is no interface eth9 on dbtest1 (interfaces: lo, eth0)"


def test_ip_failing_is_reported():
    host = Host(Runner(fail="show"), "dbtest1")
    with pytest.raises(IpRerouteError, match="'ip address show' failed on dbtest1: RTNETLINK"):
        host.interfaces()


# --- check -----------------------------------------------------------------------------------

def test_check_ready_when_the_old_owner_answers():
    clock = Clock()
    driver, factory = onlink(Runner(), clock, answering(OLD_MAC))
    results = driver.check([V4, V6])
    assert [(item["address"], item["status"], item["answered_by"]) for item in results] == [
        ("10.77.0.99", "ready", [OLD_MAC]), ("fd77:7::99", "ready", [OLD_MAC])]
    arp, icmp = factory.sockets
    assert arp.bound == ("eth0", 0x0806) and arp.closed and len(arp.sent) == 3
    assert arp.sent[0][0] == ip_reroute.arp_probe_frame(NEW_MAC, V4)
    assert icmp.sent[0] == (ip_reroute.neighbour_solicitation(V6, NEW_MAC), ("ff02::1:ff00:99", 0, 0, 2))
    assert (socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255) in icmp.options
    assert (socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0) in icmp.options


def test_check_a_third_host_answering():
    driver, _factory = onlink(Runner(), Clock(), answering(OLD_MAC, THIRD_MAC), from_server="dedicated1",
                              to_server="transit1")
    with pytest.raises(IpRerouteError) as error:
        driver.check([V4])
    assert str(error.value) == "10.77.0.99 is answered by 02:77:00:00:00:50, which is neither dedicated1 nor transit1"


def test_check_nobody_answers():
    driver, _factory = onlink(Runner(), Clock(), answering())
    with pytest.raises(IpRerouteError, match="fd77:7::99 does not answer from transit2 .02:77:00:00:00:31. on "
                                             "dbtest1's eth0: the servers are not on one segment"):
        driver.check([V6])


def test_check_after_the_move_reports_moved():
    driver, _factory = onlink(Runner(held=HELD), Clock(), answering())
    assert [item["status"] for item in driver.check([V4, V6])] == ["moved", "moved"]


def test_check_held_here_and_still_answered_by_the_old_owner():
    driver, _factory = onlink(Runner(held=HELD), Clock(), answering(OLD_MAC))
    with pytest.raises(IpRerouteError, match="10.77.0.99 is held by dbtest1 and also answered by transit2"):
        driver.check([V4])


def test_check_on_the_wrong_host():
    driver, _factory = onlink(Runner(mac=THIRD_MAC), Clock(), answering(OLD_MAC))
    with pytest.raises(IpRerouteError) as error:
        driver.check([V4])
    assert str(error.value) == ("eth0 of this host has MAC 02:77:00:00:00:50, not 02:77:00:00:00:40: "
                                "this step must run on dbtest1")


def test_check_needs_from_mac():
    driver, _factory = onlink(Runner(), Clock(), answering(OLD_MAC), from_mac=None)
    with pytest.raises(IpRerouteError, match="needs from_mac"):
        driver.check([V4])


def test_check_probe_ignores_other_arp_traffic():
    other = ip_reroute.arp_frame(1, THIRD_MAC, "10.77.0.50", ip_reroute.ZERO_MAC, "10.77.0.1")

    def reply(data):
        return [other, b"short", arp_reply(OLD_MAC, V4)]
    clock = Clock()
    link = Link(ip_reroute.parse_interfaces(addr_json())[1], socket_factory=SocketFactory(clock, reply), clock=clock)
    assert link.who_answers(V4) == [OLD_MAC]


# --- release and claim -----------------------------------------------------------------------

def test_release_removes_held_addresses_once():
    runner = Runner(mac=OLD_MAC, held=HELD)
    driver, _factory = onlink(runner, Clock())
    results = driver.release([V4, V6])
    assert runner.changes() == [["address", "del", "10.77.0.99/24", "dev", "eth0"],
                                ["address", "del", "fd77:7::99/64", "dev", "eth0"]]
    assert [item["changed"] for item in results] == [True, True]
    runner.calls.clear()
    assert [item["changed"] for item in driver.release([V4, V6])] == [False, False]
    assert runner.changes() == []


def test_release_in_check_mode_changes_nothing():
    runner = Runner(mac=OLD_MAC, held=HELD)
    driver, _factory = onlink(runner, Clock())
    assert [item["changed"] for item in driver.release([V4, V6], check_mode=True)] == [True, True]
    assert runner.changes() == []


def test_release_on_the_wrong_server():
    driver, _factory = onlink(Runner(mac=NEW_MAC, held=HELD), Clock())
    with pytest.raises(IpRerouteError, match="release must run on transit2"):
        driver.release([V4])


def test_release_refuses_a_primary_address_with_secondaries(tmp_path):
    runner = Runner(mac=OLD_MAC, held=[("10.77.1.5", 24, "inet", False), ("10.77.1.6", 24, "inet", True)])
    driver, _factory = onlink(runner, Clock(), addresses=["10.77.1.5"], owned=["10.77.1.5"])
    driver.promote_path = str(tmp_path / "%s")
    with pytest.raises(IpRerouteError) as error:
        driver.release([ip("10.77.1.5")])
    assert str(error.value) == ("10.77.1.5 is the primary address of 10.77.1.0/24 on transit2's eth0: removing it "
                                "would remove 10.77.1.6 with it; set net.ipv4.conf.eth0.promote_secondaries=1 first")
    (tmp_path / "eth0").write_text("1\n")
    assert driver.release([ip("10.77.1.5")])[0]["changed"] is True


def test_claim_adds_and_announces():
    clock = Clock()
    runner = Runner()
    driver, factory = onlink(runner, clock)
    results = driver.claim([V4, V6])
    assert runner.changes() == [["address", "add", "10.77.0.99/24", "dev", "eth0"],
                                ["address", "add", "fd77:7::99/64", "dev", "eth0", "nodad"]]
    assert [(item["changed"], item["announcements"]) for item in results] == [(True, 3), (True, 3)]
    arp, icmp = factory.sockets
    assert [data for data, _ in arp.sent] == ip_reroute.gratuitous_arp_frames(NEW_MAC, V4) * 3
    assert icmp.sent == [(ip_reroute.neighbour_advertisement(V6, NEW_MAC), ("ff02::1", 0, 0, 2))] * 3
    assert (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255) in icmp.options
    assert clock.now == pytest.approx(1000.4)
    assert driver.claimed_at == 1000.0
    assert arp.closed and icmp.closed


def test_claim_again_only_announces():
    runner = Runner(held=HELD)
    driver, factory = onlink(runner, Clock())
    assert [item["changed"] for item in driver.claim([V4, V6])] == [False, False]
    assert runner.changes() == []
    assert len(factory.sockets[0].sent) == 6


def test_claim_in_check_mode_sends_nothing():
    runner = Runner()
    driver, factory = onlink(runner, Clock())
    assert [item["changed"] for item in driver.claim([V4, V6], check_mode=True)] == [True, True]
    assert runner.changes() == [] and factory.sockets == []


def test_claim_on_a_named_interface_outside_the_prefix():
    driver, _factory = onlink(Runner(), Clock(), addresses=["10.77.0.98"], interface="eth0")
    with pytest.raises(IpRerouteError, match=r"10.78.0.1 is not in any prefix of dbtest1's interface eth0 "
                                             r"\(eth0: 10.77.0.0/24, fd77:7::/64\)"):
        driver.claim([ip("10.78.0.1")])


def test_claim_failing_ip_command():
    driver, _factory = onlink(Runner(fail="add"), Clock())
    with pytest.raises(IpRerouteError, match="adding 10.77.0.99 to eth0 on dbtest1 failed: RTNETLINK answers"):
        driver.claim([V4])


# --- verify ----------------------------------------------------------------------------------

class FakeVantage:
    """Answers from a script: at each round, {address: mac or None} of who answers."""

    def __init__(self, clock, rounds):
        self.clock = clock
        self.rounds = list(rounds)
        self.closed = False

    def observe(self, addresses, wait_s, full_round=True):
        answers = self.rounds.pop(0) if self.rounds else {}
        self.clock.sleep(wait_s)
        return {address: (self.clock(), answers[address]) for address in addresses if address in answers}

    def close(self):
        self.closed = True


def run_verify(rounds, since=None, to_mac=NEW_MAC, timeout=1.0):
    clock = Clock()
    vantage = FakeVantage(clock, rounds)
    results = ip_reroute.verify([V4, V6], vantage, to_mac, OLD_MAC, since, timeout, ("transit2", "dbtest1"),
                                clock=clock, interval_s=0.02)
    assert vantage.closed
    return results


def test_verify_measures_from_since():
    results = run_verify([{V4: OLD_MAC, V6: OLD_MAC}, {}, {V4: NEW_MAC}, {V6: NEW_MAC}], since=999.5)
    assert [(item["answered_by_mac"], item["switch_s"]) for item in results] == [
        (NEW_MAC, pytest.approx(0.56)), (NEW_MAC, pytest.approx(0.58))]
    assert results[0]["last_old_answer_at"] == pytest.approx(1000.02)
    assert results[0]["outage_s"] == pytest.approx(0.04)


def test_verify_times_out_naming_the_old_owner():
    with pytest.raises(IpRerouteError) as error:
        run_verify([{V4: NEW_MAC, V6: OLD_MAC}] * 100, timeout=1.0)
    assert str(error.value) == ("fd77:7::99 did not answer from dbtest1 (02:77:00:00:00:40) within 1 s: "
                                "it still answers from transit2 (02:77:00:00:00:31)")
    assert error.value.addresses[0]["answered_by_mac"] == NEW_MAC


def test_verify_times_out_on_a_third_host():
    with pytest.raises(IpRerouteError, match="it answers from 02:77:00:00:00:50, which is neither transit2 nor dbtest1"):
        run_verify([{V4: THIRD_MAC, V6: THIRD_MAC}] * 100)


def test_verify_through_a_router():
    with pytest.raises(IpRerouteError, match="10.77.0.99 answers this vantage point through a router"):
        run_verify([{V4: None}])
    assert run_verify([{V4: None, V6: None}], to_mac=None)[1]["answered_by_mac"] is None


def test_verify_refuses_to_run_on_an_owner():
    with pytest.raises(IpRerouteError, match="10.77.0.99 is held by this host .eth0.: verify from a third host"):
        ip_reroute.reroute(settings(step="verify"), host=Host(Runner(held=HELD), "this host"),
                           vantage=FakeVantage(Clock(), []))


def test_vantage_tcp_answers_on_loopback():
    """A listening port and a closed port both answer; the neighbour table gives the MAC."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        neigh = json.dumps([{"dst": "127.0.0.1", "lladdr": "02:77:00:00:00:40", "state": ["REACHABLE"]},
                            {"dst": "10.77.0.1", "state": ["FAILED"]}])
        for port in (listener.getsockname()[1], closed_port):
            vantage = Vantage(lambda argv: (0, neigh, ""), port=port)
            seen = vantage.observe([ip("127.0.0.1")], 1.0, full_round=False)
            vantage.close()
            assert seen[ip("127.0.0.1")][1] == NEW_MAC
    finally:
        listener.close()


# --- the command driver ----------------------------------------------------------------------

@pytest.fixture
def script(tmp_path):
    path = tmp_path / "failover"
    path.write_text("#!/bin/sh\necho \"route $1 from $2 to $3\"\n[ \"$1\" = 10.77.0.98 ] && echo unchanged\n"
                    "[ \"$1\" = fd77:7::99 ] && { echo 'API said no' >&2; exit 3; }\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_command_driver_runs_the_script_per_address(script):
    driver = CommandDriver(settings(driver="command", command=script, addresses=["10.77.0.99", "10.77.0.98"]))
    results = driver.claim([V4, ip("10.77.0.98")])
    assert [(item["rc"], item["stdout"], item["changed"]) for item in results] == [
        (0, "route 10.77.0.99 from transit2 to dbtest1\n", True),
        (0, "route 10.77.0.98 from transit2 to dbtest1\nunchanged\n", False)]


def test_command_driver_failure_names_the_address(script):
    driver = CommandDriver(settings(driver="command", command=script))
    with pytest.raises(IpRerouteError) as error:
        driver.claim([V4, V6])
    assert str(error.value) == "%s fd77:7::99 transit2 dbtest1 failed with exit status 3: API said no" % script
    assert [item["rc"] for item in error.value.addresses] == [0, 3]


def test_command_driver_timeout(script):
    def run(argv, timeout_s):
        raise ip_reroute.subprocess.TimeoutExpired(argv, timeout_s)
    driver = CommandDriver(settings(driver="command", command=script, command_timeout=5), run=run)
    with pytest.raises(IpRerouteError, match=r"fd77:7::99 did not finish within 5 s"):
        driver.claim([V6])


def test_command_driver_release_and_check_mode_change_nothing(script):
    calls = []
    driver = CommandDriver(settings(driver="command", command=script), run=lambda argv, t: calls.append(argv))
    assert [item["changed"] for item in driver.release([V4])] == [False]
    assert [item["changed"] for item in driver.claim([V4], check_mode=True)] == [True]
    assert calls == []


@pytest.mark.parametrize("command, message", [
    (None, "driver=command needs command"),
    ("failover", "command failover must be an absolute path"),
    ("/nonexistent/failover", "command /nonexistent/failover is not an executable file on this host"),
])
def test_command_driver_bad_script(command, message):
    with pytest.raises(IpRerouteError, match=message):
        CommandDriver(settings(driver="command", command=command)).claim([V4])


def test_command_driver_check(script):
    clock = Clock()
    check = CommandDriver(settings(driver="command", command=script),
                          vantage=FakeVantage(clock, [{V4: OLD_MAC, V6: NEW_MAC}]))
    assert [item["status"] for item in check.check([V4, V6])] == ["ready", "moved"]
    third = CommandDriver(settings(driver="command", command=script), vantage=FakeVantage(clock, [{V4: THIRD_MAC}]))
    with pytest.raises(IpRerouteError, match="10.77.0.99 is answered by 02:77:00:00:00:50"):
        third.check([V4])
    silent = CommandDriver(settings(driver="command", command=script), vantage=FakeVantage(clock, [{}]))
    with pytest.raises(IpRerouteError, match="10.77.0.99 does not answer on port 80 from this host"):
        silent.check([V4])


# --- one step end to end ---------------------------------------------------------------------

def test_reroute_release_reports_released_at_and_changed():
    clock = Clock(1795655305.5)
    driver, _factory = onlink(Runner(mac=OLD_MAC, held=HELD), clock)
    result = ip_reroute.reroute(settings(step="release"), driver=driver, clock=clock)
    assert result["released_at"] == 1795655305.5 and result["changed"] is True
    assert ip_reroute.reroute(settings(step="release"), driver=driver, clock=clock)["changed"] is False


def test_reroute_check_already_moved():
    driver, _factory = onlink(Runner(held=HELD), Clock(), answering())
    result = ip_reroute.reroute(settings(), driver=driver)
    assert result["already_moved"] is True and result["changed"] is False


def test_script_runner_runs_without_a_shell():
    assert ip_reroute.run_script(["/bin/echo", "$HOME;", "x"], 5) == (0, "$HOME; x\n", "")


# --- the module's entry point ----------------------------------------------------------------

class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, runner, check_mode=False, diff=False, **overrides):
        self.params = dict(step="claim", driver="onlink", addresses=[str(V4), str(V6)], owned=[str(V4), str(V6)],
                           from_server="transit2", to_server="dbtest1", from_mac=OLD_MAC, to_mac=NEW_MAC,
                           interface=None, command=None, command_timeout=120, announcements=3, since=None,
                           timeout=30.0, port=80)
        self.params.update(overrides)
        self.check_mode = check_mode
        self._diff = diff
        self.runner = runner

    def run_command(self, argv):
        return self.runner(argv)

    def get_bin_path(self, name, required=False):
        return name

    def fail_json(self, **result):
        raise Failed(result)


def test_module_claim_in_check_mode_shows_the_diff():
    runner = Runner()
    result = ip_reroute.run_ip_reroute(FakeModule(runner, check_mode=True, diff=True))
    assert result["changed"] is True and result["claimed_at"] is None
    assert result["diff"]["before"] == "eth0: 10.77.0.40/24, fd77:7::40/64, fe80::77:ff:fe00:40/64\n"
    assert result["diff"]["after"] == ("eth0: 10.77.0.40/24, fd77:7::40/64, fe80::77:ff:fe00:40/64, "
                                       "10.77.0.99/24, fd77:7::99/64\n")
    assert runner.changes() == []


def test_module_release_shows_the_diff():
    runner = Runner(mac=OLD_MAC, held=HELD)
    result = ip_reroute.run_ip_reroute(FakeModule(runner, diff=True, step="release"))
    assert result["diff"]["after"] == "eth0: 10.77.0.40/24, fd77:7::40/64, fe80::77:ff:fe00:40/64\n"
    assert result["diff"]["before_header"] == "transit2 addresses"


@pytest.mark.parametrize("overrides, message", [
    ({"addresses": ["10.77.0.21"]}, "10.77.0.21 is not one of transit2's service addresses (10.77.0.99, fd77:7::99): only those can be rerouted"),
    ({"interface": "eth9"}, "there is no interface eth9 on dbtest1 (interfaces: lo, eth0)"),
])
def test_module_refuses_bad_input_before_any_change(overrides, message):
    runner = Runner()
    with pytest.raises(Failed) as failed:
        ip_reroute.run_ip_reroute(FakeModule(runner, **overrides))
    assert failed.value.args[0]["msg"] == message
    assert runner.changes() == []


def test_verify_ignores_a_late_answer_for_an_address_already_settled():
    """A connection of an earlier round answers again after its address was settled."""
    class LateVantage(FakeVantage):
        def observe(self, addresses, wait_s, full_round=True):
            answers = self.rounds.pop(0) if self.rounds else {}
            self.clock.sleep(wait_s)
            return {address: (self.clock(), mac) for address, mac in answers.items()}

    clock = Clock()
    vantage = LateVantage(clock, [{V4: NEW_MAC}, {V4: NEW_MAC, V6: NEW_MAC}])
    results = ip_reroute.verify([V4, V6], vantage, NEW_MAC, OLD_MAC, None, 1.0, ("transit2", "dbtest1"),
                                clock=clock, interval_s=0.02)
    assert [r["answered_by_mac"] for r in results] == [NEW_MAC, NEW_MAC]
    assert results[0]["answered_at"] < results[1]["answered_at"]
