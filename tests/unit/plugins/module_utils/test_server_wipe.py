"""Wiping a transit server: what goes, what stays, the check, refusals, failures and re-runs.

Runs as root (as the whole unit suite does): the fake server has files owned by account UIDs.
"""
import os
import re
import signal
import stat

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import server_wipe
from ansible_collections.hosting.migration.plugins.module_utils.account_render import Signals
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import dump_spec, validate_spec
from ansible_collections.hosting.migration.plugins.module_utils.server_wipe import WipeError, WipeLayout, WipeRefused

MARIADB_HASH = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
SCRAM = ("SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$" + "A" * 43 + "=:" + "B" * 43 + "=")

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
postgres:x:110:117:PostgreSQL administrator:/var/lib/postgresql:/bin/bash
admin:x:1000:1000:Provider admin:/home/admin:/bin/bash
alice:x:10001:10001::/home/alice:/bin/bash
bob:x:10002:10002::/srv/bob:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = """\
root:x:0:
crontab:x:101:
admin:x:1000:
alice:x:10001:
bob:x:10002:
shared:x:10500:alice,bob
nogroup:x:65534:
"""
PROVIDER_KEY = b'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIProvider provider@controller\n'
AUTHORIZED = (
    PROVIDER_KEY
    + b'from="10.77.0.20",restrict,expiry-time="202601011300Z",command="/usr/local/lib/hosting-migration/'
      b'transfer-endpoint move-1-alice" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey1 hosting-migration:move-1-alice\n'
    + b'# an old line, commented out: ssh-ed25519 AAAAC3Nz hosting-migration:move-0\n'
    + b'  ssh-rsa AAAAB3NzaC1yc2E   other@host  \r\n'
    + b'restrict ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey2 hosting-migration:move-2-bob')


def alice_spec():
    return validate_spec({
        "name": "alice", "uid": 10001, "gid": 10001,
        "sites": [{"name": "main", "domains": ["alice.example"], "document_root": "www", "php": "8.4"}],
        "databases": [
            {"engine": "mariadb", "name": "alice_app", "users": [{"name": "alice_app", "password_hash": MARIADB_HASH}]},
            {"engine": "postgresql", "name": "alice_app", "users": [{"name": "alice_app", "password_hash": SCRAM}]},
        ],
        "cron": [{"schedule": "@daily", "command": "echo hi"}],
        "mailboxes": [{"address": "alice@alice.example", "maildir": "Maildir"}],
    }, "/etc/hosting/accounts/alice.yml")


def write(root, path, content=b"", uid=0, gid=0, mode=0o644):
    full = root / path.lstrip("/")
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(content if isinstance(content, bytes) else content.encode())
    os.chown(full, uid, gid)
    os.chmod(full, mode)
    return full


def fake_process(root, pid, uid, name):
    directory = root / "proc" / str(pid)
    directory.mkdir(parents=True)
    (directory / "status").write_text("Name:\t%s\nState:\tS (sleeping)\nPid:\t%d\nPPid:\t1\nUid:\t%d\t%d\t%d\t%d\n"
                                      % (name, pid, uid, uid, uid, uid))
    (directory / "cmdline").write_bytes(name.encode() + b"\0")


@pytest.fixture
def server(tmp_path):
    """A transit server that held alice (with a spec) and bob (a user without one)."""
    root = tmp_path
    write(root, "/etc/hostname", "transit2\n")
    write(root, "/etc/passwd", PASSWD)
    write(root, "/etc/group", GROUP)
    write(root, "/etc/hosting/accounts/alice.yml", dump_spec(alice_spec()), mode=0o600)
    write(root, "/etc/hosting/account-states/alice", "active\n")
    write(root, "/etc/nginx/sites-enabled/account-alice.conf", "server {}\n")
    write(root, "/etc/nginx/sites-enabled/account-bob.conf", "server {}\n")
    write(root, "/etc/nginx/sites-enabled/default", "server {}\n")
    write(root, "/etc/php/8.4/fpm/pool.d/www.conf", "[www]\n")
    write(root, "/etc/php/8.4/fpm/pool.d/account-alice.conf", "[account-alice]\n")
    write(root, "/etc/php/8.2/fpm/pool.d/account-alice.conf", "[account-alice]\n")
    write(root, "/var/spool/cron/crontabs/alice", "@daily echo hi\n", uid=10001, gid=101, mode=0o600)
    write(root, "/var/spool/cron/crontabs/root", "@reboot true\n", mode=0o600)
    write(root, "/var/spool/cron/hosting-suspended/bob", "@daily echo bob\n", uid=10002, gid=101, mode=0o600)
    write(root, "/home/alice/www/index.php", "<?php echo 1;", uid=10001, gid=10001)
    write(root, "/home/alice/Maildir/cur/1.mail", "Subject: hi\n", uid=10001, gid=10001, mode=0o600)
    write(root, "/home/admin/.bashrc", "# the provider's\n", uid=1000, gid=1000)
    (root / "home" / "lost+found").mkdir()
    write(root, "/srv/bob/www/index.html", "bob", uid=10002, gid=10002)
    os.chown(root / "srv/bob", 10002, 10002)
    write(root, "/srv/provider/README", "the provider's")
    write(root, "/var/mail/alice", "From x\n", uid=10001, gid=8, mode=0o660)
    write(root, "/tmp/sess_alice", "s", uid=10001, gid=10001)
    write(root, "/tmp/orphan.bin", "o", uid=10077, gid=10077)
    write(root, "/tmp/root.pid", "1")
    write(root, "/var/lib/php/sessions/sess_bob", "s", uid=10002, gid=10002, mode=0o600)
    write(root, "/root/.ssh/hosting-migration/move-1-alice/id_ed25519", "PRIVATE", mode=0o600)
    write(root, "/root/.ssh/authorized_keys", AUTHORIZED, mode=0o600)
    write(root, "/etc/hosting/transfers/move-1-alice.json", "{}", mode=0o600)
    write(root, "/etc/hosting/transfers/.lock", "", mode=0o600)
    write(root, "/var/log/hosting-migration-transfers.log", "2026-01-01 accepted\n", mode=0o600)
    write(root, "/var/log/hosting-migration-transfers.log.1", "2025-12-31 accepted\n", mode=0o600)
    write(root, "/usr/local/lib/hosting-migration/transfer-endpoint", "#!/usr/bin/python3\n", mode=0o755)
    write(root, "/usr/sbin/php-fpm8.4", "", mode=0o755)
    write(root, "/usr/sbin/php-fpm8.2", "", mode=0o755)
    write(root, "/etc/php/7.4/fpm/pool.d/.keep", "")  # a leftover directory, PHP-FPM 7.4 not installed
    fake_process(root, 2, 0, "kthreadd")
    fake_process(root, 301, 10001, "php-fpm8.4")
    fake_process(root, 302, 10002, "bash")
    fake_process(root, 303, 10077, "sleep")
    fake_process(root, 304, 65534, "dnsmasq")
    return root


def layout_of(root, **changes):
    return WipeLayout(root=str(root), **changes)


class Server:
    """Fake commands: the two database servers, userdel and groupdel on the fake root, nginx and
    systemctl. Records every call; ``fail`` maps a word of a command to (rc, out, err)."""

    def __init__(self, root):
        self.root = root
        self.calls = []
        self.fail = {}
        self.mariadb = {"databases": {"information_schema", "mysql", "performance_schema", "sys", "alice_app",
                                      "bob_shop"},
                        "users": {("root", "localhost"), ("mysql", "localhost"), ("mariadb.sys", "localhost"),
                                  ("PUBLIC", None), ("alice_app", "localhost"), ("alice_app", "%"),
                                  ("alice_reader", None), ("bob_shop", "localhost"), ("", "localhost")}}
        self.postgresql = {"databases": {"postgres", "template0", "template1", "alice_app"},
                           "users": {("postgres", None), ("pg_monitor", None), ("alice_app", None)}}
        self.snapshots = {}

    def __call__(self, argv):
        self.calls.append(argv)
        text = " ".join(argv)
        for word, answer in self.fail.items():
            if word in text:
                return answer
        if argv[0] == "mariadb":
            return self.sql(self.mariadb, argv[argv.index("-e") + 1])
        if argv[0] == "runuser":
            return self.sql(self.postgresql, argv[argv.index("-c") + 1])
        if argv[0] == "userdel":
            self.snapshots[argv[0]] = sorted(os.listdir(self.root / "home"))
            self.edit("/etc/passwd", argv[1])
            self.edit("/etc/group", argv[1])  # USERGROUPS_ENAB: the user's own group goes with it
            return 0, "", ""
        if argv[0] == "groupdel":
            self.edit("/etc/group", argv[1])
            return 0, "", ""
        if argv[:2] == ["nginx", "-t"]:
            self.snapshots["nginx"] = sorted(os.listdir(self.root / "etc/nginx/sites-enabled"))
            return 0, "", "nginx: configuration file /etc/nginx/nginx.conf test is successful"
        if argv[0] == "systemctl":
            self.snapshots["reload " + argv[2]] = sorted(os.listdir(self.root / "etc/php/8.4/fpm/pool.d"))
            return 0, "", ""
        raise AssertionError("unexpected command %r" % argv)

    def edit(self, path, name):
        full = self.root / path.lstrip("/")
        lines = full.read_text().splitlines(True)
        full.write_text("".join(line for line in lines if not line.startswith(name + ":")))

    def sql(self, engine, query):
        if query.startswith("SELECT schema_name") or query.startswith("SELECT datname"):
            return 0, "".join("%s\n" % name for name in sorted(engine["databases"])), ""
        if query.startswith("SELECT user, host, is_role"):
            return 0, "".join("%s\t%s\t%s\n" % (name, host or "", "N" if host is not None else "Y")
                              for name, host in sorted(engine["users"], key=str)), ""
        if query.startswith("SELECT rolname"):
            return 0, "".join("%s\n" % name for name, _host in sorted(engine["users"])), ""
        match = re.fullmatch(r"DROP DATABASE IF EXISTS [`\"](\w+)[`\"]( WITH \(FORCE\))?", query)
        if match:
            engine["databases"].discard(match.group(1))
            return 0, "", ""
        match = re.fullmatch(r"DROP USER IF EXISTS '([\w.]+)'@'([\w%.]*)'", query)
        if match:
            engine["users"].discard(match.groups())
            return 0, "", ""
        match = re.fullmatch(r'DROP ROLE IF EXISTS ["\'](\w+)["\']', query)
        if match:
            engine["users"].discard((match.group(1), None))
            return 0, "", ""
        if re.fullmatch(r'DROP OWNED BY "\w+"', query):
            return 0, "", ""
        raise AssertionError("unexpected SQL %r" % query)

    def writes(self):
        """The calls that change something (every call but the database listings)."""
        return [argv for argv in self.calls if not any(word.startswith("SELECT") for word in argv)]


class FakeSignals(Signals):
    """Processes on the fake /proc die when signalled, except the immortal ones."""

    def __init__(self, root, immortal=()):
        self.root = root
        self.immortal = set(immortal)
        self.sent = []
        self.now = 0.0

    def send(self, pid, number):
        self.sent.append((pid, number))
        if pid in self.immortal or number == signal.SIGCONT:
            return
        directory = self.root / "proc" / str(pid)
        for entry in directory.iterdir():
            entry.unlink()
        directory.rmdir()

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def run_wipe(root, fake, confirm="transit2", signals=None, **kwargs):
    layout = kwargs.pop("layout", None) or layout_of(root)
    return server_wipe.wipe(layout, fake, confirm, hostname="container-id", signals=signals or FakeSignals(root),
                            exclude=set(), **kwargs)


def tree(root):
    """Every path below root with its owner, mode and content: to prove nothing changed."""
    result = {}
    for directory, subdirs, names in os.walk(root):
        for name in subdirs + names:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            content = open(path, "rb").read() if stat.S_ISREG(info.st_mode) else None
            result[os.path.relpath(path, root)] = (info.st_uid, info.st_gid, info.st_mode, content)
    return result


ALICE_REMOVED = [
    "nginx site /etc/nginx/sites-enabled/account-alice.conf",
    "PHP-FPM pool /etc/php/8.2/fpm/pool.d/account-alice.conf",
    "PHP-FPM pool /etc/php/8.4/fpm/pool.d/account-alice.conf",
    "crontab /var/spool/cron/crontabs/alice",
    "process 301 (php-fpm8.4)",
    "temporary file /tmp/sess_alice",
    "MariaDB database alice_app",
    "PostgreSQL database alice_app",
    "MariaDB user 'alice_app'@'%'",
    "MariaDB user 'alice_app'@'localhost'",
    "MariaDB role 'alice_reader'",
    "PostgreSQL role alice_app",
    "mail spool /var/mail/alice",
    "home /home/alice",
    "state file /etc/hosting/account-states/alice",
    "Unix user alice (UID 10001)",
    "Unix group alice (GID 10001)",
    "account spec /etc/hosting/accounts/alice.yml",
]
BOB_REMOVED = [
    "nginx site /etc/nginx/sites-enabled/account-bob.conf",
    "crontab /var/spool/cron/hosting-suspended/bob",
    "process 302 (bash)",
    "temporary file /var/lib/php/sessions/sess_bob",
    "MariaDB database bob_shop",
    "MariaDB user 'bob_shop'@'localhost'",
    "home /srv/bob",
    "Unix user bob (UID 10002)",
    "Unix group bob (GID 10002)",
]
TRANSFERS_REMOVED = [
    "transfer key /root/.ssh/hosting-migration/move-1-alice",
    "transfer authorization hosting-migration:move-1-alice in /root/.ssh/authorized_keys",
    "transfer authorization hosting-migration:move-2-bob in /root/.ssh/authorized_keys",
    "transfer authorization /etc/hosting/transfers/move-1-alice.json",
    "transfer log /var/log/hosting-migration-transfers.log (20 bytes emptied)",
    "rotated transfer log /var/log/hosting-migration-transfers.log.1",
]


# --- the whole wipe ------------------------------------------------------------------------------

def test_wipe_removes_every_account_and_credential_and_the_check_finds_nothing(server):
    fake = Server(server)
    signals = FakeSignals(server)

    result = run_wipe(server, fake, signals=signals)

    assert result["errors"] == []
    assert result["found"] == []
    assert result["changed"] is True
    assert result["removed"]["accounts"] == [{"name": "alice", "removed": ALICE_REMOVED},
                                             {"name": "bob", "removed": BOB_REMOVED},
                                             {"name": "shared", "removed": ["Unix group shared (GID 10500)"]}]
    assert result["removed"]["transfer_credentials"] == TRANSFERS_REMOVED
    assert result["removed"]["other"] == ["process 303 (sleep) of UID 10077",
                                          "temporary file /tmp/orphan.bin (owner UID 10077)"]
    assert result["reloaded"] == ["nginx", "php8.2-fpm", "php8.4-fpm"]
    assert {pid for pid, _number in signals.sent} == {301, 302, 303}
    assert fake.mariadb["databases"] == {"information_schema", "mysql", "performance_schema", "sys"}
    assert fake.mariadb["users"] == {("root", "localhost"), ("mysql", "localhost"), ("mariadb.sys", "localhost"),
                                     ("PUBLIC", None), ("", "localhost")}
    assert fake.postgresql == {"databases": {"postgres", "template0", "template1"},
                               "users": {("postgres", None), ("pg_monitor", None)}}
    for gone in ("home/alice", "srv/bob", "var/mail/alice", "etc/hosting/accounts/alice.yml",
                 "etc/hosting/transfers/move-1-alice.json", "root/.ssh/hosting-migration/move-1-alice",
                 "var/log/hosting-migration-transfers.log.1", "tmp/sess_alice", "tmp/orphan.bin"):
        assert not os.path.lexists(server / gone), gone
    assert "alice:" not in (server / "etc/passwd").read_text()
    assert "bob:" not in (server / "etc/group").read_text()


def test_what_is_not_the_customers_stays(server):
    run_wipe(server, Server(server))

    assert (server / "etc/passwd").read_text().splitlines() == [
        line for line in PASSWD.splitlines() if not line.startswith(("alice:", "bob:"))]
    # A group in the account range is the customer's, even one that is nobody's own group.
    assert (server / "etc/group").read_text().splitlines() == ["root:x:0:", "crontab:x:101:", "admin:x:1000:",
                                                               "nogroup:x:65534:"]
    for kept in ("home/admin/.bashrc", "home/lost+found", "srv/provider/README", "tmp/root.pid",
                 "etc/nginx/sites-enabled/default", "etc/php/8.4/fpm/pool.d/www.conf",
                 "var/spool/cron/crontabs/root", "etc/hosting/transfers/.lock",
                 "usr/local/lib/hosting-migration/transfer-endpoint", "proc/2", "proc/304"):
        assert os.path.lexists(server / kept), kept
    log = server / "var/log/hosting-migration-transfers.log"
    assert log.read_bytes() == b"" and stat.S_IMODE(log.stat().st_mode) == 0o600


def test_authorized_keys_keeps_every_other_line_byte_for_byte(server):
    path = server / "root/.ssh/authorized_keys"
    os.chown(path, 0, 10)
    os.chmod(path, 0o640)

    run_wipe(server, Server(server))

    assert path.read_bytes() == (PROVIDER_KEY
                                 + b'# an old line, commented out: ssh-ed25519 AAAAC3Nz hosting-migration:move-0\n'
                                 + b'  ssh-rsa AAAAB3NzaC1yc2E   other@host  \r\n')
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 10, 0o640)
    assert not [name for name in os.listdir(path.parent) if name.startswith(".")]


def test_order_sites_then_nginx_pools_then_php_homes_before_users_databases_before_roles(server):
    fake = Server(server)
    run_wipe(server, fake)

    assert fake.snapshots["nginx"] == ["default"]  # sites gone when nginx is tested
    assert fake.snapshots["reload php8.4-fpm"] == ["www.conf"]  # pools gone when PHP-FPM reloads
    assert fake.snapshots["userdel"] == ["admin", "lost+found"]  # homes gone before the users
    writes = [" ".join(argv) for argv in fake.writes()]
    assert writes.index("nginx -t") < writes.index("systemctl try-reload-or-restart nginx")
    mariadb_drops = [text for text in writes if "DROP" in text and text.startswith("mariadb")]
    assert [text.split(" -e ")[1].split(" IF")[0] for text in mariadb_drops] == \
        ["DROP DATABASE", "DROP DATABASE", "DROP USER", "DROP USER", "DROP ROLE", "DROP USER"]
    postgres_drops = [text.split(" -c ")[1] for text in writes if text.startswith("runuser")]
    assert postgres_drops == ['DROP DATABASE IF EXISTS "alice_app" WITH (FORCE)', 'DROP OWNED BY "alice_app"',
                              'DROP ROLE IF EXISTS "alice_app"']
    # userdel takes the user's own group with it; a group of its own goes with groupdel.
    assert writes[-3:] == ["userdel alice", "userdel bob", "groupdel shared"]


def test_the_logs_of_the_web_server_and_php_fpm_are_emptied_in_place_and_their_rotations_removed(server):
    write(server, "/var/log/nginx/access.log", "10.77.0.1 GET /alice/ 200\n", uid=33, gid=4, mode=0o640)
    write(server, "/var/log/nginx/access.log.1", "older\n", uid=33, gid=4, mode=0o640)
    write(server, "/var/log/nginx/access.log.2.gz", "gz", uid=33, gid=4, mode=0o640)
    write(server, "/var/log/nginx/error.log", "", uid=33, gid=4, mode=0o640)
    write(server, "/var/log/php8.4-fpm.log", "pool account-alice exited\n", mode=0o600)
    write(server, "/var/log/syslog", "kept\n")

    fake = Server(server)
    result = run_wipe(server, fake, signals=FakeSignals(server))

    assert [item for item in result["removed"]["other"] if "log" in item] == [
        "log /var/log/nginx/access.log (26 bytes emptied)",
        "rotated log /var/log/nginx/access.log.1",
        "rotated log /var/log/nginx/access.log.2.gz",
        "log /var/log/php8.4-fpm.log (26 bytes emptied)",
    ]
    access = server / "var/log/nginx/access.log"
    assert access.read_text() == "" and (access.stat().st_uid, oct(access.stat().st_mode & 0o777)) == (33, "0o640")
    assert (server / "var/log/php8.4-fpm.log").read_text() == ""
    assert not os.path.lexists(server / "var/log/nginx/access.log.1")
    assert (server / "var/log/syslog").read_text() == "kept\n"
    # Written to again right after: not a leftover (the services log every request).
    access.write_text("10.77.0.1 GET / 404\n")
    assert run_wipe(server, fake, check_only=True)["found"] == []


def test_a_second_run_on_a_clean_server_changes_nothing(server):
    run_wipe(server, Server(server))
    fake = Server(server)
    fake.mariadb = {"databases": {"mysql", "sys"}, "users": {("root", "localhost")}}
    fake.postgresql = {"databases": {"postgres"}, "users": {("postgres", None)}}
    before = tree(server)

    result = run_wipe(server, fake)

    assert result == {"removed": {"accounts": [], "transfer_credentials": [], "other": []}, "reloaded": [],
                      "found": [], "errors": [], "warnings": [], "changed": False}
    assert fake.writes() == []
    assert tree(server) == before


# --- check only ----------------------------------------------------------------------------------

def test_check_only_changes_nothing_and_says_what_would_go_and_what_is_there(server):
    fake = Server(server)
    before = tree(server)

    result = run_wipe(server, fake, check_only=True)

    assert tree(server) == before
    assert fake.writes() == []
    assert result["changed"] is True
    assert result["removed"]["accounts"][0]["removed"] == ALICE_REMOVED
    assert result["removed"]["accounts"][1]["removed"] == BOB_REMOVED
    assert result["removed"]["transfer_credentials"] == TRANSFERS_REMOVED
    assert result["found"][:4] == ["Unix user alice (UID 10001) is still there.",
                                   "Unix user bob (UID 10002) is still there.",
                                   "Unix group alice (GID 10001) is still there.",
                                   "Unix group bob (GID 10002) is still there."]
    for sentence in ("Home /home/alice is still there.", "/srv/bob (owner UID 10002) is still there.",
                     "Account spec /etc/hosting/accounts/alice.yml is still there.",
                     "nginx site /etc/nginx/sites-enabled/account-bob.conf is still there.",
                     "PHP-FPM pool /etc/php/8.2/fpm/pool.d/account-alice.conf is still there.",
                     "Crontab /var/spool/cron/crontabs/alice is still there.",
                     "Suspended crontab /var/spool/cron/hosting-suspended/bob is still there.",
                     "Process 303 (sleep) of UID 10077 is still running.",
                     "MariaDB database bob_shop is still there.",
                     "MariaDB user 'alice_app'@'%' is still there.",
                     "PostgreSQL role alice_app is still there.",
                     "Transfer authorization hosting-migration:move-2-bob is still in /root/.ssh/authorized_keys.",
                     "Transfer log /var/log/hosting-migration-transfers.log still holds 20 bytes."):
        assert sentence in result["found"]
    assert not [sentence for sentence in result["found"]
                if re.search(r"admin|lost\+found|provider|www\.conf|/default |crontabs/root|nobody|root\.pid", sentence)]


def test_check_only_on_a_clean_server_finds_nothing(tmp_path):
    write(tmp_path, "/etc/hostname", "transit2\n")
    write(tmp_path, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    fake = Server(tmp_path)
    fake.mariadb = {"databases": {"mysql"}, "users": {("root", "localhost")}}
    fake.postgresql = {"databases": {"template1"}, "users": {("pg_read_all_data", None)}}

    result = run_wipe(tmp_path, fake, check_only=True)

    assert result["found"] == [] and result["changed"] is False


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize("confirm", ["transit1", "dedicated1", "", "  ", None, "transit2.other"])
def test_another_server_name_is_refused_before_anything_is_read(server, confirm):
    fake = Server(server)
    before = tree(server)
    with pytest.raises(WipeRefused, match="nothing was changed"):
        run_wipe(server, fake, confirm=confirm)
    assert fake.calls == []
    assert tree(server) == before


def test_the_refusal_names_the_server(server):
    with pytest.raises(WipeRefused, match=r"calls itself container-id / transit2, not transit1"):
        run_wipe(server, Server(server), confirm="transit1")


@pytest.mark.parametrize("confirm", ["transit2", "TRANSIT2", "transit2.", "container-id"])
def test_the_servers_own_names_are_accepted(server, confirm):
    result = run_wipe(server, Server(server), confirm=confirm, check_only=True)
    assert result["changed"] is True


def test_a_database_server_that_does_not_answer_fails_before_anything_changes(server):
    fake = Server(server)
    fake.fail = {"mariadb": (1, "", "ERROR 2002 (HY000): Can't connect to local server through socket")}
    before = tree(server)
    with pytest.raises(WipeError, match=r"MariaDB: SELECT schema_name .* failed: ERROR 2002"):
        run_wipe(server, fake)
    assert tree(server) == before


def test_an_engine_that_is_not_installed_is_not_asked(server):
    fake = Server(server)
    result = run_wipe(server, fake, layout=layout_of(server, mariadb=None, psql=None))
    assert result["found"] == [] and result["errors"] == []
    assert not [argv for argv in fake.calls if argv[0] in ("mariadb", "runuser")]


# --- what the wipe does not remove by itself -----------------------------------------------------

def test_things_of_no_account_are_left_and_listed(server):
    fake = Server(server)
    fake.mariadb["databases"].add("legacy_shop")
    fake.postgresql["users"].add(("reporting", None))
    write(server, "/etc/nginx/sites-enabled/shop.conf", "server {}\n")
    write(server, "/etc/php/8.4/fpm/pool.d/shop.conf", "[shop]\n")

    result = run_wipe(server, fake)

    assert result["errors"] == []
    assert result["found"] == ["nginx site /etc/nginx/sites-enabled/shop.conf is still there.",
                               "PHP-FPM pool /etc/php/8.4/fpm/pool.d/shop.conf is still there.",
                               "MariaDB database legacy_shop is still there.",
                               "PostgreSQL role reporting is still there."]
    assert "legacy_shop" in fake.mariadb["databases"]


# --- interrupted runs and failures ---------------------------------------------------------------

def test_leftovers_of_an_interrupted_wipe_are_found_by_their_names(server):
    # An earlier run removed alice's user, group and home, then stopped.
    Server(server).edit("/etc/passwd", "alice")
    Server(server).edit("/etc/group", "alice")
    (server / "etc/hosting/accounts/alice.yml").unlink()
    write(server, "/home/carol/file", "x")  # a home whose user is gone

    fake = Server(server)
    result = run_wipe(server, fake)

    assert result["errors"] == [] and result["found"] == []
    removed = {entry["name"]: entry["removed"] for entry in result["removed"]["accounts"]}
    assert removed["alice"] == [
        "nginx site /etc/nginx/sites-enabled/account-alice.conf",
        "PHP-FPM pool /etc/php/8.2/fpm/pool.d/account-alice.conf",
        "PHP-FPM pool /etc/php/8.4/fpm/pool.d/account-alice.conf",
        "crontab /var/spool/cron/crontabs/alice",
        "MariaDB database alice_app", "PostgreSQL database alice_app",
        "MariaDB user 'alice_app'@'%'", "MariaDB user 'alice_app'@'localhost'", "MariaDB role 'alice_reader'",
        "PostgreSQL role alice_app",
        "mail spool /var/mail/alice", "home /home/alice", "state file /etc/hosting/account-states/alice"]
    assert removed["carol"] == ["home /home/carol"]
    # alice's processes and /tmp files have a UID no account has any more: they still go.
    assert "process 301 (php-fpm8.4) of UID 10001" in result["removed"]["other"]
    assert "temporary file /tmp/sess_alice (owner UID 10001)" in result["removed"]["other"]


def test_a_failed_step_does_not_stop_the_others_and_the_spec_stays_for_the_next_run(server):
    fake = Server(server)
    fake.fail = {"userdel alice": (8, "", "userdel: user alice is currently used by process 301")}

    result = run_wipe(server, fake)

    assert result["errors"] == ["Removing the Unix user alice failed: userdel: user alice is currently used by "
                                "process 301"]
    assert "Unix user alice (UID 10001) is still there." in result["found"]
    assert "Account spec /etc/hosting/accounts/alice.yml is still there." in result["found"]
    assert not os.path.exists(server / "home/alice")
    assert "Unix user bob (UID 10002)" in result["removed"]["accounts"][1]["removed"]

    fake.fail = {}
    again = run_wipe(server, fake)
    assert again["errors"] == [] and again["found"] == []
    assert again["removed"]["accounts"] == [{"name": "alice", "removed": [
        "Unix user alice (UID 10001)", "Unix group alice (GID 10001)",
        "account spec /etc/hosting/accounts/alice.yml"]}]
    assert again["reloaded"] == ["nginx", "php8.2-fpm", "php8.4-fpm"]


def test_a_failed_nginx_test_is_an_error_and_nginx_is_not_reloaded(server):
    fake = Server(server)
    fake.fail = {"nginx -t": (1, "", "nginx: [emerg] unknown directive \"bogus\"")}

    result = run_wipe(server, fake)

    assert result["errors"] == ['The nginx configuration test (the account sites removed, nginx not reloaded) '
                                'failed: nginx: [emerg] unknown directive "bogus"']
    assert ["systemctl", "try-reload-or-restart", "nginx"] not in fake.calls
    assert result["found"] == ["Account spec /etc/hosting/accounts/alice.yml is still there."]


def test_processes_that_survive_are_an_error(server):
    result = run_wipe(server, Server(server), signals=FakeSignals(server, immortal={301}))
    assert any(error.startswith("Could not stop the processes of alice: processes of UID 10001 are still running")
               for error in result["errors"])
    assert "Process 301 (php-fpm8.4) of UID 10001 is still running." in result["found"]


def test_a_broken_spec_is_wiped_by_its_name(server):
    write(server, "/etc/hosting/accounts/alice.yml", "name: alice\nuid: 10001\ngid: 10001\npassword: x\n")
    result = run_wipe(server, Server(server))
    assert result["warnings"] and "the account is wiped by its name" in result["warnings"][0]
    assert result["errors"] == [] and result["found"] == []
    assert result["removed"]["accounts"][0]["removed"] == ALICE_REMOVED


def test_a_home_that_is_a_symbolic_link_is_removed_not_followed(server):
    write(server, "/data/keep/important", "x")
    os.symlink(str(server / "data/keep"), str(server / "home/dave"))
    result = run_wipe(server, Server(server))
    assert {"name": "dave", "removed": ["home /home/dave"]} in result["removed"]["accounts"]
    assert (server / "data/keep/important").exists()


def test_a_home_of_a_system_user_or_outside_home_and_srv_is_never_removed(server):
    write(server, "/etc/passwd", PASSWD + "eve:x:10003:10003::/var/www:/bin/bash\n"
                                          "mallory:x:10004:10004::/home/admin:/bin/bash\n")
    write(server, "/var/www/index.html", "the provider's")
    result = run_wipe(server, Server(server))
    assert (server / "var/www/index.html").exists()
    assert (server / "home/admin/.bashrc").exists()
    removed = {entry["name"]: entry["removed"] for entry in result["removed"]["accounts"]}
    assert removed["eve"] == ["Unix user eve (UID 10003)"]
    assert removed["mallory"] == ["Unix user mallory (UID 10004)"]


@pytest.mark.parametrize("name, expected", [
    ("/home/alice", True), ("/srv/alice", True), ("/home/alice/", True), ("/var/www", False),
    ("/home", False), ("/home/../etc", False), ("/home/lost+found", False), ("/home/a/b", False), ("", False)])
def test_home_candidates(name, expected):
    assert server_wipe._home_candidate(name) is expected


def test_a_process_started_after_the_server_was_read_is_stopped_too(server):
    fake = Server(server)

    def cron_starts_a_job(argv):
        if argv[:2] == ["nginx", "-t"]:
            fake_process(server, 401, 10001, "php")
        return fake(argv)

    result = run_wipe(server, cron_starts_a_job)
    assert "process 401 (php)" in result["removed"]["accounts"][0]["removed"]
    assert result["found"] == [] and result["errors"] == []


def test_without_a_proc_directory_no_process_is_looked_for(server):
    for directory in sorted((server / "proc").iterdir()):
        for entry in directory.iterdir():
            entry.unlink()
        directory.rmdir()
    (server / "proc").rmdir()
    result = run_wipe(server, Server(server))
    assert result["errors"] == [] and result["found"] == []


# --- the module's glue ---------------------------------------------------------------------------

class FakeModule:
    """What run_server_wipe uses of AnsibleModule; fail_json raises."""

    class Failed(Exception):
        pass

    def __init__(self, **params):
        self.params = dict(dict(spec_dir="/etc/hosting/accounts", min_uid=10000, check_only=False), **params)
        self.check_mode = False
        self.warnings = []

    def fail_json(self, **result):
        raise self.Failed(result)

    def warn(self, text):
        self.warnings.append(text)

    def get_bin_path(self, name):
        return None

    def run_command(self, argv):
        raise AssertionError("no command may run: %r" % argv)


def test_the_module_refuses_another_server_before_anything_runs():
    module = FakeModule(confirm="surely-not-this-host.invalid")
    with pytest.raises(FakeModule.Failed) as failed:
        server_wipe.run_server_wipe(module)
    assert "refusing to wipe it" in failed.value.args[0]["msg"]


def test_the_module_refuses_an_implausible_min_uid():
    module = FakeModule(confirm="transit2", min_uid=100)
    with pytest.raises(FakeModule.Failed) as failed:
        server_wipe.run_server_wipe(module)
    assert failed.value.args[0]["msg"].startswith("min_uid 100 is not a plausible lowest account UID")


@pytest.mark.parametrize("check_mode, check_only, fails", [(False, False, True), (True, False, False),
                                                          (False, True, False)])
def test_the_module_fails_on_leftovers_only_when_it_wiped(monkeypatch, check_mode, check_only, fails):
    seen = {}

    def fake_wipe(layout, runner, confirm, check_only=False):
        seen["check_only"] = check_only
        return {"removed": {"accounts": [], "transfer_credentials": [], "other": []}, "reloaded": [],
                "found": ["MariaDB database legacy is still there."], "errors": ["Could not remove x: y"],
                "warnings": ["a warning"], "changed": True}

    monkeypatch.setattr(server_wipe, "wipe", fake_wipe)
    module = FakeModule(confirm="transit2", check_only=check_only)
    module.check_mode = check_mode
    if fails:
        with pytest.raises(FakeModule.Failed) as failed:
            server_wipe.run_server_wipe(module)
        assert failed.value.args[0]["msg"] == (
            "The wipe is not complete: 1 step(s) failed: Could not remove x: y; the check found 1 thing(s) left: "
            "MariaDB database legacy is still there. Run it again once the cause is fixed; what it removed is in "
            "'removed'.")
        assert failed.value.args[0]["found"] == ["MariaDB database legacy is still there."]
    else:
        result = server_wipe.run_server_wipe(module)
        assert result["found"] == ["MariaDB database legacy is still there."]
    assert seen["check_only"] is (check_mode or check_only)
    assert module.warnings == ["a warning"]


def test_nothing_named_after_a_system_user_is_taken_for_an_account(server):
    write(server, "/etc/hosting/accounts/root.yml", "name: root\nuid: 10009\ngid: 10009\n")
    write(server, "/etc/group", GROUP + "admin2:x:10600:\n")
    write(server, "/etc/group", (server / "etc/group").read_text().replace("admin:x:1000:", "admin:x:10700:"))
    write(server, "/etc/nginx/sites-enabled/account-root.conf", "server {}\n")

    result = run_wipe(server, Server(server))

    assert "root" not in [entry["name"] for entry in result["removed"]["accounts"]]
    assert "admin" not in [entry["name"] for entry in result["removed"]["accounts"]]
    assert (server / "var/spool/cron/crontabs/root").exists()
    assert (server / "home/admin/.bashrc").exists()
    assert result["found"] == ["Unix group admin (GID 10700) is still there.",
                               "Account spec /etc/hosting/accounts/root.yml is still there.",
                               "nginx site /etc/nginx/sites-enabled/account-root.conf is still there."]
