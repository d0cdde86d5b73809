# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import base64
import copy
import dataclasses
import hashlib
import hmac
import importlib.util
import os
import pickle
import re

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils import account_spec
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    DEFAULT_MIN_UID,
    MAX_UID,
    RESERVED_NAMES,
    AccountSpec,
    SpecError,
    dump_spec,
    load_spec_dir,
    load_spec_file,
    mariadb_native_hash,
    postgres_scram_hash,
    validate_spec,
)

PATH = "/etc/hosting/accounts/alice.yml"
MARIADB_HASH = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"  # "password"
SALT = bytes(range(16))


def full_spec(name="alice", uid=10001):
    """A valid spec using every field."""
    return {
        "name": name,
        "uid": uid,
        "gid": uid,
        "home": "/srv/%s" % name,
        "sites": [
            {"name": "main", "domains": ["%s.hosted.test" % name, "www.%s.hosted.test" % name],
             "document_root": "www", "php": "8.2"},
            {"name": "static-1", "domains": ["%s.example" % name],
             "document_root": "sites/static/htdocs", "php": "none"},
        ],
        "databases": [
            {"engine": "mariadb", "name": "%s_app" % name,
             "users": [{"name": "%s_app" % name, "password_hash": MARIADB_HASH}]},
            {"engine": "postgresql", "name": "%s_app" % name,
             "users": [{"name": "%s_app" % name,
                        "password_hash": postgres_scram_hash("secret", salt=SALT)}]},
        ],
        "cron": [
            {"schedule": "*/5 * * * *", "command": "php ~/www/cron.php > /dev/null 2>&1"},
            {"schedule": "@daily", "command": "date +\\%F >> ~/cron.log"},
            {"schedule": "0 3 1-15/2 jan,jun mon-fri", "command": "true"},
        ],
        "mailboxes": [{"address": "%s@%s.hosted.test" % (name, name), "maildir": "Maildir"}],
    }


def assert_refused(data, field, path=PATH, **kwargs):
    with pytest.raises(SpecError) as caught:
        validate_spec(data, path, **kwargs)
    error = caught.value
    assert error.field == field
    assert error.path == path
    assert str(error).startswith("%s: field '%s': " % (path, field))
    assert "\n" not in str(error)
    return error


def write(directory, name, data):
    path = directory / ("%s.yml" % name)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


# --- valid specs -----------------------------------------------------------------------------

def test_full_spec_round_trips_through_yaml():
    spec = validate_spec(full_spec(), PATH)
    text = dump_spec(spec)
    assert validate_spec(yaml.safe_load(text), PATH) == spec
    assert validate_spec(spec.to_dict(), PATH) == spec


def test_full_spec_is_normalised_and_immutable():
    data = full_spec()
    data["sites"][0]["domains"][0] = "Alice.Hosted.TEST"
    data["cron"][0]["schedule"] = " */5  *\t* * * "
    spec = validate_spec(data, PATH)
    assert spec.sites[0].domains == ("alice.hosted.test", "www.alice.hosted.test")
    assert spec.cron[0].schedule == "*/5 * * * *"
    assert isinstance(spec.databases[0].users, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.uid = 0


def test_minimal_spec_gets_defaults():
    spec = validate_spec({"name": "alice", "uid": 10001, "gid": 10002, "sites": None}, PATH)
    assert spec == AccountSpec(name="alice", uid=10001, gid=10002, home="/home/alice")
    assert spec.to_dict() == {"name": "alice", "uid": 10001, "gid": 10002, "home": "/home/alice",
                              "sites": [], "databases": [], "cron": [], "mailboxes": []}


def test_dump_has_stable_key_order_and_plain_types():
    spec = validate_spec(full_spec(), PATH)
    text = dump_spec(spec)
    top_keys = [line.split(":")[0] for line in text.splitlines() if re.match(r"[a-z]", line)]
    assert top_keys == ["name", "uid", "gid", "home", "sites", "databases", "cron", "mailboxes"]
    assert "!!python" not in text
    plain = spec.to_dict()
    assert isinstance(plain["sites"][0]["domains"], list)
    assert list(plain["databases"][0]) == ["engine", "name", "users"]


def test_account_name_with_hyphen_owns_underscore_databases():
    data = {"name": "my-shop", "uid": 10001, "gid": 10001,
            "databases": [{"engine": "mariadb", "name": "my_shop_db",
                           "users": [{"name": "my_shop", "password_hash": MARIADB_HASH}]}]}
    assert validate_spec(data, "my-shop.yml").databases[0].name == "my_shop_db"


def test_min_uid_can_be_raised():
    assert_refused(full_spec(), "uid", min_uid=20000)
    assert validate_spec(full_spec(uid=20001), PATH, min_uid=20000).uid == 20001


def test_reserved_names_include_system_accounts():
    for name in ("root", "daemon", "www-data", "mysql", "postgres", "nobody", "bind", "sshd",
                 "_apt", "admin", "hosting"):
        assert name in RESERVED_NAMES
    assert_refused(dict(full_spec(), name="systemd-foo"), "name", path="/x/systemd-foo.yml")


def test_module_loads_as_a_plain_file():
    # lab/bin/accounts.py loads the file without registering it in sys.modules.
    location = importlib.util.spec_from_file_location("account_spec_copy", account_spec.__file__)
    module = importlib.util.module_from_spec(location)
    location.loader.exec_module(module)
    assert module.validate_spec(full_spec(), PATH).name == "alice"


# --- one failing case per rule -----------------------------------------------------------------

def changed(path_in_spec, value):
    """full_spec() with one value replaced; path_in_spec is a tuple of keys and indexes."""
    data = full_spec()
    target = data
    for key in path_in_spec[:-1]:
        target = target[key]
    target[path_in_spec[-1]] = value
    return data


REFUSED = [
    # name
    ("name with slash", changed(("name",), "al/ice"), "name"),
    ("name with semicolon", changed(("name",), "al;ice"), "name"),
    ("name with space", changed(("name",), "al ice"), "name"),
    ("name with newline", changed(("name",), "alice\n"), "name"),
    ("name dot dot", changed(("name",), ".."), "name"),
    ("name upper case", changed(("name",), "Alice"), "name"),
    ("name cyrillic a", changed(("name",), "\u0430lice"), "name"),
    ("name too long", changed(("name",), "a" * 33), "name"),
    ("name starts with digit", changed(("name",), "1alice"), "name"),
    ("name not a string", changed(("name",), 12345), "name"),
    ("file name mismatch", changed(("name",), "bob"), "name"),
    # uid / gid
    ("uid 999", changed(("uid",), 999), "uid"),
    ("uid as string", changed(("uid",), "10001"), "uid"),
    ("uid True", changed(("uid",), True), "uid"),
    ("uid float", changed(("uid",), 10001.0), "uid"),
    ("uid at maximum", changed(("uid",), MAX_UID), "uid"),
    ("gid below minimum", changed(("gid",), DEFAULT_MIN_UID - 1), "gid"),
    # home
    ("home elsewhere", changed(("home",), "/etc"), "home"),
    ("home of another account", changed(("home",), "/home/bob"), "home"),
    # sites
    ("sites not a list", changed(("sites",), {"name": "main"}), "sites"),
    ("bad domain underscore", changed(("sites", 0, "domains", 1), "www_x.alice.test"), "sites[0].domains[1]"),
    ("bad domain leading hyphen", changed(("sites", 0, "domains", 0), "-alice.test"), "sites[0].domains[0]"),
    ("bad domain empty label", changed(("sites", 0, "domains", 0), "alice..test"), "sites[0].domains[0]"),
    ("bad domain too long", changed(("sites", 0, "domains", 0), ("a" * 60 + ".") * 5 + "test"), "sites[0].domains[0]"),
    ("bad domain ip address", changed(("sites", 0, "domains", 0), "192.0.2.1"), "sites[0].domains[0]"),
    ("bad domain unicode", changed(("sites", 0, "domains", 0), "\u0430lice.test"), "sites[0].domains[0]"),
    ("no domains", changed(("sites", 0, "domains"), []), "sites[0].domains"),
    ("domain on two sites", changed(("sites", 1, "domains", 0), "alice.hosted.test"), "sites[1].domains[0]"),
    ("duplicate site name", changed(("sites", 1, "name"), "main"), "sites[1].name"),
    ("site name with dot", changed(("sites", 1, "name"), "a.b"), "sites[1].name"),
    ("document_root parent", changed(("sites", 0, "document_root"), "../x"), "sites[0].document_root"),
    ("document_root absolute", changed(("sites", 0, "document_root"), "/etc"), "sites[0].document_root"),
    ("document_root escapes later", changed(("sites", 0, "document_root"), "www/../../x"), "sites[0].document_root"),
    ("document_root home itself", changed(("sites", 0, "document_root"), "."), "sites[0].document_root"),
    ("document_root double slash", changed(("sites", 0, "document_root"), "www//x"), "sites[0].document_root"),
    ("php as number", changed(("sites", 0, "php"), 8.2), "sites[0].php"),
    ("php not a version", changed(("sites", 0, "php"), "latest"), "sites[0].php"),
    ("site field missing", changed(("sites", 0), {"name": "main", "domains": ["a.test"], "php": "8.2"}),
     "sites[0].document_root"),
    ("site unknown field", changed(("sites", 0, "ssl"), True), "sites[0].ssl"),
    # databases
    ("unknown engine", changed(("databases", 0, "engine"), "mongodb"), "databases[0].engine"),
    ("db name with hyphen", changed(("databases", 0, "name"), "alice-app"), "databases[0].name"),
    ("db name with semicolon", changed(("databases", 0, "name"), "alice;drop"), "databases[0].name"),
    ("db name of another account", changed(("databases", 0, "name"), "bob_app"), "databases[0].name"),
    ("db name too long", changed(("databases", 0, "name"), "alice_" + "x" * 58), "databases[0].name"),
    ("db declared twice", changed(("databases", 1), full_spec()["databases"][0]), "databases[1].name"),
    ("db user of the system", changed(("databases", 0, "users", 0, "name"), "root"), "databases[0].users[0].name"),
    ("db user too long", changed(("databases", 0, "users", 0, "name"), "alice_" + "x" * 27),
     "databases[0].users[0].name"),
    ("clear-text mariadb password", changed(("databases", 0, "users", 0, "password_hash"), "hunter2"),
     "databases[0].users[0].password_hash"),
    ("lower-case mariadb hash", changed(("databases", 0, "users", 0, "password_hash"), MARIADB_HASH.lower()),
     "databases[0].users[0].password_hash"),
    ("clear-text postgres password", changed(("databases", 1, "users", 0, "password_hash"), "hunter2"),
     "databases[1].users[0].password_hash"),
    ("postgres md5 hash", changed(("databases", 1, "users", 0, "password_hash"),
                                  "md5" + hashlib.md5(b"x").hexdigest()), "databases[1].users[0].password_hash"),
    ("mariadb hash for postgres", changed(("databases", 1, "users", 0, "password_hash"), MARIADB_HASH),
     "databases[1].users[0].password_hash"),
    ("scram with short key", changed(("databases", 1, "users", 0, "password_hash"),
                                     "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA"), "databases[1].users[0].password_hash"),
    ("password instead of hash", changed(("databases", 0, "users", 0),
                                         {"name": "alice_app", "password": "hunter2"}),
     "databases[0].users[0].password"),
    # cron
    ("cron command with newline", changed(("cron", 0, "command"), "true\nrm -rf ~"), "cron[0].command"),
    ("cron command with carriage return", changed(("cron", 0, "command"), "true\rx"), "cron[0].command"),
    ("cron command with line separator", changed(("cron", 0, "command"), "true\u2028x"), "cron[0].command"),
    ("cron command with bare percent", changed(("cron", 0, "command"), "date +%F"), "cron[0].command"),
    ("cron command blank", changed(("cron", 0, "command"), "  "), "cron[0].command"),
    ("cron four fields", changed(("cron", 0, "schedule"), "* * * *"), "cron[0].schedule"),
    ("cron minute 60", changed(("cron", 0, "schedule"), "60 * * * *"), "cron[0].schedule"),
    ("cron step 0", changed(("cron", 0, "schedule"), "*/0 * * * *"), "cron[0].schedule"),
    ("cron backwards range", changed(("cron", 0, "schedule"), "5-1 * * * *"), "cron[0].schedule"),
    ("cron unknown name", changed(("cron", 0, "schedule"), "* * * * someday"), "cron[0].schedule"),
    ("cron month name in hour", changed(("cron", 0, "schedule"), "0 jan * * *"), "cron[0].schedule"),
    ("cron unknown special", changed(("cron", 0, "schedule"), "@fortnightly"), "cron[0].schedule"),
    ("cron shell in schedule", changed(("cron", 0, "schedule"), "* * * * * ; rm"), "cron[0].schedule"),
    # mailboxes
    ("mail address without domain", changed(("mailboxes", 0, "address"), "alice"), "mailboxes[0].address"),
    ("mail address bad domain", changed(("mailboxes", 0, "address"), "alice@bad_domain"), "mailboxes[0].address"),
    ("maildir leaves home", changed(("mailboxes", 0, "maildir"), "../Maildir"), "mailboxes[0].maildir"),
    ("maildir in document root", changed(("mailboxes", 0, "maildir"), "www/mail"), "mailboxes[0].maildir"),
    # top level
    ("unknown top-level key", changed(("hostname",), "x"), "hostname"),
    ("uid missing", {"name": "alice", "gid": 10001}, "uid"),
    ("not a mapping", ["alice"], "(file)"),
]


@pytest.mark.parametrize("data,field", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_rule_violation_names_the_field(data, field):
    assert_refused(data, field)


def test_reserved_name_message():
    error = assert_refused(changed(("name",), "root"), "name", path="/etc/hosting/accounts/root.yml")
    assert str(error) == "/etc/hosting/accounts/root.yml: field 'name': 'root' is a reserved system name"
    assert error.reason == "'root' is a reserved system name"


def test_clear_text_password_is_not_repeated_in_the_message():
    error = assert_refused(changed(("databases", 0, "users", 0, "password_hash"), "hunter2"),
                           "databases[0].users[0].password_hash")
    assert "hunter2" not in str(error)


def test_same_db_user_needs_the_same_hash_everywhere():
    data = full_spec()
    data["databases"].append({"engine": "mariadb", "name": "alice_blog",
                              "users": [{"name": "alice_app", "password_hash": MARIADB_HASH}]})
    validate_spec(data, PATH)
    data["databases"][2]["users"][0]["password_hash"] = mariadb_native_hash("other")
    assert_refused(data, "databases[2].users[0].password_hash")


def test_spec_error_is_a_value_error_and_pickles():
    error = SpecError("/x/a.yml", "uid", "999 is below the minimum 10000")
    assert isinstance(error, ValueError)
    copied = pickle.loads(pickle.dumps(error))
    assert (copied.path, copied.field, copied.reason, str(copied)) == (
        error.path, error.field, error.reason, str(error))


# --- files and directories ---------------------------------------------------------------------

def test_load_spec_file(tmp_path):
    path = write(tmp_path, "alice", full_spec())
    assert load_spec_file(str(path)) == validate_spec(full_spec(), PATH)


@pytest.mark.parametrize("text", [
    "name: alice\nuid: [10001\n",
    "name: alice\n  uid: 10001\n",
    "name: alice\nuid: 10001\ngid: 10001\nuid: 10002\n",  # duplicate key
    "- name: alice\n",
    "just text\n",
    "",
], ids=["unclosed", "bad indent", "duplicate key", "list", "scalar", "empty"])
def test_unusable_file_is_refused(tmp_path, text):
    path = str(write(tmp_path, "alice", text))
    with pytest.raises(SpecError) as caught:
        load_spec_file(path)
    assert caught.value.field == "(file)"
    assert str(caught.value).startswith("%s: field '(file)': " % path)
    assert "\n" not in str(caught.value)


def test_missing_and_non_utf8_files_are_refused(tmp_path):
    with pytest.raises(SpecError, match=r"field '\(file\)': cannot be read"):
        load_spec_file(str(tmp_path / "nobody.yml"))
    path = tmp_path / "alice.yml"
    path.write_bytes(b"name: \xff\n")
    with pytest.raises(SpecError, match=r"field '\(file\)': is not UTF-8"):
        load_spec_file(str(path))


def test_load_spec_dir_sorts_by_name_and_ignores_other_files(tmp_path):
    write(tmp_path, "carol", full_spec("carol", 10003))
    write(tmp_path, "alice", full_spec("alice", 10001))
    (tmp_path / "notes.txt").write_text("not a spec")
    (tmp_path / ".bob.yml").write_text("editor backup")
    specs = load_spec_dir(str(tmp_path))
    assert [spec.name for spec in specs] == ["alice", "carol"]
    (tmp_path / "empty").mkdir()
    assert load_spec_dir(str(tmp_path / "empty")) == []


def test_load_spec_dir_of_missing_directory(tmp_path):
    with pytest.raises(SpecError, match=r"field '\(file\)': cannot be listed"):
        load_spec_dir(str(tmp_path / "missing"))


def test_load_spec_dir_reports_a_broken_file(tmp_path):
    write(tmp_path, "alice", full_spec())
    write(tmp_path, "bob", changed(("uid",), 999))
    with pytest.raises(SpecError) as caught:
        load_spec_dir(str(tmp_path))
    assert caught.value.path == str(tmp_path / "bob.yml")
    assert caught.value.field == "name"  # bob.yml holds the spec of alice


def _claimed_twice(tmp_path, change):
    write(tmp_path, "alice", full_spec("alice", 10001))
    bob = full_spec("bob", 10002)
    change(bob)
    write(tmp_path, "bob", bob)
    with pytest.raises(SpecError) as caught:
        load_spec_dir(str(tmp_path))
    assert caught.value.path == str(tmp_path / "bob.yml")
    assert "account 'alice'" in caught.value.reason
    return caught.value.field


def test_duplicate_domain_across_files(tmp_path):
    def change(spec):
        spec["sites"][1]["domains"].append("WWW.alice.hosted.test")
    assert _claimed_twice(tmp_path, change) == "sites[1].domains[1]"


def test_duplicate_uid_across_files(tmp_path):
    def change(spec):
        spec["uid"] = 10001
    assert _claimed_twice(tmp_path, change) == "uid"


def test_duplicate_gid_across_files(tmp_path):
    def change(spec):
        spec["gid"] = 10001
    assert _claimed_twice(tmp_path, change) == "gid"


def _bob_and_bobby(tmp_path, change_bob):
    # Names that share a prefix: 'bobby_app' starts with 'bob', so both accounts may declare it.
    bob = full_spec("bob", 10002)
    change_bob(bob)
    write(tmp_path, "bob", bob)
    write(tmp_path, "bobby", full_spec("bobby", 10003))
    with pytest.raises(SpecError) as caught:
        load_spec_dir(str(tmp_path))
    assert caught.value.path == str(tmp_path / "bobby.yml")
    return caught.value


def test_duplicate_database_across_files(tmp_path):
    def change(spec):
        spec["databases"].append({"engine": "postgresql", "name": "bobby_app"})
    error = _bob_and_bobby(tmp_path, change)
    assert error.field == "databases[1].name"
    assert error.reason == "postgresql database 'bobby_app' is already used by account 'bob'"


def test_duplicate_database_user_across_files(tmp_path):
    def change(spec):
        spec["databases"][0]["users"].append({"name": "bobby_app", "password_hash": MARIADB_HASH})
    error = _bob_and_bobby(tmp_path, change)
    assert error.field == "databases[0].users[0].name"
    assert error.reason == "mariadb user 'bobby_app' is already used by account 'bob'"


def test_duplicate_mail_address_across_files(tmp_path):
    def change(spec):
        spec["mailboxes"].append({"address": "alice@alice.hosted.test", "maildir": "mail/alice"})
    assert _claimed_twice(tmp_path, change) == "mailboxes[1].address"


# --- password hashes ---------------------------------------------------------------------------

def test_mariadb_native_hash_known_vectors():
    assert mariadb_native_hash("password") == "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
    assert mariadb_native_hash("") == "*BE1BDEC0AA74B4DCB079943E70528096CCA985F8"


def _hi(password, salt, iterations):
    """RFC 5802 Hi(), spelled out rather than via hashlib.pbkdf2_hmac."""
    block = hmac.new(password, salt + b"\x00\x00\x00\x01", hashlib.sha256).digest()
    result = bytearray(block)
    for _ in range(iterations - 1):
        block = hmac.new(password, block, hashlib.sha256).digest()
        result = bytearray(a ^ b for a, b in zip(result, block))
    return bytes(result)


def _parse_verifier(verifier):
    match = re.fullmatch(
        r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)", verifier)
    assert match, verifier
    iterations, salt, stored_key, server_key = match.groups()
    return int(iterations), base64.b64decode(salt), base64.b64decode(stored_key), base64.b64decode(server_key)


def test_postgres_scram_hash_structure_and_determinism():
    first = postgres_scram_hash("secret")
    iterations, salt, stored_key, server_key = _parse_verifier(first)
    assert iterations == 4096 and len(salt) == 16 and len(stored_key) == len(server_key) == 32
    assert postgres_scram_hash("secret", salt=salt) == first
    assert postgres_scram_hash("secret") != first  # a fresh random salt
    assert _parse_verifier(postgres_scram_hash("secret", salt=SALT, iterations=10))[0] == 10


def test_postgres_scram_hash_matches_independent_computation():
    verifier = postgres_scram_hash("pencil", salt=SALT, iterations=100)
    iterations, salt, stored_key, server_key = _parse_verifier(verifier)
    salted = _hi(b"pencil", SALT, 100)
    assert (iterations, salt) == (100, SALT)
    assert stored_key == hashlib.sha256(hmac.new(salted, b"Client Key", hashlib.sha256).digest()).digest()
    assert server_key == hmac.new(salted, b"Server Key", hashlib.sha256).digest()


def test_postgres_scram_hash_against_rfc7677_exchange():
    # RFC 7677 section 3: user "user", password "pencil"; a server holding our verifier must
    # accept the client's proof and produce the server signature shown there.
    verifier = postgres_scram_hash("pencil", salt=base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))
    _, _, stored_key, server_key = _parse_verifier(verifier)
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth_message = ("n=user,r=rOprNGfwEbeRWgbNEkqO,r=%s,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=%s"
                    % (nonce, nonce)).encode()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
    assert hashlib.sha256(client_key).digest() == stored_key
    server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(server_signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_postgres_scram_hash_applies_saslprep_like_postgresql():
    def same(first, second):
        return postgres_scram_hash(first, salt=SALT, iterations=1) == postgres_scram_hash(second, salt=SALT, iterations=1)
    assert same("pass\u00a0word", "pass word")  # non-ASCII space becomes a space
    assert same("pass\u00adword", "password")  # soft hyphen is mapped to nothing
    assert same("\u2168", "IX")  # NFKC
    # A prohibited character: PostgreSQL falls back to the password as given.
    expected = _hi("caf\u00e9\u0007".encode(), SALT, 1)
    stored_key = _parse_verifier(postgres_scram_hash("caf\u00e9\u0007", salt=SALT, iterations=1))[2]
    assert stored_key == hashlib.sha256(hmac.new(expected, b"Client Key", hashlib.sha256).digest()).digest()
    assert not same("\u00e9\u2028", "\u00e9 ")


def test_generated_hashes_pass_validation():
    data = full_spec()
    data["databases"][0]["users"][0]["password_hash"] = mariadb_native_hash("s3cret")
    data["databases"][1]["users"][0]["password_hash"] = postgres_scram_hash("s3cret")
    validate_spec(data, PATH)


@pytest.mark.parametrize("kwargs", [{"salt": b""}, {"salt": "text"}, {"iterations": 0}, {"iterations": True}])
def test_postgres_scram_hash_refuses_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        postgres_scram_hash("x", **kwargs)


def test_full_spec_is_not_changed_by_validation():
    data = full_spec()
    before = copy.deepcopy(data)
    validate_spec(data, PATH)
    assert data == before


# --- the documentation -------------------------------------------------------------------------

DOC = os.path.join(os.path.dirname(account_spec.__file__), "..", "..", "docs", "account-spec.md")


def _doc_text():
    with open(DOC, encoding="utf-8") as handle:
        return handle.read()


def test_documented_example_is_valid():
    example = re.search(r"```yaml\n(.*?)```", _doc_text(), re.S).group(1)
    data = yaml.safe_load(example.replace("SCRAM-SHA-256$4096:...$...:...", postgres_scram_hash("x")))
    spec = validate_spec(data, "/etc/hosting/accounts/alice.yml")
    assert [site.name for site in spec.sites] == ["main"]


def test_documented_reserved_names_match_the_code():
    section = _doc_text().split("### Reserved names", 1)[1]
    documented = set(re.findall(r"`([^`]+)`", section)) - {"systemd-"}
    assert documented == set(RESERVED_NAMES)
