"""The provider's DNS: planning, the update message, errors; and, when BIND's named is installed,
the real thing against a named started on 127.0.0.1 by the test."""
import base64
import os
import shutil
import socket
import subprocess
import time

import dns.message
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update
import pytest

from ansible_collections.hosting.migration.plugins.module_utils.dns_zone import (
    Change, Desired, DnsChangeRefused, DnsError, DnsInputError, Record, ZoneAccess, apply_changes,
    build_update, change_from_dict, change_to_dict, diff_of, filter_records, find_conflicts, group_by_zone,
    inverse_changes, normalize_mapping, plan_changes, plan_restore, read_zone, records_pointing_at,
    refusal_error, run_records, run_records_info, check_left_as_recorded)

SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD4, OLD4B, OLD6 = "10.77.0.21", "10.77.0.22", "fd77:7::21"
NEW4, NEW6 = "10.77.0.30", "fd77:7::30"
MOVE = {OLD4: NEW4, OLD4B: NEW4, OLD6: NEW6}


def access(zone="hosted.test", **kwargs):
    args = dict(server="127.0.0.1", port=53, key_name="hosting-migration", key_algorithm="hmac-sha256",
                key_secret=SECRET, timeout=5)
    args.update(kwargs)
    return ZoneAccess(zone, **args)


def rec(name, rtype, ttl, *addresses):
    return Record(name, rtype, ttl, tuple(addresses), "hosted.test")


ZONE = [
    rec("alice.hosted.test", "A", 300, OLD4),
    rec("alice.hosted.test", "AAAA", 300, OLD6),
    rec("www.alice.hosted.test", "A", 300, OLD4, "192.0.2.9"),
    rec("bob.hosted.test", "A", 600, OLD4B),
    rec("other.hosted.test", "A", 300, "192.0.2.50"),
]


# --- planning ---------------------------------------------------------------------------------

def test_move_points_records_at_the_new_addresses_and_keeps_ttl():
    changes = plan_changes(ZONE, Desired(MOVE))
    assert [(c.name, c.rtype) for c in changes] == [
        ("alice.hosted.test", "A"), ("alice.hosted.test", "AAAA"), ("bob.hosted.test", "A"),
        ("www.alice.hosted.test", "A")]
    bob = changes[2]
    assert (bob.old_ttl, bob.old_addresses, bob.new_ttl, bob.new_addresses) == (600, (OLD4B,), 600, (NEW4,))
    assert changes[1].new_addresses == (NEW6,)
    assert all(c.zone == "hosted.test" for c in changes)


def test_other_records_are_not_touched():
    assert "other.hosted.test" not in [c.name for c in plan_changes(ZONE, Desired(MOVE, 60))]


def test_mixed_rrset_keeps_the_addresses_not_moved():
    www = [c for c in plan_changes(ZONE, {"addresses": {OLD4: NEW4}}) if c.name == "www.alice.hosted.test"][0]
    assert www.old_addresses == ("10.77.0.21", "192.0.2.9")
    assert www.new_addresses == ("10.77.0.30", "192.0.2.9")


def test_two_addresses_moved_onto_one_give_one_rdata():
    records = [rec("both.hosted.test", "A", 300, OLD4, OLD4B)]
    assert plan_changes(records, Desired(MOVE))[0].new_addresses == (NEW4,)


def test_ttl_only_keeps_addresses():
    changes = plan_changes(ZONE, Desired({OLD4: None, OLD6: OLD6}, 60))
    assert [(c.name, c.rtype, c.old_ttl, c.new_ttl, c.old_addresses == c.new_addresses) for c in changes] == [
        ("alice.hosted.test", "A", 300, 60, True), ("alice.hosted.test", "AAAA", 300, 60, True),
        ("www.alice.hosted.test", "A", 300, 60, True)]


def test_ipv6_is_normalised_on_both_sides():
    records = [rec("six.hosted.test", "AAAA", 300, "fd77:7::21")]
    changes = plan_changes(records, addresses={"FD77:0007:0:0::21": "fd77:7:0:0:0:0:0:30"})
    assert changes[0].old_addresses == ("fd77:7::21",)
    assert changes[0].new_addresses == ("fd77:7::30",)


def test_names_limit_the_records_case_insensitively():
    found = filter_records(ZONE, [OLD4, OLD6], names=["ALICE.hosted.test."])
    assert [(r.name, r.rtype) for r in found] == [("alice.hosted.test", "A"), ("alice.hosted.test", "AAAA")]


def test_already_moved_records_give_no_change():
    changes = plan_changes(ZONE, Desired(MOVE, 60))
    after = [Record(c.name, c.rtype, c.new_ttl, c.new_addresses, c.zone) for c in changes]
    assert plan_changes(after, Desired(MOVE, 60)) == []
    assert plan_changes(after, Desired({NEW4: NEW4, NEW6: NEW6}, 60)) == []


def test_ttl_already_lowered_gives_no_change():
    assert plan_changes([rec("alice.hosted.test", "A", 60, OLD4)], Desired({OLD4: OLD4}, 60)) == []


def test_inverse_swaps_and_reverses():
    changes = plan_changes(ZONE, Desired(MOVE, 60))
    inverse = inverse_changes(changes)
    assert [c.name for c in inverse] == [c.name for c in reversed(changes)]
    assert inverse[-1] == Change("alice.hosted.test", "A", 60, (NEW4,), 300, (OLD4,), "hosted.test")
    assert inverse_changes(inverse) == changes


def _applied(records, changes):
    """The records after the changes, as the name server would have them."""
    by_key = dict(((r.name, r.rtype), r) for r in records)
    for c in changes:
        by_key[(c.name, c.rtype)] = Record(c.name, c.rtype, c.new_ttl, c.new_addresses, c.zone)
    return list(by_key.values())


def test_restore_composes_lowering_and_move_back_to_the_start():
    lowered = plan_changes(ZONE, Desired({OLD4: None, OLD4B: None, OLD6: None}, 60))
    state1 = _applied(ZONE, lowered)
    moved = plan_changes(state1, Desired(MOVE))
    state2 = _applied(state1, moved)
    restore = plan_restore(state2, lowered + moved)
    assert sorted(_applied(state2, restore)) == sorted(ZONE)
    bob = [c for c in restore if c.name == "bob.hosted.test"][0]
    assert (bob.old_ttl, bob.old_addresses, bob.new_ttl, bob.new_addresses) == (60, (NEW4,), 600, (OLD4B,))
    # restoring from the intermediate state works too, and a restored zone needs nothing
    assert sorted(_applied(state1, plan_restore(state1, lowered + moved))) == sorted(ZONE)
    assert plan_restore(ZONE, lowered + moved) == []


def test_restore_refuses_a_record_changed_behind_our_back():
    moved = plan_changes(ZONE, Desired(MOVE))
    state = _applied(ZONE, moved)
    state = [r._replace(addresses=("198.51.100.7",)) if r.name == "bob.hosted.test" else r for r in state]
    with pytest.raises(DnsChangeRefused) as err:
        plan_restore(state, moved)
    assert "bob.hosted.test A is now 198.51.100.7" in str(err.value)
    assert err.value.records == ["bob.hosted.test A"]


def test_restore_refuses_a_deleted_record():
    moved = plan_changes(ZONE, Desired(MOVE))
    state = [r for r in _applied(ZONE, moved) if r.name != "bob.hosted.test"]
    with pytest.raises(DnsChangeRefused, match="bob.hosted.test A no longer exists"):
        plan_restore(state, moved)


@pytest.mark.parametrize("mapping, message", [
    ({OLD4: NEW6}, "cannot move 10.77.0.21 to fd77:7::30"),
    ({"10.77.0.300": NEW4}, "is not an IPv4 or IPv6 address"),
    ({OLD4: "transit1"}, "is not an IPv4 or IPv6 address"),
    ({OLD4: NEW4, "10.77.0.021": "10.77.0.31"}, "not an IPv4 or IPv6 address|mapped twice"),
])
def test_bad_mappings_are_refused(mapping, message):
    with pytest.raises(DnsInputError, match=message):
        normalize_mapping(mapping)


def test_bad_ttl_and_empty_mapping_are_refused():
    with pytest.raises(DnsInputError, match="TTL -1"):
        plan_changes(ZONE, Desired(MOVE, -1))
    with pytest.raises(DnsInputError, match="no addresses"):
        plan_changes(ZONE, Desired({}, 60))


def test_changes_round_trip_through_module_data():
    for change in plan_changes(ZONE, Desired(MOVE, 60)):
        assert change_from_dict(change_to_dict(change)) == change
    data = dict(change_to_dict(plan_changes(ZONE, Desired(MOVE))[0]), type=None, rtype="a")
    assert change_from_dict(data).rtype == "A"
    with pytest.raises(DnsInputError, match="cannot hold fd77"):
        change_from_dict(dict(data, new_addresses=["fd77::1"]))
    with pytest.raises(DnsInputError, match="must have name"):
        change_from_dict({"name": "x.hosted.test", "type": "A"})


def test_diff_shows_each_record_before_and_after():
    www = [c for c in plan_changes(ZONE, Desired(MOVE, 60)) if c.name == "www.alice.hosted.test"]
    (diff,) = diff_of(www)
    assert diff["before_header"] == "www.alice.hosted.test A"
    assert diff["before"] == ("www.alice.hosted.test. 300 IN A 10.77.0.21\n"
                              "www.alice.hosted.test. 300 IN A 192.0.2.9\n")
    assert diff["after"] == ("www.alice.hosted.test. 60 IN A 10.77.0.30\n"
                             "www.alice.hosted.test. 60 IN A 192.0.2.9\n")


def test_changes_go_to_the_longest_zone():
    accesses = [access("test"), access("hosted.test")]
    changes = [Change("a.hosted.test", "A", 1, (OLD4,), 1, (NEW4,)), Change("b.test", "A", 1, (OLD4,), 1, (NEW4,))]
    groups = group_by_zone(accesses, changes)
    assert [(zone, [c.name for c in cs]) for zone, (a, cs) in groups.items()] == [
        ("hosted.test", ["a.hosted.test"]), ("test", ["b.test"])]
    with pytest.raises(DnsInputError, match="x.example A is in none of the zones"):
        group_by_zone(accesses, [Change("x.example", "A", 1, (OLD4,), 1, (NEW4,))])


# --- zone access and the update message ----------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(key_secret=None), "no TSIG key secret given .*HOSTING_DNS_KEY_SECRET"),
    (dict(key_secret="not base64!"), "not base64"),
    (dict(key_algorithm="hmac-sha3"), "algorithm 'hmac-sha3'"),
    (dict(key_name=""), "no TSIG key name"),
    (dict(port=0), "port 0"),
    (dict(timeout=0), "timeout 0"),
])
def test_bad_zone_access_is_refused(kwargs, message):
    with pytest.raises(DnsInputError, match=message):
        access(**kwargs)


def rrs(section, deleting=None):
    """{(name, type, ttl): sorted addresses} of a message section (dnspython keeps one RR per RRset)."""
    found = {}
    for rrset in section:
        if rrset.deleting == deleting:
            key = (rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rrset.ttl)
            found.setdefault(key, []).extend(r.address for r in rrset)
    return dict((key, sorted(value)) for key, value in found.items())


def test_update_holds_old_rrset_as_prerequisite_and_replaces_it():
    changes = [c for c in plan_changes(ZONE, Desired(MOVE, 60)) if c.name == "www.alice.hosted.test"]
    message = build_update(access(), changes)
    assert isinstance(message, dns.update.UpdateMessage)
    assert message.zone[0].name.to_text() == "hosted.test."
    # "RRset exists (value dependent)": class IN, TTL 0, exactly the rdatas we read
    assert all(r.rdclass == dns.rdataclass.IN for r in message.prerequisite)
    assert rrs(message.prerequisite) == {("www.alice.hosted.test.", "A", 0): ["10.77.0.21", "192.0.2.9"]}
    # delete exactly what we read (class NONE), add the new RRset with the new TTL
    assert rrs(message.update, dns.rdataclass.NONE) == {
        ("www.alice.hosted.test.", "A", 0): ["10.77.0.21", "192.0.2.9"]}
    assert rrs(message.update) == {("www.alice.hosted.test.", "A", 60): ["10.77.0.30", "192.0.2.9"]}
    assert rrs(message.update, dns.rdataclass.ANY) == {}
    # the deletions come before the additions
    classes = [r.deleting for r in message.update]
    assert classes == sorted(classes, key=lambda c: c is None)
    assert message.keyname.to_text() == "hosting-migration."
    assert message.keyalgorithm == dns.tsig.HMAC_SHA256
    # on the wire the message is signed with the key
    wire = dns.message.from_wire(message.to_wire(), keyring={message.keyname: message.keyring})
    assert wire.had_tsig


def test_ttl_only_update_still_requires_the_old_rrset():
    changes = plan_changes(ZONE, Desired({OLD6: None}, 60))
    message = build_update(access(), changes)
    assert rrs(message.prerequisite) == {("alice.hosted.test.", "AAAA", 0): [OLD6]}
    assert rrs(message.update, dns.rdataclass.NONE) == {("alice.hosted.test.", "AAAA", 0): [OLD6]}
    assert rrs(message.update) == {("alice.hosted.test.", "AAAA", 60): [OLD6]}


def test_update_of_one_zone_is_one_message_with_every_record():
    message = build_update(access(), plan_changes(ZONE, Desired(MOVE)))
    assert rrs(message.prerequisite) == {
        ("alice.hosted.test.", "A", 0): [OLD4], ("alice.hosted.test.", "AAAA", 0): [OLD6],
        ("bob.hosted.test.", "A", 0): [OLD4B], ("www.alice.hosted.test.", "A", 0): [OLD4, "192.0.2.9"]}
    assert rrs(message.update) == {
        ("alice.hosted.test.", "A", 300): [NEW4], ("alice.hosted.test.", "AAAA", 300): [NEW6],
        ("bob.hosted.test.", "A", 600): [NEW4], ("www.alice.hosted.test.", "A", 300): [NEW4, "192.0.2.9"]}


def test_update_refuses_records_outside_the_zone():
    with pytest.raises(DnsInputError, match="not in zone hosted.test"):
        build_update(access(), [Change("x.shop.test", "A", 1, (OLD4,), 1, (NEW4,))])


def test_check_mode_sends_nothing():
    changes = plan_changes(ZONE, Desired(MOVE))
    unreachable = access(port=9, timeout=0.01)  # nothing is sent, so nothing fails
    result = apply_changes(unreachable, changes, check=True)
    assert result["changes"] == changes
    assert result["zones"] == [dict(zone="hosted.test", server="127.0.0.1", records=4, sent=False, rcode=None)]


# --- errors ---------------------------------------------------------------------------------------

def test_nxrrset_names_the_record_that_changed():
    changes = plan_changes(ZONE, Desired(MOVE))
    now = [r._replace(addresses=("198.51.100.1",)) if r.name == "bob.hosted.test" else r for r in ZONE]
    error = refusal_error("NXRRSET", access(), changes, find_conflicts(changes, now))
    assert isinstance(error, DnsChangeRefused)
    assert error.records == ["bob.hosted.test A"]
    assert str(error).startswith("zone hosted.test was not changed: bob.hosted.test A is now 198.51.100.1 (TTL 600)")
    assert "Nothing was overwritten" in str(error)


def test_nxrrset_without_a_second_read_names_every_record_of_the_update():
    changes = plan_changes(ZONE, Desired(MOVE))
    error = refusal_error("NXRRSET", access(), changes)
    assert isinstance(error, DnsChangeRefused)
    assert "one of these changed behind our back: alice.hosted.test A, alice.hosted.test AAAA" in str(error)


@pytest.mark.parametrize("rcode", ["YXRRSET", "NXDOMAIN", "YXDOMAIN"])
def test_other_prerequisite_failures_are_refusals(rcode):
    error = refusal_error(rcode, access(), plan_changes(ZONE, Desired(MOVE)))
    assert isinstance(error, DnsChangeRefused) and "(%s)" % rcode in str(error)


@pytest.mark.parametrize("rcode, words", [
    ("NOTAUTH", "not authoritative for zone hosted.test, or did not accept the TSIG key hosting-migration"),
    ("REFUSED", "update-policy { grant hosting-migration zonesub ANY; }"),
    ("NOTZONE", "is not inside zone hosted.test"),
    ("SERVFAIL", "failed to apply"),
    ("BADVERS", "answered BADVERS"),
])
def test_other_rcodes_are_errors_naming_server_and_zone(rcode, words):
    error = refusal_error(rcode, access(), plan_changes(ZONE, Desired(MOVE)))
    assert type(error) is DnsError
    assert words in str(error)
    assert "name server 127.0.0.1 port 53" in str(error)
    assert str(error).endswith("nothing was changed in zone hosted.test")


def test_module_input_is_checked_before_anything_is_read():
    params = dict(zones=[dict(zone="hosted.test", server="127.0.0.1", port=9, key_name="k")], key_secret=SECRET,
                  timeout=1, names=[], restore=None, ttl=None, addresses={OLD4: NEW6})
    with pytest.raises(DnsInputError, match="cannot move"):
        run_records(params)
    with pytest.raises(DnsInputError, match="addresses is empty"):
        run_records(dict(params, addresses={}))
    with pytest.raises(DnsInputError, match="x.example A is in none of the zones"):
        run_records(dict(params, addresses=None, restore=[dict(
            name="x.example", type="A", old_ttl=1, new_ttl=1, old_addresses=[OLD4], new_addresses=[NEW4])]))
    with pytest.raises(DnsInputError, match="zone hosted.test is given more than once"):
        run_records(dict(params, zones=params["zones"] * 2))


def test_unreachable_server_names_server_and_zone():
    with socket.socket() as sock:  # a port that accepts connections and never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen(5)
        silent = access(port=sock.getsockname()[1], timeout=1)
        with pytest.raises(DnsError, match="no answer from name server 127.0.0.1 port %d for zone hosted.test"
                           % silent.port):
            read_zone(silent)
    with pytest.raises(DnsError, match="cannot reach name server 127.0.0.1 port %d for zone hosted.test"
                       % silent.port):
        apply_changes(silent, plan_changes(ZONE, Desired(MOVE)))


# --- against a real BIND named on 127.0.0.1 ----------------------------------------------------

NAMED = shutil.which("named") or ("/usr/sbin/named" if os.path.exists("/usr/sbin/named") else None)

ZONE_FILE = """$ORIGIN {zone}.
$TTL 300
@ IN SOA ns1.{zone}. hostmaster.{zone}. ( 1 3600 600 86400 60 )
@ IN NS ns1.{zone}.
ns1 IN A 127.0.0.1
alice 300 IN A 10.77.0.21
alice 300 IN AAAA fd77:7::21
www.alice 300 IN A 10.77.0.21
www.alice 300 IN A 192.0.2.9
bob 600 IN A 10.77.0.22
other 300 IN A 192.0.2.50
"""

NAMED_CONF = """options {{
  directory "{dir}";
  pid-file "{dir}/named.pid";
  session-keyfile "{dir}/session.key";
  managed-keys-directory "{dir}";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
  allow-transfer {{ none; }};
}};
controls {{ }};
key "hosting-migration" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "hosted.test" {{
  type primary;
  file "{dir}/db.hosted.test";
  update-policy {{ grant hosting-migration zonesub ANY; }};
  allow-transfer {{ key hosting-migration; }};
}};
zone "shop.test" {{
  type primary;
  file "{dir}/db.shop.test";
  update-policy {{ grant hosting-migration zonesub ANY; }};
  allow-transfer {{ key hosting-migration; }};
}};
zone "closed.test" {{
  type primary;
  file "{dir}/db.closed.test";
  update-policy {{ grant hosting-migration zonesub ANY; }};
}};
"""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def named(tmp_path):
    """A named of its own on 127.0.0.1 (a free high port), stopped after the test."""
    if NAMED is None:
        pytest.skip("BIND's named is not installed (apt-get install bind9): no end-to-end DNS test")
    port = _free_port()
    for zone in ("hosted.test", "shop.test", "closed.test"):
        (tmp_path / ("db." + zone)).write_text(ZONE_FILE.format(zone=zone))
    conf = tmp_path / "named.conf"
    conf.write_text(NAMED_CONF.format(dir=tmp_path, port=port, secret=SECRET))
    log = open(tmp_path / "named.log", "w")
    proc = subprocess.Popen([NAMED, "-g", "-n", "1", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                pytest.fail("named exited with %s:\n%s" % (proc.returncode, (tmp_path / "named.log").read_text()))
            try:
                answer = dns.query.tcp(dns.message.make_query("hosted.test.", "SOA"), "127.0.0.1", port=port,
                                       timeout=1)
                if answer.answer:
                    break
            except (OSError, dns.exception.DNSException):
                pass
            if time.monotonic() > deadline:
                pytest.fail("named did not answer within 20 s:\n%s" % (tmp_path / "named.log").read_text())
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def behind_our_back(port, name, text):
    """A change made by someone else (another signed update)."""
    message = dns.update.UpdateMessage("hosted.test.", keyring=access().tsig_key())
    message.add(name + ".", 300, "A", text)
    assert dns.query.tcp(message, "127.0.0.1", port=port, timeout=5).rcode() == 0


def test_named_lower_move_and_restore(named):
    zones = [access("hosted.test", port=named), access("shop.test", port=named)]
    found = records_pointing_at(zones, [OLD4, OLD4B, OLD6])
    assert len(found) == 8 and {r.zone for r in found} == {"hosted.test", "shop.test"}
    lowered = apply_changes(zones, plan_changes(found, Desired({OLD4: None, OLD4B: None, OLD6: None}, 60)))
    assert [z["rcode"] for z in lowered["zones"]] == ["NOERROR", "NOERROR"]
    moved = apply_changes(zones, plan_changes(records_pointing_at(zones, list(MOVE)), Desired(MOVE)))["changes"]
    after = read_zone(zones[0])[0]
    www = [r for r in after if r.name == "www.alice.hosted.test"][0]
    assert (www.ttl, www.addresses) == (60, (NEW4, "192.0.2.9"))
    assert records_pointing_at(zones, list(MOVE)) == []
    # idempotent: nothing left to change
    assert plan_changes(records_pointing_at(zones, list(MOVE)), Desired(MOVE)) == []
    # restore, from what the name server holds now
    current = read_zone(zones[0])[0] + read_zone(zones[1])[0]
    apply_changes(zones, plan_restore(current, lowered["changes"] + moved))
    restored = read_zone(zones[0])[0]
    assert [(r.name, r.rtype, r.ttl, r.addresses) for r in restored] == [
        ("alice.hosted.test", "A", 300, (OLD4,)), ("alice.hosted.test", "AAAA", 300, (OLD6,)),
        ("bob.hosted.test", "A", 600, (OLD4B,)), ("ns1.hosted.test", "A", 300, ("127.0.0.1",)),
        ("other.hosted.test", "A", 300, ("192.0.2.50",)),
        ("www.alice.hosted.test", "A", 300, (OLD4, "192.0.2.9"))]


def test_named_change_behind_our_back_is_not_overwritten(named):
    zone = access(port=named)
    changes = plan_changes(records_pointing_at(zone, list(MOVE)), Desired(MOVE, 60))
    behind_our_back(named, "bob.hosted.test", "198.51.100.7")
    before = read_zone(zone)
    with pytest.raises(DnsChangeRefused) as err:
        apply_changes(zone, changes)
    assert err.value.records == ["bob.hosted.test A"]
    assert "bob.hosted.test A is now 10.77.0.22, 198.51.100.7 (TTL 300), not 10.77.0.22 as we read it" in str(err.value)
    assert read_zone(zone) == before  # nothing of the zone changed, not even the serial


def test_named_modules_runs_check_move_idempotence_restore(named):
    zones = [dict(zone=z, server="127.0.0.1", port=named, key_name="hosting-migration", key_algorithm="hmac-sha256")
             for z in ("hosted.test", "shop.test")]
    params = dict(zones=zones, key_secret=SECRET, timeout=5, names=["Alice.Hosted.Test", "www.alice.hosted.test"],
                  restore=None, ttl=60, addresses={OLD4: NEW4, OLD6: NEW6})
    planned = run_records(params, check_mode=True, diff=True)
    assert planned["changed"] and len(planned["changes"]) == 3 and len(planned["diff"]) == 3
    assert [z["sent"] for z in planned["zones"]] == [False]
    info = run_records_info(dict(params, addresses=[OLD4, OLD6]))
    assert info["max_ttl"] == 300 and len(info["records"]) == 3 and info["unmatched_names"] == []
    done = run_records(params)
    assert done["changes"] == planned["changes"] and done["wait_seconds"] == 300
    assert run_records(params) == dict(changed=False, changes=[], zones=[], wait_seconds=0)
    assert run_records_info(dict(params, addresses=[NEW4]))["max_ttl"] == 60
    restore = dict(params, addresses=None, ttl=None, restore=done["changes"])
    assert run_records(restore)["changed"]
    assert run_records(restore)["changed"] is False
    assert run_records_info(dict(params, addresses=[OLD4, OLD6]))["records"] == info["records"]


def test_named_refusals_read_as_sentences(named):
    with pytest.raises(DnsError, match=r"refused the zone transfer \(REFUSED\): the zone needs "
                                       r"allow-transfer \{ key hosting-migration; \};"):
        read_zone(access("closed.test", port=named))
    with pytest.raises(DnsError, match="did not accept the TSIG key hosting-migration"):
        read_zone(access(port=named, key_secret=base64.b64encode(b"x" * 32).decode()))
    with pytest.raises(DnsError, match="did not accept the TSIG key other-key"):
        apply_changes(access(port=named, key_name="other-key"), plan_changes(ZONE, Desired(MOVE)))
    with pytest.raises(DnsError, match="not authoritative for zone nowhere.test"):
        apply_changes(access("nowhere.test", port=named),
                      [Change("a.nowhere.test", "A", 300, (OLD4,), 300, (NEW4,))])


def test_a_change_checks_each_record_is_as_the_migration_left_it():
    lowered = plan_changes(ZONE, Desired({OLD4: None, OLD4B: None, OLD6: None}, 60))
    state = _applied(ZONE, lowered)
    # bob's TTL changed by someone else between the two steps
    state = [r._replace(ttl=120) if r.name == "bob.hosted.test" else r for r in state]
    moved = plan_changes(state, Desired(MOVE))
    with pytest.raises(DnsChangeRefused) as err:
        check_left_as_recorded(moved, lowered)
    assert "bob.hosted.test A is" in str(err.value) and "but the migration left it" in str(err.value)
    assert err.value.records == ["bob.hosted.test A"]
    # records as left, and records the migration never touched, pass
    check_left_as_recorded(plan_changes(_applied(ZONE, lowered), Desired(MOVE)), lowered)
    check_left_as_recorded(plan_changes(ZONE, Desired(MOVE)), [])


def test_named_a_record_changed_between_two_steps_stops_the_next(named):
    zones = [dict(zone="hosted.test", server="127.0.0.1", port=named, key_name="hosting-migration",
                  key_algorithm="hmac-sha256")]
    base = dict(zones=zones, key_secret=SECRET, timeout=5, names=["alice.hosted.test"], restore=None, expect=None)
    lowered = run_records(dict(base, ttl=30, addresses={OLD4: OLD4, OLD6: OLD6}))
    assert lowered["changed"]
    # someone else sets another TTL on alice's A record
    other = dns.update.UpdateMessage("hosted.test.", keyring=dns.tsig.Key("hosting-migration.", SECRET, "hmac-sha256."))
    other.replace("alice.hosted.test.", 90, "A", OLD4)
    assert dns.query.tcp(other, "127.0.0.1", port=named, timeout=5).rcode() == 0
    moving = dict(base, ttl=None, addresses={OLD4: NEW4, OLD6: NEW6}, expect=lowered["changes"])
    with pytest.raises(DnsChangeRefused, match=r"alice.hosted.test A is 10.77.0.21 \(TTL 90\), but the migration left it"):
        run_records(moving)
    found = run_records_info(dict(base, addresses=[OLD4, NEW4]))["records"]
    assert [(r["ttl"], r["addresses"]) for r in found if r["type"] == "A"] == [(90, [OLD4])]
    # put back as the migration left it, the move goes through
    other = dns.update.UpdateMessage("hosted.test.", keyring=dns.tsig.Key("hosting-migration.", SECRET, "hmac-sha256."))
    other.replace("alice.hosted.test.", 30, "A", OLD4)
    assert dns.query.tcp(other, "127.0.0.1", port=named, timeout=5).rcode() == 0
    moved = run_records(moving)
    assert moved["changed"]
    restored = run_records(dict(base, addresses=None, ttl=None, restore=lowered["changes"] + moved["changes"]))
    assert restored["changed"] and run_records_info(dict(base, addresses=[NEW4, NEW6]))["records"] == []
