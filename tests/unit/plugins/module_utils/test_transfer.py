"""Server-to-server transfers: input checks, the authorized_keys line and its file, the endpoint's
decisions, rsync's statistics, the dump | ssh pipe; and, when OpenSSH's sshd is installed, the real
thing against an sshd started on 127.0.0.1 by the test (forced command, from=, expiry-time)."""
import datetime
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import transfer_endpoint as endpoint
from ansible_collections.hosting.migration.plugins.module_utils.transfer import (
    TransferError, TransferInputError, check_database, check_directory, check_peer, check_source_addresses,
    check_transfer_id, command_environment, first_lines, key_paths, parse_public_key, ssh_base_command)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_authorized import (
    authorized_line, check_allow, edit_authorized_keys, expiry, find_line, parse_expiry, render_endpoint,
    run_transfer_authorization, update_authorized_keys)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_keys import known_hosts_line, run_transfer_key
from ansible_collections.hosting.migration.plugins.module_utils.transfer_rsync import (
    check_bandwidth, count_changes, exit_sentence, parse_stats, rsync_command, run_account_sync)
from ansible_collections.hosting.migration.plugins.module_utils.transfer_stream import (
    check_databases, dump_command, mariadb_dump_tool, pipe, pipe_failure, restore_command, run_database_copy)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0dZ3H0M1yJjO4o1GxS5Qe8c1N1h2pL0YkK7z5w9sA"
KEY_DATA = KEY.split()[1]
OTHER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBfT2Q1xZ0a7Xl5eP1v4wS8m3bN6cR9dK2jH5gF0qL7u"
RSA_KEY = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDAw8ZtQ1yTb4nkvG4Zz1c4cX1m7bX8Jt2xY0b9lS0eJq7hO2aU3fV9"
           "wQ6uZ1nP3oT5rE8sD4gH7jK2lM6nB9vC0xZ5aS1dF3gH8jK4lL6mN2bV7cX9zA0sD5fG1hJ3kL8qW4eR6tY2uI7oP9aS1dF3gH5j"
           "K7lZ9xC2vB4nM6qW8eR0tY3uI5oP7aS9dF1gH3jK5lZ7xC9vB1nM3qW5eR7tY9uI1oP3aS5dF7gH9jK1lZ3xC5vB7nM9qW1w==")
NOW = 1767268800.0  # 2026-01-01T12:00:00Z
ALLOW = {"transfer_id": "move-12-alice", "source": ["10.77.0.20"], "expires": NOW + 3600,
         "allow": [{"rsync_to": "/home/alice"}, {"mariadb_restore": "alice_app"}, {"postgresql_restore": "alice_pg"}]}

# What rsync 3.2.7 (Debian 12's bookworm release) and 3.5.0 (bookworm-security) run on the target
# for `rsync -aHAXS --numeric-ids [--delete] --modify-window=-1 --info=stats2 ... SRC/ root@T:/home/alice/`,
# captured with -e pointing at a script that prints its arguments (the two versions send the same;
# 3.4.x, Debian 13's, lies between them). The module adds --out-format=...%i (--log-format=%i).
SERVER = "rsync --server -lHogDtpAXrSe.iLsfxCIvu"
RECORDED = [
    SERVER + " --delete -@-1 --numeric-ids --info=STATS2 . /home/alice/",
    "rsync --server -nlHogDtpAXrSe.iLsfxCIvu --delete -@-1 --numeric-ids --info=STATS2 . /home/alice/",
    SERVER + " --log-format=%i --delete -@-1 --numeric-ids --info=STATS2 . /home/alice/",
    SERVER + " --bwlimit=10240 --delete -@-1 --numeric-ids --info=STATS2 . /home/alice/",
    "rsync --server -nlHogDtpAXrSe.iLsfxCIvu --log-format=%i --bwlimit=51200 --delete -@-1 --numeric-ids "
    "--info=STATS2 . /home/alice/",
    SERVER + " --log-format=%i -@-1 --numeric-ids --info=STATS2 . /home/alice/",
    SERVER + " --log-format=%i --delete -@-1 --numeric-ids --info=STATS2 . /home/alice",
]
TAIL = " --delete -@-1 --numeric-ids --info=STATS2 . "
REFUSED = [
    ("", "interactive"),
    ("bash", "not an operation"),
    ("/usr/bin/rsync --server -lHogDtpAXrSe.iLsfxCIvu . /home/alice/", "not an operation"),
    ("sh -c rsync", "not an operation"),
    ("scp -t /home/alice", "not an operation"),
    ("internal-sftp", "not an operation"),
    ("rsync -a /etc root@10.77.0.20:/tmp", "characters"),
    ("rsync -a /etc /tmp", "only 'rsync --server'"),
    (SERVER + TAIL + "/home/bob/", "not allowed"),
    (SERVER + TAIL + "/home/alice2/", "not allowed"),
    (SERVER + TAIL + "/home/alice/sub/", "not allowed"),
    (SERVER + TAIL + "/home/", "not allowed"),
    (SERVER + TAIL + "/home/alice/../bob/", "'..'"),
    (SERVER + TAIL + "/home/alice/..", "'..'"),
    (SERVER + TAIL + "../../etc/", "'..'"),
    (SERVER + TAIL + "/home//alice/", "not allowed"),
    (SERVER + TAIL + "/home/alice/;id", "characters"),
    (SERVER + TAIL + "/home/alice/ ; rm -rf /", "characters"),
    (SERVER + TAIL + "/home/alice/`id`", "characters"),
    (SERVER + TAIL + "/home/alice/$(id)", "characters"),
    (SERVER + TAIL + "/home/alice/|id", "characters"),
    (SERVER + TAIL + "/home/alice/&&id", "characters"),
    (SERVER + TAIL + "/home/alice/\nid", "characters"),
    (SERVER + TAIL + "'/home/alice/'", "characters"),
    (SERVER + TAIL + "/home/alic\\e/", "characters"),
    (SERVER + TAIL + "/home/alicé/", "characters"),
    (SERVER + TAIL + "/home/alice/ /etc/", "exactly '. DIRECTORY'"),
    (SERVER + TAIL + "/home/alice/ extra", "exactly '. DIRECTORY'"),
    (SERVER + " --delete -@-1 --numeric-ids --info=STATS2 /home/alice/", "'/home/alice/' is not allowed"),
    (SERVER + " --delete -@-1 --numeric-ids --info=STATS2 .", "exactly '. DIRECTORY'"),
    (SERVER + "  --delete . /home/alice/", "single spaces"),
    ("rsync --server --sender -lHogDtpAXrSe.iLsfxCIvu . /home/alice/", "flags"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --sender . /home/alice/", "--sender"),
    ("rsync --server -lHogDtpAXrSse.iLsfxCIvu . /home/alice/", "flags"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu -s . /home/alice/", "-s"),
    ("rsync --server -lHogDtpAXrSze.iLsfxCIvu . /home/alice/", "flags"),
    ("rsync --server -vlHogDtpAXrSe.iLsfxCIvu . /home/alice/", "flags"),
    ("rsync --server -lHogDtpAXrS -e.iLsfxCIvu -e.iLsfxCIvu . /home/alice/", "-e.iLsfxCIvu"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu -e sh . /home/alice/", "-e"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --rsh=sh . /home/alice/", "--rsh"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --remove-source-files . /home/alice/", "--remove-source-files"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --log-file=/etc/passwd . /home/alice/", "--log-file"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --link-dest=/etc . /home/alice/", "--link-dest"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --compare-dest=/root . /home/alice/", "--compare-dest"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --temp-dir=/etc . /home/alice/", "--temp-dir"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --partial-dir=/etc . /home/alice/", "--partial-dir"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --backup-dir=/etc . /home/alice/", "--backup-dir"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --files-from=/etc/shadow . /home/alice/", "--files-from"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --chown=0:0 . /home/alice/", "characters"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --chown=root . /home/alice/", "--chown"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --super . /home/alice/", "--super"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --protect-args . /home/alice/", "--protect-args"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --write-devices . /home/alice/", "--write-devices"),
    ("rsync --server --daemon . /home/alice/", "flags"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --delete --delete . /home/alice/", "twice"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --log-format=%i%n . /home/alice/", "--log-format"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --bwlimit=1k . /home/alice/", "--bwlimit"),
    ("rsync --server -lHogDtpAXrSe.iLsfxCIvu --info=ALL4,STATS2 . /home/alice/", "--info"),
    ("hosting-restore mariadb mysql", "not allowed"),
    ("hosting-restore mariadb bob_app", "not allowed"),
    ("hosting-restore mariadb alice_pg", "not allowed"),
    ("hosting-restore postgresql alice_app", "not allowed"),
    ("hosting-restore mariadb ALICE_APP", "not allowed"),
    ("hosting-restore mariadb alice_app;", "characters"),
    ("hosting-restore mariadb alice_app'", "characters"),
    ("hosting-restore mariadb 'alice_app'", "characters"),
    ('hosting-restore mariadb "alice_app"', "characters"),
    ("hosting-restore mariadb alice_app --init-command=x", "use 'hosting-restore"),
    ("hosting-restore mariadb --execute=DROP", "not allowed"),
    ("hosting-restore mariadb", "use 'hosting-restore"),
    ("hosting-restore sqlite alice_app", "use 'hosting-restore"),
    ("hosting-restore mariadb alice_app/../mysql", "'..'"),
    ("mariadb alice_app", "not an operation"),
    ("mariadb --database=alice_app", "not an operation"),
    ("psql alice_app", "not an operation"),
    ("runuser -u postgres -- psql alice_app", "not an operation"),
]


# ---------------------------------------------------------------------------------------------
# Input


@pytest.mark.parametrize("value", ["move-12-alice", "a", "0", "x" * 40])
def test_transfer_id_accepted(value):
    assert check_transfer_id(value) == value


@pytest.mark.parametrize("value", ["", "-x", "Move", "a_b", "a/b", "a..b/", "x" * 41, "a b", "a;b", None, 12])
def test_transfer_id_refused(value):
    with pytest.raises(TransferInputError, match="transfer_id"):
        check_transfer_id(value)


def test_peer_and_source_addresses():
    assert check_peer("10.77.0.30") == "10.77.0.30"
    assert check_peer("FD77:7:0::30") == "fd77:7::30"
    assert check_peer("Transit1.Lab.") == "transit1.lab"
    for bad in ["", "-oProxyCommand=id", "a b", "host;id", "1.2.3", "[::1]", "a_b.example"]:
        with pytest.raises(TransferInputError):
            check_peer(bad)
    assert check_source_addresses("10.77.0.20") == ["10.77.0.20"]
    assert check_source_addresses(["10.77.0.20", "FD77:7::20", "10.77.0.20"]) == ["10.77.0.20", "fd77:7::20"]
    for bad in [[], ["dedicated1"], ["10.0.0.0/8"], ["*"], ["10.77.0.20,10.1.1.1"]]:
        with pytest.raises(TransferInputError, match="source"):
            check_source_addresses(bad)


def test_directories():
    assert check_directory("/home/alice/", "p") == "/home/alice"
    assert check_directory("/srv/www/alice.example", "p") == "/srv/www/alice.example"
    for bad, why in [("/", "plain"), ("/home", "too close"), ("home/alice", "plain"), ("/home/../etc", "plain"),
                     ("/home/./alice", "plain"), ("/home//alice", "plain"), ("/home/al ice", "plain"),
                     ("/home/alice;id", "plain"), ("/etc/ssh", "/etc"), ("/root/.ssh", "/root"),
                     ("/usr/local/bin", "/usr"), ("/var/lib/mysql", "/var/lib"), ("/var/spool/cron/x", "cron")]:
        with pytest.raises(TransferInputError, match=why):
            check_directory(bad, "p")


def test_databases():
    assert check_database("mariadb", "alice_app") == "alice_app"
    for engine, name, why in [("sqlite", "x", "engine"), ("mariadb", "mysql", "system"),
                              ("postgresql", "template1", "system"), ("mariadb", "a-b", "not valid"),
                              ("mariadb", "A", "not valid"), ("mariadb", "x" * 64, "not valid"),
                              ("mariadb", "a'b", "not valid"), ("mariadb", None, "not valid")]:
        with pytest.raises(TransferInputError, match=why):
            check_database(engine, name)
    assert check_databases([{"engine": "mariadb", "name": "a"}, {"engine": "postgresql", "name": "a"}]) == [
        ("mariadb", "a"), ("postgresql", "a")]
    for bad in [[], [{"engine": "mariadb", "name": "a"}] * 2, [{"engine": "mariadb", "name": "a", "host": "x"}]]:
        with pytest.raises(TransferInputError):
            check_databases(bad)


def test_public_keys():
    assert parse_public_key(KEY + " some comment") == ("ssh-ed25519", KEY_DATA)
    with pytest.raises(TransferInputError, match="ssh-ed25519"):
        parse_public_key(RSA_KEY)
    with pytest.raises(TransferInputError, match="base64"):
        parse_public_key("ssh-ed25519 not*base64")
    with pytest.raises(TransferInputError, match="does not hold"):
        parse_public_key("ssh-ed25519 " + RSA_KEY.split()[1])
    with pytest.raises(TransferInputError):
        parse_public_key('command="id" ' + KEY)
    assert known_hosts_line("10.77.0.30", KEY + " root@transit1") == "10.77.0.30 %s\n" % KEY
    assert known_hosts_line("fd77:7::30", KEY, 2222) == "[fd77:7::30]:2222 %s\n" % KEY


# ---------------------------------------------------------------------------------------------
# The authorized_keys line and file


def test_expiry_is_utc_and_rounded_up_to_the_minute():
    assert expiry(NOW, 3600) == (NOW + 3600, "202601011300Z")
    assert expiry(NOW + 1, 3600) == (NOW + 3660, "202601011301Z")
    assert expiry(NOW + 59.5, 60) == (NOW + 120, "202601011202Z")
    assert parse_expiry('from="x",expiry-time="202601011301Z",command="y"') == NOW + 3660
    assert parse_expiry("no option") is None
    for bad in [59, 7 * 86400 + 1, True, "3600"]:
        with pytest.raises(TransferInputError, match="valid_for_s"):
            expiry(NOW, bad)


def test_authorized_line():
    line = authorized_line("move-12-alice", KEY + " root@dedicated1", ["10.77.0.20", "fd77:7::20"], NOW + 3600)
    assert line == ('from="10.77.0.20,fd77:7::20",restrict,expiry-time="202601011300Z",'
                    'command="/usr/local/lib/hosting-migration/transfer-endpoint move-12-alice" '
                    '%s hosting-migration:move-12-alice' % KEY)
    paths = dict(authorized_keys="/x/ak", config_dir="/x/conf", endpoint_path="/x/ep", log_path="/x/log")
    assert 'command="/x/ep --config-dir /x/conf --log-file /x/log t1"' in authorized_line("t1", KEY, ["127.0.0.1"], NOW, paths)


OURS = authorized_line("move-12", KEY, ["10.77.0.20"], NOW + 3600)


@pytest.mark.parametrize("before, after", [
    (b"", (OURS + "\n").encode()),
    (b"ssh-ed25519 AAAA admin\n", ("ssh-ed25519 AAAA admin\n" + OURS + "\n").encode()),
    (b"ssh-ed25519 AAAA admin", ("ssh-ed25519 AAAA admin\n" + OURS + "\n").encode()),
    (b"# comment\r\nssh-rsa BBBB x\r\n\n", ("# comment\r\nssh-rsa BBBB x\r\n\n" + OURS + "\n").encode()),
])
def test_add_line_keeps_every_other_byte(before, after):
    assert edit_authorized_keys(before, "move-12", OURS) == after
    assert edit_authorized_keys(after, "move-12") == (before + b"\n" if before and not before.endswith(b"\n") else before)


def test_replace_and_remove_only_this_transfers_line():
    other = authorized_line("move-1", OTHER_KEY, ["10.77.0.21"], NOW)
    longer = authorized_line("move-123", OTHER_KEY, ["10.77.0.21"], NOW)
    data = ("ssh-ed25519 AAAA admin\n%s\n%s\n%s\n# hosting-migration:move-12\nlast-line-no-newline" % (
        other, OURS, longer)).encode()
    assert find_line(data, "move-12") == OURS
    newer = authorized_line("move-12", KEY, ["10.77.0.20"], NOW + 7200)
    replaced = edit_authorized_keys(data, "move-12", newer)
    assert replaced == data.replace((OURS + "\n").encode(), b"") + b"\n" + newer.encode() + b"\n"
    removed = edit_authorized_keys(data, "move-12")
    assert removed == data.replace((OURS + "\n").encode(), b"")
    assert find_line(removed, "move-1") == other and find_line(removed, "move-123") == longer
    assert edit_authorized_keys(removed, "move-12") == removed
    twice = (OURS + "\n" + OURS + "\n").encode()
    assert edit_authorized_keys(twice, "move-12") == b""


def test_update_file_keeps_mode_and_owner_and_follows_a_symlink(tmp_path):
    real = tmp_path / "real_keys"
    real.write_bytes(b"ssh-ed25519 AAAA admin")
    real.chmod(0o640)
    os.chown(str(real), 1234, 5678)
    link = tmp_path / "authorized_keys"
    link.symlink_to(real)
    inode = real.stat().st_ino
    assert update_authorized_keys(str(link), "move-12", OURS, check_mode=True)
    assert real.read_bytes() == b"ssh-ed25519 AAAA admin"
    assert update_authorized_keys(str(link), "move-12", OURS)
    assert not update_authorized_keys(str(link), "move-12", OURS)
    assert link.is_symlink() and real.read_bytes() == ("ssh-ed25519 AAAA admin\n" + OURS + "\n").encode()
    info = real.stat()
    assert (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) == (0o640, 1234, 5678)
    assert info.st_ino != inode  # replaced by a rename, never rewritten in place
    assert update_authorized_keys(str(link), "move-12")
    assert real.read_bytes() == b"ssh-ed25519 AAAA admin\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    fresh = tmp_path / "new" / "authorized_keys"
    assert update_authorized_keys(str(fresh), "move-12", OURS)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600 and stat.S_IMODE(fresh.parent.stat().st_mode) == 0o700


# ---------------------------------------------------------------------------------------------
# transfer_authorization


def target_paths(tmp_path):
    return dict(authorized_keys=str(tmp_path / "root-ssh" / "authorized_keys"), config_dir=str(tmp_path / "transfers"),
                endpoint_path=str(tmp_path / "lib" / "transfer-endpoint"), log_path=str(tmp_path / "transfers.log"))


def authorize(tmp_path, now=NOW, check_mode=False, diff=False, **params):
    args = dict(transfer_id="move-12-alice", state="present", public_key=KEY, source=["10.77.0.20"],
                allow=[{"rsync_to": str(tmp_path / "home" / "alice")}, {"mariadb_restore": "alice_app"}],
                valid_for_s=3600)
    args.update(params)
    return run_transfer_authorization(args, check_mode=check_mode, diff=diff, now=now, paths=target_paths(tmp_path))


def test_authorization_present_idempotent_renewed_absent(tmp_path):
    (tmp_path / "home").mkdir()
    paths = target_paths(tmp_path)
    os.makedirs(os.path.dirname(paths["authorized_keys"]))
    with open(paths["authorized_keys"], "w") as handle:
        handle.write("ssh-ed25519 AAAA admin")
    os.chmod(paths["authorized_keys"], 0o600)
    preview = authorize(tmp_path, check_mode=True, diff=True)
    assert preview["changed"] and not os.path.exists(paths["config_dir"]) and not os.path.exists(paths["endpoint_path"])
    assert preview["diff"]["before"] == "" and preview["authorized_keys_line"] in preview["diff"]["after"]
    result = authorize(tmp_path)
    assert result["changed"] and result["expires"] == "2026-01-01T13:00:00Z" and result["expiry_time"] == "202601011300Z"
    keys = open(paths["authorized_keys"]).read()
    assert keys == "ssh-ed25519 AAAA admin\n" + result["authorized_keys_line"] + "\n"
    assert 'expiry-time="202601011300Z"' in keys and keys.rstrip().endswith("hosting-migration:move-12-alice")
    config = json.load(open(result["config_path"]))
    assert config == {"transfer_id": "move-12-alice", "source": ["10.77.0.20"], "expires": NOW + 3600,
                      "expires_utc": "2026-01-01T13:00:00Z",
                      "allow": [{"rsync_to": str(tmp_path / "home" / "alice")}, {"mariadb_restore": "alice_app"}]}
    assert stat.S_IMODE(os.stat(result["config_path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths["config_dir"]).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(paths["endpoint_path"]).st_mode) == 0o755
    assert open(paths["endpoint_path"], "rb").read() == render_endpoint()
    # Again within the first half of the validity: nothing changes, the expiry stays.
    again = authorize(tmp_path, now=NOW + 1700, check_mode=False)
    assert not again["changed"] and again["expires"] == result["expires"]
    assert not authorize(tmp_path, now=NOW + 1700, check_mode=True)["changed"]
    # In the second half it is renewed.
    renewed = authorize(tmp_path, now=NOW + 1900)
    assert renewed["changed"] and renewed["expiry_time"] == "202601011332Z"
    assert open(paths["authorized_keys"]).read().count("hosting-migration:move-12-alice") == 1
    # A different allow list or source changes the config or the line.
    assert authorize(tmp_path, now=NOW + 1900, allow=[{"postgresql_restore": "alice_app"}])["changed"]
    assert authorize(tmp_path, now=NOW + 1900, source=["10.77.0.21"])["changed"]
    assert 'from="10.77.0.21"' in open(paths["authorized_keys"]).read()
    # Removal keeps the other line exactly.
    assert authorize(tmp_path, state="absent", check_mode=True)["changed"]
    assert os.path.exists(result["config_path"])
    gone = authorize(tmp_path, state="absent", diff=True)
    assert gone["changed"] and gone["diff"]["after"] == ""
    assert open(paths["authorized_keys"]).read() == "ssh-ed25519 AAAA admin\n"
    assert not os.path.exists(result["config_path"]) and os.path.exists(paths["endpoint_path"])
    assert not authorize(tmp_path, state="absent")["changed"]


@pytest.mark.parametrize("params, why", [
    (dict(allow=[]), "allow is empty"),
    (dict(allow=[{"rsync_to": "/home/alice", "mariadb_restore": "a"}]), "exactly one"),
    (dict(allow=[{"shell": "/bin/sh"}]), "exactly one"),
    (dict(allow=[{"rsync_to": "/etc/cron.d"}]), "/etc"),
    (dict(allow=[{"rsync_to": "/root/.ssh"}]), "/root"),
    (dict(allow=[{"rsync_to": "/home"}]), "two levels"),
    (dict(allow=[{"rsync_to": "/home/../etc"}]), "plain"),
    (dict(allow=[{"mariadb_restore": "mysql"}]), "system"),
    (dict(allow=[{"postgresql_restore": "a;b"}]), "not valid"),
    (dict(source=["dedicated1"]), "source"),
    (dict(public_key=RSA_KEY), "ssh-ed25519"),
    (dict(valid_for_s=10), "valid_for_s"),
    (dict(transfer_id="../x"), "transfer_id"),
])
def test_authorization_refuses_bad_input_before_any_change(tmp_path, params, why):
    (tmp_path / "home").mkdir()
    with pytest.raises(TransferInputError, match=why):
        authorize(tmp_path, **params)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


def test_allow_refuses_symlinks_and_missing_parents(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real")
    with pytest.raises(TransferInputError, match="symbolic link"):
        check_allow([{"rsync_to": str(tmp_path / "home" / "alice")}])
    with pytest.raises(TransferInputError, match="parent directory"):
        check_allow([{"rsync_to": str(tmp_path / "nothing" / "alice")}])
    assert check_allow([{"rsync_to": str(tmp_path / "real" / "alice") + "/"}] * 2) == [
        {"rsync_to": str(tmp_path / "real" / "alice")}]


# ---------------------------------------------------------------------------------------------
# The endpoint's decisions


@pytest.mark.parametrize("command", RECORDED)
def test_endpoint_accepts_what_rsync_sends(command):
    argv, detail = endpoint.decide(command, ALLOW, now=NOW, client="10.77.0.20")
    assert argv == command.split(" ") and detail == "rsync_to /home/alice"


@pytest.mark.parametrize("command, why", REFUSED)
def test_endpoint_refuses(command, why):
    with pytest.raises(endpoint.Refused) as refusal:
        endpoint.decide(command, ALLOW, now=NOW, client="10.77.0.20")
    assert why in str(refusal.value)


def test_endpoint_restores_are_built_by_the_endpoint():
    assert endpoint.decide("hosting-restore mariadb alice_app", ALLOW, now=NOW) == (
        ["mariadb", "--database=alice_app"], "mariadb_restore alice_app")
    assert endpoint.decide("hosting-restore postgresql alice_pg", ALLOW, now=NOW) == (
        ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "alice_pg"],
        "postgresql_restore alice_pg")


def test_endpoint_refuses_after_expiry_and_from_other_addresses():
    command = RECORDED[0]
    with pytest.raises(endpoint.Refused, match="expired"):
        endpoint.decide(command, ALLOW, now=NOW + 3600)
    with pytest.raises(endpoint.Refused, match="expired"):
        endpoint.decide(command, dict(ALLOW, expires="never"), now=NOW)
    with pytest.raises(endpoint.Refused, match="not allowed"):
        endpoint.decide(command, ALLOW, now=NOW, client="10.77.0.21")
    assert endpoint.decide(command, dict(ALLOW, source=["fd77:7::20"]), now=NOW, client="FD77:7:0::20")
    with pytest.raises(endpoint.Refused, match="not allowed"):
        endpoint.decide(command, dict(ALLOW, allow=[]), now=NOW)


def endpoint_config(tmp_path, allow, expires=None):
    config_dir = tmp_path / "transfers"
    config_dir.mkdir(exist_ok=True)
    config = dict(transfer_id="t1", source=["127.0.0.1"], allow=allow,
                  expires=time.time() + 600 if expires is None else expires)
    (config_dir / "t1.json").write_text(json.dumps(config))
    return ["--config-dir", str(config_dir), "--log-file", str(tmp_path / "log")]


class Exec(object):
    def __init__(self):
        self.calls = []

    def __call__(self, program, argv, env):
        self.calls.append((program, argv, env))


def run_main(argv, command, client="127.0.0.1 40000 127.0.0.1 22"):
    execve, errors = Exec(), []

    class Err(object):
        def write(self, text):
            errors.append(text)

        def flush(self):
            pass

    environ = dict(SSH_ORIGINAL_COMMAND=command, HOME="/root", LD_PRELOAD="/tmp/evil.so", RSYNC_RSH="sh")
    if client:
        environ["SSH_CONNECTION"] = client
    rc = endpoint.main(argv, environ, execve=execve, stderr=Err())
    return rc, execve.calls, "".join(errors)


def test_endpoint_main_runs_the_command_without_a_shell_and_logs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    args = endpoint_config(tmp_path, [{"rsync_to": str(tmp_path / "home" / "alice")}, {"mariadb_restore": "a"}])
    command = SERVER + TAIL + str(tmp_path / "home" / "alice") + "/"
    rc, calls, errors = run_main(args + ["t1"], command)
    assert rc == 0 and errors == ""
    program, argv, env = calls[0]
    assert program == shutil.which("rsync", path=endpoint.SAFE_PATH) and argv == command.split(" ")
    assert env["PATH"] == endpoint.SAFE_PATH and "LD_PRELOAD" not in env and "RSYNC_RSH" not in env
    assert os.getcwd() == "/"
    rc, calls, _ = run_main(args + ["t1"], "hosting-restore mariadb a")
    if calls:
        assert os.path.basename(calls[0][0]) in ("mariadb", "mysql") and calls[0][1][-1] == "--database=a"
        assert calls[0][1][1:-1] in ([], ["--sandbox"])
    log = (tmp_path / "log").read_text().splitlines()
    assert "transfer=t1 client=127.0.0.1 accepted rsync_to %s" % (tmp_path / "home" / "alice") in log[0]
    assert stat.S_IMODE((tmp_path / "log").stat().st_mode) == 0o600


@pytest.mark.parametrize("args, command, client, why", [
    ([], RECORDED[0], "127.0.0.1 1 127.0.0.1 22", "exactly one transfer id"),
    (["t1", "t2"], RECORDED[0], "127.0.0.1 1 127.0.0.1 22", "exactly one transfer id"),
    (["t9"], RECORDED[0], "127.0.0.1 1 127.0.0.1 22", "not authorised"),
    (["../t1"], RECORDED[0], "127.0.0.1 1 127.0.0.1 22", "not valid"),
    (["t1"], RECORDED[0], None, "not started by sshd"),
    (["t1"], RECORDED[0], "10.9.9.9 1 127.0.0.1 22", "connections from 10.9.9.9"),
    (["t1"], "id; cat /etc/shadow", "127.0.0.1 1 127.0.0.1 22", "characters"),
])
def test_endpoint_main_refuses_with_a_message_and_exit_1(tmp_path, args, command, client, why):
    config = endpoint_config(tmp_path, [{"rsync_to": "/home/alice"}])
    rc, calls, errors = run_main(config + args, command, client)
    assert rc == 1 and calls == [] and why in errors and errors.startswith("hosting-migration transfer ")
    assert "refused" in (tmp_path / "log").read_text()


def test_endpoint_main_refuses_expired_and_symlinked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = endpoint_config(tmp_path, [{"rsync_to": "/home/alice"}], expires=time.time() - 1)
    rc, calls, errors = run_main(args + ["t1"], RECORDED[0])
    assert rc == 1 and "expired" in errors
    (tmp_path / "real").mkdir()
    (tmp_path / "home").symlink_to(tmp_path / "real")
    target = str(tmp_path / "home" / "alice")
    args = endpoint_config(tmp_path, [{"rsync_to": target}])
    rc, calls, errors = run_main(args + ["t1"], SERVER + TAIL + target + "/")
    assert rc == 1 and "symbolic link" in errors and calls == []


def test_mariadb_sandbox_where_the_client_has_it(tmp_path):
    new, old = tmp_path / "new-client", tmp_path / "old-client"
    new.write_text("#!/bin/sh\necho '  --sandbox           Disallow commands that access the file system'\n")
    old.write_text("#!/bin/sh\necho '  --safe-updates'\n")
    for script in (new, old):
        script.chmod(0o755)
    assert endpoint.mariadb_sandbox(str(new), ["mariadb", "--database=a"]) == ["mariadb", "--sandbox", "--database=a"]
    assert endpoint.mariadb_sandbox(str(old), ["mysql", "--database=a"]) == ["mysql", "--database=a"]
    assert endpoint.mariadb_sandbox(str(tmp_path / "missing"), ["mariadb", "--database=a"]) == ["mariadb", "--database=a"]


def test_rendered_endpoint_runs_as_a_program(tmp_path):
    script = tmp_path / "transfer-endpoint"
    script.write_bytes(render_endpoint())
    script.chmod(0o755)
    assert render_endpoint().startswith(b"#!/usr/bin/python3 -I\n# -*- coding: utf-8 -*-\n")
    args = endpoint_config(tmp_path, [{"rsync_to": "/home/alice"}])
    env = dict(PATH="/usr/bin:/bin", SSH_ORIGINAL_COMMAND="cat /etc/shadow", SSH_CONNECTION="127.0.0.1 1 127.0.0.1 22")
    process = subprocess.run([sys.executable, "-I", str(script)] + args + ["t1"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    assert process.returncode == 1 and process.stdout == ""
    assert process.stderr == "hosting-migration transfer t1: refused: 'cat' is not an operation of this transfer " \
                             "(rsync --server ..., hosting-restore ..., hosting-restore-test ...)\n"


# ---------------------------------------------------------------------------------------------
# rsync: the command, what it sends, its statistics


def test_rsync_command_and_what_the_installed_rsync_sends(tmp_path):
    paths = key_paths("move-12-alice", "/root/.ssh/hosting-migration")
    argv = rsync_command(paths, "fd77:7::30", "/home/alice", "/home/alice", delete=True, bandwidth_limit="50M",
                         dry_run=True)
    assert argv[:8] == ["rsync", "-aHAXS", "--numeric-ids", "--modify-window=-1", "--info=stats2",
                        "--out-format=hm-item:%i", "--delete", "--bwlimit=50M"]
    assert argv[8] == "--dry-run" and argv[-2:] == ["/home/alice/", "root@[fd77:7::30]:/home/alice/"]
    assert argv[10] == " ".join(ssh_base_command(paths))
    assert "-i /root/.ssh/hosting-migration/move-12-alice/id_ed25519" in argv[10]
    assert "StrictHostKeyChecking=yes" in argv[10] and "-F /dev/null" in argv[10]
    if not shutil.which("rsync"):
        pytest.skip("rsync is not installed here")
    capture = tmp_path / "capture"
    capture.write_text("#!/bin/sh\nprintf '%s\\n' \"$@\" > \"$0.args\"\nexit 1\n")
    capture.chmod(0o755)
    (tmp_path / "src").mkdir()
    for delete, limit, dry in [(True, None, False), (True, "50M", True), (False, "2000", False)]:
        argv = rsync_command(paths, "10.77.0.30", str(tmp_path / "src"), "/home/alice", delete=delete,
                             bandwidth_limit=limit, dry_run=dry)
        argv[argv.index("-e") + 1] = str(capture)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=command_environment())
        sent = (tmp_path / "capture.args").read_text().splitlines()
        assert sent[:3] == ["-l", "root", "10.77.0.30"]
        command = " ".join(sent[3:])
        assert endpoint.decide(command, ALLOW, now=NOW)[1] == "rsync_to /home/alice"
        with pytest.raises(endpoint.Refused):
            endpoint.decide(command.replace("/home/alice/", "/home/bob/"), ALLOW, now=NOW)


STATS_TEXT = """\
Number of files: 20,013 (reg: 20,000, dir: 12, link: 1)
Number of created files: 20,013 (reg: 20,000, dir: 12, link: 1)
Number of deleted files: 3 (reg: 2, dir: 1)
Number of regular files transferred: 20,000
Total file size: 904,123,456 bytes
Total transferred file size: 904,123,456 bytes
Literal data: 904,000,000 bytes
Matched data: 123,456 bytes
File list size: 589,744
File list generation time: 0.012 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 905,012,345
Total bytes received: 380,123

sent 905,012,345 bytes  received 380,123 bytes  72,431,397.44 bytes/sec
total size is 904,123,456  speedup is 1.00
"""


def test_parse_stats():
    assert parse_stats(STATS_TEXT) == dict(
        files=20013, created=20013, deleted=3, transferred=20000, total_size=904123456,
        transferred_size=904123456, literal_data=904000000, matched_data=123456, file_list_size=589744,
        bytes_sent=905012345, bytes_received=380123)
    assert parse_stats("rsync error: some files could not be transferred (code 23)") == {}
    assert count_changes(["hm-item:>f+++++++++", "hm-item:*deleting  ", "hm-item:.d..t......", "Number of files: 3"]) == (3, 1)


def test_stats_and_changes_of_a_real_rsync_run(tmp_path):
    if not shutil.which("rsync"):
        pytest.skip("rsync is not installed here")
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_bytes(b"x" * 1000)
    (src / "sub" / "b").write_bytes(os.urandom(5000))
    os.link(str(src / "a"), str(src / "hard"))
    dst.mkdir()
    (dst / "stale").write_text("old")

    def sync():
        process = subprocess.run(["rsync", "-aHAXS", "--numeric-ids", "--delete", "--modify-window=-1", "--info=stats2",
                                  "--out-format=hm-item:%i", str(src) + "/", str(dst) + "/"],
                                 stdout=subprocess.PIPE, universal_newlines=True, env=command_environment(), check=True)
        return parse_stats(process.stdout), count_changes(process.stdout.splitlines())

    stats, changes = sync()
    assert stats["files"] == 5 and stats["deleted"] == 1 and stats["transferred"] == 2
    assert stats["total_size"] == 7000 and stats["literal_data"] == 6000 and stats["bytes_sent"] > 6000
    assert changes[1] == 1 and changes[0] >= 5
    stats, changes = sync()
    assert stats["transferred"] == 0 and stats["deleted"] == 0 and changes == (0, 0)
    os.chmod(str(src / "sub" / "b"), 0o600)
    stats, changes = sync()
    assert stats["transferred"] == 0 and changes == (1, 0)


def test_exit_sentences_and_bandwidth():
    assert "partial transfer" in exit_sentence(23) and "vanished" in exit_sentence(24)
    assert "refused" in exit_sentence(12) and "ssh failed" in exit_sentence(255)
    assert exit_sentence(99) == "rsync failed with exit code 99"
    assert check_bandwidth(None) is None and check_bandwidth("50m") == "50M" and check_bandwidth(2000) == "2000"
    for bad in ["0", "-1", "1.5M", "10 M", "1T", "5;id"]:
        with pytest.raises(TransferInputError, match="bandwidth_limit"):
            check_bandwidth(bad)


# ---------------------------------------------------------------------------------------------
# The source's key, and the whole path through a fake ssh that does what sshd does with the line


def make_key(key_root, peer="127.0.0.1", host_key=KEY, port=22, **params):
    args = dict(transfer_id="t1", state="present", peer=peer, peer_host_key=host_key, port=port)
    args.update(params)
    return run_transfer_key(args, key_root=str(key_root))


needs_ssh_keygen = pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen (openssh-client) is not installed")


@needs_ssh_keygen
def test_transfer_key_present_idempotent_absent(tmp_path):
    root = tmp_path / "ssh" / "hosting-migration"
    preview = run_transfer_key(dict(transfer_id="t1", peer="127.0.0.1", peer_host_key=KEY), check_mode=True,
                               key_root=str(root))
    assert preview["changed"] and preview["public_key"] is None and not root.parent.exists()
    assert not run_transfer_key(dict(transfer_id="t1", state="absent"), key_root=str(root))["changed"]
    made = make_key(root)
    assert made["changed"] and made["public_key"].startswith("ssh-ed25519 ")
    assert made["public_key"].endswith(" hosting-migration:t1")
    assert parse_public_key(made["public_key"])
    for path, mode in [(root.parent, 0o700), (root, 0o700), (root / "t1", 0o700), (root / "t1" / "id_ed25519", 0o600),
                       (root / "t1" / "known_hosts", 0o600)]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert (root / "t1" / "known_hosts").read_text() == "127.0.0.1 %s\n" % KEY
    assert sorted(p.name for p in (root / "t1").iterdir()) == ["id_ed25519", "id_ed25519.pub", "known_hosts"]
    again = make_key(root)
    assert not again["changed"] and again["public_key"] == made["public_key"]
    moved = make_key(root, host_key=OTHER_KEY + " root@transit2", port=2222)
    assert moved["changed"] and moved["public_key"] == made["public_key"]
    assert (root / "t1" / "known_hosts").read_text() == "[127.0.0.1]:2222 %s\n" % OTHER_KEY
    (root / "t1" / "id_ed25519.pub").unlink()
    os.chmod(str(root / "t1" / "id_ed25519"), 0o644)
    assert run_transfer_key(dict(transfer_id="t1", peer="127.0.0.1", peer_host_key=OTHER_KEY, port=2222),
                            check_mode=True, key_root=str(root))["changed"]
    repaired = make_key(root, host_key=OTHER_KEY, port=2222)
    assert repaired["changed"] and repaired["public_key"] == made["public_key"]
    assert stat.S_IMODE((root / "t1" / "id_ed25519").stat().st_mode) == 0o600
    with pytest.raises(TransferInputError, match="peer_host_key"):
        make_key(root, host_key="ssh-dss AAAA")
    with pytest.raises(TransferInputError, match="peer"):
        make_key(root, peer="-oProxyCommand=id")
    assert run_transfer_key(dict(transfer_id="t1", state="absent"), key_root=str(root))["changed"]
    assert not (root / "t1").exists() and root.exists()


FAKE_SSH = textwrap.dedent('''\
    #!/usr/bin/python3
    """ssh as far as a transfer needs it: find the key's line, run its forced command like sshd."""
    import os, re, shlex, sys
    args, identity, known = sys.argv[1:], None, None
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option in ("-F", "-i", "-o", "-p", "-l", "-c"):
            value = args.pop(0)
            identity = value if option == "-i" else identity
            if option == "-o" and value.startswith("UserKnownHostsFile="):
                known = value.split("=", 1)[1]
    host, command = args[0].split("@")[-1], " ".join(args[1:])
    if not known or not open(known).read().startswith(host + " "):
        sys.stderr.write("Host key verification failed.\\n")
        sys.exit(255)
    key = open(identity + ".pub").read().split()[1]
    for line in open(os.environ["FAKE_SSH_AUTHORIZED_KEYS"]):
        if " %s " % key in line:
            forced = shlex.split(re.search(r'command="([^"]*)"', line).group(1))
            env = dict(PATH="/usr/bin:/bin", HOME="/root", SSH_ORIGINAL_COMMAND=command,
                       SSH_CONNECTION="127.0.0.1 40000 127.0.0.1 22")
            os.execve(forced[0], forced, env)
    sys.stderr.write("Permission denied (publickey).\\n")
    sys.exit(255)
''')


@pytest.fixture
def fake_pair(tmp_path):
    """A source key, a target authorisation and an ssh that plays sshd: (key_root, target paths, env)."""
    if not (shutil.which("ssh-keygen") and shutil.which("rsync") and os.path.exists("/usr/bin/python3")):
        pytest.skip("needs ssh-keygen, rsync and /usr/bin/python3")
    key_root = tmp_path / "source-keys"
    made = make_key(key_root)
    (tmp_path / "target").mkdir()
    paths = target_paths(tmp_path)
    run_transfer_authorization(dict(transfer_id="t1", public_key=made["public_key"], source=["127.0.0.1"],
                                    allow=[{"rsync_to": str(tmp_path / "target" / "alice")}]), paths=paths)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    env = command_environment()
    env.update(PATH="%s:%s" % (bin_dir, env["PATH"]), FAKE_SSH_AUTHORIZED_KEYS=paths["authorized_keys"])
    return key_root, paths, env


def test_account_sync_through_the_endpoint(tmp_path, fake_pair):
    key_root, paths, env = fake_pair
    src = tmp_path / "home" / "alice"
    (src / "www").mkdir(parents=True)
    (src / "www" / "index.php").write_text("<?php echo 1;")
    (src / "big").write_bytes(os.urandom(100000))
    os.link(str(src / "big"), str(src / "big-link"))
    (src / "link").symlink_to("www/index.php")
    params = dict(transfer_id="t1", peer="127.0.0.1", source_path=str(src) + "/",
                  target_path=str(tmp_path / "target" / "alice"))
    preview = run_account_sync(params, check_mode=True, key_root=str(key_root), env=env)
    assert preview["changed"] and "--dry-run" in preview["cmd"] and not (tmp_path / "target" / "alice").exists()
    first = run_account_sync(params, key_root=str(key_root), env=env)
    assert first["changed"] and first["rc"] == 0 and first["stats"]["transferred"] == 2
    assert first["stats"]["literal_data"] >= 100000 and first["elapsed_s"] >= 0
    copy = tmp_path / "target" / "alice"
    assert (copy / "big").read_bytes() == (src / "big").read_bytes()
    assert os.stat(str(copy / "big")).st_ino == os.stat(str(copy / "big-link")).st_ino
    assert os.readlink(str(copy / "link")) == "www/index.php"
    assert os.stat(str(copy / "big")).st_mtime_ns == os.stat(str(src / "big")).st_mtime_ns
    second = run_account_sync(params, key_root=str(key_root), env=env)
    assert not second["changed"] and second["changes"] == 0
    (src / "www" / "index.php").unlink()
    third = run_account_sync(params, key_root=str(key_root), env=env)
    assert third["changed"] and third["deleted"] == 1 and not (copy / "www" / "index.php").exists()
    with pytest.raises(TransferError) as failure:
        run_account_sync(dict(params, target_path=str(tmp_path / "target" / "bob")), key_root=str(key_root), env=env)
    assert "rsync exit 12" in str(failure.value) and "refused: rsync into" in str(failure.value)
    log = open(paths["log_path"]).read()
    assert log.count(" accepted rsync_to ") == 4 and log.count(" refused ") == 1


def test_account_sync_refuses_bad_input(tmp_path, fake_pair):
    key_root, _, env = fake_pair
    (tmp_path / "home" / "alice").mkdir(parents=True)
    base = dict(transfer_id="t1", peer="127.0.0.1", source_path=str(tmp_path / "home" / "alice"))
    for params, why in [(dict(transfer_id="t2"), "run hosting.migration.transfer_key"),
                        (dict(source_path=str(tmp_path / "nothing" / "x")), "not a directory"),
                        (dict(target_path="/etc/cron.d"), "/etc"),
                        (dict(target_path="/"), "plain"),
                        (dict(target_path="/home"), "too close"),
                        (dict(peer="a b"), "peer"),
                        (dict(bandwidth_limit="fast"), "bandwidth_limit"),
                        (dict(port=0), "port")]:
        with pytest.raises(TransferInputError, match=why):
            run_account_sync(dict(base, **params), key_root=str(key_root), env=env)


def test_account_sync_exit_24_is_a_warning_only_when_asked(tmp_path, fake_pair):
    key_root, _, env = fake_pair
    (tmp_path / "home" / "alice").mkdir(parents=True)
    fake = tmp_path / "rsync-24"
    fake.write_text("#!/bin/sh\necho 'hm-item:>f+++++++++'\necho 'Number of regular files transferred: 1'\n"
                    "echo 'file has vanished: \"/home/alice/x\"' >&2\nexit 24\n")
    fake.chmod(0o755)
    params = dict(transfer_id="t1", peer="127.0.0.1", source_path=str(tmp_path / "home" / "alice"))
    with pytest.raises(TransferError, match="rsync exit 24.*vanished"):
        run_account_sync(params, key_root=str(key_root), rsync=str(fake), env=env)
    result = run_account_sync(dict(params, ignore_vanished=True), key_root=str(key_root), rsync=str(fake), env=env)
    assert result["rc"] == 24 and result["changed"] and "exit 24" in result["warnings"][0]


# ---------------------------------------------------------------------------------------------
# The dump | ssh pipe


def sh(script):
    return ["/bin/sh", "-c", script]


def test_pipe_copies_and_counts(tmp_path):
    out = tmp_path / "out"
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "in").write_bytes(data)
    result = pipe(["cat", str(tmp_path / "in")], sh("cat > '%s'" % out), chunk_size=65536)
    assert result["bytes"] == len(data) and out.read_bytes() == data
    assert result["producer_rc"] == result["consumer_rc"] == 0 and not result["consumer_broke"]
    assert pipe_failure(result, "x", "cat", "peer") is None


def test_pipe_survives_chatty_stderr(tmp_path):
    result = pipe(sh("head -c 3000000 /dev/zero >&2; echo data"), sh("head -c 2000000 /dev/zero >&2; cat >/dev/null"))
    assert result["bytes"] == 5 and result["producer_rc"] == result["consumer_rc"] == 0
    assert len(result["producer_stderr"]) == 65536


def test_pipe_dump_fails(tmp_path):
    result = pipe(sh("echo 'CREATE TABLE t (a int);'; echo 'mariadb-dump: Got error: 1045: Access denied' >&2; exit 2"),
                  sh("cat > '%s'; sleep 5" % (tmp_path / "out")))
    assert result["producer_rc"] == 2 and result["consumer_rc"] != 0
    message = pipe_failure(result, "mariadb database a to t", "mariadb-dump", "10.77.0.30")
    assert message.startswith("Copying mariadb database a to t failed: the dump (mariadb-dump) exited with 2: "
                              "mariadb-dump: Got error: 1045: Access denied;")
    assert "stopped because the dump failed" in message


def test_pipe_restore_refuses_at_once():
    result = pipe(["head", "-c", "50000000", "/dev/zero"],
                  sh("echo 'hosting-migration transfer t1: refused: restoring mariadb database' >&2; exit 1"))
    assert result["consumer_broke"] and result["consumer_rc"] == 1 and result["bytes"] < 50000000
    message = pipe_failure(result, "x", "head", "10.77.0.30")
    assert "the restore on 10.77.0.30 exited with 1: hosting-migration transfer t1: refused" in message
    assert "the dump" not in message


def test_pipe_restore_fails_at_the_end_or_stops_reading_or_ssh_fails():
    result = pipe(sh("seq 1 1000"), sh("cat >/dev/null; echo 'ERROR 1064 (42000) at line 3: syntax' >&2; exit 1"))
    assert not result["consumer_broke"] and result["bytes"] == len("".join("%d\n" % i for i in range(1, 1001)))
    assert "exited with 1: ERROR 1064" in pipe_failure(result, "x", "seq", "t")
    result = pipe(["head", "-c", "50000000", "/dev/zero"], ["head", "-c", "10"])
    assert "stopped reading before the end" in pipe_failure(result, "x", "head", "t")
    result = pipe(sh("echo x"), sh("cat >/dev/null; echo 'ssh: connect to host t port 22: Connection refused' >&2; exit 255"))
    assert "exited with 255 (ssh failed" in pipe_failure(result, "x", "sh", "t")
    with pytest.raises(TransferError, match="Cannot start"):
        pipe(["/nonexistent/dump"], ["cat"])
    with pytest.raises(TransferError, match="Cannot start"):
        pipe(["echo", "x"], ["/nonexistent/ssh"])


def test_dump_and_restore_commands():
    assert mariadb_dump_tool(lambda name: name == "mysqldump") == "mysqldump"
    assert mariadb_dump_tool(lambda name: True) == "mariadb-dump"
    assert mariadb_dump_tool(lambda name: False) is None
    assert dump_command("mariadb", "alice_app", "mysqldump") == [
        "mysqldump", "--single-transaction", "--routines", "--triggers", "--events", "--hex-blob", "--no-create-db",
        "alice_app"]
    assert dump_command("postgresql", "alice_app") == [
        "runuser", "-u", "postgres", "--", "pg_dump", "--clean", "--if-exists", "--quote-all-identifiers",
        "--no-password", "alice_app"]
    paths = key_paths("t1", "/root/.ssh/hosting-migration")
    restore = restore_command(paths, "10.77.0.30", "postgresql", "alice_app")
    assert restore[-3:] == ["-T", "root@10.77.0.30", "hosting-restore postgresql alice_app"]
    assert endpoint.decide(restore[-1], dict(ALLOW, allow=[{"postgresql_restore": "alice_app"}]), now=NOW)


def test_database_copy_with_fake_tools(tmp_path):
    key_root = tmp_path / "keys"
    (key_root / "t1").mkdir(parents=True)
    (key_root / "t1" / "id_ed25519").write_text("key")
    (key_root / "t1" / "known_hosts").write_text("10.77.0.30 " + KEY)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tools = {
        "mysqldump": "#!/bin/sh\necho \"-- dump of $*\"\nhead -c 200000 /dev/zero | tr '\\0' x\n",
        "runuser": "#!/bin/sh\n[ \"$4\" = pg_dump ] || exit 9\necho \"-- pg $*\"\n",
        "pg_dump": "#!/bin/sh\nexit 0\n",
        "ssh": "#!/bin/sh\nfor last; do :; done\ncase \"$last\" in *bob*) echo \"refused: $last\" >&2; exit 1;; esac\n"
               "cat > \"$OUT_DIR/$(echo \"$last\" | tr ' ' _)\"\n",
    }
    for name, text in tools.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = dict(command_environment(), PATH="%s:/usr/bin:/bin" % bin_dir, OUT_DIR=str(tmp_path))

    def which(name):
        return shutil.which(name, path=str(bin_dir))

    params = dict(transfer_id="t1", peer="10.77.0.30", databases=[{"engine": "mariadb", "name": "alice_app"},
                                                                 {"engine": "postgresql", "name": "alice_app"}])
    preview = run_database_copy(params, check_mode=True, key_root=str(key_root), which=which, env=env)
    assert preview["changed"] and [d["bytes"] for d in preview["databases"]] == [None, None]
    assert preview["databases"][0]["dump"][0] == "mysqldump" and list(tmp_path.glob("hosting-restore*")) == []
    result = run_database_copy(params, key_root=str(key_root), which=which, env=env)
    mariadb_copy = (tmp_path / "hosting-restore_mariadb_alice_app").read_bytes()
    assert mariadb_copy.startswith(b"-- dump of --single-transaction") and len(mariadb_copy) == result["databases"][0]["bytes"]
    assert (tmp_path / "hosting-restore_postgresql_alice_app").read_bytes().startswith(b"-- pg -u postgres -- pg_dump")
    assert result["bytes"] == sum(d["bytes"] for d in result["databases"]) and result["changed"]
    with pytest.raises(TransferError) as failure:
        run_database_copy(dict(params, databases=[{"engine": "mariadb", "name": "alice_app"},
                                                  {"engine": "mariadb", "name": "bob_app"}]),
                          key_root=str(key_root), which=which, env=env)
    assert "Copying mariadb database bob_app to 10.77.0.30 failed" in str(failure.value)
    assert "refused: hosting-restore mariadb bob_app" in str(failure.value)
    assert [d["name"] for d in failure.value.details["databases"]] == ["alice_app"]
    assert failure.value.details["failed"]["restore_rc"] == 1
    with pytest.raises(TransferInputError, match="Neither mariadb-dump nor mysqldump"):
        run_database_copy(params, key_root=str(key_root), which=lambda name: None, env=env)
    with pytest.raises(TransferInputError, match="transfer_key"):
        run_database_copy(dict(params, transfer_id="t2"), key_root=str(key_root), which=which, env=env)


def test_first_lines():
    assert first_lines("a\n\n b \nc\nd\ne\nf\n") == "a / b / c / d / e / ..."
    assert first_lines("") == ""


# ---------------------------------------------------------------------------------------------
# The real thing: an sshd on 127.0.0.1 started by the test


SSHD = "/usr/sbin/sshd"
SSHD_PORT = 2299


def _port_free(port):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """sshd -D on 127.0.0.1:2299 with its own host key and authorized_keys file; stopped after the module."""
    if not os.path.exists(SSHD):
        pytest.skip("OpenSSH's sshd is not installed (apt-get install openssh-server)")
    if os.geteuid() != 0:
        pytest.skip("the sshd test needs root (the transfer key logs in as root)")
    if not (shutil.which("ssh") and shutil.which("ssh-keygen") and shutil.which("rsync")):
        pytest.skip("needs ssh, ssh-keygen and rsync")
    if not _port_free(SSHD_PORT):
        pytest.skip("port %d on 127.0.0.1 is in use" % SSHD_PORT)
    base = tmp_path_factory.mktemp("sshd")
    made_run_dir = not os.path.isdir("/run/sshd")
    if made_run_dir:
        os.makedirs("/run/sshd", 0o755)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / "host_key")], check=True)
    (base / "authorized_keys").write_text("")
    config = base / "sshd_config"
    config.write_text(textwrap.dedent("""\
        Port %d
        ListenAddress 127.0.0.1
        HostKey %s
        PidFile %s
        AuthorizedKeysFile %s
        StrictModes no
        UsePAM no
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        LogLevel VERBOSE
        """ % (SSHD_PORT, base / "host_key", base / "sshd.pid", base / "authorized_keys")))
    log = open(str(base / "sshd.log"), "w")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while _port_free(SSHD_PORT):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("sshd did not start: %s" % open(str(base / "sshd.log")).read())
        time.sleep(0.05)
    yield base
    process.terminate()
    process.wait(timeout=10)
    log.close()
    if made_run_dir:
        os.rmdir("/run/sshd")


def test_real_sshd_forced_command_from_and_expiry(sshd, tmp_path):
    key_root = tmp_path / "keys"
    made = make_key(key_root, host_key=(sshd / "host_key.pub").read_text(), port=SSHD_PORT)
    (tmp_path / "target").mkdir()
    paths = dict(target_paths(tmp_path), authorized_keys=str(sshd / "authorized_keys"))
    allow = [{"rsync_to": str(tmp_path / "target" / "alice")}, {"mariadb_restore": "alice_app"}]
    authorization = dict(transfer_id="t1", public_key=made["public_key"], source=["127.0.0.1"], allow=allow)
    run_transfer_authorization(authorization, paths=paths)
    src = tmp_path / "home" / "alice"
    (src / "www").mkdir(parents=True)
    (src / "www" / "index.html").write_text("hello")
    params = dict(transfer_id="t1", peer="127.0.0.1", port=SSHD_PORT, source_path=str(src),
                  target_path=str(tmp_path / "target" / "alice"))
    first = run_account_sync(params, key_root=str(key_root))
    assert first["changed"] and (tmp_path / "target" / "alice" / "www" / "index.html").read_text() == "hello"
    assert not run_account_sync(params, key_root=str(key_root))["changed"]

    def ssh(*command, **kwargs):
        argv = made["ssh_command"][:-1] + list(kwargs.get("options", ())) + made["ssh_command"][-1:] + list(command)
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=30, env=command_environment())

    # Another directory, a shell command, an interactive session: the endpoint refuses.
    with pytest.raises(TransferError, match="rsync exit 12.*refused: rsync into"):
        run_account_sync(dict(params, target_path=str(tmp_path / "target" / "bob")), key_root=str(key_root))
    for command in (["id"], ["cat /etc/shadow"], ["rsync --server --sender -vlogDtpre.iLsfxC . /etc/"], []):
        result = ssh(*command)
        assert result.returncode == 1 and "refused" in result.stderr and result.stdout == "", command
    # restrict: no port forwarding.
    result = ssh("id", options=["-o", "ExitOnForwardFailure=yes", "-R", "127.0.0.1:2298:127.0.0.1:22"])
    assert result.returncode == 255 and "forwarding failed" in result.stderr
    # from= another address: sshd refuses the key.
    run_transfer_authorization(dict(authorization, source=["10.9.9.9"]), paths=paths)
    result = ssh("id")
    assert result.returncode == 255 and "Permission denied" in result.stderr
    # expiry-time in the past: sshd refuses the key.
    past = authorized_line("t1", made["public_key"], ["127.0.0.1"], time.time() - 120, paths)
    update_authorized_keys(paths["authorized_keys"], "t1", past)
    result = ssh("id")
    assert result.returncode == 255 and "Permission denied" in result.stderr
    # Valid again, then removed: refused again.
    run_transfer_authorization(authorization, now=time.time(), paths=paths)
    assert ssh("id").returncode == 1
    run_transfer_authorization(dict(transfer_id="t1", state="absent"), paths=paths)
    result = ssh("id")
    assert result.returncode == 255 and "Permission denied" in result.stderr
    # A host key other than the one pinned: ssh refuses to talk.
    run_transfer_authorization(authorization, paths=paths)
    make_key(key_root, host_key=OTHER_KEY, port=SSHD_PORT)
    # ssh exits 255; rsync reports that as 255, or as 12 when the protocol stream broke first.
    with pytest.raises(TransferError, match=r"rsync exit (255|12)\).*REMOTE HOST IDENTIFICATION HAS CHANGED"):
        run_account_sync(params, key_root=str(key_root))
    log = open(paths["log_path"]).read()
    assert log.count(" accepted ") == 2 and log.count(" refused ") >= 5
    sshd_log = (sshd / "sshd.log").read_text()
    assert "forced-command" in sshd_log
    run_transfer_authorization(dict(transfer_id="t1", state="absent"), paths=paths)
    assert (sshd / "authorized_keys").read_text() == ""


def test_expiry_time_is_read_as_utc():
    # sshd reads YYYYMMDDHHMM[Z]: with the Z it is UTC whatever the server's time zone.
    line = authorized_line("t1", KEY, ["127.0.0.1"], NOW)
    assert 'expiry-time="202601011200Z"' in line
    assert datetime.datetime.fromtimestamp(parse_expiry(line), datetime.timezone.utc).hour == 12
