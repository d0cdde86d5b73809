# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database contents, users and grants as checksums, to prove two copies of a database equal.

Per table a row count and an order-independent checksum, computed by the database server itself
(no row travels to Python), that come out equal for the same data on MariaDB 10.11 and 11.8, and
on PostgreSQL 15 and 17; per user its authentication (as a digest, never the hash itself), its
attributes and its grants, normalised so that the same privileges read the same on both
versions. ``docs/verification.md`` explains the SQL and its limits.

Every statement runs through ``run(argv, stdin=None) -> stdout``: the ``mariadb`` client as root
over the local socket, ``psql`` as the postgres system user. Standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import binascii
import hashlib
import hmac
import json
import re

ENGINES = ("mariadb", "postgresql")

MARIADB_ARGV = ("mariadb", "--batch", "--skip-column-names")
PSQL_ARGV = ("runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1")

# The session is set up the same on every server, so nothing of a server's configuration enters
# the text that is hashed: TIMESTAMP values in UTC, no sql_mode (PAD_CHAR_TO_FULL_LENGTH would
# change CHAR values, ANSI_QUOTES and NO_BACKSLASH_ESCAPES the quoting), no time limit.
MARIADB_SESSION = ("SET SESSION sql_mode = '';\n"
                   "SET SESSION time_zone = '+00:00';\n"
                   "SET SESSION max_statement_time = 0;\n")
# Output formats of every type that depends on a setting: time zone, date and interval style,
# float digits (shortest exact, as PostgreSQL 12 and later print by default), bytea, money.
POSTGRESQL_SESSION = ("SET client_encoding = 'UTF8';\n"
                      "SET TimeZone = 'UTC';\n"
                      "SET DateStyle = 'ISO, YMD';\n"
                      "SET IntervalStyle = 'postgres';\n"
                      "SET extra_float_digits = 1;\n"
                      "SET bytea_output = 'hex';\n"
                      "SET lc_monetary = 'C';\n"
                      "SET statement_timeout = 0;\n")

# User schemas: pg_* are reserved for the system, information_schema is the standard's views.
_PG_USER_SCHEMA = "%s.nspname !~ '^pg_' AND %s.nspname <> 'information_schema'"
# Tables that belong to an extension (PostGIS's spatial_ref_sys...) are the extension's.
_PG_NOT_EXTENSION_MEMBER = ("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
                            "AND d.objid = %s.oid AND d.deptype = 'e')")
# PostgreSQL roles below this OID are built in (the bootstrap superuser, pg_* roles).
_PG_FIRST_NORMAL_OID = 16384


class ChecksumError(Exception):
    """The output of a database client was not what the query produces."""


# --- quoting ---------------------------------------------------------------------------------

def mariadb_identifier(name):
    """A MariaDB identifier: backticks, a backtick inside doubled."""
    return "`%s`" % name.replace("`", "``")


def postgresql_identifier(name):
    """A PostgreSQL identifier: double quotes, a double quote inside doubled."""
    return '"%s"' % name.replace('"', '""')


def _hex(text):
    return binascii.hexlify(text.encode("utf-8")).decode("ascii")


def mariadb_literal(text):
    """A MariaDB string as a hex literal: nothing inside needs quoting, whatever sql_mode says."""
    return "X'%s'" % _hex(text)


def mariadb_string(text):
    """A quoted MariaDB string, for places that take no hex literal (the user of SHOW GRANTS);
    the session runs with an empty sql_mode, so backslashes escape."""
    return "'%s'" % text.replace("\\", "\\\\").replace("'", "''").replace("\0", "\\0")


def postgresql_literal(text):
    """A PostgreSQL text value built from hex: nothing inside needs quoting."""
    return "convert_from(decode('%s', 'hex'), 'UTF8')" % _hex(text)


def _unhex(value):
    try:
        return binascii.unhexlify(value).decode("utf-8", "surrogateescape")
    except (binascii.Error, ValueError, TypeError):
        raise ChecksumError("expected a hex value, got %r" % (value,))


def _integer(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ChecksumError("expected a number, got %r" % (value,))


def _psql_target(database):
    # psql reads a -d value with '=' in it as a connection string: pass such names as one.
    if re.match(r"\A[A-Za-z0-9_]+\Z", database):
        return database
    return "dbname='%s'" % database.replace("\\", "\\\\").replace("'", "\\'")


def _mariadb(run, sql):
    return run(list(MARIADB_ARGV), stdin=MARIADB_SESSION + sql)


def _psql(run, database, sql):
    return run(list(PSQL_ARGV) + ["-d", _psql_target(database)], stdin=POSTGRESQL_SESSION + sql)


_BATCH_ESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "0": "\0", "r": "\r"}


def unescape_batch(value):
    """Undo the escaping of ``mariadb --batch`` output (backslash, tab, newline, NUL)."""
    if "\\" not in value:
        return value
    return re.sub(r"\\(.)", lambda match: _BATCH_ESCAPES.get(match.group(1), "\\" + match.group(1)), value)


def _rows(output, separator="\t"):
    return [line.split(separator) for line in output.splitlines() if line]


def _sha256_json(data):
    text = json.dumps(data, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def auth_digest(auth, key=None):
    """A digest of an authentication string, so it can be compared without being shown: SHA-256,
    or HMAC-SHA-256 with ``key`` (the same key on both servers), which someone who reads the
    result cannot test password guesses against."""
    if auth is None:
        return None
    if key:
        return hmac.new(key.encode("utf-8"), auth.encode("utf-8"), hashlib.sha256).hexdigest()
    return hashlib.sha256(auth.encode("utf-8")).hexdigest()


# --- MariaDB tables --------------------------------------------------------------------------

def mariadb_columns_query(database):
    """Whether the database exists, and the columns of its tables in ordinal order (generated
    columns left out), everything hex-encoded."""
    name = mariadb_literal(database)
    return (
        "SELECT 'schema', COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s;\n"
        "SELECT 'column', HEX(c.TABLE_NAME), c.ORDINAL_POSITION, HEX(c.COLUMN_NAME), HEX(c.COLUMN_TYPE), "
        "c.IS_NULLABLE FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
        "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
        "WHERE c.TABLE_SCHEMA = %s AND t.TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') "
        "AND c.IS_GENERATED = 'NEVER' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION;\n" % (name, name))


def _parse_columns(output):
    """{'exists': bool, 'tables': {table: [(name, type, nullable), ...]}} from the listing."""
    exists = None
    columns = {}
    for row in _rows(output):
        kind = row[0]
        if kind == "schema" and len(row) == 2:
            exists = _integer(row[1]) > 0
        elif kind == "column" and len(row) == 6:
            table, position = _unhex(row[1]), _integer(row[2])
            columns.setdefault(table, []).append((position, _unhex(row[3]), _unhex(row[4]), row[5]))
        else:
            raise ChecksumError("unexpected line in the table listing: %r" % "\t".join(row))
    if exists is None:
        raise ChecksumError("the table listing did not say whether the database exists")
    tables = dict((table, [(name, kind, nullable) for _position, name, kind, nullable in sorted(found)])
                  for table, found in columns.items())
    return {"exists": exists, "tables": tables}


def mariadb_row_expression(columns):
    """One row as an MD5 that tells NULL from '' and cannot be fooled by the separator: the
    values' bytes (CAST AS BINARY: the column's own character set, no conversion) joined with
    0x1f, then the length of each value, -1 for NULL."""
    values = ["CAST(%s AS BINARY)" % mariadb_identifier(name) for name in columns]
    lengths = ["COALESCE(LENGTH(%s), -1)" % value for value in values]
    return "MD5(CONCAT_WS(0x1f, %s, CONCAT_WS(',', %s)))" % (", ".join(values), ", ".join(lengths))


def mariadb_checksum_query(database, table, columns, index=0):
    """Row count and checksum of one table: the sum of the first 64 bits of each row's MD5, as
    an exact DECIMAL (a sum, not an XOR: two equal rows do not cancel out)."""
    return ("SELECT %d, COUNT(*), COALESCE(SUM(CAST(CONV(LEFT(%s, 16), 16, 10) AS UNSIGNED)), 0) FROM %s.%s;\n"
            % (index, mariadb_row_expression(columns), mariadb_identifier(database), mariadb_identifier(table)))


def _parse_checksums(output, names, separator):
    results = {}
    for row in _rows(output, separator):
        if len(row) != 3:
            raise ChecksumError("unexpected line in the checksums: %r" % separator.join(row))
        index = _integer(row[0])
        if not 0 <= index < len(names):
            raise ChecksumError("checksum for an unknown table number %d" % index)
        results[names[index]] = {"rows": _integer(row[1]), "checksum": str(_integer(row[2]))}
    missing = [name for name in names if name not in results]
    if missing:
        raise ChecksumError("no checksum came back for %s" % ", ".join(missing))
    return results


def _with_columns(results, listing):
    for table, columns in listing.items():
        results[table]["columns"] = _sha256_json([list(column) for column in columns])
    return results


def mariadb_table_checksums(run, database):
    """{table: {'rows': n, 'checksum': '...', 'columns': sha256 of names, types, nullability}}
    for every base table of a MariaDB database; {} when the database has no tables, None when it
    does not exist. All tables are read in one consistent snapshot."""
    listing = _parse_columns(_mariadb(run, mariadb_columns_query(database)))
    if not listing["exists"]:
        return None
    names = sorted(listing["tables"])
    if not names:
        return {}
    sql = ["START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY;\n"]
    sql.extend(mariadb_checksum_query(database, name, [column[0] for column in listing["tables"][name]], index)
               for index, name in enumerate(names))
    sql.append("COMMIT;\n")
    results = _parse_checksums(_mariadb(run, "".join(sql)), names, "\t")
    return _with_columns(results, listing["tables"])


# --- PostgreSQL tables -----------------------------------------------------------------------

def postgresql_columns_query(database):
    """The columns of every ordinary table (partitions included, partitioned parents and
    extension members left out) of all user schemas, generated columns left out, hex-encoded.
    Run inside the database; the first line says it is the one asked for."""
    return (
        "SELECT 'schema', count(*) FROM pg_database WHERE datname = %s AND datname = current_database();\n"
        "SELECT 'column', encode(convert_to(n.nspname, 'UTF8'), 'hex'), encode(convert_to(c.relname, 'UTF8'), 'hex'), "
        "coalesce(a.attnum, 0), encode(convert_to(coalesce(a.attname, ''), 'UTF8'), 'hex'), "
        "encode(convert_to(coalesce(format_type(a.atttypid, a.atttypmod), ''), 'UTF8'), 'hex'), "
        "CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "AND a.attgenerated = '' "
        "WHERE c.relkind = 'r' AND %s AND %s ORDER BY 2, 3, 4;\n"
        % (postgresql_literal(database), _PG_USER_SCHEMA % ("n", "n"), _PG_NOT_EXTENSION_MEMBER % "c"))


def postgresql_table_name(schema, table):
    """The key of a table in the results: schema.table, each part in double quotes when it is
    not a plain lower-case name."""
    return "%s.%s" % (_quote_ident(schema), _quote_ident(table))


def _quote_ident(name):
    if re.match(r"\A[a-z_][a-z0-9_]*\Z", name):
        return name
    return postgresql_identifier(name)


def _parse_postgresql_columns(output):
    """{'exists': bool, 'tables': {(schema, table): [(name, type, nullable), ...]}}; a table
    without columns (PostgreSQL allows them) has an empty list."""
    exists = None
    columns = {}
    for row in _rows(output, "|"):
        if row[0] == "schema" and len(row) == 2:
            exists = _integer(row[1]) > 0
        elif row[0] == "column" and len(row) == 7:
            found = columns.setdefault((_unhex(row[1]), _unhex(row[2])), [])
            position = _integer(row[3])
            if position:
                found.append((position, _unhex(row[4]), _unhex(row[5]), row[6]))
        else:
            raise ChecksumError("unexpected line in the table listing: %r" % "|".join(row))
    if exists is None:
        raise ChecksumError("the table listing did not say whether the database exists")
    tables = dict((table, [(name, kind, nullable) for _position, name, kind, nullable in sorted(found)])
                  for table, found in columns.items())
    return {"exists": exists, "tables": tables}


def postgresql_row_expression(columns, alias="t"):
    """One row's text as PostgreSQL prints a record: NULL is nothing, '' is "" and values with
    separators are quoted, so the text tells every row apart."""
    return "ROW(%s)::text" % ", ".join("%s.%s" % (alias, postgresql_identifier(name)) for name in columns)


def postgresql_checksum_query(schema, table, columns, index=0):
    """Row count and checksum of one table: the sum of the first 64 bits of each row's MD5, as
    an exact numeric (the sum of bigints is numeric in PostgreSQL)."""
    return ("SELECT %d, count(*), coalesce(sum(('x' || left(md5(%s), 16))::bit(64)::bigint), 0) FROM %s.%s AS t;\n"
            % (index, postgresql_row_expression(columns), postgresql_identifier(schema), postgresql_identifier(table)))


def postgresql_table_checksums(run, database):
    """{'schema.table': {'rows', 'checksum', 'columns'}} for every table of every user schema of
    a PostgreSQL database (see postgresql_table_name); None when the database does not exist.
    All tables are read in one repeatable-read snapshot."""
    if not postgresql_database_exists(run, database):
        return None
    listing = _parse_postgresql_columns(_psql(run, database, postgresql_columns_query(database)))
    if not listing["exists"]:
        return None
    tables = sorted(listing["tables"], key=lambda pair: postgresql_table_name(*pair))
    if not tables:
        return {}
    sql = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"]
    sql.extend(postgresql_checksum_query(schema, table, [column[0] for column in listing["tables"][(schema, table)]], index)
               for index, (schema, table) in enumerate(tables))
    sql.append("COMMIT;\n")
    keys = [postgresql_table_name(*pair) for pair in tables]
    if len(set(keys)) != len(keys):
        raise ChecksumError("two tables have the same name once quoted")
    results = _parse_checksums(_psql(run, database, "".join(sql)), keys, "|")
    return _with_columns(results, dict((key, listing["tables"][pair]) for key, pair in zip(keys, tables)))


def postgresql_database_exists(run, database):
    output = _psql(run, "postgres", "SELECT count(*) FROM pg_database WHERE datname = %s;\n"
                   % postgresql_literal(database))
    lines = [line for line in output.splitlines() if line.strip()]
    if len(lines) != 1:
        raise ChecksumError("unexpected answer to the database lookup: %r" % output)
    return _integer(lines[0]) > 0


def table_checksums(run, engine, database):
    if engine == "mariadb":
        return mariadb_table_checksums(run, database)
    if engine == "postgresql":
        return postgresql_table_checksums(run, database)
    raise ValueError("unknown engine %r (known: %s)" % (engine, ", ".join(ENGINES)))


# --- MariaDB users ---------------------------------------------------------------------------

def _like_escaped(name):
    # GRANT ... ON `a\_b`.* stores the name with its wildcards escaped.
    return name.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def mariadb_users_query(database, names=()):
    """The accounts (user@host) that hold a grant on the database, or whose user name is in
    ``names``, with their authentication plugin, authentication string and lock."""
    databases = ", ".join(mariadb_literal(value) for value in sorted({database, _like_escaped(database)}))
    granted = " UNION ".join(
        "SELECT User, Host FROM mysql.%s WHERE Db IN (%s)" % (table, databases)
        for table in ("db", "tables_priv", "columns_priv", "procs_priv"))
    named = ""
    if names:
        named = " OR g.User IN (%s)" % ", ".join(mariadb_literal(name) for name in names)
    return (
        "SELECT 'user', HEX(g.User), HEX(g.Host), "
        "HEX(COALESCE(JSON_VALUE(g.Priv, '$.plugin'), '')), "
        "HEX(COALESCE(JSON_VALUE(g.Priv, '$.authentication_string'), '')), "
        "HEX(COALESCE(JSON_EXTRACT(g.Priv, '$.auth_or'), '')), "
        "COALESCE(JSON_VALUE(g.Priv, '$.account_locked'), 'false') "
        "FROM mysql.global_priv g WHERE (g.User, g.Host) IN (%s)%s;\n" % (granted, named))


_GRANT_QUOTED = r"'(?:[^'\\]|''|\\.)*'"
_IDENTIFIED_RE = re.compile(r" IDENTIFIED (?:BY PASSWORD %s|VIA (?:%s|[^'])*?)(?= REQUIRE | WITH |\Z)"
                            % (_GRANT_QUOTED, _GRANT_QUOTED))


def _split_top(text, separator):
    """Split at ``separator`` outside quotes, backticks and parentheses."""
    parts, depth, quote, start, index = [], 0, None, 0, 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == "\\" and quote == "'":
                index += 1
            elif char == quote:
                quote = None
        elif char in "'`\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif depth == 0 and text.startswith(separator, index):
            parts.append(text[start:index])
            index += len(separator)
            start = index
            continue
        index += 1
    parts.append(text[start:])
    return parts


def normalise_mariadb_grant(line):
    """One line of SHOW GRANTS without its authentication (compared on its own, as a digest)
    and with its privileges sorted: the same grant reads the same on every version."""
    line = _IDENTIFIED_RE.sub("", line.strip())
    if not line.startswith("GRANT "):
        return line
    head = _split_top(line[len("GRANT "):], " ON ")
    if len(head) != 2:
        return line
    privileges = sorted(_sorted_columns(privilege.strip()) for privilege in _split_top(head[0], ", "))
    return "GRANT %s ON %s" % (", ".join(privileges), head[1])


def _sorted_columns(privilege):
    # Column privileges, "SELECT (`b`, `a`)": the order of the columns follows a hash table
    # inside the server (10.11 and 11.8 print them differently).
    match = re.match(r"\A([A-Z][A-Z ]*?) \((.*)\)\Z", privilege)
    if not match:
        return privilege
    return "%s (%s)" % (match.group(1), ", ".join(sorted(part.strip() for part in _split_top(match.group(2), ", "))))


def mariadb_grants_query(accounts):
    """SHOW GRANTS for each (user, host), each preceded by a marker line."""
    return "".join("SELECT 'grants', %d;\nSHOW GRANTS FOR %s@%s;\n" % (index, mariadb_string(user), mariadb_string(host))
                   for index, (user, host) in enumerate(accounts))


def _parse_grants(output, count):
    grants = [[] for _index in range(count)]
    current = None
    for line in output.splitlines():
        if not line:
            continue
        marker = re.match(r"\Agrants\t(\d+)\Z", line)
        if marker:
            current = int(marker.group(1))
            if current >= count:
                raise ChecksumError("grants for an unknown account number %d" % current)
            continue
        if current is None:
            raise ChecksumError("grant line before any account: %r" % line)
        grants[current].append(normalise_mariadb_grant(unescape_batch(line)))
    return [sorted(set(lines)) for lines in grants]


def _missing_user():
    return {"exists": False, "auth_method": None, "auth_sha256": None, "attributes": [], "grants": []}


def mariadb_users(run, database, names=(), auth_key=None):
    """{'user@host': {exists, auth_method, auth_sha256, attributes, grants}} for the accounts
    that hold grants on the database and the user names in ``names`` (a name with no account at
    all is reported under the bare name, ``exists: false``)."""
    accounts = []
    for row in _rows(_mariadb(run, mariadb_users_query(database, names))):
        if len(row) != 7 or row[0] != "user":
            raise ChecksumError("unexpected line in the user listing: %r" % "\t".join(row))
        accounts.append((_unhex(row[1]), _unhex(row[2]), _unhex(row[3]), _unhex(row[4]), _unhex(row[5]), row[6]))
    accounts.sort()
    grants = _parse_grants(_mariadb(run, mariadb_grants_query([account[:2] for account in accounts])),
                           len(accounts)) if accounts else []
    users = {}
    for (user, host, plugin, auth, auth_or, locked), lines in zip(accounts, grants):
        material = auth if not auth_or else "%s\n%s" % (auth, auth_or)
        users["%s@%s" % (user, host)] = {
            "exists": True,
            "auth_method": plugin or None,
            "auth_sha256": auth_digest(material, auth_key),
            "attributes": ["ACCOUNT LOCK"] if locked == "true" else [],
            "grants": lines,
        }
    present = set(account[0] for account in accounts)
    for name in names:
        if name not in present:
            users[name] = _missing_user()
    return users


# --- PostgreSQL users ------------------------------------------------------------------------

def postgresql_users_query(names=()):
    """Run inside the database: the roles that own it or anything in its user schemas or hold
    an explicit privilege there, and the roles named; then their grants as lines."""
    named = "ARRAY[%s]::text[]" % ", ".join(postgresql_literal(name) for name in names)
    relations = (
        "SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl, s.nspname FROM pg_class c "
        "JOIN spaces s ON s.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND %s"
        % (_PG_NOT_EXTENSION_MEMBER % "c"))
    kind = ("CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' "
            "WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END")
    relation = "quote_ident(r.nspname) || '.' || quote_ident(r.relname)"
    return (
        "WITH db AS (SELECT oid, datname, datdba, datacl FROM pg_database WHERE datname = current_database()), "
        "spaces AS (SELECT oid, nspname, nspowner, nspacl FROM pg_namespace n WHERE %(user_schema)s), "
        "rels AS (%(relations)s), "
        "candidates AS (SELECT datdba AS role FROM db "
        "UNION SELECT (aclexplode(datacl)).grantee FROM db "
        "UNION SELECT nspowner FROM spaces "
        "UNION SELECT (aclexplode(nspacl)).grantee FROM spaces "
        "UNION SELECT relowner FROM rels "
        "UNION SELECT (aclexplode(relacl)).grantee FROM rels "
        "UNION SELECT oid FROM pg_authid WHERE rolname::text = ANY (%(named)s)), "
        "roles AS (SELECT * FROM pg_authid WHERE oid IN (SELECT role FROM candidates) AND oid >= %(first)d), "
        "grants AS ("
        "SELECT datdba AS role, 'OWNER DATABASE' AS line FROM db "
        "UNION ALL SELECT ro.oid, 'DATABASE: ' || concat_ws(', ', "
        "CASE WHEN has_database_privilege(ro.oid, db.oid, 'CONNECT') THEN 'CONNECT' END, "
        "CASE WHEN has_database_privilege(ro.oid, db.oid, 'CREATE') THEN 'CREATE' END, "
        "CASE WHEN has_database_privilege(ro.oid, db.oid, 'TEMPORARY') THEN 'TEMPORARY' END) FROM roles ro, db "
        "UNION ALL SELECT nspowner, 'OWNER SCHEMA ' || quote_ident(nspname) FROM spaces "
        "UNION ALL SELECT ro.oid, 'SCHEMA ' || quote_ident(s.nspname) || ': ' || concat_ws(', ', "
        "CASE WHEN has_schema_privilege(ro.oid, s.oid, 'CREATE') THEN 'CREATE' END, "
        "CASE WHEN has_schema_privilege(ro.oid, s.oid, 'USAGE') THEN 'USAGE' END) FROM roles ro, spaces s "
        "UNION ALL SELECT r.relowner, 'OWNER ' || %(kind)s || ' ' || %(relation)s FROM rels r "
        "UNION ALL SELECT a.grantee, %(kind)s || ' ' || %(relation)s || ': ' || string_agg(a.privilege_type "
        "|| CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, ', ' ORDER BY a.privilege_type) "
        "FROM rels r, aclexplode(r.relacl) a WHERE a.privilege_type <> 'MAINTAIN' "
        "GROUP BY a.grantee, r.oid, r.relkind, r.nspname, r.relname "
        "UNION ALL SELECT m.member, 'MEMBER OF ' || quote_ident(g.rolname) || CASE WHEN m.admin_option "
        "THEN ' WITH ADMIN OPTION' ELSE '' END FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid) "
        "SELECT 'role', encode(convert_to(rolname, 'UTF8'), 'hex'), rolsuper, rolinherit, rolcreaterole, "
        "rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, "
        "encode(convert_to(coalesce(rolvaliduntil::text, ''), 'UTF8'), 'hex'), "
        "encode(convert_to(coalesce(rolpassword, ''), 'UTF8'), 'hex'), rolpassword IS NULL FROM roles "
        "UNION ALL SELECT 'grant', encode(convert_to(CASE WHEN gr.role = 0 THEN 'PUBLIC' ELSE ro.rolname::text END, "
        "'UTF8'), 'hex'), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
        "encode(convert_to(gr.line, 'UTF8'), 'hex'), NULL "
        "FROM grants gr LEFT JOIN roles ro ON ro.oid = gr.role WHERE gr.role = 0 OR ro.oid IS NOT NULL;\n"
        % {"user_schema": _PG_USER_SCHEMA % ("n", "n"), "relations": relations, "named": named,
           "first": _PG_FIRST_NORMAL_OID, "kind": kind, "relation": relation})


_PG_FLAGS = (("SUPERUSER", "NOSUPERUSER"), ("INHERIT", "NOINHERIT"), ("CREATEROLE", "NOCREATEROLE"),
             ("CREATEDB", "NOCREATEDB"), ("LOGIN", "NOLOGIN"), ("REPLICATION", "NOREPLICATION"),
             ("BYPASSRLS", "NOBYPASSRLS"))


def _pg_auth_method(password):
    if password is None:
        return None
    if password.startswith("SCRAM-SHA-256$"):
        return "scram-sha-256"
    if password.startswith("md5"):
        return "md5"
    return "unknown"


def postgresql_users(run, database, names=(), auth_key=None):
    """{role: {exists, auth_method, auth_sha256, attributes, grants}} for the roles that own or
    are granted something in the database (PUBLIC for explicit grants to everyone) and the roles
    named in ``names``."""
    users = {}
    grants = {}
    for row in _rows(_psql(run, database, postgresql_users_query(names)), "|"):
        if len(row) != 13:
            raise ChecksumError("unexpected line in the role listing: %r" % "|".join(row))
        name = _unhex(row[1])
        if row[0] == "role":
            password = None if row[12] == "t" else _unhex(row[11])
            attributes = [on if flag == "t" else off for (on, off), flag in zip(_PG_FLAGS, row[2:9])]
            if row[9] != "-1":
                attributes.append("CONNECTION LIMIT %d" % _integer(row[9]))
            if row[10]:
                attributes.append("VALID UNTIL %s" % _unhex(row[10]))
            users[name] = {"exists": True, "auth_method": _pg_auth_method(password),
                           "auth_sha256": auth_digest(password, auth_key), "attributes": attributes}
        elif row[0] == "grant":
            grants.setdefault(name, set()).add(_unhex(row[11]))
        else:
            raise ChecksumError("unexpected line in the role listing: %r" % "|".join(row))
    if "PUBLIC" in grants and "PUBLIC" not in users:
        users["PUBLIC"] = {"exists": True, "auth_method": None, "auth_sha256": None, "attributes": []}
    for name, user in users.items():
        user["grants"] = sorted(grants.get(name, ()))
    for name in names:
        if name not in users:
            users[name] = _missing_user()
    return users


def database_users(run, engine, database, names=(), auth_key=None):
    """The users of one database and their authentication digests, attributes and grants."""
    if engine == "mariadb":
        return mariadb_users(run, database, names, auth_key)
    if engine == "postgresql":
        return postgresql_users(run, database, names, auth_key)
    raise ValueError("unknown engine %r (known: %s)" % (engine, ", ".join(ENGINES)))


# --- a database as a whole, and comparing ------------------------------------------------------

def database_snapshot(run, engine, database, names=(), auth_key=None):
    """{engine, name, exists, tables, users, digest} of one database. The digest covers all of
    it, so equal digests on two servers mean equal contents, users and grants."""
    tables = table_checksums(run, engine, database)
    snapshot = {"engine": engine, "name": database, "exists": tables is not None, "tables": tables or {},
                "users": database_users(run, engine, database, names, auth_key) if tables is not None else {}}
    snapshot["digest"] = snapshot_digest(snapshot)
    return snapshot


def snapshot_digest(snapshot):
    """SHA-256 of the canonical JSON (sorted keys, ASCII, no spaces) of a snapshot's
    engine, name, exists, tables and users."""
    return _sha256_json(dict((key, snapshot.get(key)) for key in ("engine", "name", "exists", "tables", "users")))


class Differences(list):
    """The differences found, up to the limit; ``total`` counts all of them."""

    total = 0

    @property
    def truncated(self):
        return self.total > len(self)


def _add(found, limit, path, field, source, target):
    found.total += 1
    if limit is None or len(found) < limit:
        found.append({"path": path, "field": field, "source": source, "target": target})


def _compare_maps(found, limit, prefix, a, b, fields):
    for key in sorted(set(a) | set(b)):
        one, other = a.get(key), b.get(key)
        path = prefix + key
        if one is None or other is None:
            _add(found, limit, path, "presence", one is not None, other is not None)
            continue
        for field in fields:
            left, right = one.get(field), other.get(field)
            if left == right:
                continue
            if field == "grants":
                # Only what differs, not two long lists.
                left = sorted(set(left or ()) - set(right or ()))
                right = sorted(set(right or ()) - set(one.get(field) or ()))
            _add(found, limit, path, field, left, right)


def compare_checksums(a, b, limit=50):
    """Differences between two table maps (source ``a``, target ``b``), by table name:
    ``{path: table, field: presence|rows|checksum|columns, source, target}``."""
    found = Differences()
    _compare_maps(found, limit, "", a or {}, b or {}, ("rows", "checksum", "columns"))
    return found


def compare_users(a, b, limit=50):
    """Differences between two user maps: presence, exists, auth_method, auth_sha256,
    attributes, and the grants only one side has."""
    found = Differences()
    _compare_maps(found, limit, "", a or {}, b or {},
                  ("exists", "auth_method", "auth_sha256", "attributes", "grants"))
    return found


def compare_databases(a, b, limit=50):
    """Differences between two database snapshots; paths are ``<engine>:<name>``, then
    ``/tables/<table>`` or ``/users/<user>``."""
    found = Differences()
    prefix = "%s:%s" % (a.get("engine"), a.get("name"))
    for field in ("engine", "name", "exists"):
        if a.get(field) != b.get(field):
            _add(found, limit, prefix, field, a.get(field), b.get(field))
    _compare_maps(found, limit, prefix + "/tables/", a.get("tables") or {}, b.get("tables") or {},
                  ("rows", "checksum", "columns"))
    _compare_maps(found, limit, prefix + "/users/", a.get("users") or {}, b.get("users") or {},
                  ("exists", "auth_method", "auth_sha256", "attributes", "grants"))
    return found
