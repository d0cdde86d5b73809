# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider's DNS: find the A/AAAA records that point at a server, and move them atomically.

Reading is a TSIG-signed zone transfer (AXFR). Every change of one zone is ONE RFC 2136 UPDATE
over TCP, signed with the same key, whose prerequisite section holds, for every record touched,
the exact RRset we read ("RRset exists (value dependent)"). If anything changed behind our back
the server refuses the whole update, nothing is overwritten, and the error names the record.

Planning (plan_changes, plan_restore, inverse_changes, find_conflicts, refusal_error) is pure
Python, so it is tested without a name server. See docs/dns.md.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import base64
import binascii
import collections
import copy
import ipaddress
import os
import socket
import traceback

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.tsig
    import dns.update
    import dns.xfr
    import dns.zone
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_ERROR = None

KEY_SECRET_ENV = "HOSTING_DNS_KEY_SECRET"
KEY_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")
RTYPES = ("A", "AAAA")
MAX_TTL = 2147483647
DEFAULT_TIMEOUT = 10

Record = collections.namedtuple("Record", "name rtype ttl addresses zone")
Record.__new__.__defaults__ = (None,)
Record.__doc__ = """One A or AAAA RRset: name (FQDN, lower case, no final dot), rtype, ttl,
addresses (sorted tuple of normalised addresses), zone (the zone it was read from)."""

Change = collections.namedtuple("Change", "name rtype old_ttl old_addresses new_ttl new_addresses zone")
Change.__new__.__defaults__ = (None,)
Change.__doc__ = """One RRset changed from (old_ttl, old_addresses) to (new_ttl, new_addresses)."""

Desired = collections.namedtuple("Desired", "addresses ttl")
Desired.__new__.__defaults__ = (None, None)
Desired.__doc__ = """What plan_changes aims at: addresses {old: new} (new None or equal: keep)
and/or ttl (None: keep)."""


class DnsError(Exception):
    """Any failure talking to the provider's DNS, with a sentence a person can act on.

    ``applied`` lists the changes already made in other zones before this failure (one update
    per zone: each zone is all or nothing), so that a caller can record or restore them.
    """

    def __init__(self, message, zone=None, records=None, applied=None):
        super(DnsError, self).__init__(message)
        self.zone = zone
        self.records = list(records or [])
        self.applied = list(applied or [])

    def details(self):
        """What a module adds to its failure: the changes already made, the records named, the zone."""
        details = dict(changes=changes_to_dicts(self.applied), records=self.records)
        if self.zone:
            details["zone"] = self.zone
        return details


class DnsInputError(DnsError, ValueError):
    """Bad input, found before anything is read or sent."""


class DnsChangeRefused(DnsError):
    """A prerequisite failed: a record is no longer what we read; the zone was not changed."""


# ---------------------------------------------------------------------------------------------
# Names and addresses


def normalize_name(name):
    """FQDN in lower case without the final dot: 'WWW.Alice.Hosted.Test.' -> 'www.alice.hosted.test'."""
    if not isinstance(name, str) or not name.strip().strip("."):
        raise DnsInputError("%r is not a domain name" % (name,))
    text = name.strip().lower()
    if text.endswith("."):
        text = text[:-1]
    if ".." in text or " " in text or len(text) > 253:
        raise DnsInputError("%r is not a domain name" % (name,))
    return text


def normalize_address(address):
    """The canonical text of an IPv4 or IPv6 address ('FD77:7:0::21' -> 'fd77:7::21')."""
    try:
        return ipaddress.ip_address(str(address).strip()).compressed
    except ValueError:
        raise DnsInputError("%r is not an IPv4 or IPv6 address" % (address,))


def _address_key(address):
    parsed = ipaddress.ip_address(address)
    return (parsed.version, int(parsed))


def sort_addresses(addresses):
    """Normalised, without duplicates, IPv4 before IPv6, numeric order."""
    return tuple(sorted(set(normalize_address(a) for a in addresses), key=_address_key))


def rtype_of(address):
    return "A" if ipaddress.ip_address(address).version == 4 else "AAAA"


def in_zone(name, zone):
    return name == zone or name.endswith("." + zone)


def zone_of(name, zones):
    """The longest of ``zones`` that contains ``name``, or None."""
    found = [zone for zone in zones if in_zone(name, zone)]
    return max(found, key=len) if found else None


def check_ttl(ttl):
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL:
        raise DnsInputError("TTL %r is not a whole number of seconds from 0 to %d" % (ttl, MAX_TTL))
    return ttl


def normalize_mapping(addresses):
    """{old: new} with both normalised; new None/'' or equal to old means: keep the address.

    An address cannot move to the other family (an A record cannot hold an IPv6 address).
    """
    if not isinstance(addresses, dict):
        raise DnsInputError("addresses must be a mapping of old address to new address")
    mapping = {}
    for old, new in addresses.items():
        old_n = normalize_address(old)
        new_n = old_n if new in (None, "") else normalize_address(new)
        if rtype_of(old_n) != rtype_of(new_n):
            raise DnsInputError("cannot move %s to %s: an %s record cannot hold an IPv%s address" % (
                old_n, new_n, rtype_of(old_n), 6 if rtype_of(new_n) == "AAAA" else 4))
        if old_n in mapping and mapping[old_n] != new_n:
            raise DnsInputError("address %s is mapped twice (to %s and to %s)" % (old_n, mapping[old_n], new_n))
        mapping[old_n] = new_n
    return mapping


def record_label(name, rtype):
    return "%s %s" % (name, rtype)


def _describe(ttl, addresses):
    return "%s (TTL %s)" % (", ".join(addresses) or "no address", ttl)


# ---------------------------------------------------------------------------------------------
# Planning: pure functions


def plan_changes(current_records, desired=None, addresses=None, ttl=None):
    """The changes that bring ``current_records`` to ``desired``.

    ``desired`` is a Desired, a dict with the keys ``addresses`` and ``ttl``, or is given as the
    keyword arguments instead. Every record holding at least one address of the mapping is
    considered: its mapped addresses are replaced, the others kept; its TTL becomes ``ttl`` when
    given. Records already as desired give no change (idempotence).
    """
    if desired is not None:
        if isinstance(desired, dict):
            addresses, ttl = desired.get("addresses"), desired.get("ttl")
        else:
            addresses, ttl = desired.addresses, desired.ttl
    mapping = normalize_mapping(addresses or {})
    if ttl is not None:
        check_ttl(ttl)
    if not mapping:
        raise DnsInputError("no addresses given: the records to change are the ones pointing at them")
    changes = []
    for record in sorted(current_records, key=lambda r: (r.zone or "", r.name, r.rtype)):
        old = sort_addresses(record.addresses)
        if not any(address in mapping for address in old):
            continue
        new = sort_addresses(mapping.get(address, address) for address in old)
        new_ttl = record.ttl if ttl is None else ttl
        if new == old and new_ttl == record.ttl:
            continue
        changes.append(Change(record.name, record.rtype, record.ttl, old, new_ttl, new, record.zone))
    return changes


def inverse_changes(changes):
    """The changes that undo ``changes``: each one swapped, in reverse order."""
    return [Change(c.name, c.rtype, c.new_ttl, tuple(c.new_addresses), c.old_ttl, tuple(c.old_addresses), c.zone)
            for c in reversed(list(changes))]


def plan_restore(current_records, recorded_changes):
    """The changes that bring every record of ``recorded_changes`` back to its state before them.

    ``recorded_changes`` are the changes made earlier (for example a TTL lowering, then a move),
    in the order they were made. Per record they compose into one change from its current state
    back to the state before the first of them. A record already back gives no change. A record
    that is in none of the states we put it in (changed or deleted behind our back) raises
    DnsChangeRefused naming it, before anything is sent.
    """
    current = dict(((r.name, r.rtype), r) for r in current_records)
    chains = collections.OrderedDict()
    for change in recorded_changes:
        chains.setdefault((change.name, change.rtype), []).append(change)
    changes, conflicts = [], []
    for (name, rtype), chain in chains.items():
        target = (chain[0].old_ttl, sort_addresses(chain[0].old_addresses))
        ours = [target] + [(c.new_ttl, sort_addresses(c.new_addresses)) for c in chain]
        record = current.get((name, rtype))
        state = (record.ttl, sort_addresses(record.addresses)) if record else None
        if state == target:
            continue
        if state is None or state not in ours:
            conflicts.append((chain[-1], record))
            continue
        changes.append(Change(name, rtype, state[0], state[1], target[0], target[1], record.zone or chain[0].zone))
    if conflicts:
        zone = conflicts[0][0].zone
        raise DnsChangeRefused(
            "not restoring: %s; nothing was changed" % "; ".join(_conflict_sentence(c, r) for c, r in conflicts),
            zone=zone, records=[record_label(c.name, c.rtype) for c, r in conflicts])
    return changes


def check_left_as_recorded(changes, recorded_changes):
    """Refuse ``changes`` when a record they touch is not as the last of ``recorded_changes`` (the
    changes made to it earlier, in order) left it: someone changed it between two phases. Raises
    DnsChangeRefused naming every such record, before anything is sent."""
    left = {}
    for change in recorded_changes:
        left[(change.name, change.rtype)] = change
    conflicts = []
    for change in changes:
        last = left.get((change.name, change.rtype))
        if last is None:
            continue
        if (change.old_ttl, sort_addresses(change.old_addresses)) != (last.new_ttl, sort_addresses(last.new_addresses)):
            conflicts.append((change, "%s is %s, but the migration left it %s" % (
                record_label(change.name, change.rtype), _describe(change.old_ttl, change.old_addresses),
                _describe(last.new_ttl, last.new_addresses))))
    if conflicts:
        raise DnsChangeRefused(
            "not changing the records: %s; someone changed them since, so nothing was changed (put them back as "
            "the migration left them, or restore them by hand, then run again)"
            % "; ".join(sentence for dummy, sentence in conflicts),
            zone=conflicts[0][0].zone, records=[record_label(c.name, c.rtype) for c, dummy in conflicts])


def migration_dns_events(events, since_restore=True):
    """The ``dns_changed`` events of a server's current migration, from the ledger's events
    (oldest first): those since its last ``dns_restored`` (a restore ends a migration). With
    ``since_restore=False``, every ``dns_changed`` and ``dns_restored`` event. Raises
    DnsInputError when ``events`` is not a list."""
    if not isinstance(events, (list, tuple)):
        raise DnsInputError("give the ledger's events (a list), not %s" % type(events).__name__)
    found = []
    for event in events:
        kind = (event or {}).get("kind")
        if kind == "dns_restored":
            found = [] if since_restore else found + [event]
        elif kind == "dns_changed":
            found.append(event)
    return found


def event_changes(event):
    """The changes a ``dns_changed`` event recorded."""
    return ((event.get("details") or {}).get("changes")) or []


def find_conflicts(changes, current_records):
    """(change, current record or None) for every change whose record is no longer what we read."""
    current = dict(((r.name, r.rtype), r) for r in current_records)
    conflicts = []
    for change in changes:
        record = current.get((change.name, change.rtype))
        if record is None or sort_addresses(record.addresses) != sort_addresses(change.old_addresses):
            conflicts.append((change, record))
    return conflicts


def _conflict_sentence(change, record):
    label = record_label(change.name, change.rtype)
    if record is None:
        return "%s no longer exists (we expected %s)" % (label, ", ".join(change.old_addresses))
    return "%s is now %s, not %s as we read it" % (
        label, _describe(record.ttl, record.addresses), ", ".join(change.old_addresses))


def refusal_error(rcode, access, changes, conflicts=None):
    """The error for an UPDATE answered with ``rcode`` (its text, e.g. 'NXRRSET').

    A failed prerequisite (NXRRSET, YXRRSET, NXDOMAIN, YXDOMAIN) gives DnsChangeRefused naming the
    records: the ones in ``conflicts`` (found by reading the zone again) when known, otherwise
    every record of the update. Other codes give DnsError with what to check.
    """
    rcode = str(rcode).upper()
    labels = [record_label(c.name, c.rtype) for c in changes]
    where = "name server %s port %s" % (access.server, access.port)
    if rcode in ("NXRRSET", "YXRRSET", "NXDOMAIN", "YXDOMAIN"):
        if conflicts:
            told = "; ".join(_conflict_sentence(c, r) for c, r in conflicts)
            names = [record_label(c.name, c.rtype) for c, r in conflicts]
        else:
            meaning = {
                "NXRRSET": "a record no longer holds the addresses we read",
                "YXRRSET": "a record exists that must not",
                "NXDOMAIN": "a name we change no longer exists",
                "YXDOMAIN": "a name exists that must not",
            }[rcode]
            told = "%s (%s); one of these changed behind our back: %s" % (meaning, rcode, ", ".join(labels))
            names = labels
        return DnsChangeRefused(
            "zone %s was not changed: %s. Nothing was overwritten; read the records again and re-plan"
            % (access.zone, told), zone=access.zone, records=names)
    sentences = {
        "NOTAUTH": "%s is not authoritative for zone %s, or did not accept the TSIG key %s (NOTAUTH): "
                   "check the zone's server and the key's name, algorithm and secret"
                   % (where, access.zone, access.key_name),
        "REFUSED": "%s refused the update of zone %s (REFUSED): its update-policy must grant key %s, "
                   "for example update-policy { grant %s zonesub ANY; };"
                   % (where, access.zone, access.key_name, access.key_name),
        "NOTZONE": "%s answered NOTZONE: a record of the update (%s) is not inside zone %s"
                   % (where, ", ".join(labels), access.zone),
        "SERVFAIL": "%s failed to apply the update of zone %s (SERVFAIL); see its log" % (where, access.zone),
        "FORMERR": "%s could not parse the update of zone %s (FORMERR)" % (where, access.zone),
        "NOTIMP": "%s does not implement dynamic updates (NOTIMP) for zone %s" % (where, access.zone),
    }
    message = sentences.get(rcode, "%s answered %s to the update of zone %s" % (where, rcode, access.zone))
    return DnsError(message + "; nothing was changed in zone %s" % access.zone, zone=access.zone, records=labels)


# ---------------------------------------------------------------------------------------------
# Talking to the name server


class ZoneAccess(object):
    """How to reach one zone: its primary server and the TSIG key that may transfer and update it."""

    def __init__(self, zone, server, port=53, key_name=None, key_algorithm="hmac-sha256", key_secret=None,
                 timeout=DEFAULT_TIMEOUT):
        self.zone = normalize_name(zone)
        if not server or not isinstance(server, str):
            raise DnsInputError("zone %s: no name server given" % self.zone)
        self.server = server.strip()
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise DnsInputError("zone %s: port %r is not a port number" % (self.zone, port))
        self.port = port
        if not key_name:
            raise DnsInputError("zone %s: no TSIG key name given" % self.zone)
        self.key_name = normalize_name(key_name)
        algorithm = (key_algorithm or "hmac-sha256").lower().rstrip(".")
        if algorithm not in KEY_ALGORITHMS:
            raise DnsInputError("zone %s: TSIG algorithm %r is not one of %s" % (
                self.zone, key_algorithm, ", ".join(KEY_ALGORITHMS)))
        self.key_algorithm = algorithm
        if not key_secret:
            raise DnsInputError("zone %s: no TSIG key secret given (option key_secret or environment variable %s)"
                                % (self.zone, KEY_SECRET_ENV))
        try:
            base64.b64decode(key_secret, validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise DnsInputError("zone %s: the secret of TSIG key %s is not base64" % (self.zone, self.key_name))
        self.key_secret = key_secret
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise DnsInputError("zone %s: timeout %r is not a positive number of seconds" % (self.zone, timeout))
        self.timeout = timeout

    def __repr__(self):
        return "ZoneAccess(zone=%r, server=%r, port=%r, key_name=%r, key_algorithm=%r)" % (
            self.zone, self.server, self.port, self.key_name, self.key_algorithm)

    @property
    def where(self):
        return "name server %s port %s" % (self.server, self.port)

    def tsig_key(self):
        return dns.tsig.Key(self.key_name + ".", self.key_secret, self.key_algorithm + ".")

    def address(self):
        """The server's IP address (a host name is resolved by the system resolver)."""
        try:
            return normalize_address(self.server)
        except DnsInputError:
            pass
        try:
            infos = socket.getaddrinfo(self.server, self.port, 0, socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DnsError("zone %s: cannot resolve name server %s: %s" % (self.zone, self.server, exc),
                           zone=self.zone)
        return infos[0][4][0]


def _as_accesses(access):
    if isinstance(access, ZoneAccess):
        return [access]
    accesses = list(access)
    zones = [a.zone for a in accesses]
    duplicates = sorted(set(z for z in zones if zones.count(z) > 1))
    if duplicates:
        raise DnsInputError("zone %s is given more than once" % ", ".join(duplicates))
    return accesses


def _network_error(access, exc, doing):
    """DnsError for an exception raised while ``doing`` something with ``access``."""
    if isinstance(exc, dns.exception.Timeout):
        return DnsError("%s: no answer from %s for zone %s within %s s" % (
            doing, access.where, access.zone, access.timeout), zone=access.zone)
    if isinstance(exc, dns.tsig.PeerError):
        return DnsError("%s: %s did not accept the TSIG key %s (%s) for zone %s: check the key's name, "
                        "algorithm and secret, and the clocks" % (
                            doing, access.where, access.key_name, exc.__class__.__name__, access.zone),
                        zone=access.zone)
    if isinstance(exc, (dns.tsig.BadSignature, dns.tsig.BadTime, dns.tsig.BadKey, dns.tsig.BadAlgorithm,
                        dns.message.UnknownTSIGKey)):
        return DnsError("%s: the answer of %s for zone %s is not signed with TSIG key %s (%s)" % (
            doing, access.where, access.zone, access.key_name, exc.__class__.__name__), zone=access.zone)
    if isinstance(exc, OSError):
        return DnsError("%s: cannot reach %s for zone %s: %s" % (doing, access.where, access.zone, exc),
                        zone=access.zone)
    return DnsError("%s: %s for zone %s: %s: %s" % (
        doing, access.where, access.zone, exc.__class__.__name__, exc), zone=access.zone)


def read_zone(access):
    """Every A and AAAA RRset of the zone (a TSIG-signed AXFR), sorted, and the zone's SOA serial."""
    doing = "reading zone %s" % access.zone
    origin = dns.name.from_text(access.zone + ".")
    try:
        query = dns.message.make_query(origin, dns.rdatatype.AXFR)
        query.use_tsig(access.tsig_key())
        zone = dns.zone.Zone(origin, relativize=False)
        dns.query.inbound_xfr(access.address(), zone, query=query, port=access.port, timeout=access.timeout,
                              lifetime=access.timeout * 6)
    except DnsError:
        raise
    except dns.xfr.TransferError as exc:
        rcode = dns.rcode.to_text(exc.rcode)
        if rcode == "NOTAUTH":
            why = "it is not authoritative for zone %s, or did not accept TSIG key %s" % (access.zone, access.key_name)
        else:
            why = "the zone needs allow-transfer { key %s; };" % access.key_name
        raise DnsError("%s: %s refused the zone transfer (%s): %s" % (doing, access.where, rcode, why),
                       zone=access.zone)
    except Exception as exc:  # dnspython raises many kinds; each is turned into a sentence
        raise _network_error(access, exc, doing)
    records = []
    for name, rdataset in zone.iterate_rdatasets():
        rtype = dns.rdatatype.to_text(rdataset.rdtype)
        if rtype not in RTYPES:
            continue
        records.append(Record(normalize_name(name.to_text()), rtype, rdataset.ttl,
                              sort_addresses(rdata.address for rdata in rdataset), access.zone))
    soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
    serial = soa[0].serial if soa else None
    return sorted(records, key=lambda r: (r.name, r.rtype)), serial


def filter_records(records, addresses, names=None):
    """The records holding at least one of ``addresses``, and named in ``names`` when given."""
    wanted = set(sort_addresses(addresses))
    wanted_names = set(normalize_name(n) for n in names) if names else None
    return [r for r in records
            if wanted.intersection(r.addresses) and (wanted_names is None or r.name in wanted_names)]


def records_pointing_at(access, addresses, names=None):
    """Every A/AAAA record of the zone(s) holding one of ``addresses`` (limited to ``names``, FQDNs)."""
    found = []
    for one in _as_accesses(access):
        records, _serial = read_zone(one)
        found.extend(filter_records(records, addresses, names))
    return found


def build_update(access, changes):
    """The UPDATE message for the changes of one zone, TSIG-signed.

    Prerequisite per record: its RRset exists with exactly the old addresses (value dependent,
    TTL 0, class IN). Update: delete each old rdata, add each new one with the new TTL (so the
    whole RRset gets the new TTL).
    """
    if not changes:
        raise DnsInputError("zone %s: no changes to send" % access.zone)
    message = dns.update.UpdateMessage(access.zone + ".", keyring=access.tsig_key())
    for change in changes:
        if not in_zone(change.name, access.zone):
            raise DnsInputError("%s is not in zone %s" % (record_label(change.name, change.rtype), access.zone))
        if change.rtype not in RTYPES:
            raise DnsInputError("%s: only A and AAAA records are handled" % record_label(change.name, change.rtype))
        name = dns.name.from_text(change.name + ".")
        if not change.old_addresses or not change.new_addresses:
            raise DnsInputError("%s: a change must keep at least one address" % record_label(change.name, change.rtype))
        old = [_rdata(change.rtype, a) for a in sort_addresses(change.old_addresses)]
        new = [_rdata(change.rtype, a) for a in sort_addresses(change.new_addresses)]
        message.present(name, *old)
        message.delete(name, *old)
        message.add(name, check_ttl(change.new_ttl), *new)
    return message


def _rdata(rtype, address):
    if rtype_of(address) != rtype:
        raise DnsInputError("an %s record cannot hold %s" % (rtype, address))
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, address)


def group_by_zone(accesses, changes):
    """OrderedDict zone -> (access, [changes]), every change assigned to its (longest) zone."""
    by_zone = dict((a.zone, a) for a in accesses)
    groups = collections.OrderedDict()
    for change in changes:
        zone = change.zone if change.zone in by_zone and in_zone(change.name, change.zone) else \
            zone_of(change.name, list(by_zone))
        if zone is None:
            raise DnsInputError("%s is in none of the zones given (%s)" % (
                record_label(change.name, change.rtype), ", ".join(sorted(by_zone)) or "none"))
        groups.setdefault(zone, (by_zone[zone], []))[1].append(change._replace(zone=zone))
    return groups


def apply_changes(access, changes, check=False):
    """Send the changes, one atomic update per zone; with check=True build the updates, send nothing.

    Returns {"changes": [...], "zones": [{"zone", "server", "records", "sent", "rcode"}]}. A failed
    prerequisite raises DnsChangeRefused naming the record (found by reading the zone again);
    anything else raises DnsError. Either carries in ``applied`` the changes of zones done before.
    """
    accesses = _as_accesses(access)
    groups = group_by_zone(accesses, changes)
    messages = [(one, zone_changes, build_update(one, zone_changes)) for one, zone_changes in groups.values()]
    applied, zones = [], []
    for one, zone_changes, message in messages:
        entry = dict(zone=one.zone, server=one.server, records=len(zone_changes), sent=False, rcode=None)
        zones.append(entry)
        if check:
            applied.extend(zone_changes)
            continue
        try:
            response = dns.query.tcp(message, one.address(), timeout=one.timeout, port=one.port)
        except DnsError as exc:
            exc.applied = list(applied)
            raise
        except Exception as exc:  # see read_zone
            error = _network_error(one, exc, "updating zone %s" % one.zone)
            error.applied = list(applied)
            raise error
        rcode = dns.rcode.to_text(response.rcode())
        entry.update(sent=True, rcode=rcode)
        if rcode != "NOERROR":
            conflicts = None
            if rcode in ("NXRRSET", "YXRRSET", "NXDOMAIN", "YXDOMAIN"):
                try:
                    conflicts = find_conflicts(zone_changes, read_zone(one)[0])
                except DnsError:
                    conflicts = None
            error = refusal_error(rcode, one, zone_changes, conflicts)
            error.applied = list(applied)
            raise error
        applied.extend(zone_changes)
    return dict(changes=applied, zones=zones)


# ---------------------------------------------------------------------------------------------
# For the modules: options, conversion to and from Ansible data, and the two runs


ZONE_OPTIONS = dict(
    zones=dict(type="list", elements="dict", required=True, options=dict(
        zone=dict(type="str", required=True),
        server=dict(type="str", required=True),
        port=dict(type="int", default=53),
        key_name=dict(type="str", required=True, no_log=False),
        key_algorithm=dict(type="str", default="hmac-sha256", choices=list(KEY_ALGORITHMS), no_log=False),
    )),
    key_secret=dict(type="str", no_log=True),
    timeout=dict(type="int", default=DEFAULT_TIMEOUT),
)

# A change as RV(changes) returns it: what O(restore) and O(expect) take.
_CHANGE_OPTIONS = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", required=True, choices=list(RTYPES), aliases=["rtype"]),
    zone=dict(type="str"),
    old_ttl=dict(type="int", required=True),
    old_addresses=dict(type="list", elements="str", required=True),
    new_ttl=dict(type="int", required=True),
    new_addresses=dict(type="list", elements="str", required=True),
)

RECORDS_OPTIONS = dict(
    addresses=dict(type="dict"),
    ttl=dict(type="int"),
    names=dict(type="list", elements="str", default=[]),
    restore=dict(type="list", elements="dict", options=copy.deepcopy(_CHANGE_OPTIONS)),
    expect=dict(type="list", elements="dict", options=copy.deepcopy(_CHANGE_OPTIONS)),
)

RECORDS_MODULE_KWARGS = dict(
    supports_check_mode=True,
    mutually_exclusive=[["restore", "addresses"], ["restore", "ttl"], ["restore", "expect"]],
    required_one_of=[["addresses", "restore"]],
)

INFO_OPTIONS = dict(
    addresses=dict(type="list", elements="str", required=True),
    names=dict(type="list", elements="str", default=[]),
)


def argument_spec(kind, env_fallback):
    """The argument spec of module ``kind`` ('records' or 'info'); key_secret falls back to the
    environment variable HOSTING_DNS_KEY_SECRET through Ansible's ``env_fallback``."""
    spec = copy.deepcopy(ZONE_OPTIONS)
    spec["key_secret"]["fallback"] = (env_fallback, [KEY_SECRET_ENV])
    spec.update(copy.deepcopy(RECORDS_OPTIONS if kind == "records" else INFO_OPTIONS))
    return spec


def accesses_from_params(params):
    zones = params.get("zones") or []
    if not zones:
        raise DnsInputError("no zones given")
    secret = params.get("key_secret") or os.environ.get(KEY_SECRET_ENV)
    return _as_accesses([
        ZoneAccess(z["zone"], z["server"], z.get("port") or 53, z.get("key_name"), z.get("key_algorithm"),
                   secret, params.get("timeout") or DEFAULT_TIMEOUT) for z in zones])


def record_to_dict(record):
    return dict(name=record.name, type=record.rtype, zone=record.zone, ttl=record.ttl,
                addresses=list(record.addresses))


def change_to_dict(change):
    return dict(name=change.name, type=change.rtype, zone=change.zone,
                old_ttl=change.old_ttl, old_addresses=list(change.old_addresses),
                new_ttl=change.new_ttl, new_addresses=list(change.new_addresses))


def changes_to_dicts(changes):
    return [change_to_dict(c) for c in changes]


def change_from_dict(data):
    """A Change from a dict returned earlier by dns_records (``type`` or ``rtype``), checked."""
    try:
        rtype = str(data.get("type") or data.get("rtype") or "").upper()
        name = normalize_name(data["name"])
        label = record_label(name, rtype)
        if rtype not in RTYPES:
            raise DnsInputError("%s: type must be A or AAAA" % label)
        old, new = sort_addresses(data["old_addresses"]), sort_addresses(data["new_addresses"])
        for address in old + new:
            if rtype_of(address) != rtype:
                raise DnsInputError("%s: an %s record cannot hold %s" % (label, rtype, address))
        if not old or not new:
            raise DnsInputError("%s: old_addresses and new_addresses must not be empty" % label)
        zone = normalize_name(data["zone"]) if data.get("zone") else None
        return Change(name, rtype, check_ttl(data["old_ttl"]), old, check_ttl(data["new_ttl"]), new, zone)
    except (KeyError, TypeError, AttributeError) as exc:
        raise DnsInputError("a change to restore must have name, type, old_ttl, old_addresses, new_ttl and "
                            "new_addresses (%s: %s)" % (exc.__class__.__name__, exc))


def _record_text(name, rtype, ttl, addresses):
    return "".join("%s. %s IN %s %s\n" % (name, ttl, rtype, a) for a in addresses)


def diff_of(changes):
    """Ansible diffs, one per record: before and after in zone-file lines."""
    return [dict(before_header=record_label(c.name, c.rtype), after_header=record_label(c.name, c.rtype),
                 before=_record_text(c.name, c.rtype, c.old_ttl, c.old_addresses),
                 after=_record_text(c.name, c.rtype, c.new_ttl, c.new_addresses)) for c in changes]


def run_records(params, check_mode=False, diff=False):
    """What hosting.migration.dns_records does; returns its result (raises DnsError)."""
    accesses = accesses_from_params(params)
    names = [normalize_name(n) for n in params.get("names") or []]
    restore = params.get("restore")
    if restore is not None:
        recorded = [change_from_dict(c) for c in restore]
        if names:
            recorded = [c for c in recorded if c.name in names]
        zones = group_by_zone(accesses, recorded)
        current = []
        for one, _changes in zones.values():
            current.extend(read_zone(one)[0])
        changes = plan_restore(current, recorded)
    else:
        mapping = normalize_mapping(params.get("addresses") or {})
        if not mapping:
            raise DnsInputError("addresses is empty: give the addresses whose records are changed")
        ttl = params.get("ttl")
        if ttl is not None:
            check_ttl(ttl)
        current = records_pointing_at(accesses, list(mapping), names or None)
        changes = plan_changes(current, Desired(mapping, ttl))
        if params.get("expect"):
            check_left_as_recorded(changes, [change_from_dict(c) for c in params["expect"]])
    result = apply_changes(accesses, changes, check=check_mode)
    out = dict(changed=bool(changes), changes=changes_to_dicts(result["changes"]), zones=result["zones"],
               wait_seconds=max([c.old_ttl for c in changes] or [0]))
    if diff:
        out["diff"] = diff_of(changes)
    return out


def run_records_info(params):
    """What hosting.migration.dns_records_info returns (raises DnsError)."""
    accesses = accesses_from_params(params)
    addresses = sort_addresses(params.get("addresses") or [])
    if not addresses:
        raise DnsInputError("addresses is empty: give the addresses whose records are wanted")
    names = [normalize_name(n) for n in params.get("names") or []]
    records, zones = [], []
    for one in accesses:
        zone_records, serial = read_zone(one)
        records.extend(filter_records(zone_records, addresses, names or None))
        zones.append(dict(zone=one.zone, server=one.server, serial=serial))
    found = set(r.name for r in records)
    return dict(changed=False, records=[record_to_dict(r) for r in records], zones=zones,
                max_ttl=max([r.ttl for r in records] or [0]),
                unmatched_names=[n for n in names if n not in found])
