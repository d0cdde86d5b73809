# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup of a service update and the proof that nothing changed: the dump commands, a
manifest of the dump files (size and SHA-256 of each) and its verification, and the comparison
of per-table row counts and checksums before and after the update.

The dumps are the ones a move makes (``transfer_stream``), the checksums those of
``db_checksum``; this module only adds what an in-place update needs. Standard library only.
"""

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

import json
import os
import re

from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import compare_checksums
from ansible_collections.hosting.migration.plugins.module_utils.manifest import ManifestError, file_sha256
from ansible_collections.hosting.migration.plugins.module_utils.transfer_stream import dump_command

FORMAT = "hosting.migration.service_backup"
VERSION = 1
MANIFEST_NAME = "MANIFEST.json"

# The users, their password hashes and their grants, beside the databases' dumps: an update never
# loses an account's login. MariaDB 10.11 dumps them as CREATE USER/GRANT statements; pg_dumpall
# --globals-only dumps roles and tablespaces.
_GLOBALS = {
    "mariadb": ("users.sql", ["mariadb-dump", "--system=users"]),
    "postgresql": ("globals.sql", ["runuser", "-u", "postgres", "--", "pg_dumpall", "--globals-only"]),
}
_SAFE_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")


class BackupError(Exception):
    """A backup is missing, incomplete or does not match its manifest."""


def dump_file_name(database):
    """The file a database's dump goes to: the name itself when it is a plain name, else its hex
    (database names may hold characters that do not belong in a file name)."""
    if _SAFE_NAME.match(database) and database not in (MANIFEST_NAME,) and not database.endswith(".sql"):
        return "db-%s.sql" % database
    return "db-x%s.sql" % database.encode("utf-8").hex()


def backup_commands(engine, databases, mariadb_dump="mariadb-dump"):
    """[(file name, argv)]: the users and grants first, then one dump per database (written to
    standard output; the caller sends it to the file)."""
    if engine not in _GLOBALS:
        raise BackupError("unknown engine %r (known: %s)" % (engine, ", ".join(sorted(_GLOBALS))))
    name, argv = _GLOBALS[engine]
    argv = list(argv)
    if engine == "mariadb":
        argv[0] = mariadb_dump
    commands = [(name, argv)]
    commands.extend((dump_file_name(database), dump_command(engine, database, mariadb_dump))
                    for database in sorted(databases))
    return commands


def build_manifest(directory, files, **about):
    """The manifest of the dump files in ``directory``: {format, version, files: [{name, size,
    sha256}], ...about} (``about``: service, versions, databases, created, whatever the caller
    records)."""
    entries = []
    for name in sorted(files):
        path = os.path.join(directory, name)
        try:
            size = os.stat(path).st_size
            digest = file_sha256(path)
        except (OSError, ManifestError) as error:
            raise BackupError("The backup file %s cannot be read: %s." % (path, error))
        entries.append({"name": name, "size": size, "sha256": digest})
    manifest = dict(about)
    manifest.update(format=FORMAT, version=VERSION, files=entries)
    return manifest


def write_manifest(directory, manifest):
    """MANIFEST.json in ``directory``, written to a temporary file and renamed: a backup whose
    manifest exists is complete."""
    path = os.path.join(directory, MANIFEST_NAME)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(json.dumps(manifest, ensure_ascii=True, sort_keys=True, indent=1) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def read_manifest(directory):
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        with open(path, "r", encoding="ascii") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise BackupError("The backup in %s has no readable manifest (%s): it is incomplete or not a backup."
                          % (directory, error))
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError("%s is not a service update backup manifest." % path)
    if manifest.get("version") != VERSION:
        raise BackupError("%s has manifest version %r; this reader knows version %d."
                          % (path, manifest.get("version"), VERSION))
    return manifest


def verify_backup(directory, manifest=None):
    """Problems of the backup in ``directory`` against its manifest (read from the directory
    when not given): each file missing, of another size or another SHA-256. [] means intact."""
    manifest = read_manifest(directory) if manifest is None else manifest
    problems = []
    for entry in manifest.get("files") or []:
        path = os.path.join(directory, entry["name"])
        try:
            size = os.stat(path).st_size
        except OSError:
            problems.append("%s is missing" % entry["name"])
            continue
        if size != entry["size"]:
            problems.append("%s has %d bytes, the manifest says %d" % (entry["name"], size, entry["size"]))
            continue
        try:
            digest = file_sha256(path)
        except (OSError, ManifestError) as error:
            problems.append("%s cannot be read: %s" % (entry["name"], error))
            continue
        if digest != entry["sha256"]:
            problems.append("%s has SHA-256 %s, the manifest says %s" % (entry["name"], digest, entry["sha256"]))
    return problems


def require_intact(directory, manifest=None):
    problems = verify_backup(directory, manifest)
    if problems:
        raise BackupError("The backup in %s does not match its manifest: %s." % (directory, "; ".join(problems)))


# --- before and after --------------------------------------------------------------------------

def compare_contents(before, after):
    """Every difference between two {database: {table: {rows, checksum[, columns]}}} maps, as
    {path, field, before, after} with the path ``database`` or ``database/table``."""
    found = []
    for database in sorted(set(before or {}) | set(after or {})):
        one, other = (before or {}).get(database), (after or {}).get(database)
        if one is None or other is None:
            found.append({"path": database, "field": "presence", "before": one is not None, "after": other is not None})
            continue
        for difference in compare_checksums(one, other, limit=None):
            found.append({"path": "%s/%s" % (database, difference["path"]), "field": difference["field"],
                          "before": difference["source"], "after": difference["target"]})
    return found


def describe_differences(found):
    """One sentence per difference, for the report."""
    sentences = []
    for item in found:
        if item["field"] == "presence":
            sentences.append("%s exists only %s the update" % (item["path"], "before" if item["before"] else "after"))
        else:
            sentences.append("%s: %s was %s, is %s" % (item["path"], item["field"], item["before"], item["after"]))
    return sentences
