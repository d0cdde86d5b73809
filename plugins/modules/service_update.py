#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import (absolute_import, division, print_function)
__metaclass__ = type

DOCUMENTATION = r"""
module: service_update
short_description: Update MariaDB or PostgreSQL in place, with checks, a backup, a verification and a rollback
version_added: 0.1.0
description:
  - Runs on the server whose database service is updated (an I(optional migration), no transit
    server). C(docs/service-update.md) in the collection describes the procedure in full; the
    playbook C(hosting.migration.service_update) runs this module.
  - "The steps, in order: C(checks), C(backup), C(stop), C(packages), C(data_upgrade), C(start),
    C(verify). Each is recorded with its commands, outcome and seconds (RV(steps))."
  - "C(checks) refuse, before anything changes: a path the catalogue (O(paths)) does not have
    (same version, downgrade, unknown version, no update from the server's version); a MariaDB
    whose kept data directory from an earlier update is still there; a PostgreSQL that has a
    cluster of the new version already; not enough disk for the backup (the dumps, estimated at
    1.2 times the data directory) and a second data directory, each filesystem keeping 10 % (at
    least 1 GiB) free; packages of the new version missing from the server's APT sources, or not
    at the wanted version (C(apt-get update), then C(apt-cache madison)); a database that cannot
    be read (its per-table row counts and checksums are the I(before) of the verification)."
  - "C(backup): first the site watch starts (O(site_watch_interval_s)) and the service refuses
    customers' writes while it serves their reads (MariaDB C(SET GLOBAL read_only = ON); PostgreSQL
    C(ALTER SYSTEM SET default_transaction_read_only = on) and a reload, then a wait, at most 60 s,
    for the transactions begun before it); the I(before) checksums are read again after that, so no
    write falls between them, the dumps and the stop. Every later start refuses them as well, of the
    new version from its first start and of the old one started again by a rollback, so no write
    reaches the new version before the verification compared it with the I(before): MariaDB reads
    the drop-in C(/etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf) (C([mysqld] read_only =
    ON)), written with the block; the new PostgreSQL cluster is made by C(pg_upgradecluster
    --no-start) and gets C(default_transaction_read_only = on) in its C(postgresql.conf)
    (C(pg_conftool)) before it starts, the old one keeps its C(postgresql.auto.conf). The block is
    lifted at the very end, after C(verify) or the rollback's C(verify_old), whatever happened
    (RV(steps) C(allow_writes): the drop-in or the new cluster's setting removed, then C(SET GLOBAL
    read_only = OFF), or C(ALTER SYSTEM RESET default_transaction_read_only) and a reload; it
    succeeds when nothing was blocked). RV(writes_refused) says when."
  - "Then a consistent dump of every database (the dumps of a move) and of the users and
    grants (C(mariadb-dump --system=users), C(pg_dumpall --globals-only)) into a new directory
    under O(backup_dir), then C(MANIFEST.json) with each file's size and SHA-256, written last and
    read back."
  - "C(stop) to C(start): the service stopped (MariaDB's data directory copied beside itself,
    C(cp -a --reflink=auto)); the new packages, pinned to the versions found, in one C(apt-get
    install) that is simulated first and refused if it would remove a package the catalogue says
    to keep; C(mariadb-upgrade), or C(pg_upgradecluster -m upgrade --no-start) (the old cluster
    kept); the service started (PostgreSQL: then the hook scripts of
    C(/etc/postgresql-common/pg_upgradecluster.d) in their C(finish) phase, which C(--no-start)
    skips - postgresql-common's C(analyze) gives the new cluster its planner statistics)."
  - "C(verify): the running server reports the new version, every table's row count and checksum
    equal those from before, and every site in O(sites) answers as it did before."
  - "Any failure after the backup rolls back at once: the new version stopped, MariaDB's data
    directory put back (the touched one kept as C(DATADIR.failed)) or PostgreSQL's new cluster
    dropped and the old one given back its port and autostart, the old packages installed again
    (one simulated-then-real apt run that removes only the new version's own packages), the old
    version started and its databases compared with the I(before) again. The module then fails,
    and its result says what happened (RV(outcome), RV(rolled_back), RV(steps))."
  - "O(mode=update) holds a lock on the server (O(lock_file), C(flock), with the holder's pid,
    service, versions and start time written in it) from before it reads anything to the end. A
    second update while it is held is refused before anything changes; a run whose process died
    holds nothing. O(mode=check) takes no lock."
author: hosting.migration developers (!UNKNOWN)
extends_documentation_fragment:
  - hosting.migration.accounts.ATTRIBUTES
attributes:
  check_mode:
    support: full
    details:
      - Runs the checks only (as O(mode=check)) and changes nothing, but for C(apt-get update)
        refreshing the package lists when O(update_cache=true).
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Once the service runs O(to_version), a second run returns RV(outcome=already_updated) and changes nothing.
options:
  service:
    description: The database service to update.
    type: str
    required: true
    choices: [mariadb, postgresql]
  to_version:
    description:
      - The major version to update to, as the catalogue writes it (V(11.8), V(17)).
    type: str
    required: true
  paths:
    description:
      - The catalogue's C(service_update_paths) (role C(hosting.migration.catalogue)) - service,
        version on the server, version to update to, then C(packages), C(version_package),
        C(method), C(restore_packages), C(remove_packages), C(keep_packages).
    type: dict
    required: true
  mode:
    description:
      - V(check) runs the checks only and changes nothing; V(update) updates.
    type: str
    choices: [check, update]
    default: update
  backup_dir:
    description:
      - Where the backup goes, in a new directory C(SERVICE-FROM-to-TO-YYYYMMDDTHHMMSSZ) (mode 0700).
      - The backup stays there after the update; removing old backups is for the operator.
    type: path
    default: /var/backups/hosting/service-update
  keep_old_data:
    description:
      - After a verified update, keep the old data (MariaDB - the copy of the data directory,
        C(DATADIR.pre-update-FROM); PostgreSQL - the old cluster, stopped and set to manual start).
      - V(false) removes it once the new version is verified (C(rm -rf) of the copy; C(pg_dropcluster)
        of the old cluster; the old PostgreSQL packages stay installed).
    type: bool
    default: true
  cluster:
    description: The PostgreSQL cluster to update (its version is the server's version).
    type: str
    default: main
  update_cache:
    description: Run C(apt-get update) before looking for the packages of the new version.
    type: bool
    default: true
  sites:
    description:
      - Sites whose answer must be the same before and after, each fetched from this server with
        HTTP at C(http://ADDRESS[:PORT]PATH) with C(Host) set to O(sites[].host), no proxy, no
        redirect followed.
      - A site that answers differently after the update (after O(site_attempts) tries a second
        apart) fails the verification, which rolls the update back.
    type: list
    elements: dict
    default: []
    suboptions:
      host:
        description: The Host header, a domain of the site.
        type: str
        required: true
      address:
        description: The service address the site is served on (IPv4 or IPv6).
        type: str
        required: true
      account:
        description: The account the site belongs to, a label for the report.
        type: str
      port:
        description: TCP port.
        type: int
        default: 80
      path:
        description: Path of the page.
        type: str
        default: /
  target_release:
    description:
      - The suite of the provider's package repository (C(apt-get -t)). A repository pinned below
        the server's own suites gives nothing unless asked; the update's installation asks for it.
      - Omitted, apt takes the newest versions its sources offer.
    type: str
  site_pattern:
    description:
      - A regular expression whose first group (or whole match) is what must not change in a
        site's page; the lab's pages print C(digest:) and a SHA-256 of what they read from the databases.
      - A page without a match is compared by its HTTP status only.
    type: str
    default: 'digest: (\S+)'
  site_attempts:
    description: How many times a site is asked after the update before its answer counts as different.
    type: int
    default: 10
  site_watch_interval_s:
    description:
      - With O(mode=update), a thread asks every site of O(sites) from the server every this many
        seconds (each request times out after 2 s), from just before the backup to the end of the
        run (after the rollback, if any), and measures each site's downtime (RV(site_downtime)).
      - A failure is no answer, a status other than 2xx or 3xx, or a page whose O(site_pattern)
        does not give the digest it gave in the checks.
      - V(0) watches nothing.
    type: float
    default: 0.5
  lock_file:
    description:
      - The lock file that makes updates on this server one at a time (O(mode=update) only).
    type: path
    default: /run/lock/hosting-service-update.lock
  fail_at:
    description:
      - B(For testing only.) Makes the update fail once the named step has done its work (the
        step's last command, or its check, reported as failed), so that a test sees the rollback
        (or, for V(backup), a failure that changes nothing).
    type: str
    choices: [backup, stop, packages, data_upgrade, start, verify]
notes:
  - Needs root, C(apt-get), C(dpkg-query), C(du); for MariaDB the C(mariadb) client and
    C(mariadb-dump) (or C(mysqldump)) with access over the local socket as root; for PostgreSQL
    C(pg_lsclusters), C(pg_upgradecluster), C(pg_dropcluster), C(pg_conftool) (postgresql-common),
    C(runuser) and C(psql), C(pg_dump), C(pg_dumpall), C(run-parts) as C(postgres).
  - The new version's packages must come from the server's APT sources (the provider's package
    repository; in the lab C(lab/repo)), and so must the old versions a rollback installs again.
  - The sites are down while the service is stopped; RV(site_downtime) measures how long, from the
    server (the lab's prober measures it from outside).
  - "The write block stops customers' ordinary writes, from the backup to the end of the run
    (the verification included): sites that write fail their writes meanwhile. PostgreSQL's is a
    default for new transactions - a client that asks for a read-write transaction itself still
    writes (the verification would then find the difference and roll back)."
  - "A run killed before its end (the module's process, not the controller) leaves the block: MariaDB
    refuses writes, across restarts too, until the drop-in
    C(/etc/mysql/mariadb.conf.d/99-hosting-service-update.cnf) is removed and C(SET GLOBAL read_only
    = OFF) runs; PostgreSQL until C(pg_conftool TO_VERSION CLUSTER remove default_transaction_read_only)
    (where that cluster is) and C(ALTER SYSTEM RESET default_transaction_read_only) with a reload."
seealso:
  - module: hosting.migration.database_test
  - module: hosting.migration.ledger
"""

EXAMPLES = r"""
- name: The checks only (nothing changes)
  hosting.migration.service_update:
    service: mariadb
    to_version: "11.8"
    paths: "{{ service_update_paths }}"
    mode: check
  register: checked

- name: Update PostgreSQL 15 to 17, the sites of two accounts compared before and after
  hosting.migration.service_update:
    service: postgresql
    to_version: "17"
    paths: "{{ service_update_paths }}"
    sites:
      - {account: alice, host: alice.example, address: 10.77.0.21}
      - {account: bob, host: bob.example, address: "fd77:7::21"}
  register: updated
  failed_when: false

- name: A test of the rollback - the data upgrade fails on purpose
  hosting.migration.service_update:
    service: mariadb
    to_version: "11.8"
    paths: "{{ service_update_paths }}"
    fail_at: data_upgrade
  register: rolled_back
  failed_when: not rolled_back.rolled_back or rolled_back.outcome != 'rolled_back'
"""

RETURN = r"""
outcome:
  description:
    - V(checked) (the checks passed, nothing changed), V(already_updated) (the service runs
      O(to_version) already; nothing was checked or changed), V(updated), V(failed_nothing_changed) (the
      backup failed; the service never stopped), V(rolled_back) (a step after the backup failed and
      the old version runs again on its old data, verified), V(rollback_failed) (the service needs
      a person - the message names the backup and the kept data).
  returned: always
  type: str
  sample: updated
rolled_back:
  description: True when the rollback ran (V(rolled_back) or V(rollback_failed)).
  returned: always
  type: bool
service:
  description: The service.
  returned: always
  type: str
  sample: mariadb
from_version:
  description: The version the server ran before (the catalogue's major version).
  returned: always
  type: str
  sample: "10.11"
to_version:
  description: The version asked for.
  returned: always
  type: str
  sample: "11.8"
version_before:
  description: What the database server reported before the update.
  returned: always
  type: str
  sample: 10.11.14-MariaDB-0+deb12u2
version_after:
  description: What it reports at the end (the old version again after a rollback; None when it did not answer).
  returned: always
  type: str
  sample: 11.8.3-MariaDB-0+deb13u1 from Debian
plan:
  description:
    - The update from the catalogue - C(service), C(from_version), C(to_version), C(packages),
      C(version_package), C(method), C(data_copy), C(restore_packages), C(remove_packages),
      C(keep_packages), C(steps). None with RV(outcome=already_updated).
  returned: always
  type: dict
steps:
  description:
    - Every step of the update, then of the rollback, then phase C(cleanup) - C(allow_writes) (the
      write block lifted, whenever the backup began) and C(drop_old_data) (with
      O(keep_old_data=false)), in order, each with C(name), C(phase) (C(update), C(rollback),
      C(cleanup)), C(outcome) (C(ok) or C(failed)), C(elapsed_s), C(started_at) (UNIX time),
      C(error), and C(commands) (C(argv) or C(action), C(rc), C(elapsed_s)).
  returned: always
  type: list
  elements: dict
  sample: [{name: stop, phase: update, outcome: ok, elapsed_s: 2.41, started_at: 1795000000.1, error: null,
            commands: [{argv: [systemctl, stop, mariadb], rc: 0, elapsed_s: 1.9}]}]
failed_step:
  description: The step that failed, or None.
  returned: always
  type: str
  sample: data_upgrade
error:
  description: Why it failed, or None.
  returned: always
  type: str
rollback_error:
  description: The rollback step that failed and why, or None.
  returned: always
  type: str
elapsed_s:
  description: Seconds of the whole run.
  returned: always
  type: float
service_window:
  description:
    - When the service was down - C(stopped_at) (UNIX time the stop began), C(running_at) (when the
      last successful start ended, of the new version or of the old one after a rollback; None if
      none did), C(seconds). None when the service never stopped. The sites' own downtime is what
      the lab's prober measures; this window is where to look in its timeline.
  returned: always
  type: dict
  sample: {stopped_at: 1795000012.5, running_at: 1795000071.9, seconds: 59.4}
writes_refused:
  description:
    - When the service refused customers' writes while it served their reads - C(from) (UNIX time
      the block was set, at the start of the backup), C(to) (the start of the stop, from where
      RV(service_window) goes on; or the lift when the service never stopped), C(seconds),
      C(lifted_at) (when the block was lifted at the end; None if that failed - then a warning
      says what to run). From RV(service_window) C(running_at) to C(lifted_at) the service ran
      again, refusing customers' writes as well (the verification, or the rollback's). None when writes were never refused (the checks, a refusal, or a block
      that could not be set).
  returned: always
  type: dict
  sample: {from: 1795000004.1, to: 1795000012.5, seconds: 8.4, lifted_at: 1795000090.2}
site_downtime:
  description:
    - Per site of O(sites), what the site watch saw during the update (O(site_watch_interval_s)) -
      C(account), C(host), C(address), C(requests), C(failed), C(longest_outage_s) (the longest run
      of failures, from the start of its first failed request to the start of the next successful
      one, or to the watch's end), C(first_failure_at) and C(last_failure_at) (UNIX times, None
      without failures), C(failing_at_end), C(failures) (how many of each kind - C(no answer),
      C(status N), C(digest X)). Empty when nothing was watched.
  returned: always
  type: list
  elements: dict
  sample: [{account: alice, host: alice.example, address: 10.77.0.21, requests: 180, failed: 41, longest_outage_s: 20.3,
            first_failure_at: 1795000012.7, last_failure_at: 1795000033.0, failing_at_end: false,
            failures: {status 500: 39, no answer: 2}}]
checks:
  description:
    - C(disk) (C(ok), C(message), C(needs) per filesystem, C(data_bytes)), C(packages) (the
      version and origin chosen for each package), C(databases) (per database its C(tables) and C(rows)).
  returned: always
  type: dict
backup:
  description:
    - C(directory), C(manifest) (path of C(MANIFEST.json)), C(files) (C(name), C(size), C(sha256)
      of each dump), C(bytes). None when the run did not get that far.
  returned: always
  type: dict
  sample: {directory: /var/backups/hosting/service-update/mariadb-10.11-to-11.8-20261126T051200Z,
           manifest: /var/backups/hosting/service-update/mariadb-10.11-to-11.8-20261126T051200Z/MANIFEST.json,
           files: [{name: users.sql, size: 2210, sha256: 9f2c...}, {name: db-alice_app.sql, size: 81233, sha256: 4b1e...}],
           bytes: 83443}
comparison:
  description:
    - The last comparison of the databases with the I(before) (after the update, or after the
      rollback) - C(equal), C(databases), C(tables), C(rows), C(differences) (one sentence each).
      None when no comparison was made.
  returned: always
  type: dict
  sample: {equal: true, databases: 3, tables: 7, rows: 15210, differences: []}
sites:
  description:
    - In check mode each site of O(sites) with its C(status) and C(digest); after an update (or a
      rollback) each with C(before), C(after) and C(same).
  returned: always
  type: list
  elements: dict
kept_data:
  description: The old data kept after a verified update (C(path), C(what)); None otherwise.
  returned: always
  type: dict
databases:
  description: The databases of the server that were backed up and compared.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hosting.migration.plugins.module_utils.service_update import ServiceUpdateError
from ansible_collections.hosting.migration.plugins.module_utils.service_update_procedure import (
    SERVICE_UPDATE_MODULE_KWARGS, run_service_update)


def main():
    module = AnsibleModule(**SERVICE_UPDATE_MODULE_KWARGS)
    try:
        result = run_service_update(module.params, check_mode=module.check_mode)
    except ServiceUpdateError as error:
        module.fail_json(msg=str(error), changed=False, **error.details)
    if result.pop("ok"):
        module.exit_json(**result)
    module.fail_json(**result)


if __name__ == "__main__":
    main()
