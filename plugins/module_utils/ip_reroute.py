# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Moving a server's service addresses to another server, and back (``docs/ip-reroute.md``).

A move has four steps, each run on the host it concerns:

- ``check`` (on the new owner): both servers on one segment, nobody else answering, not moved yet;
- ``release`` (on the old owner): the addresses leave its interface;
- ``claim`` (on the new owner): the addresses are added and announced (gratuitous ARP, unsolicited
  neighbour advertisement);
- ``verify`` (on a third host): each address answers from the new owner; the switch time.

How ``release`` and ``claim`` happen is a driver's business (``Driver``): ``OnlinkDriver`` moves the
addresses between two servers on one layer-2 segment, ``CommandDriver`` runs the operator's own
script (a provider's failover API). A provider driver subclasses ``Driver``.

ARP and neighbour discovery packets are made here (pure functions, tested byte for byte) and sent
through raw sockets: the lab servers carry Thomas Habets' arping and the host iputils' arping, whose
options mean different things. Commands, sockets and the clock are parameters, so the tests run
everything with fakes.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import errno
import ipaddress
import json
import os
import re
import selectors
import socket
import struct
import subprocess
import time

STEPS = ("check", "release", "claim", "verify")
DRIVER_NAMES = ("onlink", "command")

ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800
ARP_REQUEST = 1
ARP_REPLY = 2
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
ZERO_MAC = "00:00:00:00:00:00"
ICMPV6_NEIGHBOUR_SOLICITATION = 135
ICMPV6_NEIGHBOUR_ADVERTISEMENT = 136
NA_FLAG_OVERRIDE = 0x20000000
OPTION_SOURCE_LINK_LAYER = 1
OPTION_TARGET_LINK_LAYER = 2
ALL_NODES = "ff02::1"
# RFC 4861: receivers drop neighbour discovery packets that crossed a router (hop limit below 255).
ND_HOP_LIMIT = 255

# How long a check listens for answers (three probes in that time); announcement rounds in claim.
PROBE_WINDOW_S = 1.0
PROBES = 3
ANNOUNCE_INTERVAL_S = 0.2
# Verify: a new TCP connection attempt per pending address every VERIFY_INTERVAL_S, each given up
# to VERIFY_WINDOW_S for an answer (SYN-ACK or reset): less than TCP's first SYN retransmission
# (1 s), so every answer belongs to a SYN sent while the neighbour entry was what it is now.
VERIFY_INTERVAL_S = 0.02
VERIFY_WINDOW_S = 0.9
OUTPUT_MAX = 4000

_MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")

IP_REROUTE_ARGUMENT_SPEC = dict(
    step=dict(type="str", required=True, choices=list(STEPS)),
    driver=dict(type="str", default="onlink", choices=list(DRIVER_NAMES)),
    addresses=dict(type="list", elements="str", required=True),
    owned=dict(type="list", elements="str", required=True),
    from_server=dict(type="str", required=True),
    to_server=dict(type="str", required=True),
    from_mac=dict(type="str"),
    to_mac=dict(type="str"),
    interface=dict(type="str"),
    command=dict(type="path"),
    command_timeout=dict(type="int", default=120),
    announcements=dict(type="int", default=3),
    since=dict(type="float"),
    timeout=dict(type="float", default=30.0),
    port=dict(type="int", default=80),
)


class IpRerouteError(ValueError):
    """Bad input or a failed step, as one plain sentence; ``addresses`` holds what was done."""

    def __init__(self, message, addresses=None):
        super(IpRerouteError, self).__init__(message)
        self.addresses = addresses or []


# --- input -----------------------------------------------------------------------------------

def parse_address(text, what="address"):
    """An IPv4 or IPv6 address (no prefix length, no zone, no brackets), as ipaddress object."""
    if not isinstance(text, str):
        raise IpRerouteError("%s %r is not an IP address" % (what, text))
    if "/" in text:
        raise IpRerouteError("%s %r is not an IP address: give it without a prefix length" % (what, text))
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise IpRerouteError("%s %r is not an IP address" % (what, text)) from None
    for bad, kind in ((address.is_unspecified, "the unspecified"), (address.is_loopback, "a loopback"),
                      (address.is_multicast, "a multicast"), (address.is_link_local, "a link-local")):
        if bad:
            raise IpRerouteError("%s %s is %s address: only a server's own service addresses move"
                                 % (what, address, kind))
    return address


def check_addresses(addresses, owned, server):
    """The addresses to move, each once, in order; each must be one of the server's (``owned``)."""
    if not addresses:
        raise IpRerouteError("addresses must list at least one address")
    owned_set = {parse_address(text, "owned address") for text in owned or ()}
    chosen = []
    for text in addresses:
        address = parse_address(text)
        if address not in owned_set:
            raise IpRerouteError(
                "%s is not one of %s's service addresses (%s): only those can be rerouted"
                % (address, server, ", ".join(str(item) for item in sorted(owned_set, key=_sort_key)) or "none"))
        if address not in chosen:
            chosen.append(address)
    return chosen


def normalise_mac(text, what="MAC address"):
    if text is None:
        return None
    mac = str(text).strip().lower().replace("-", ":")
    if not _MAC_RE.fullmatch(mac):
        raise IpRerouteError("%s %r is not a MAC address (like 02:77:00:00:00:30)" % (what, text))
    return mac


def family(address):
    return "ipv%d" % address.version


def _sort_key(address):
    return (address.version, int(address))


# --- packets (pure) --------------------------------------------------------------------------

def mac_bytes(mac):
    return bytes(int(part, 16) for part in mac.split(":"))


def mac_text(raw):
    return ":".join("%02x" % byte for byte in raw)


def arp_frame(operation, sender_mac, sender_ip, target_mac, target_ip, destination_mac=BROADCAST_MAC):
    """An Ethernet frame carrying an ARP packet for IPv4 over Ethernet."""
    header = mac_bytes(destination_mac) + mac_bytes(sender_mac) + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, operation)
    arp += mac_bytes(sender_mac) + ipaddress.IPv4Address(sender_ip).packed
    arp += mac_bytes(target_mac) + ipaddress.IPv4Address(target_ip).packed
    return header + arp


def arp_probe_frame(mac, address):
    """An ARP probe (RFC 5227): who has ADDRESS, asked from 0.0.0.0 so no cache learns from it."""
    return arp_frame(ARP_REQUEST, mac, "0.0.0.0", ZERO_MAC, address)


def gratuitous_arp_frames(mac, address):
    """Both forms of gratuitous ARP, broadcast: a request and a reply, each from and for ADDRESS.

    Linux takes a reply as gratuitous only when its target hardware address is the sender's.
    """
    return [arp_frame(ARP_REQUEST, mac, address, ZERO_MAC, address),
            arp_frame(ARP_REPLY, mac, address, mac, address)]


def parse_arp_frame(frame):
    """(operation, sender_mac, sender_ip) of an Ethernet ARP frame, or None for anything else."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    hardware, protocol, hlen, plen, operation = struct.unpack("!HHBBH", frame[14:22])
    if (hardware, protocol, hlen, plen) != (1, ETH_P_IP, 6, 4):
        return None
    return operation, mac_text(frame[22:28]), ipaddress.IPv4Address(frame[28:32])


def solicited_node_address(address):
    """ff02::1:ffXX:XXXX, where the neighbour solicitation for ADDRESS goes."""
    return ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + address.packed[13:])


def neighbour_solicitation(target, mac):
    """ICMPv6 neighbour solicitation for TARGET with our link-layer address (checksum 0: the
    kernel fills it in for raw ICMPv6 sockets)."""
    return (struct.pack("!BBHI", ICMPV6_NEIGHBOUR_SOLICITATION, 0, 0, 0) + target.packed
            + struct.pack("!BB", OPTION_SOURCE_LINK_LAYER, 1) + mac_bytes(mac))


def neighbour_advertisement(target, mac):
    """Unsolicited neighbour advertisement (RFC 4861 7.2.6): override set, solicited and router
    clear, with the target link-layer address option, so neighbours replace their entry."""
    return (struct.pack("!BBHI", ICMPV6_NEIGHBOUR_ADVERTISEMENT, 0, 0, NA_FLAG_OVERRIDE) + target.packed
            + struct.pack("!BB", OPTION_TARGET_LINK_LAYER, 1) + mac_bytes(mac))


def parse_neighbour_advertisement(payload):
    """(target, mac or None) of an ICMPv6 neighbour advertisement, or None for anything else."""
    if len(payload) < 24 or payload[0] != ICMPV6_NEIGHBOUR_ADVERTISEMENT or payload[1] != 0:
        return None
    target = ipaddress.IPv6Address(payload[8:24])
    mac = None
    offset = 24
    while offset + 2 <= len(payload):
        kind, length = payload[offset], payload[offset + 1] * 8
        if length == 0 or offset + length > len(payload):
            break
        if kind == OPTION_TARGET_LINK_LAYER and length >= 8:
            mac = mac_text(payload[offset + 2:offset + 8])
        offset += length
    return target, mac


# --- this host's interfaces ------------------------------------------------------------------

class Interface(object):
    """One network interface: name, index, MAC, and its addresses as ip_interface objects."""

    def __init__(self, name, index, mac, addresses, secondary=()):
        self.name = name
        self.index = index
        self.mac = mac
        self.addresses = list(addresses)
        self.secondary = set(secondary)

    def prefixes(self):
        """The global prefixes on the interface, each once, in order."""
        found = []
        for item in self.addresses:
            if item.ip.is_link_local or item.ip.is_loopback:
                continue
            if item.network not in found:
                found.append(item.network)
        return found

    def prefix_for(self, address):
        """The most specific prefix of the interface containing ADDRESS, or None."""
        matching = [network for network in self.prefixes() if address in network]
        return max(matching, key=lambda network: network.prefixlen) if matching else None

    def held(self, address):
        """The ip_interface by which the interface holds ADDRESS, or None."""
        for item in self.addresses:
            if item.ip == address:
                return item
        return None


def parse_interfaces(text):
    """Interfaces from the JSON of ``ip -j address show``."""
    interfaces = []
    for entry in json.loads(text or "[]"):
        addresses, secondary = [], []
        for info in entry.get("addr_info", []):
            if info.get("family") not in ("inet", "inet6") or "local" not in info:
                continue
            item = ipaddress.ip_interface("%s/%s" % (info["local"], info.get("prefixlen", 128)))
            addresses.append(item)
            if info.get("secondary"):
                secondary.append(item.ip)
        mac = entry.get("address")
        interfaces.append(Interface(entry.get("ifname"), entry.get("ifindex"),
                                    mac.lower() if mac and _MAC_RE.fullmatch(mac.lower()) else None,
                                    addresses, secondary))
    return interfaces


def describe_prefixes(interfaces):
    """'eth0: 10.77.0.0/24, fd77:7::/64' for the interfaces that have global prefixes."""
    parts = ["%s: %s" % (item.name, ", ".join(str(network) for network in item.prefixes()))
             for item in interfaces if item.name != "lo" and item.prefixes()]
    return "; ".join(parts) or "none"


class Host(object):
    """This host's interfaces and the ``ip`` commands that change them."""

    def __init__(self, runner, name, ip_command="ip"):
        self.runner = runner
        self.name = name
        self.ip_command = ip_command
        self._interfaces = None

    def interfaces(self, refresh=False):
        if self._interfaces is None or refresh:
            rc, out, err = self.runner([self.ip_command, "-j", "address", "show"])
            if rc != 0:
                raise IpRerouteError("'ip address show' failed on %s: %s" % (self.name, (err or out).strip()))
            try:
                self._interfaces = parse_interfaces(out)
            except ValueError:
                raise IpRerouteError("'ip -j address show' on %s did not print JSON" % self.name) from None
        return self._interfaces

    def interface_named(self, name):
        for item in self.interfaces():
            if item.name == name:
                return item
        raise IpRerouteError("there is no interface %s on %s (interfaces: %s)" % (
            name, self.name, ", ".join(item.name for item in self.interfaces())))

    def holder(self, address):
        """(interface, ip_interface) holding ADDRESS on this host, or (None, None)."""
        for item in self.interfaces():
            held = item.held(address)
            if held is not None:
                return item, held
        return None, None

    def interface_for(self, address, name=None):
        """The interface whose prefix contains ADDRESS (the one named, when a name is given)."""
        candidates = [self.interface_named(name)] if name else [
            item for item in self.interfaces() if item.name != "lo"]
        for item in candidates:
            if item.prefix_for(address) is not None:
                return item
        raise IpRerouteError("%s is not in any prefix of %s's %s (%s)" % (
            address, self.name, "interface %s" % name if name else "interfaces", describe_prefixes(candidates)))

    def add(self, address, interface):
        prefix = interface.prefix_for(address)
        argv = [self.ip_command, "address", "add", "%s/%d" % (address, prefix.prefixlen), "dev", interface.name]
        if address.version == 6:
            argv.append("nodad")  # usable at once: the old owner has let it go, nobody else answers
        self._run(argv, "adding %s to %s" % (address, interface.name))

    def delete(self, held, interface):
        self._run([self.ip_command, "address", "del", str(held), "dev", interface.name],
                  "removing %s from %s" % (held.ip, interface.name))

    def _run(self, argv, what):
        rc, out, err = self.runner(argv)
        if rc != 0:
            raise IpRerouteError("%s on %s failed: %s" % (what, self.name, (err or out or "exit code %s" % rc).strip()))
        self._interfaces = None


# --- raw sockets: probing and announcing -----------------------------------------------------

class Link(object):
    """ARP and neighbour discovery on one interface through raw sockets (root or CAP_NET_RAW)."""

    def __init__(self, interface, socket_factory=socket.socket, clock=time.time, sleep=time.sleep):
        if not interface.mac:
            raise IpRerouteError("interface %s has no Ethernet address: on-link moves need one" % interface.name)
        self.interface = interface
        self.socket_factory = socket_factory
        self.clock = clock
        self.sleep = sleep

    def _packet_socket(self):
        sock = self.socket_factory(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        sock.bind((self.interface.name, ETH_P_ARP))
        return sock

    def _icmpv6_socket(self):
        sock = self.socket_factory(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, ND_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ND_HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, self.interface.index)
        # Our own kernel must not answer our own solicitation.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        return sock

    def who_answers(self, address, window_s=PROBE_WINDOW_S, probes=PROBES):
        """The MAC addresses (sorted) that answer for ADDRESS on the link within WINDOW_S."""
        if address.version == 4:
            sock = self._packet_socket()
            request = arp_probe_frame(self.interface.mac, address)

            def send():
                sock.send(request)

            def answer(data):
                parsed = parse_arp_frame(data)
                if parsed and parsed[0] == ARP_REPLY and parsed[2] == address:
                    return parsed[1]
                return None
        else:
            sock = self._icmpv6_socket()
            request = neighbour_solicitation(address, self.interface.mac)
            destination = (str(solicited_node_address(address)), 0, 0, self.interface.index)

            def send():
                sock.sendto(request, destination)

            def answer(data):
                parsed = parse_neighbour_advertisement(data)
                if parsed and parsed[0] == address:
                    return parsed[1] or "unknown"
                return None
        answers = set()
        try:
            start = self.clock()
            deadline, sent, next_send = start + window_s, 0, start
            while True:
                now = self.clock()
                if sent < probes and now >= next_send:
                    send()
                    sent += 1
                    next_send = now + window_s / probes
                if now >= deadline:
                    break
                sock.settimeout(max(0.001, min(deadline, next_send) - now if sent < probes else deadline - now))
                try:
                    data = sock.recv(2048)
                except socket.timeout:
                    continue
                mac = answer(data)
                if mac and mac != self.interface.mac:
                    answers.add(mac)
        finally:
            sock.close()
        return sorted(answers)

    def announce(self, addresses, rounds, interval_s=ANNOUNCE_INTERVAL_S):
        """Gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6), ROUNDS times."""
        ipv4 = [address for address in addresses if address.version == 4]
        ipv6 = [address for address in addresses if address.version == 6]
        packet_sock = self._packet_socket() if ipv4 else None
        icmp_sock = self._icmpv6_socket() if ipv6 else None
        destination = (ALL_NODES, 0, 0, self.interface.index)
        try:
            for number in range(rounds):
                if number:
                    self.sleep(interval_s)
                for address in ipv4:
                    for frame in gratuitous_arp_frames(self.interface.mac, address):
                        packet_sock.send(frame)
                for address in ipv6:
                    icmp_sock.sendto(neighbour_advertisement(address, self.interface.mac), destination)
        finally:
            for sock in (packet_sock, icmp_sock):
                if sock is not None:
                    sock.close()


# --- the vantage point: does the address answer, and from which MAC --------------------------

class Vantage(object):
    """Probes addresses from this host: TCP connections (any answer, SYN-ACK or reset, counts)
    and the neighbour table entry the answer came through.

    Attempts overlap: a new connection starts every round while older ones (up to WINDOW_S old)
    still wait, so a slow answer is not lost and a lost SYN (sent to the old owner's MAC) does
    not hold the next attempt back.
    """

    def __init__(self, runner, port=80, socket_factory=socket.socket, clock=time.time, ip_command="ip",
                 window_s=VERIFY_WINDOW_S, sleep=time.sleep):
        self.runner = runner
        self.sleep = sleep
        self.port = port
        self.socket_factory = socket_factory
        self.clock = clock
        self.ip_command = ip_command
        self.window_s = window_s
        self._selector = selectors.DefaultSelector()
        self._started = {}

    def _start(self, address):
        """Start a connection; the time of the answer when it came at once, else None."""
        sock = self.socket_factory(socket.AF_INET if address.version == 4 else socket.AF_INET6, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((str(address), self.port))
        if code in (errno.EINPROGRESS, errno.EAGAIN):
            self._selector.register(sock, selectors.EVENT_WRITE, address)
            self._started[sock] = self.clock()
            return None
        sock.close()
        return self.clock() if code in (0, errno.ECONNREFUSED) else None

    def _forget(self, sock):
        self._selector.unregister(sock)
        self._started.pop(sock, None)
        sock.close()

    def observe(self, addresses, wait_s, full_round=True):
        """Start one connection to each address and collect, for WAIT_S, the answers of every
        attempt in flight: {address: (time of its first answer, MAC)}.

        The MAC is the address's neighbour entry read right after the answer (None when it came
        through a router: no entry), so an answer is not credited to a MAC the entry took later.
        """
        answered = {}
        batch = []
        for address in addresses:
            when = self._start(address)
            if when is not None:
                batch.append((address, when))
        self._attribute(batch, answered)
        deadline = self.clock() + wait_s
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            if not self._started:
                if not full_round:
                    break
                # Nothing in flight: a round still lasts WAIT_S, so a quick answer does not make a busy loop.
                self.sleep(remaining)
                break
            batch = []
            for key, _events in self._selector.select(remaining):
                if key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) in (0, errno.ECONNREFUSED):
                    batch.append((key.data, self.clock()))
                self._forget(key.fileobj)
            self._attribute(batch, answered)
        now = self.clock()
        for sock, started in list(self._started.items()):
            if now - started >= self.window_s:
                self._forget(sock)
        return answered

    def _attribute(self, batch, answered):
        batch = [(address, when) for address, when in batch if address not in answered]
        if batch:
            table = self.neighbours()
            for address, when in batch:
                answered[address] = (when, table.get(address))

    def close(self):
        for sock in list(self._started):
            self._forget(sock)

    def neighbours(self):
        """{address: MAC} of this host's neighbour table (entries without a MAC left out)."""
        if self.ip_command is None:
            return {}
        rc, out, err = self.runner([self.ip_command, "-j", "neigh", "show"])
        if rc != 0:
            raise IpRerouteError("'ip neigh show' failed: %s" % (err or out).strip())
        table = {}
        for entry in json.loads(out or "[]"):
            if entry.get("lladdr") and entry.get("dst"):
                try:
                    table[ipaddress.ip_address(entry["dst"].split("%")[0])] = entry["lladdr"].lower()
                except ValueError:
                    continue
        return table


def verify(addresses, vantage, to_mac, from_mac, since, timeout_s, servers, clock=time.time,
           interval_s=VERIFY_INTERVAL_S):
    """Probe until every address answers from TO_MAC (or at all, without TO_MAC), for TIMEOUT_S.

    Returns one dict per address: answered_at, switch_s (from SINCE, else from the start),
    answered_by_mac, and when the old owner was still seen answering (verify started before the
    release), last_old_answer_at and outage_s, the gap this vantage point saw.
    """
    to_server = servers[1]
    start = clock()
    since = start if since is None else since
    pending = list(addresses)
    results = {address: {"address": str(address), "family": family(address), "changed": False,
                         "answered_by_mac": None, "answered_at": None, "switch_s": None,
                         "last_old_answer_at": None, "outage_s": None}
               for address in addresses}
    last_seen = {}
    try:
        while pending:
            for address, (when, mac) in sorted(vantage.observe(pending, interval_s).items(), key=lambda item: item[1][0]):
                # A connection of an earlier round may still answer for an address already settled.
                if address not in pending:
                    continue
                last_seen[address] = mac
                entry = results[address]
                if to_mac is not None and mac is None:
                    raise IpRerouteError(
                        "%s answers this vantage point through a router: its neighbour table cannot tell "
                        "whether %s answers; verify from a host on the same segment, or without to_mac"
                        % (address, to_server), list(results.values()))
                if to_mac is None or mac == to_mac:
                    entry.update(answered_by_mac=mac, answered_at=round(when, 6), switch_s=round(when - since, 6))
                    if entry["last_old_answer_at"] is not None:
                        entry["outage_s"] = round(when - entry["last_old_answer_at"], 6)
                    pending.remove(address)
                elif mac == from_mac:
                    entry["last_old_answer_at"] = round(when, 6)
            if pending and clock() - start >= timeout_s:
                raise IpRerouteError(_late(pending[0], last_seen.get(pending[0]), to_mac, from_mac, servers,
                                           timeout_s), [results[address] for address in addresses])
    finally:
        vantage.close()
    return [results[address] for address in addresses]


def _late(address, seen, to_mac, from_mac, servers, timeout_s):
    from_server, to_server = servers
    if seen is None:
        last = "it did not answer at all"
    elif seen == from_mac:
        last = "it still answers from %s (%s)" % (from_server, seen)
    else:
        last = "it answers from %s, which is neither %s nor %s" % (seen, from_server, to_server)
    return "%s did not answer from %s (%s) within %g s: %s" % (address, to_server, to_mac or "any MAC", timeout_s, last)


# --- drivers ---------------------------------------------------------------------------------

class Driver(object):
    """How addresses leave the old owner and reach the new one. A provider's driver subclasses
    this and implements ``release`` and ``claim`` (``check`` when it can tell more than this)."""

    name = None
    # Epoch seconds when claim had the addresses in place (before announcing them).
    claimed_at = None

    def __init__(self, settings, clock=time.time):
        self.settings = settings
        self.clock = clock

    def check(self, addresses):
        raise NotImplementedError

    def release(self, addresses, check_mode=False):
        raise NotImplementedError

    def claim(self, addresses, check_mode=False):
        raise NotImplementedError


class OnlinkDriver(Driver):
    """Both servers on one layer-2 segment: ``ip address del`` on the old owner, ``ip address
    add`` on the new one, then gratuitous ARP and unsolicited neighbour advertisements."""

    name = "onlink"

    def __init__(self, settings, host, link_factory=Link, promote_path="/proc/sys/net/ipv4/conf/%s/promote_secondaries",
                 clock=time.time):
        super(OnlinkDriver, self).__init__(settings, clock)
        self.host = host
        self.link_factory = link_factory
        self.promote_path = promote_path

    def _own_interface(self, address, mac, server):
        interface = self.host.interface_for(address, self.settings.interface)
        if mac is not None and interface.mac != mac:
            raise IpRerouteError("%s of this host has MAC %s, not %s: this step must run on %s" % (
                interface.name, interface.mac, mac, server))
        return interface

    def check(self, addresses):
        settings = self.settings
        if settings.from_mac is None:
            raise IpRerouteError("step=check with driver=onlink needs from_mac: the MAC address of %s"
                                 % settings.from_server)
        results = []
        for address in addresses:
            interface = self._own_interface(address, settings.to_mac, settings.to_server)
            held_on, _held = self.host.holder(address)
            answers = self.link_factory(interface).who_answers(address)
            others = [mac for mac in answers if mac not in (settings.from_mac, interface.mac)]
            if others:
                raise IpRerouteError("%s is answered by %s, which is neither %s nor %s" % (
                    address, ", ".join(others), settings.from_server, settings.to_server), results)
            if held_on is not None:
                if settings.from_mac in answers:
                    raise IpRerouteError("%s is held by %s and also answered by %s (%s): release it on %s first"
                                         % (address, settings.to_server, settings.from_server,
                                            settings.from_mac, settings.from_server), results)
                status = "moved"
            elif settings.from_mac in answers:
                status = "ready"
            else:
                raise IpRerouteError(
                    "%s does not answer from %s (%s) on %s's %s: the servers are not on one segment, %s is "
                    "down, or the address was released and not claimed yet (then run step=claim)"
                    % (address, settings.from_server, settings.from_mac, settings.to_server, interface.name,
                       settings.from_server), results)
            results.append({"address": str(address), "family": family(address), "changed": False,
                            "status": status, "interface": interface.name, "answered_by": answers})
        return results

    def release(self, addresses, check_mode=False):
        settings = self.settings
        plan = []
        for address in addresses:
            interface, held = self.host.holder(address)
            if interface is None:
                plan.append((address, None, None))
                continue
            if settings.interface and interface.name != settings.interface:
                raise IpRerouteError("%s is on %s of %s, not on %s" % (
                    address, interface.name, settings.from_server, settings.interface))
            if settings.from_mac is not None and interface.mac != settings.from_mac:
                raise IpRerouteError("%s of this host has MAC %s, not %s: release must run on %s" % (
                    interface.name, interface.mac, settings.from_mac, settings.from_server))
            self._refuse_primary(address, held, interface)
            plan.append((address, interface, held))
        results = []
        for address, interface, held in plan:
            if held is not None and not check_mode:
                self.host.delete(held, interface)
            results.append({"address": str(address), "family": family(address), "changed": held is not None,
                            "interface": interface.name if interface else None})
        return results

    def _refuse_primary(self, address, held, interface):
        """Deleting an IPv4 primary address deletes the secondaries of its prefix with it (the
        server's own address among them) unless promote_secondaries is on."""
        if address.version != 4 or address in interface.secondary:
            return
        others = [item.ip for item in interface.addresses
                  if item.version == 4 and item.ip != address and item.ip in held.network]
        if not others:
            return
        try:
            with open(self.promote_path % interface.name) as handle:
                if handle.read().strip() == "1":
                    return
        except OSError:
            pass
        raise IpRerouteError(
            "%s is the primary address of %s on %s's %s: removing it would remove %s with it; set "
            "net.ipv4.conf.%s.promote_secondaries=1 first" % (
                address, held.network, self.settings.from_server, interface.name,
                ", ".join(str(item) for item in others), interface.name))

    def claim(self, addresses, check_mode=False):
        settings = self.settings
        plan = []
        for address in addresses:
            interface = self._own_interface(address, settings.to_mac, settings.to_server)
            held_on, _held = self.host.holder(address)
            plan.append((address, interface, held_on is None))
        results = []
        self.claimed_at = None
        if not check_mode:
            for address, interface, missing in plan:
                if missing:
                    self.host.add(address, interface)
            self.claimed_at = round(self.clock(), 6)
            for interface in _unique(item[1] for item in plan):
                self.link_factory(interface).announce(
                    [address for address, owner, _missing in plan if owner is interface], settings.announcements)
        for address, interface, missing in plan:
            results.append({"address": str(address), "family": family(address), "changed": missing,
                            "interface": interface.name,
                            "announcements": 0 if check_mode else settings.announcements})
        return results


class CommandDriver(Driver):
    """The operator's script moves each address: ``SCRIPT ADDRESS FROM_SERVER TO_SERVER``.

    Exit status 0 is success; a last line of output ``unchanged`` says the address was already
    routed to TO_SERVER. ``release`` changes nothing (the script moves the address in one go).
    """

    name = "command"

    def __init__(self, settings, vantage=None, run=None, clock=time.time):
        super(CommandDriver, self).__init__(settings, clock)
        self.vantage = vantage
        self.run = run or run_script

    def _script(self):
        command = self.settings.command
        if not command:
            raise IpRerouteError("driver=command needs command: the path of the script that moves an address")
        if not os.path.isabs(command):
            raise IpRerouteError("command %s must be an absolute path" % command)
        if not (os.path.isfile(command) and os.access(command, os.X_OK)):
            raise IpRerouteError("command %s is not an executable file on this host" % command)
        return command

    def check(self, addresses):
        settings = self.settings
        self._script()
        try:
            seen = self.vantage.observe(addresses, min(settings.timeout, 3.0), full_round=False)
        finally:
            self.vantage.close()
        results = []
        for address in addresses:
            if address not in seen:
                raise IpRerouteError("%s does not answer on port %d from this host: it cannot be checked "
                                     "or verified here" % (address, settings.port), results)
            _when, mac = seen[address]
            status = "ready"
            if mac is not None and settings.to_mac is not None and mac == settings.to_mac:
                status = "moved"
            elif mac is not None and settings.from_mac is not None and mac != settings.from_mac:
                raise IpRerouteError("%s is answered by %s, which is neither %s nor %s" % (
                    address, mac, settings.from_server, settings.to_server), results)
            results.append({"address": str(address), "family": family(address), "changed": False,
                            "status": status, "answered_by": [mac] if mac else []})
        return results

    def release(self, addresses, check_mode=False):
        return [{"address": str(address), "family": family(address), "changed": False} for address in addresses]

    def claim(self, addresses, check_mode=False):
        settings = self.settings
        command = self._script()
        results = []
        for address in addresses:
            entry = {"address": str(address), "family": family(address), "changed": True,
                     "rc": None, "stdout": "", "stderr": ""}
            results.append(entry)
            if check_mode:
                continue
            argv = [command, str(address), settings.from_server, settings.to_server]
            try:
                rc, out, err = self.run(argv, settings.command_timeout)
            except subprocess.TimeoutExpired:
                raise IpRerouteError("%s %s did not finish within %d s" % (
                    command, address, settings.command_timeout), results) from None
            except OSError as error:
                raise IpRerouteError("%s could not be run: %s" % (command, error.strerror or error), results) from None
            entry.update(rc=rc, stdout=out[-OUTPUT_MAX:], stderr=err[-OUTPUT_MAX:])
            if rc != 0:
                raise IpRerouteError("%s %s %s %s failed with exit status %d: %s" % (
                    command, address, settings.from_server, settings.to_server, rc,
                    (err or out or "no output").strip()[-500:]), results)
            lines = out.strip().splitlines()
            entry["changed"] = not (lines and lines[-1].strip() == "unchanged")
        if not check_mode:
            self.claimed_at = round(self.clock(), 6)
        return results


DRIVERS = {"onlink": OnlinkDriver, "command": CommandDriver}


def run_script(argv, timeout_s):
    """Run ARGV without a shell; (rc, stdout, stderr); TimeoutExpired after TIMEOUT_S."""
    completed = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout_s, check=False)
    return (completed.returncode, completed.stdout.decode("utf-8", "replace"),
            completed.stderr.decode("utf-8", "replace"))


def _unique(items):
    found = []
    for item in items:
        if item not in found:
            found.append(item)
    return found


# --- the module ------------------------------------------------------------------------------

class Settings(object):
    """The module's parameters, checked and normalised."""

    def __init__(self, params):
        self.step = params["step"]
        self.driver = params["driver"]
        self.from_server = params["from_server"]
        self.to_server = params["to_server"]
        self.addresses = check_addresses(params["addresses"], params["owned"], self.from_server)
        self.from_mac = normalise_mac(params.get("from_mac"), "from_mac")
        self.to_mac = normalise_mac(params.get("to_mac"), "to_mac")
        if self.from_mac is not None and self.from_mac == self.to_mac:
            raise IpRerouteError("from_mac and to_mac are both %s: the two servers must differ" % self.from_mac)
        if self.from_server == self.to_server:
            raise IpRerouteError("from_server and to_server are both %s" % self.from_server)
        self.interface = params.get("interface")
        self.command = params.get("command")
        self.command_timeout = params.get("command_timeout", 120)
        self.announcements = params.get("announcements", 3)
        self.since = params.get("since")
        self.timeout = params.get("timeout", 30.0)
        self.port = params.get("port", 80)
        for name in ("command_timeout", "announcements", "timeout"):
            if getattr(self, name) is None or getattr(self, name) < 1:
                raise IpRerouteError("%s must be at least 1" % name)
        if not 1 <= self.port <= 65535:
            raise IpRerouteError("port %s is not a TCP port" % self.port)
        if self.step == "verify" and self.driver == "onlink" and self.to_mac is None:
            raise IpRerouteError("step=verify with driver=onlink needs to_mac: the MAC address of %s" % self.to_server)


def reroute(settings, host=None, vantage=None, driver=None, clock=time.time, check_mode=False):
    """Run one step; the module's result without ``diff``."""
    result = {"step": settings.step, "driver": settings.driver, "changed": False}
    if settings.step == "verify":
        if host is not None:
            for address in settings.addresses:
                interface, _held = host.holder(address)
                if interface is not None:
                    raise IpRerouteError("%s is held by this host (%s): verify from a third host, such as the "
                                         "controller" % (address, interface.name))
        result["addresses"] = verify(settings.addresses, vantage, settings.to_mac, settings.from_mac,
                                     settings.since, settings.timeout, (settings.from_server, settings.to_server),
                                     clock=clock)
        return result
    if settings.step == "check":
        result["addresses"] = driver.check(settings.addresses)
        result["already_moved"] = all(item["status"] == "moved" for item in result["addresses"])
        return result
    if settings.step == "release":
        result["released_at"] = round(clock(), 6)
        result["addresses"] = driver.release(settings.addresses, check_mode=check_mode)
    else:
        result["addresses"] = driver.claim(settings.addresses, check_mode=check_mode)
        result["claimed_at"] = driver.claimed_at
    result["changed"] = any(item["changed"] for item in result["addresses"])
    return result


def _interface_text(host):
    return "".join("%s: %s\n" % (item.name, ", ".join(str(address) for address in item.addresses))
                   for item in host.interfaces(refresh=True) if item.name != "lo")


def run_ip_reroute(module):
    """Everything ip_reroute does; fails the module with a plain sentence on bad input."""
    try:
        settings = Settings(module.params)
    except IpRerouteError as error:
        module.fail_json(msg=str(error))

    def runner(argv):
        return module.run_command(argv)

    onlink = settings.driver == "onlink" and settings.step != "verify"
    ip_command = module.get_bin_path("ip", required=onlink or settings.to_mac is not None)
    host_name = {"release": settings.from_server, "verify": "this host"}.get(settings.step, settings.to_server)
    host = Host(runner, host_name, ip_command) if ip_command else None
    vantage = Vantage(runner, settings.port, ip_command=ip_command)
    if settings.driver == "onlink":
        driver = OnlinkDriver(settings, host)
    else:
        driver = CommandDriver(settings, vantage)
    diff_wanted = module._diff and onlink and settings.step in ("release", "claim")
    try:
        if settings.interface and onlink:
            host.interface_named(settings.interface)
        before = _interface_text(host) if diff_wanted else None
        result = reroute(settings, host, vantage, driver, check_mode=module.check_mode)
        if diff_wanted:
            result["diff"] = {"before_header": "%s addresses" % host.name, "before": before,
                              "after_header": "%s addresses" % host.name,
                              "after": _predicted_text(host, settings, result) if module.check_mode
                              else _interface_text(host)}
    except IpRerouteError as error:
        module.fail_json(msg=str(error), addresses=error.addresses)
    return result


def _predicted_text(host, settings, result):
    changed = {ipaddress.ip_address(item["address"]): item for item in result["addresses"] if item["changed"]}
    lines = []
    for interface in host.interfaces():
        if interface.name == "lo":
            continue
        addresses = [str(item) for item in interface.addresses
                     if not (settings.step == "release" and item.ip in changed)]
        if settings.step == "claim":
            addresses += ["%s/%d" % (address, interface.prefix_for(address).prefixlen)
                          for address, item in changed.items() if item["interface"] == interface.name]
        lines.append("%s: %s\n" % (interface.name, ", ".join(addresses)))
    return "".join(lines)
