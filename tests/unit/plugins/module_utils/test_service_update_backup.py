# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Service update backup: the dump commands, the manifest and its verification, the comparison of
table checksums before and after."""

from __future__ import (absolute_import, division, print_function)

__metaclass__ = type

import hashlib
import json
import os

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import service_update_backup as sb


def write(directory, name, content):
    path = directory / name
    path.write_bytes(content)
    return path


@pytest.fixture
def backup(tmp_path):
    write(tmp_path, "users.sql", b"CREATE USER 'shop'@'localhost';\n")
    write(tmp_path, "db-shop.sql", b"INSERT INTO orders VALUES (1);\n" * 100)
    manifest = sb.build_manifest(str(tmp_path), ["users.sql", "db-shop.sql"], service="mariadb",
                                 from_version="10.11", databases=["shop"])
    sb.write_manifest(str(tmp_path), manifest)
    return tmp_path


# --- commands ------------------------------------------------------------------------------------

def test_backup_commands_mariadb():
    commands = sb.backup_commands("mariadb", ["wp", "shop"], mariadb_dump="mysqldump")
    assert commands[0] == ("users.sql", ["mysqldump", "--system=users"])
    assert [name for name, _argv in commands[1:]] == ["db-shop.sql", "db-wp.sql"]
    # The dump a move makes: one consistent snapshot, routines, triggers, events, hex BLOBs.
    assert commands[1][1][0] == "mysqldump" and "--single-transaction" in commands[1][1] and commands[1][1][-1] == "shop"


def test_backup_commands_postgresql():
    commands = sb.backup_commands("postgresql", ["shop"])
    assert commands[0] == ("globals.sql", ["runuser", "-u", "postgres", "--", "pg_dumpall", "--globals-only"])
    assert commands[1][1][:5] == ["runuser", "-u", "postgres", "--", "pg_dump"]


def test_backup_commands_unknown_engine():
    with pytest.raises(sb.BackupError, match="unknown engine 'redis'"):
        sb.backup_commands("redis", ["x"])


@pytest.mark.parametrize("database, name", [
    ("shop", "db-shop.sql"),
    ("wp_1.test", "db-wp_1.test.sql"),
    ("odd name", "db-x6f6464206e616d65.sql"),
    ("../etc", "db-x2e2e2f657463.sql"),
    ("x.sql", "db-x782e73716c.sql"),
])
def test_dump_file_name(database, name):
    assert sb.dump_file_name(database) == name


# --- manifest ------------------------------------------------------------------------------------

def test_manifest_records_size_and_sha256(backup):
    manifest = sb.read_manifest(str(backup))
    assert manifest["format"] == sb.FORMAT and manifest["service"] == "mariadb"
    shop = [entry for entry in manifest["files"] if entry["name"] == "db-shop.sql"][0]
    content = (backup / "db-shop.sql").read_bytes()
    assert shop == {"name": "db-shop.sql", "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    assert oct(os.stat(backup / sb.MANIFEST_NAME).st_mode & 0o777) == "0o600"


def test_verify_intact_backup(backup):
    assert sb.verify_backup(str(backup)) == []
    sb.require_intact(str(backup))


def test_verify_tampered_file_same_size(backup):
    content = bytearray((backup / "db-shop.sql").read_bytes())
    content[10] ^= 1
    (backup / "db-shop.sql").write_bytes(bytes(content))
    problems = sb.verify_backup(str(backup))
    assert len(problems) == 1 and problems[0].startswith("db-shop.sql has SHA-256 ")
    with pytest.raises(sb.BackupError, match="does not match its manifest: db-shop.sql has SHA-256"):
        sb.require_intact(str(backup))


def test_verify_truncated_and_missing_files(backup):
    (backup / "db-shop.sql").write_bytes(b"INSERT")
    (backup / "users.sql").unlink()
    problems = sb.verify_backup(str(backup))
    assert problems == ["db-shop.sql has 6 bytes, the manifest says 3100", "users.sql is missing"]


def test_verify_against_a_given_manifest(backup):
    manifest = sb.read_manifest(str(backup))
    manifest["files"][0]["sha256"] = "0" * 64
    assert len(sb.verify_backup(str(backup), manifest)) == 1


def test_no_manifest_is_an_incomplete_backup(tmp_path):
    with pytest.raises(sb.BackupError, match="no readable manifest"):
        sb.verify_backup(str(tmp_path))


def test_manifest_of_another_format_or_version(backup):
    path = backup / sb.MANIFEST_NAME
    data = json.loads(path.read_text())
    path.write_text(json.dumps(dict(data, version=99)))
    with pytest.raises(sb.BackupError, match="manifest version 99"):
        sb.read_manifest(str(backup))
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(sb.BackupError, match="is not a service update backup manifest"):
        sb.read_manifest(str(backup))


def test_manifest_of_a_missing_file(tmp_path):
    with pytest.raises(sb.BackupError, match="cannot be read"):
        sb.build_manifest(str(tmp_path), ["db-gone.sql"])


# --- before and after ----------------------------------------------------------------------------

BEFORE = {
    "shop": {"orders": {"rows": 3, "checksum": "111"}, "customers": {"rows": 2, "checksum": "222"}},
    "wp": {"wp_posts": {"rows": 10, "checksum": "333"}},
}


def test_compare_equal():
    assert sb.compare_contents(BEFORE, json.loads(json.dumps(BEFORE))) == []


def test_compare_names_every_difference():
    after = json.loads(json.dumps(BEFORE))
    after["shop"]["orders"] = {"rows": 2, "checksum": "110"}
    del after["shop"]["customers"]
    after["shop"]["new_table"] = {"rows": 0, "checksum": "0"}
    del after["wp"]
    after["extra"] = {}
    found = sb.compare_contents(BEFORE, after)
    assert found == [
        {"path": "extra", "field": "presence", "before": False, "after": True},
        {"path": "shop/customers", "field": "presence", "before": True, "after": False},
        {"path": "shop/new_table", "field": "presence", "before": False, "after": True},
        {"path": "shop/orders", "field": "rows", "before": 3, "after": 2},
        {"path": "shop/orders", "field": "checksum", "before": "111", "after": "110"},
        {"path": "wp", "field": "presence", "before": True, "after": False},
    ]
    sentences = sb.describe_differences(found)
    assert "extra exists only after the update" in sentences
    assert "wp exists only before the update" in sentences
    assert "shop/orders: rows was 3, is 2" in sentences


def test_compare_has_no_limit():
    before = {"db": dict(("t%03d" % index, {"rows": 1, "checksum": "1"}) for index in range(200))}
    after = {"db": dict(("t%03d" % index, {"rows": 1, "checksum": "2"}) for index in range(200))}
    assert len(sb.compare_contents(before, after)) == 200


def test_compare_columns_too():
    after = json.loads(json.dumps(BEFORE))
    before = json.loads(json.dumps(BEFORE))
    before["wp"]["wp_posts"]["columns"] = "a"
    after["wp"]["wp_posts"]["columns"] = "b"
    assert sb.compare_contents(before, after) == [
        {"path": "wp/wp_posts", "field": "columns", "before": "a", "after": "b"}]
