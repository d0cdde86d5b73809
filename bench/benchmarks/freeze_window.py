"""Freeze window vs database size: accounts with about 10 MB, 100 MB and 1 GB of databases moved one after another.

Each size is split evenly between the account's MariaDB and PostgreSQL databases (`bulk`
tables grown with the lab's own seeding code, lab/files/seed_account.py). The freeze window is
the ledger's (step frozen -> step switched); GB are 10^9 bytes of database dumps as the move
recorded them. Set BENCH_FREEZE_SIZES_MB (default "10,100,1000") to choose the sizes."""
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
import lablib  # noqa: E402

ACCOUNTS = ["bob", "carol", "dave", "erin"]
PROVIDER_S_PER_GB = 60
TARGET_FIXED_S, TARGET_S_PER_GB = 5, 10
SNAPSHOT_TASKS = ("What the source holds (files, databases, crontab)", "What the target holds")


def grow_databases(account, mb_per_engine):
    """The account's bulk tables grown to mb_per_engine MB each, by the lab's seeding code."""
    lablib.on("dedicated1", f"""cd /root/lab && python3 -c '
import seed_account
seed_account.seed_mariadb("{account}", {mb_per_engine})
seed_account.seed_postgresql("{account}", {mb_per_engine})'""")


def run():
    sizes = [int(size) for size in os.environ.get("BENCH_FREEZE_SIZES_MB", "10,100,1000").split(",")]
    accounts = ACCOUNTS[:len(sizes)]
    setup = lablib.ensure_lab(accounts_needed=accounts)
    rows = [lablib.row("lab set-up", round(setup), "s", "lab-up when the lab was not fresh; 0 otherwise")]
    for account, size in zip(accounts, sizes):
        per_engine = max(1, round(size * lablib.scale() / 2))
        lablib.log(f"{account}: growing its databases to {per_engine} MB each")
        lablib.touch([account])
        started = time.monotonic()
        grow_databases(account, per_engine)
        seeded = time.monotonic() - started
        lablib.log(f"moving {account}")
        wall, report = lablib.playbook("migrate_account", {
            "migration_server": "dedicated1", "migration_target": "transit1", "account": account})
        move = [m for m in lablib.moves() if m["account"] == account][-1]
        copied = lablib.task_results(report, "Databases streamed from server to server")[0][1]
        per_db = {db["engine"]: db for db in copied["databases"]}
        snapshots = sum(lablib.task_results(report, name)[0][0] for name in SNAPSHOT_TASKS)
        final_sync = lablib.task_results(report, "Final sync of the home")[0][1]["elapsed_s"]
        freeze = move["freeze_window_s"]
        gb = move["databases_bytes"] / 1e9
        provider = PROVIDER_S_PER_GB * gb
        target = TARGET_FIXED_S + TARGET_S_PER_GB * gb
        label = f"{size} MB" if lablib.scale() == 1 else f"{size} MB x {lablib.scale()}"
        rest = freeze - copied["elapsed_s"] - snapshots - final_sync
        rows += [
            lablib.row(f"{label}: databases moved", round(move["databases_bytes"] / 1e6, 1), "MB",
                       f"{account}; dumps: MariaDB {per_db['mariadb']['bytes'] / 1e6:.1f} MB, "
                       f"PostgreSQL {per_db['postgresql']['bytes'] / 1e6:.1f} MB; seeding took {seeded:.0f} s"),
            lablib.row(f"{label}: freeze window", round(freeze, 2), "s",
                       f"provider {provider:.1f} s, target {target:.1f} s; move {wall:.1f} s in all"),
            lablib.row(f"{label}: freeze / target (5 s + 10 s/GB)", round(freeze / target, 2), "ratio", "under 1 meets the target"),
            lablib.row(f"{label}: freeze / provider (60 s/GB)", round(freeze / provider, 2), "ratio", "under 1 beats the provider"),
            lablib.row(f"{label}: in the freeze, database copies", round(copied["elapsed_s"], 2), "s",
                       f"database_copy elapsed_s: MariaDB {per_db['mariadb']['elapsed_s']:.2f} s, "
                       f"PostgreSQL {per_db['postgresql']['elapsed_s']:.2f} s, one after the other"),
            lablib.row(f"{label}: in the freeze, snapshots of both copies", round(snapshots, 2), "s",
                       "account_snapshot_info tasks on source and target (verification)"),
            lablib.row(f"{label}: in the freeze, the rest", round(rest, 2), "s",
                       f"final rsync {final_sync:.2f} s, freezing, switching, ledger writes, Ansible's task overhead"),
        ]
    return rows
