# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database checksums, users and grants: the SQL built, the client output parsed, comparisons.

Fakes stand in for the database clients; the SQL itself runs against real MariaDB 10.11 and 11.8
and PostgreSQL 15 and 17 in the lab's Molecule scenario."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import binascii
import hashlib
import hmac
import json
import re

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import db_checksum as dbc

NATIVE_HASH = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
SCRAM_HASH = ("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$1T8zr2bOo+0CeVdKfh0XbgchhwuNnpyJYDnVLwRzTIA="
              ":jBKH8Kp0+5q+N1KxvmAH7ZKQA6SOXtGJx/n/oyGXZ68=")


def hx(text):
    return binascii.hexlify(text.encode("utf-8")).decode("ascii")


class FakeClient(object):
    """Answers each call with the first canned output whose marker is in the SQL."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, stdin=None):
        self.calls.append((list(argv), stdin))
        for marker, output in self.answers:
            if marker in stdin:
                return output
        raise AssertionError("unexpected SQL: %s" % stdin)


# --- quoting -----------------------------------------------------------------------------------

def test_identifiers_are_quoted_with_their_quote_doubled():
    assert dbc.mariadb_identifier("a`b") == "`a``b`"
    assert dbc.mariadb_identifier('"x"') == '`"x"`'
    assert dbc.postgresql_identifier('"x"') == '"""x"""'
    assert dbc.postgresql_identifier("a`b") == '"a`b"'


def test_literals_are_hex_so_nothing_inside_needs_quoting():
    assert dbc.mariadb_literal("it's\\") == "X'697427735c'"
    assert dbc.postgresql_literal("o'k") == "convert_from(decode('6f276b', 'hex'), 'UTF8')"
    assert dbc.mariadb_string("o'k\\") == "'o''k\\\\'"


def test_mariadb_checksum_query_quotes_odd_table_and_column_names():
    sql = dbc.mariadb_checksum_query("alice_app", "a`b", ['"x"', "y`z", "c d"], index=4)

    assert sql.startswith("SELECT 4, COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(MD5(")
    assert sql.endswith(" FROM `alice_app`.`a``b`;\n")
    for column in ('`"x"`', "`y``z`", "`c d`"):
        assert "CAST(%s AS BINARY)" % column in sql
        assert "COALESCE(LENGTH(CAST(%s AS BINARY)), -1)" % column in sql


def test_postgresql_checksum_query_quotes_odd_schema_table_and_column_names():
    sql = dbc.postgresql_checksum_query('Odd "s".x', 'a"b', ['"x"', "c d"], index=2)

    assert sql == ("SELECT 2, count(*), coalesce(sum(('x' || left(md5(ROW(t.\"\"\"x\"\"\", t.\"c d\")::text), 16))"
                   "::bit(64)::bigint), 0) FROM \"Odd \"\"s\"\".x\".\"a\"\"b\" AS t;\n")


def test_a_postgresql_table_without_columns_still_has_a_row_expression():
    assert dbc.postgresql_row_expression([]) == "ROW()::text"


def test_psql_gets_odd_database_names_as_a_connection_string():
    assert dbc._psql_target("alice_app") == "alice_app"
    assert dbc._psql_target("a=b c'd") == "dbname='a=b c\\'d'"


# --- what the MariaDB row expression computes -------------------------------------------------

def evaluate_mariadb_row(expression, row):
    """Evaluate mariadb_row_expression's SQL for one row (dict column -> bytes or None) with
    Python stand-ins that follow MariaDB: CONCAT_WS skips NULL, LENGTH(NULL) is NULL..."""
    def concat_ws(separator, *values):
        return separator.join(value for value in values if value is not None)

    def length(value):
        return None if value is None else str(len(value)).encode("ascii")

    def coalesce(*values):
        return next(value for value in values if value is not None)

    def md5(value):
        return hashlib.md5(value).hexdigest()

    python = re.sub(r"CAST\(`((?:[^`]|``)*)` AS BINARY\)",
                    lambda match: "row[%r]" % match.group(1).replace("``", "`"), expression)
    python = (python.replace("CONCAT_WS(", "concat_ws(").replace("COALESCE(", "coalesce(")
              .replace("LENGTH(", "length(").replace("MD5(", "md5(").replace("0x1f", "b'\\x1f'")
              .replace("','", "b','").replace("-1)", "b'-1')"))
    return eval(python, {"concat_ws": concat_ws, "length": length, "coalesce": coalesce, "md5": md5,  # noqa: S307
                         "row": row})


@pytest.mark.parametrize("one, other", [
    ({"a": b"1", "b": b""}, {"a": b"1", "b": None}),          # NULL is not ''
    ({"a": None, "b": b"x"}, {"a": b"x", "b": None}),          # nor does it move
    ({"a": b"a\x1f", "b": b"b"}, {"a": b"a", "b": b"\x1fb"}),  # the separator inside a value
    ({"a": b"-1", "b": b""}, {"a": None, "b": b""}),
])
def test_mariadb_rows_that_differ_hash_differently(one, other):
    expression = dbc.mariadb_row_expression(["a", "b"])

    assert evaluate_mariadb_row(expression, one) != evaluate_mariadb_row(expression, other)


def test_mariadb_equal_rows_hash_equally():
    expression = dbc.mariadb_row_expression(["a`b", "c"])

    assert evaluate_mariadb_row(expression, {"a`b": b"x", "c": None}) == \
        evaluate_mariadb_row(expression, {"a`b": b"x", "c": None})


# --- MariaDB tables ----------------------------------------------------------------------------

MARIADB_LISTING = "".join([
    "schema\t1\n",
    "column\t%s\t2\t%s\t%s\tYES\n" % (hx("a`b"), hx("y`z"), hx("double")),
    "column\t%s\t1\t%s\t%s\tNO\n" % (hx("a`b"), hx('"x"'), hx("int(11)")),
    "column\t%s\t1\t%s\t%s\tNO\n" % (hx("items"), hx("id"), hx("int(11)")),
    "column\t%s\t2\t%s\t%s\tYES\n" % (hx("items"), hx("payload"), hx("varchar(64)")),
])


def test_mariadb_table_checksums_parse_and_use_the_columns_in_ordinal_order():
    client = FakeClient([
        ("information_schema.COLUMNS", MARIADB_LISTING),
        ("COALESCE(SUM(", "0\t2\t20959688154538319448\n1\t3\t16607802181363283623\n"),
    ])

    tables = dbc.mariadb_table_checksums(client, "alice_app")

    assert tables == {
        "a`b": {"rows": 2, "checksum": "20959688154538319448",
                "columns": hashlib.sha256(b'[["\\"x\\"","int(11)","NO"],["y`z","double","YES"]]').hexdigest()},
        "items": {"rows": 3, "checksum": "16607802181363283623", "columns": tables["items"]["columns"]},
    }
    (argv, listing), (_argv, checksums) = client.calls
    assert argv == ["mariadb", "--batch", "--skip-column-names"]
    assert listing.startswith(dbc.MARIADB_SESSION)
    assert "SCHEMA_NAME = X'%s'" % hx("alice_app") in listing
    assert "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;" in checksums
    assert checksums.index('CAST(`"x"` AS BINARY)') < checksums.index("CAST(`y``z` AS BINARY)")
    assert "FROM `alice_app`.`a``b`;" in checksums
    assert "SET SESSION time_zone = '+00:00';" in checksums


def test_mariadb_missing_database_is_none_and_an_empty_one_has_no_tables():
    assert dbc.mariadb_table_checksums(FakeClient([("SCHEMATA", "schema\t0\n")]), "gone") is None
    client = FakeClient([("SCHEMATA", "schema\t1\n")])
    assert dbc.mariadb_table_checksums(client, "empty") == {}
    assert len(client.calls) == 1


@pytest.mark.parametrize("listing, checksums", [
    ("nonsense\n", ""),
    ("column\tzz\t1\t00\t00\tNO\n", ""),
    ("", ""),
    (MARIADB_LISTING, "0\t2\t5\n"),  # one table without an answer
    (MARIADB_LISTING, "0\t2\t5\n1\t3\n"),
    (MARIADB_LISTING, "0\t2\t5\n7\t3\t1\n"),
    (MARIADB_LISTING, "0\t2\tx\n1\t3\t1\n"),
])
def test_unexpected_client_output_is_an_error(listing, checksums):
    client = FakeClient([("information_schema.COLUMNS", listing), ("COALESCE(SUM(", checksums)])

    with pytest.raises(dbc.ChecksumError):
        dbc.mariadb_table_checksums(client, "alice_app")


def test_batch_escapes_are_undone():
    assert dbc.unescape_batch("a\\tb\\\\_c\\nd\\0") == "a\tb\\_c\nd\0"
    assert dbc.unescape_batch("plain") == "plain"


# --- PostgreSQL tables -------------------------------------------------------------------------

def postgresql_client(checksums="0|2|-403795846374338830\n1|3|-4655030819260049097\n2|2|-9677846896789447454\n"):
    return FakeClient([
        ("SELECT count(*) FROM pg_database WHERE datname = convert_from", "1\n"),
        ("'column'", "".join([
            "schema|1\n",
            "column|%s|%s|1|%s|%s|NO\n" % (hx("public"), hx("items"), hx("id"), hx("integer")),
            "column|%s|%s|2|%s|%s|YES\n" % (hx("public"), hx("items"), hx("payload"), hx("character varying(64)")),
            "column|%s|%s|0|||YES\n" % (hx("public"), hx("nocols")),
            "column|%s|%s|1|%s|%s|YES\n" % (hx('Odd "s".x'), hx('a"b'), hx('"x"'), hx("integer")),
        ])),
        ("coalesce(sum(", checksums),
    ])


def test_postgresql_table_checksums_cover_all_schemas_and_tables_without_columns():
    client = postgresql_client()

    tables = dbc.postgresql_table_checksums(client, "alice_app")

    assert sorted(tables) == ['"Odd ""s"".x"."a""b"', "public.items", "public.nocols"]
    assert tables["public.items"]["rows"] == 3
    assert tables["public.items"]["checksum"] == "-4655030819260049097"
    assert tables["public.nocols"] == {"rows": 2, "checksum": "-9677846896789447454",
                                       "columns": hashlib.sha256(b"[]").hexdigest()}
    exists, listing, checksums = client.calls
    assert exists[0][:5] == ["runuser", "-u", "postgres", "--", "psql"]
    assert exists[0][-2:] == ["-d", "postgres"]
    assert listing[0][-2:] == ["-d", "alice_app"]
    assert "SET TimeZone = 'UTC';" in listing[1] and "SET lc_monetary = 'C';" in listing[1]
    assert "c.relkind = 'r'" in listing[1] and "deptype = 'e'" in listing[1]
    assert "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;" in checksums[1]
    assert "ROW()::text" in checksums[1]
    assert 'FROM "Odd ""s"".x"."a""b" AS t' in checksums[1]


def test_postgresql_missing_database_is_none():
    client = FakeClient([("FROM pg_database WHERE datname", "0\n")])

    assert dbc.postgresql_table_checksums(client, "gone") is None
    assert len(client.calls) == 1


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError):
        dbc.table_checksums(FakeClient([]), "oracle", "x")
    with pytest.raises(ValueError):
        dbc.database_users(FakeClient([]), "oracle", "x")


# --- MariaDB users -----------------------------------------------------------------------------

def mariadb_user_rows(*accounts):
    return "".join("user\t%s\t%s\t%s\t%s\t\tfalse\n" % (hx(user), hx(host), hx(plugin), hx(auth))
                   for user, host, plugin, auth in accounts)


MARIADB_GRANTS = "".join([
    "grants\t0\n",
    "GRANT USAGE ON *.* TO `alice_app`@`localhost` IDENTIFIED BY PASSWORD '%s'\n" % NATIVE_HASH,
    "GRANT ALL PRIVILEGES ON `alice_app`.* TO `alice_app`@`localhost`\n",
    "grants\t1\n",
    "GRANT USAGE ON *.* TO `alice_ro`@`%` IDENTIFIED VIA ed25519 USING 'abc''d' OR unix_socket WITH MAX_QUERIES_PER_HOUR 5\n",
    "GRANT SELECT, INSERT ON `alice\\\\_app`.* TO `alice_ro`@`%`\n",
    "GRANT UPDATE (`payload`), SELECT (`payload`, `id`) ON `alice_app`.`items` TO `alice_ro`@`%` WITH GRANT OPTION\n",
])


def test_mariadb_users_hide_the_hash_and_normalise_the_grants():
    client = FakeClient([
        ("mysql.global_priv", mariadb_user_rows(("alice_ro", "%", "ed25519", "abc'd"),
                                                ("alice_app", "localhost", "mysql_native_password", NATIVE_HASH))),
        ("SHOW GRANTS", MARIADB_GRANTS),
    ])

    users = dbc.database_users(client, "mariadb", "alice_app", names=["alice_app", "alice_gone"])

    assert users == {
        "alice_app@localhost": {
            "exists": True, "auth_method": "mysql_native_password",
            "auth_sha256": hashlib.sha256(NATIVE_HASH.encode()).hexdigest(), "attributes": [],
            "grants": ["GRANT ALL PRIVILEGES ON `alice_app`.* TO `alice_app`@`localhost`",
                       "GRANT USAGE ON *.* TO `alice_app`@`localhost`"],
        },
        "alice_ro@%": {
            "exists": True, "auth_method": "ed25519", "auth_sha256": hashlib.sha256(b"abc'd").hexdigest(),
            "attributes": [],
            "grants": ["GRANT INSERT, SELECT ON `alice\\_app`.* TO `alice_ro`@`%`",
                       "GRANT SELECT (`id`, `payload`), UPDATE (`payload`) ON `alice_app`.`items` TO `alice_ro`@`%` "
                       "WITH GRANT OPTION",
                       "GRANT USAGE ON *.* TO `alice_ro`@`%` WITH MAX_QUERIES_PER_HOUR 5"],
        },
        "alice_gone": {"exists": False, "auth_method": None, "auth_sha256": None, "attributes": [], "grants": []},
    }
    assert NATIVE_HASH not in json.dumps(users)
    users_sql, grants_sql = client.calls[0][1], client.calls[1][1]
    assert "Db IN (X'%s', X'%s')" % (hx("alice\\_app"), hx("alice_app")) in users_sql
    assert "OR g.User IN (X'%s', X'%s')" % (hx("alice_app"), hx("alice_gone")) in users_sql
    assert "SHOW GRANTS FOR 'alice_app'@'localhost';" in grants_sql
    assert "SHOW GRANTS FOR 'alice_ro'@'%';" in grants_sql


def test_with_a_key_the_auth_digest_is_an_hmac():
    client = FakeClient([
        ("mysql.global_priv", mariadb_user_rows(("alice_app", "localhost", "mysql_native_password", NATIVE_HASH))),
        ("SHOW GRANTS", "grants\t0\nGRANT USAGE ON *.* TO `alice_app`@`localhost`\n"),
    ])

    users = dbc.mariadb_users(client, "alice_app", auth_key="per-move secret")

    assert users["alice_app@localhost"]["auth_sha256"] == hmac.new(
        b"per-move secret", NATIVE_HASH.encode(), hashlib.sha256).hexdigest()


def test_mariadb_database_without_users_asks_no_grants():
    client = FakeClient([("mysql.global_priv", "")])

    assert dbc.mariadb_users(client, "alice_app") == {}
    assert len(client.calls) == 1


@pytest.mark.parametrize("line, expected", [
    ("GRANT USAGE ON *.* TO `u`@`h` IDENTIFIED BY PASSWORD '*ABC'", "GRANT USAGE ON *.* TO `u`@`h`"),
    ("GRANT USAGE ON *.* TO `u`@`h` IDENTIFIED VIA mysql_native_password USING '*ABC' REQUIRE SSL",
     "GRANT USAGE ON *.* TO `u`@`h` REQUIRE SSL"),
    ("GRANT DELETE, SELECT, INSERT ON `d`.`t, u` TO `u`@`h`", "GRANT DELETE, INSERT, SELECT ON `d`.`t, u` TO `u`@`h`"),
    ("GRANT `role` TO `u`@`h`", "GRANT `role` TO `u`@`h`"),
    ("SET DEFAULT ROLE `role` FOR `u`@`h`", "SET DEFAULT ROLE `role` FOR `u`@`h`"),
    ("GRANT SELECT (`b`, `a, c`) ON `d`.`t` TO `u`@`h`", "GRANT SELECT (`a, c`, `b`) ON `d`.`t` TO `u`@`h`"),
])
def test_mariadb_grant_lines_are_normalised(line, expected):
    assert dbc.normalise_mariadb_grant(line) == expected


def test_grant_lines_before_a_marker_are_an_error():
    client = FakeClient([
        ("mysql.global_priv", mariadb_user_rows(("a", "h", "p", "x"))),
        ("SHOW GRANTS", "GRANT USAGE ON *.* TO `a`@`h`\n"),
    ])

    with pytest.raises(dbc.ChecksumError):
        dbc.mariadb_users(client, "alice_app")


# --- PostgreSQL users --------------------------------------------------------------------------

def pg_role(name, password, flags="fttfftf", limit="-1", valid=""):
    null = "t" if password is None else "f"
    return "role|%s|%s|%s|%s|%s|%s\n" % (hx(name), "|".join(flags), limit, hx(valid) if valid else "",
                                         hx(password or ""), null)


def pg_grant(name, line):
    return "|".join(["grant", hx(name)] + [""] * 9 + [hx(line), ""]) + "\n"


def test_postgresql_users_hide_the_hash_and_list_grants():
    output = "".join([
        pg_role("alice_app", SCRAM_HASH),
        pg_role("alice_ro", None, flags="fftfftf", limit="3", valid="2030-01-01 00:00:00+00"),
        pg_grant("alice_app", "OWNER DATABASE"),
        pg_grant("alice_app", "DATABASE: CONNECT, CREATE, TEMPORARY"),
        pg_grant("alice_ro", "TABLE public.items: SELECT, UPDATE"),
        pg_grant("alice_ro", "TABLE public.items: SELECT, UPDATE"),  # PostgreSQL 16+ may repeat memberships
        pg_grant("PUBLIC", "VIEW public.v: SELECT"),
    ])
    client = FakeClient([("pg_authid", output)])

    users = dbc.database_users(client, "postgresql", "alice_app", names=["alice_app", "alice_gone"])

    assert users["alice_app"] == {
        "exists": True, "auth_method": "scram-sha-256", "auth_sha256": hashlib.sha256(SCRAM_HASH.encode()).hexdigest(),
        "attributes": ["NOSUPERUSER", "INHERIT", "CREATEROLE", "NOCREATEDB", "NOLOGIN", "REPLICATION", "NOBYPASSRLS"],
        "grants": ["DATABASE: CONNECT, CREATE, TEMPORARY", "OWNER DATABASE"],
    }
    assert users["alice_ro"]["auth_method"] is None and users["alice_ro"]["auth_sha256"] is None
    assert users["alice_ro"]["attributes"][-2:] == ["CONNECTION LIMIT 3", "VALID UNTIL 2030-01-01 00:00:00+00"]
    assert users["alice_ro"]["grants"] == ["TABLE public.items: SELECT, UPDATE"]
    assert users["PUBLIC"]["grants"] == ["VIEW public.v: SELECT"]
    assert users["alice_gone"]["exists"] is False
    assert SCRAM_HASH not in json.dumps(users)
    sql = client.calls[0][1]
    assert "a.privilege_type <> 'MAINTAIN'" in sql  # PostgreSQL 17's new privilege is left out
    assert "oid >= 16384" in sql
    assert "ARRAY[%s, %s]::text[]" % (dbc.postgresql_literal("alice_app"), dbc.postgresql_literal("alice_gone")) in sql


def test_postgresql_user_listing_with_a_wrong_line_is_an_error():
    with pytest.raises(dbc.ChecksumError):
        dbc.postgresql_users(FakeClient([("pg_authid", "role|6161\n")]), "alice_app")


# --- snapshots and comparing -------------------------------------------------------------------

def mariadb_client(checksum="16607802181363283623", rows=3):
    return FakeClient([
        ("information_schema.COLUMNS", "schema\t1\ncolumn\t%s\t1\t%s\t%s\tNO\n" % (hx("items"), hx("id"), hx("int(11)"))),
        ("COALESCE(SUM(", "0\t%d\t%s\n" % (rows, checksum)),
        ("mysql.global_priv", mariadb_user_rows(("alice_app", "localhost", "mysql_native_password", NATIVE_HASH))),
        ("SHOW GRANTS", "grants\t0\nGRANT ALL PRIVILEGES ON `alice_app`.* TO `alice_app`@`localhost`\n"),
    ])


def test_database_snapshot_digest_is_stable_and_follows_the_data():
    one = dbc.database_snapshot(mariadb_client(), "mariadb", "alice_app", ["alice_app"])
    two = dbc.database_snapshot(mariadb_client(), "mariadb", "alice_app", ["alice_app"])
    changed = dbc.database_snapshot(mariadb_client(checksum="1"), "mariadb", "alice_app", ["alice_app"])

    assert one == two
    assert one["exists"] is True and sorted(one["users"]) == ["alice_app@localhost"]
    assert one["digest"] == dbc.snapshot_digest(one)
    assert changed["digest"] != one["digest"]


def test_a_missing_database_snapshot_says_so():
    snapshot = dbc.database_snapshot(FakeClient([("SCHEMATA", "schema\t0\n")]), "mariadb", "gone", ["gone"])

    assert (snapshot["exists"], snapshot["tables"], snapshot["users"]) == (False, {}, {})


def test_compare_checksums_names_table_and_field():
    source = {"items": {"rows": 3, "checksum": "1", "columns": "c"}, "gone": {"rows": 0, "checksum": "0", "columns": "c"}}
    target = {"items": {"rows": 3, "checksum": "2", "columns": "c"}, "new": {"rows": 1, "checksum": "5", "columns": "c"}}

    assert list(dbc.compare_checksums(source, target)) == [
        {"path": "gone", "field": "presence", "source": True, "target": False},
        {"path": "items", "field": "checksum", "source": "1", "target": "2"},
        {"path": "new", "field": "presence", "source": False, "target": True},
    ]
    assert dbc.compare_checksums(source, source) == []
    limited = dbc.compare_checksums(source, target, limit=1)
    assert (len(limited), limited.total) == (1, 3)


def test_compare_databases_reports_tables_and_only_the_differing_grants():
    source = dbc.database_snapshot(mariadb_client(), "mariadb", "alice_app", ["alice_app"])
    target = json.loads(json.dumps(source))
    target["tables"]["items"]["rows"] = 4
    target["users"]["alice_app@localhost"]["grants"].append("GRANT SELECT ON `x`.* TO `alice_app`@`localhost`")
    target["users"]["alice_app@localhost"]["auth_sha256"] = "0" * 64

    assert list(dbc.compare_databases(source, target)) == [
        {"path": "mariadb:alice_app/tables/items", "field": "rows", "source": 3, "target": 4},
        {"path": "mariadb:alice_app/users/alice_app@localhost", "field": "auth_sha256",
         "source": source["users"]["alice_app@localhost"]["auth_sha256"], "target": "0" * 64},
        {"path": "mariadb:alice_app/users/alice_app@localhost", "field": "grants",
         "source": [], "target": ["GRANT SELECT ON `x`.* TO `alice_app`@`localhost`"]},
    ]
    assert dbc.compare_databases(source, source) == []


def test_compare_users_reports_presence():
    assert list(dbc.compare_users({"a": dbc._missing_user()}, {})) == [
        {"path": "a", "field": "presence", "source": True, "target": False}]
