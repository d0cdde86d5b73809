#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: account_snapshot_info
short_description: Digests of everything a hosting account holds, to prove two copies equal
version_added: 0.1.0
description:
  - For each account in O(spec_dir) (or the ones named in O(names)), takes the manifest of its
    home (every path with its type, permission bits, numeric owner and group, size, modification
    time in nanoseconds, symlink target, hard-link group and SHA-256 of its content), the row
    count and checksum of every table of each of its databases (computed by the database server,
    equal for the same data on MariaDB 10.11 and 11.8, PostgreSQL 15 and 17), the users of those
    databases with a digest of their authentication, their attributes and grants, and a digest of
    its crontab.
  - Run it on the source and on the target of a move and compare the C(digest) of each account;
    where they differ, compare the parts, or the manifests written with O(manifest_dir)
    (C(docs/verification.md) in the collection describes what is compared and the limits).
  - Password hashes are never returned, only a SHA-256 (or, with O(auth_key), an HMAC) of them.
  - Changes nothing on the server, except that it writes the manifests to O(manifest_dir) when
    that is given, in check mode too.
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  names:
    description:
      - Accounts to take; all of them when empty.
      - Naming an account that has no spec fails, listing the accounts the server has.
    type: list
    elements: str
    default: []
  hash_content:
    description:
      - Hash the content of every regular file (SHA-256, each hard-linked file once).
      - With V(false) files are compared by size and modification time only, which is much faster
        for large homes.
    type: bool
    default: true
  excludes:
    description:
      - Paths of the home to leave out, as glob patterns relative to the home. A pattern with a
        C(/) matches the whole relative path, one without matches a name at any depth; C(*) and
        C(?) do not match C(/), C(**) does; a trailing C(/) matches directories only.
      - Give the same patterns on both servers.
    type: list
    elements: str
    default: []
  details:
    description:
      - Also return every entry of each home's manifest (C(files.manifest)). This can be large.
    type: bool
    default: false
  manifest_dir:
    description:
      - Directory on the server where each account's manifest is written as
        C(<name>.manifest.jsonl) (JSON lines, mode 0600), so it can be copied to the other server
        and compared there with the collection's C(manifest) module utilities.
      - The directory must exist. Written in check mode too.
    type: path
  auth_key:
    description:
      - Key for an HMAC-SHA-256 of each database user's authentication string instead of a plain
        SHA-256. Give the same key on both servers (for example a random one per move). Without
        it, whoever reads the result can test password guesses against the plain digest.
    type: str
"""

EXAMPLES = r"""
- name: Snapshot of one account on the source
  hosting.migration.account_snapshot_info:
    names: [alice]
    manifest_dir: /var/lib/hosting/verify
  register: source_snapshot

- name: The same on the target
  hosting.migration.account_snapshot_info:
    names: [alice]
  delegate_to: "{{ migration_target }}"
  register: target_snapshot

- name: Stop unless both copies are equal
  ansible.builtin.assert:
    that: source_snapshot.accounts[0].digest == target_snapshot.accounts[0].digest
    fail_msg: The copies of alice differ; the account stays on the source.

- name: Quick check by sizes and times only, caches left out
  hosting.migration.account_snapshot_info:
    hash_content: false
    excludes: [".cache/", "tmp/**"]
"""

RETURN = r"""
accounts:
  description: One entry per account, in the order of O(names), else sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Account name.
      type: str
      sample: alice
    home:
      description: The account's home directory.
      type: str
      sample: /home/alice
    files:
      description:
        - The home's manifest in short; null when the home does not exist.
        - C(entries) counts every path (the home itself included), C(files) regular files (each
          hard link), C(dirs) directories, C(links) symlinks, C(special) FIFOs, sockets and
          devices, C(hardlinked) entries that share their inode with another one, C(bytes) the
          regular files' bytes (each inode once); C(digest) is the SHA-256 of the manifest's
          canonical form.
        - C(manifest_path) is where the manifest was written (with O(manifest_dir)); C(manifest)
          lists every entry (with O(details=true)) with C(path), C(type), C(mode), C(uid),
          C(gid), C(size), C(mtime_ns), C(target), C(device), C(link) and C(sha256).
      type: dict
      sample:
        entries: 23
        files: 14
        dirs: 6
        links: 1
        special: 0
        hardlinked: 2
        bytes: 4195300
        digest: 9f2c0d6b1e7a4c3f8b5d2e1a0c9f8e7d6b5a4c3f2e1d0c9b8a7f6e5d4c3b2a19
        manifest_path: /var/lib/hosting/verify/alice.manifest.jsonl
    databases:
      description:
        - One entry per database of the account's spec, in spec order, with C(engine), C(name),
          C(exists), C(tables), C(users) and C(digest).
        - C(tables) maps each table (MariaDB C(table), PostgreSQL C(schema.table)) to C(rows),
          C(checksum) (an order-independent sum over the rows) and C(columns) (SHA-256 of the
          column names, types and nullability).
        - C(users) maps each user (MariaDB C(user@host), PostgreSQL role name) to C(exists),
          C(auth_method), C(auth_sha256) (digest of the password hash, never the hash),
          C(attributes) and C(grants) (normalised lines).
        - C(digest) is the SHA-256 of all of it.
      type: list
      elements: dict
      sample:
        - engine: mariadb
          name: alice_app
          exists: true
          tables:
            items: {rows: 100, checksum: "16607802181363283623", columns: "643918cb..."}
          users:
            alice_app@localhost:
              exists: true
              auth_method: mysql_native_password
              auth_sha256: ce7d863280b8a357cc90a63827d092ff13d4548cde931a9c6f78f1c6127c779e
              attributes: []
              grants: ["GRANT ALL PRIVILEGES ON `alice_app`.* TO `alice_app`@`localhost`",
                       "GRANT USAGE ON *.* TO `alice_app`@`localhost`"]
          digest: 2632ba98bea1b67e1aba22c0c34ec115a67ba1a148960c734c3d51dcab26f6d8
    crontab:
      description:
        - SHA-256 of the account's crontab C(/var/spool/cron/crontabs/<name>), or of its suspended
          copy C(/var/spool/cron/hosting-suspended/<name>) while the account is not served; null
          when it has none.
      type: str
      sample: 5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef
    digest:
      description:
        - SHA-256 over the files digest, each database's digest and the crontab digest. Equal on
          two servers when everything compared is equal.
      type: str
      sample: 1b4f0e9851971998e732078544c96b36c3d01cedf7caa332359d6f1d83567014
"""

import hashlib
import json
import os
import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.account_inventory import (
    SPEC_DIR_ARGUMENTS, selected_specs)
from ansible_collections.hosting.migration.plugins.module_utils.account_render import Layout, find_crontab
from ansible_collections.hosting.migration.plugins.module_utils.db_checksum import (
    ChecksumError, database_snapshot)
from ansible_collections.hosting.migration.plugins.module_utils.manifest import (
    ManifestError, build_manifest, write_manifest)

CRONTAB_DIR = "/var/spool/cron/crontabs"

ARGUMENT_SPEC = dict(
    SPEC_DIR_ARGUMENTS,
    names=dict(type="list", elements="str", default=[]),
    hash_content=dict(type="bool", default=True),
    excludes=dict(type="list", elements="str", default=[]),
    details=dict(type="bool", default=False),
    manifest_dir=dict(type="path"),
    auth_key=dict(type="str", no_log=True),
)


def file_sha256(path):
    """SHA-256 of a file's content, None when there is no such file."""
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except FileNotFoundError:
        return None


def account_digest(snapshot):
    """SHA-256 of the canonical JSON of the parts' digests."""
    files = snapshot["files"]
    parts = {
        "files": files["digest"] if files else None,
        "databases": [[db["engine"], db["name"], db["digest"]] for db in snapshot["databases"]],
        "crontab": snapshot["crontab"],
    }
    text = json.dumps(parts, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def crontab_digest(name, crontab_dir=CRONTAB_DIR):
    """The account's crontab is the same whether it runs or is suspended (frozen, forwarded or
    inactive): compare its content wherever the account's state put it."""
    found = find_crontab(name, Layout(cron_dir=crontab_dir))
    return None if found["path"] is None else file_sha256(found["path"])


def account_snapshot(spec, run, hash_content=True, excludes=(), details=False, manifest_dir=None,
                     auth_key=None, crontab_dir=CRONTAB_DIR):
    """Everything account_snapshot_info returns for one account."""
    files = None
    if os.path.isdir(spec.home) and not os.path.islink(spec.home):
        manifest = build_manifest(spec.home, excludes=excludes, hash_content=hash_content)
        files = manifest.summary()
        if manifest_dir:
            files["manifest_path"] = write_manifest(
                manifest, os.path.join(manifest_dir, "%s.manifest.jsonl" % spec.name))
        if details:
            files["manifest"] = manifest.to_list()
    databases = [database_snapshot(run, database.engine, database.name,
                                   [user.name for user in database.users], auth_key)
                 for database in spec.databases]
    snapshot = {"name": spec.name, "home": spec.home, "files": files, "databases": databases,
                "crontab": crontab_digest(spec.name, crontab_dir)}
    snapshot["digest"] = account_digest(snapshot)
    return snapshot


def snapshot_accounts(module):
    """The module's result; fails the module with a plain sentence on bad input."""
    params = module.params
    specs = selected_specs(module, params["names"])
    if params["manifest_dir"] and not os.path.isdir(params["manifest_dir"]):
        module.fail_json(msg="The manifest directory %s does not exist on this server." % params["manifest_dir"])

    def run(argv, stdin=None):
        rc, out, err = module.run_command(argv, data=stdin)
        if rc != 0:
            module.fail_json(msg="%s failed: %s" % (argv[0], err.strip() or out.strip()), rc=rc, cmd=argv)
        return out

    accounts = []
    for spec in specs:
        try:
            accounts.append(account_snapshot(
                spec, run, hash_content=params["hash_content"], excludes=params["excludes"],
                details=params["details"], manifest_dir=params["manifest_dir"], auth_key=params["auth_key"]))
        except (ManifestError, ChecksumError, OSError) as error:
            module.fail_json(msg="Could not take the snapshot of account %s: %s" % (spec.name, error),
                             exception=traceback.format_exc())
    return {"accounts": accounts}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(changed=False, **snapshot_accounts(module))


if __name__ == "__main__":
    main()
