"""Account states: exact rendering, planning, crontab placement, state files, processes, rollback."""
import os
import signal

import pytest

from ansible_collections.hosting.migration.plugins.module_utils import account_render
from ansible_collections.hosting.migration.plugins.module_utils.account_render import (
    AccountStateError, Layout)
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import validate_spec

# Owners the test process can give files: real account ids as root, its own ids otherwise.
ROOT = os.geteuid() == 0
UID = 10001 if ROOT else os.geteuid()
CRONTAB_GID = 10050 if ROOT else os.getegid()
ADMIN_UID, ADMIN_GID = os.geteuid(), os.getegid()
BOB_UID = 10003 if ROOT else UID
OTHER = UID + 1000  # a UID no spec here has

PAGE = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Maintenance</title>'
        '</head><body><h1>Back in a moment</h1><p>This site is being moved to a new server. '
        'Please try again in a minute.</p></body></html>')


def make_spec(name="alice", uid=UID, cron=None):
    return validate_spec({
        "name": name, "uid": uid, "gid": uid,
        "sites": [
            {"name": "main", "domains": ["alice.example", "www.alice.example"],
             "document_root": "www", "php": "8.2"},
            {"name": "static", "domains": ["static.alice.example"],
             "document_root": "static/public", "php": "none"},
        ] if name == "alice" else [
            {"name": "main", "domains": ["%s.example" % name], "document_root": "www", "php": "none"}],
        "cron": cron if cron is not None else [
            {"schedule": "*/5 * * * *", "command": "php ~/www/cron.php > /dev/null 2>&1"},
            {"schedule": "@daily", "command": "echo done"}],
    }, "/etc/hosting/accounts/%s.yml" % name, min_uid=min(uid, 10000))


@pytest.fixture
def layout(tmp_path):
    for name in ("sites-enabled", "crontabs", "proc", "php/8.2/fpm/pool.d", "php/8.4/fpm/pool.d"):
        (tmp_path / name).mkdir(parents=True)
    return Layout(php_pool_dir=str(tmp_path / "php" / "%s" / "fpm" / "pool.d"), php_reload=("systemctl", "reload", "php%s-fpm"),
                  nginx_dir=str(tmp_path / "sites-enabled"), cron_dir=str(tmp_path / "crontabs"),
                  suspended_dir=str(tmp_path / "hosting-suspended"),
                  state_dir=str(tmp_path / "account-states"), proc_dir=str(tmp_path / "proc"),
                  nginx_pid_file=str(tmp_path / "nginx.pid"), root_uid=ADMIN_UID,
                  root_gid=ADMIN_GID, crontab_gid=CRONTAB_GID,
                  nginx_test=("nginx", "-t"), nginx_reload=("systemctl", "reload-or-restart", "nginx"))


class Runner:
    """Records commands; answers from a dict of argv[1] -> (rc, out, err)."""

    def __init__(self, answers=None):
        self.calls = []
        self.answers = answers or {}

    def __call__(self, argv):
        self.calls.append(argv)
        return self.answers.get(argv[1], (0, "", ""))


# --- rendering -------------------------------------------------------------------------------

ACTIVE = """\
# Ansible managed
server {
    listen 80;
    listen [::]:80;
    server_name alice.example www.alice.example;
    root /home/alice/www;
    index index.php index.html;

    location ~ \\.php$ {
        try_files $uri =404;
        include fastcgi_params;
        fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
        fastcgi_pass unix:/run/php/account-alice.sock;
    }
}
server {
    listen 80;
    listen [::]:80;
    server_name static.alice.example;
    root /home/alice/static/public;
    index index.html;
}
"""

FROZEN = """\
# Ansible managed
# Account alice is frozen (hosting.migration.account_state): every domain answers 503.
server {
    listen 80;
    listen [::]:80;
    server_name alice.example www.alice.example;
    types { }
    default_type text/html;
    charset utf-8;
    add_header Retry-After 30 always;
    add_header Cache-Control no-store always;
    return 503 'PAGE';
}
server {
    listen 80;
    listen [::]:80;
    server_name static.alice.example;
    types { }
    default_type text/html;
    charset utf-8;
    add_header Retry-After 30 always;
    add_header Cache-Control no-store always;
    return 503 'PAGE';
}
""".replace("PAGE", PAGE)

FORWARDED = """\
# Ansible managed
# Account alice is forwarded to 2001:db8:77::21 (hosting.migration.account_state).
server {
    listen 80;
    listen [::]:80;
    server_name alice.example www.alice.example;

    location / {
        proxy_pass http://[2001:db8:77::21]:80;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
    }
}
server {
    listen 80;
    listen [::]:80;
    server_name static.alice.example;

    location / {
        proxy_pass http://[2001:db8:77::21]:80;
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_connect_timeout 2s;
    }
}
"""

CRONTAB = """\
# Ansible managed
SHELL=/bin/sh
HOME=/home/alice
*/5 * * * * php ~/www/cron.php > /dev/null 2>&1
@daily echo done
"""


def test_active_is_the_server_blocks_the_account_role_always_wrote():
    assert account_render.nginx_site_text(make_spec(), "active") == ACTIVE


def test_frozen_answers_503_with_a_self_contained_page_on_every_domain():
    text = account_render.nginx_site_text(make_spec(), "frozen")
    assert text == FROZEN
    assert "fastcgi" not in text and "root " not in text


def test_forwarded_proxies_every_domain_ipv6_in_brackets():
    # The address is normalised before it is used.
    assert account_render.nginx_site_text(make_spec(), "forwarded", "2001:DB8:77:0::21") == FORWARDED


def test_forwarded_to_ipv4():
    text = account_render.nginx_site_text(make_spec(), "forwarded", "192.0.2.21")
    assert "        proxy_pass http://192.0.2.21:80;\n" in text
    assert text.count("proxy_pass") == 2


def test_inactive_has_no_server_block():
    assert account_render.nginx_site_text(make_spec(), "inactive") is None


def test_account_without_sites_keeps_an_empty_file():
    spec = make_spec("bob")
    spec = spec.__class__(**dict(spec.__dict__, sites=()))
    assert account_render.nginx_site_text(spec, "active") == "# Ansible managed\n"


def test_crontab_is_the_same_text_in_every_state():
    assert account_render.crontab_text(make_spec()) == CRONTAB
    assert account_render.crontab_text(make_spec(cron=[])) == "# Ansible managed\nSHELL=/bin/sh\nHOME=/home/alice\n"


@pytest.mark.parametrize("state, forward_to, message", [
    ("forwarded", None, "state=forwarded needs forward_to"),
    ("forwarded", "", "state=forwarded needs forward_to"),
    ("active", "192.0.2.1", "only used with state=forwarded"),
    ("frozen", "192.0.2.1", "only used with state=forwarded"),
    ("forwarded", "[2001:db8::1]", "without brackets"),
    ("forwarded", "transit1.example", "not an IPv4 or IPv6 address"),
    ("forwarded", "192.0.2.1:80", "not an IPv4 or IPv6 address"),
    ("forwarded", "127.0.0.1", "loopback"),
    ("forwarded", "::1", "loopback"),
    ("forwarded", "0.0.0.0", "unspecified"),
    ("forwarded", "fe80::1", "link-local"),
    ("forwarded", "fe80::1%eth0", "zone index"),
    ("forwarded", "ff02::1", "multicast"),
    ("forwarded", "::ffff:192.0.2.1", "write the IPv4 address 192.0.2.1"),
    ("paused", None, "not one of active, frozen, forwarded, inactive"),
])
def test_bad_state_or_forward_to_is_refused_with_a_reason(state, forward_to, message):
    with pytest.raises(AccountStateError, match=message):
        account_render.check_state(state, forward_to)


def test_names_are_checked_and_deduplicated():
    assert account_render.check_names(["alice", "bob", "alice"]) == ["alice", "bob"]
    for bad in ([], ["../etc/passwd"], ["Alice"], ["a b"]):
        with pytest.raises(AccountStateError):
            account_render.check_names(bad)


# --- state file ------------------------------------------------------------------------------

@pytest.mark.parametrize("state, forward_to, text", [
    ("active", None, "active\n"),
    ("frozen", None, "frozen\n"),
    ("inactive", None, "inactive\n"),
    ("forwarded", "192.0.2.21", "forwarded 192.0.2.21\n"),
    ("forwarded", "2001:db8:77::21", "forwarded 2001:db8:77::21\n"),
])
def test_state_file_round_trip(tmp_path, state, forward_to, text):
    assert account_render.state_text(state, forward_to) == text
    assert account_render.parse_state_text(text) == (state, forward_to)
    (tmp_path / "alice").write_text(text)
    assert account_render.read_account_state("alice", str(tmp_path)) == {
        "name": "alice", "state": state, "forward_to": forward_to}


def test_no_state_file_reads_as_not_recorded(tmp_path):
    assert account_render.read_account_states(["alice"], str(tmp_path)) == [
        {"name": "alice", "state": None, "forward_to": None}]


@pytest.mark.parametrize("text", ["", "paused\n", "forwarded\n", "active 192.0.2.1\n",
                                  "forwarded localhost\n", "forwarded 192.0.2.1 extra\n"])
def test_malformed_state_file_is_an_error_naming_the_file(tmp_path, text):
    (tmp_path / "alice").write_text(text)
    with pytest.raises(AccountStateError, match=str(tmp_path / "alice")):
        account_render.read_account_state("alice", str(tmp_path))


def test_reading_a_state_refuses_path_traversal(tmp_path):
    with pytest.raises(AccountStateError):
        account_render.read_account_state("../accounts/alice", str(tmp_path))


# --- planning and crontab placement ----------------------------------------------------------

def apply_plan(spec, state, forward_to, layout):
    changes = account_render.plan_account(spec, state, forward_to, layout)
    for directory in (layout.suspended_dir, layout.state_dir):
        os.makedirs(directory, exist_ok=True)
    for change in changes:
        account_render.apply_change(change)
    return changes


def file_facts(path):
    info = os.stat(path)
    with open(path) as handle:
        return handle.read(), info.st_uid, info.st_gid, info.st_mode & 0o7777


@pytest.mark.parametrize("state, forward_to", [
    ("active", None), ("frozen", None), ("forwarded", "2001:db8:77::21"), ("inactive", None)])
def test_planning_is_idempotent(layout, state, forward_to):
    spec = make_spec()
    assert apply_plan(spec, state, forward_to, layout)
    assert account_render.plan_account(spec, state, forward_to, layout) == []


@pytest.mark.parametrize("state", ["active", "frozen", "forwarded", "inactive"])
def test_every_transition_ends_in_the_same_files_and_plans_nothing_more(layout, state):
    spec = make_spec()
    forward_to = "192.0.2.21" if state == "forwarded" else None
    for previous in ("active", "frozen", "forwarded", "inactive"):
        apply_plan(spec, previous, "192.0.2.9" if previous == "forwarded" else None, layout)
        apply_plan(spec, state, forward_to, layout)
        assert account_render.plan_account(spec, state, forward_to, layout) == []
        nginx = layout.nginx_file("alice")
        expected = account_render.nginx_site_text(spec, state, forward_to)
        if expected is None:
            assert not os.path.lexists(nginx)
        else:
            assert file_facts(nginx) == (expected, ADMIN_UID, ADMIN_GID, 0o644)
        assert file_facts(layout.state_file("alice"))[0] == account_render.state_text(state, forward_to)


@pytest.mark.parametrize("state, installed", [
    ("active", True), ("frozen", False), ("forwarded", False), ("inactive", False)])
def test_crontab_placement_per_state(layout, state, installed):
    spec = make_spec()
    apply_plan(spec, state, "192.0.2.21" if state == "forwarded" else None, layout)
    present, absent = layout.crontab_file("alice"), layout.suspended_crontab_file("alice")
    if not installed:
        present, absent = absent, present
    assert file_facts(present) == (CRONTAB, UID, CRONTAB_GID, 0o600)
    assert not os.path.lexists(absent)


def test_suspending_and_resuming_move_the_very_crontab_file(layout):
    spec = make_spec()
    apply_plan(spec, "active", None, layout)
    inode = os.stat(layout.crontab_file("alice")).st_ino

    changes = apply_plan(spec, "frozen", None, layout)

    assert [change.describe() for change in changes if change.kind == "crontab"] == [
        "move %s to %s" % (layout.crontab_file("alice"), layout.suspended_crontab_file("alice"))]
    assert os.stat(layout.suspended_crontab_file("alice")).st_ino == inode
    apply_plan(spec, "active", None, layout)
    assert os.stat(layout.crontab_file("alice")).st_ino == inode
    assert not os.path.lexists(layout.suspended_crontab_file("alice"))


def test_an_edited_crontab_is_replaced_by_the_spec_and_the_other_copy_goes(layout):
    spec = make_spec()
    apply_plan(spec, "frozen", None, layout)
    with open(layout.crontab_file("alice"), "w") as handle:
        handle.write("* * * * * edited by hand\n")

    changes = account_render.plan_account(spec, "frozen", None, layout)

    assert [change.action for change in changes] == ["remove"]
    apply_plan(spec, "active", None, layout)
    assert file_facts(layout.crontab_file("alice"))[0] == CRONTAB
    assert not os.path.lexists(layout.suspended_crontab_file("alice"))


def test_wrong_mode_is_fixed_without_rewriting(layout):
    spec = make_spec()
    apply_plan(spec, "active", None, layout)
    os.chmod(layout.crontab_file("alice"), 0o644)

    changes = account_render.plan_account(spec, "active", None, layout)

    assert [(change.action, change.path) for change in changes] == [("attributes", layout.crontab_file("alice"))]
    apply_plan(spec, "active", None, layout)
    assert file_facts(layout.crontab_file("alice"))[3] == 0o600


def test_writes_leave_no_temporary_files(layout):
    apply_plan(make_spec(), "frozen", None, layout)
    for directory in (layout.nginx_dir, layout.cron_dir, layout.suspended_dir, layout.state_dir):
        assert not [name for name in os.listdir(directory) if name.startswith(".")]


# --- processes -------------------------------------------------------------------------------

def fake_process(proc, pid, uids, state="S (sleeping)", name="php-fpm8.2", ppid=1, cmdline=None):
    directory = proc / str(pid)
    directory.mkdir()
    real, effective, saved, filesystem = uids
    (directory / "status").write_text(
        "Name:\t%s\nUmask:\t0022\nState:\t%s\nTgid:\t%d\nPid:\t%d\nPPid:\t%d\n"
        "Uid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\n" % (name, state, pid, pid, ppid, real, effective, saved, filesystem))
    (directory / "cmdline").write_bytes((cmdline or name).encode() + b"\0")


@pytest.fixture
def proc(layout):
    proc = __import__("pathlib").Path(layout.proc_dir)
    fake_process(proc, 1, (UID, UID, UID, UID), name="systemd")  # PID 1, whatever its UID
    fake_process(proc, 2, (0, 0, 0, 0), name="kthreadd", ppid=0)
    fake_process(proc, 300, (0, 0, 0, 0), name="php-fpm8.2")  # the pool's master, root
    fake_process(proc, 301, (UID, UID, UID, UID), ppid=300)  # a worker of the pool
    fake_process(proc, 302, (UID, UID, UID, UID), name="bash")
    fake_process(proc, 303, (UID, 0, 0, 0), name="passwd")  # set-user-ID root program
    fake_process(proc, 304, (0, UID, UID, UID), name="half")  # still root underneath
    fake_process(proc, 305, (UID, UID, UID, UID), state="Z (zombie)", name="sh")
    fake_process(proc, 306, (OTHER, OTHER, OTHER, OTHER), name="bash")  # another account
    fake_process(proc, 307, (UID, UID, UID, UID), name="sshd")  # our own connection
    (proc / "self").mkdir()
    (proc / "sys").mkdir()
    (proc / "999").mkdir()  # vanished while listing: no status
    return proc


def test_process_selection_takes_only_the_accounts_uid(proc):
    found = account_render.account_processes(UID, str(proc), exclude={307})
    assert [process.pid for process in found] == [301, 302]


def test_process_selection_refuses_root_and_bad_uids(proc):
    for uid in (0, -1, True, str(UID)):
        with pytest.raises(ValueError):
            account_render.account_processes(uid, str(proc))


def test_own_lineage_walks_up_the_parents(proc):
    fake_process(proc, 500, (0, 0, 0, 0), name="python", ppid=307)
    assert account_render.own_lineage(str(proc), pid=500) == {500, 307}


class FakeSignals(account_render.Signals):
    """Processes on the fake /proc die as they are told; 'stubborn' ones ignore SIGTERM."""

    def __init__(self, proc, stubborn=(), immortal=()):
        self.proc = proc
        self.stubborn = set(stubborn)
        self.immortal = set(immortal)
        self.sent = []
        self.now = 0.0

    def send(self, pid, number):
        self.sent.append((pid, number))
        if pid in self.immortal or number == signal.SIGCONT:
            return
        if number == signal.SIGKILL or pid not in self.stubborn:
            for entry in (self.proc / str(pid)).iterdir():
                entry.unlink()
            (self.proc / str(pid)).rmdir()

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def test_stop_sends_sigterm_then_sigkill_after_the_grace(proc):
    signals = FakeSignals(proc, stubborn={302})

    stopped = account_render.stop_account_processes(UID, str(proc), exclude={307}, signals=signals)

    assert [process.pid for process in stopped] == [301, 302]
    assert signals.sent == [(301, signal.SIGTERM), (301, signal.SIGCONT), (302, signal.SIGTERM),
                            (302, signal.SIGCONT), (302, signal.SIGKILL)]
    assert account_render.STOP_GRACE <= signals.now < account_render.STOP_GRACE + 0.05
    assert sorted(int(name) for name in os.listdir(proc) if name.isdigit()) == [1, 2, 300, 303, 304, 305, 306, 307, 999]


def test_stop_fails_naming_processes_that_survive_sigkill(proc):
    signals = FakeSignals(proc, immortal={302})
    with pytest.raises(AccountStateError, match=r"302 \(bash\)"):
        account_render.stop_account_processes(UID, str(proc), exclude={307}, signals=signals)
    assert all(pid in (301, 302) for pid, _number in signals.sent)


def test_waiting_for_nginx_old_workers(proc):
    fake_process(proc, 700, (0, 0, 0, 0), name="nginx", cmdline="nginx: master process /usr/sbin/nginx")
    fake_process(proc, 701, (33, 33, 33, 33), name="nginx", ppid=700, cmdline="nginx: worker process")
    fake_process(proc, 702, (33, 33, 33, 33), name="nginx", ppid=700, cmdline="nginx: cache manager process")
    pid_file = os.path.join(str(proc), "..", "nginx.pid")
    with open(pid_file, "w") as handle:
        handle.write("700\n")
    assert account_render.nginx_workers(str(proc), pid_file) == {701}

    signals = FakeSignals(proc)
    assert account_render.wait_for_old_workers({701}, str(proc), signals, timeout=0.5) is False
    (proc / "701" / "cmdline").write_bytes(b"nginx: worker process is shutting down\0")
    assert account_render.wait_for_old_workers({701}, str(proc), signals) is True


# --- a whole run -----------------------------------------------------------------------------

def run(layout, state, forward_to=None, runner=None, specs=None, signals=None, **kwargs):
    runner = runner if runner is not None else Runner()
    signals = signals or FakeSignals(__import__("pathlib").Path(layout.proc_dir))
    return account_render.set_account_states(specs or [make_spec()], state, forward_to, layout, runner,
                                             signals=signals, exclude={307}, **kwargs)


def test_one_test_and_one_reload_for_several_accounts_then_nothing(layout, proc):
    specs = [make_spec(), make_spec("bob", uid=BOB_UID)]
    runner = Runner()

    result = run(layout, "frozen", runner=runner, specs=specs)

    assert runner.calls == [["nginx", "-t"], ["systemctl", "reload-or-restart", "nginx"]]
    assert result["changed"] and result["nginx_reloaded"]
    alice = result["accounts"][0]
    assert (alice["name"], alice["state"], alice["forward_to"], alice["previous_state"]) == ("alice", "frozen", None, None)
    assert alice["stopped_processes"] == [{"pid": 301, "name": "php-fpm8.2"}, {"pid": 302, "name": "bash"}]

    runner = Runner()
    again = run(layout, "frozen", runner=runner, specs=specs)

    assert runner.calls == []
    assert not again["changed"] and not again["nginx_reloaded"]
    assert [entry["previous_state"] for entry in again["accounts"]] == ["frozen", "frozen"]
    assert all(entry["changes"] == [] and entry["stopped_processes"] == [] for entry in again["accounts"])


def test_forwarded_is_recorded_and_returned(layout, proc):
    result = run(layout, "forwarded", "2001:db8:77::21")
    assert (result["accounts"][0]["state"], result["accounts"][0]["forward_to"]) == ("forwarded", "2001:db8:77::21")
    assert account_render.read_account_state("alice", layout.state_dir)["forward_to"] == "2001:db8:77::21"


def test_active_stops_no_process(layout, proc):
    signals = FakeSignals(proc)
    result = run(layout, "active", signals=signals)
    assert signals.sent == [] and result["accounts"][0]["stopped_processes"] == []


def test_check_mode_changes_nothing_and_says_what_it_would_do(layout, proc):
    runner = Runner()
    signals = FakeSignals(proc)
    result = run(layout, "frozen", runner=runner, signals=signals, check_mode=True, diff=True)

    assert result["changed"] and result["nginx_reloaded"]
    assert result["accounts"][0]["stopped_processes"] == [{"pid": 301, "name": "php-fpm8.2"}, {"pid": 302, "name": "bash"}]
    assert runner.calls == [] and signals.sent == []
    assert os.listdir(layout.nginx_dir) == [] and os.listdir(layout.cron_dir) == []
    assert not os.path.exists(layout.state_dir)
    nginx_diff = [entry for entry in result["diff"] if entry["after_header"] == layout.nginx_file("alice")]
    assert nginx_diff == [{"before_header": layout.nginx_file("alice"), "after_header": layout.nginx_file("alice"),
                           "before": "", "after": FROZEN}]


def test_failed_nginx_test_puts_the_files_back_and_changes_nothing(layout, proc):
    specs = [make_spec(), make_spec("bob", uid=BOB_UID)]
    run(layout, "active", specs=specs[:1])  # alice served, bob not laid down yet
    before = {path: file_facts(path) for path in (layout.nginx_file("alice"), layout.crontab_file("alice"),
                                                  layout.state_file("alice"))}
    runner = Runner({"-t": (1, "", "nginx: [emerg] unknown directive \"bogus\" in x.conf:3\n"
                                    "nginx: configuration file /etc/nginx/nginx.conf test failed\n")})
    signals = FakeSignals(proc)

    with pytest.raises(AccountStateError, match=r"test failed, so the previous nginx files are back.*"
                                                r"unknown directive \"bogus\""):
        run(layout, "frozen", runner=runner, specs=specs, signals=signals)

    assert runner.calls == [["nginx", "-t"]]  # no reload
    assert {path: file_facts(path) for path in before} == before
    assert not os.path.lexists(layout.nginx_file("bob"))  # written, then removed again
    assert not os.path.lexists(layout.suspended_crontab_file("alice"))
    assert not os.path.lexists(layout.state_file("bob"))
    assert signals.sent == []
    assert [name for name in os.listdir(layout.nginx_dir)] == ["account-alice.conf"]


def test_failed_reload_puts_the_files_back_too(layout, proc):
    run(layout, "active")
    before = file_facts(layout.nginx_file("alice"))
    runner = Runner({"reload-or-restart": (1, "", "Job for nginx.service failed.\n")})

    with pytest.raises(AccountStateError, match="Reloading nginx failed.*Job for nginx.service failed"):
        run(layout, "inactive", runner=runner)

    assert file_facts(layout.nginx_file("alice")) == before
    assert account_render.read_account_state("alice", layout.state_dir)["state"] == "active"


def test_an_interrupted_run_is_completed_and_nginx_reloaded(layout, proc):
    spec = make_spec()
    # A run that wrote the frozen files but stopped before its reload and its state file.
    for change in account_render.plan_account(spec, "frozen", None, layout):
        if change.kind == "nginx":
            account_render.apply_change(change)
    runner = Runner()

    result = run(layout, "frozen", runner=runner)

    assert runner.calls == [["nginx", "-t"], ["systemctl", "reload-or-restart", "nginx"]]
    assert result["accounts"][0]["changes"] == [
        "write %s" % layout.suspended_crontab_file("alice"), "write %s" % layout.state_file("alice")]


def test_missing_nginx_or_cron_directory_is_a_clear_error(layout, proc):
    os.rmdir(layout.cron_dir)
    with pytest.raises(AccountStateError, match="crontabs does not exist"):
        run(layout, "active")


def test_cron_sees_the_spool_changed(layout, proc):
    os.utime(layout.cron_dir, (1000, 1000))
    run(layout, "frozen")
    assert os.stat(layout.cron_dir).st_mtime > 1000


def test_find_crontab_looks_in_both_places(layout):
    assert account_render.find_crontab("alice", layout) == {"path": None, "suspended": None}
    apply_plan(make_spec(), "active", None, layout)
    assert account_render.find_crontab("alice", layout) == {"path": layout.crontab_file("alice"), "suspended": False}
    apply_plan(make_spec(), "inactive", None, layout)
    assert account_render.find_crontab("alice", layout) == {
        "path": layout.suspended_crontab_file("alice"), "suspended": True}


def test_the_pool_exists_only_while_the_account_is_served(layout, proc):
    pool = layout.pool_file("8.2", "alice")
    runner = Runner()

    run(layout, "active", runner=runner)

    with open(pool) as handle:
        text = handle.read()
    assert "[account-alice]" in text and "listen = /run/php/account-alice.sock" in text
    assert ["systemctl", "reload", "php8.2-fpm"] in runner.calls

    runner = Runner()
    run(layout, "frozen", runner=runner)

    assert not os.path.exists(pool)
    assert runner.calls.index(["systemctl", "reload", "php8.2-fpm"]) > runner.calls.index(["nginx", "-t"])

    runner = Runner()
    run(layout, "inactive", runner=runner)
    assert ["systemctl", "reload", "php8.2-fpm"] not in runner.calls
