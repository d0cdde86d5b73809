"""The preparation plan: blockers on the target, free space, the freeze estimate, the module and its table."""
import collections
import copy
import functools
import pathlib

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.hosting.migration.plugins.filter.plan_table import plan_table
from ansible_collections.hosting.migration.plugins.module_utils import move_plan
from ansible_collections.hosting.migration.plugins.module_utils.account_spec import dump_spec, validate_spec
from ansible_collections.hosting.migration.plugins.module_utils.move_plan import (
    GIB, PlanInputError, blockers_on_target, estimate_freeze_s, parse_accounts, plan_moves,
    read_target_state, target_blockers)
from ansible_collections.hosting.migration.plugins.module_utils.spec_translate import CatalogueError, translate_spec
from ansible_collections.hosting.migration.plugins.modules import account_plan_info

TOP = pathlib.Path(__file__).resolve().parents[4]
MARIADB_HASH = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"
GB = 1000 ** 3
PLENTY = 1000 * GIB


@pytest.fixture(scope="module")
def catalogue():
    defaults = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())
    return defaults["infrastructure_catalogue"]


def make_spec(name="alice", uid=10001, gid=None, domains=None, databases=(), php="8.4", home=None, users=()):
    data = {
        "name": name, "uid": uid, "gid": uid if gid is None else gid,
        "sites": [{"name": "main", "domains": list(domains or ["%s.example" % name]), "document_root": "www",
                   "php": php}],
        "databases": [{"engine": engine, "name": db,
                       "users": [{"name": user, "password_hash": MARIADB_HASH} for user in users]
                       if engine == "mariadb" else []}
                      for engine, db in databases],
    }
    if home:
        data["home"] = home
    return validate_spec(data, "/etc/hosting/accounts/%s.yml" % name)


def make_resources(files=10, size=1000, databases=()):
    dbs = [{"engine": engine, "name": name, "bytes": count, "exists": count is not None}
           for engine, name, count in databases]
    return {"files": files, "bytes": size, "databases": dbs,
            "database_bytes": sum(db["bytes"] or 0 for db in dbs), "cron_entries": 0, "mailboxes": 0,
            "domains": [], "php": []}


def make_state(**overrides):
    state = {
        "infrastructure_version": "2025",
        "accounts": [],
        "users": {"root": 0, "www-data": 33, "mysql": 102, "postgres": 104},
        "groups": {"root": 0, "www-data": 33, "mysql": 102, "postgres": 104},
        "databases": {"mariadb": ["information_schema", "mysql"], "postgresql": ["postgres", "template0"]},
        "free_bytes": {"/home": PLENTY, "/srv": PLENTY, "/var/lib/mysql": PLENTY, "/var/lib/postgresql": PLENTY},
        "devices": {"/home": 1, "/srv": 2, "/var/lib/mysql": 3, "/var/lib/postgresql": 4},
    }
    state.update(overrides)
    return state


def blockers_of(spec, state, resources=None):
    return blockers_on_target([(spec, resources or make_resources())], state)[spec.name]


# --- blockers on the target ------------------------------------------------------------------

def test_a_clean_target_blocks_nothing():
    spec = make_spec(databases=(("mariadb", "alice_app"), ("postgresql", "alice_app")))

    assert blockers_on_target([(spec, make_resources())], make_state()) == {"alice": []}


def test_an_account_of_that_name_with_another_uid_clashes():
    state = make_state(accounts=[make_spec(uid=10005)], users={"alice": 10005}, groups={"alice": 10005})

    assert blockers_of(make_spec(), state) == [
        "account alice: an account named alice already exists on the target with UID 10005 and GID 10005 "
        "(the account to move has UID 10001 and GID 10001)"]


def test_an_account_of_that_name_with_other_data_clashes():
    state = make_state(accounts=[make_spec(domains=["other.example"])])

    assert blockers_of(make_spec(), state) == [
        "account alice: an account named alice already exists on the target with different data (its sites differ)"]


def test_a_system_user_or_group_of_that_name_clashes():
    state = make_state(users={"alice": 105}, groups={"alice": 106})

    assert blockers_of(make_spec(), state) == [
        "account alice: the target has a system user named alice (UID 105)",
        "account alice: the target has a system group named alice (GID 106)",
    ]


def test_a_user_of_that_name_with_another_uid_clashes():
    state = make_state(users={"alice": 10007})

    assert blockers_of(make_spec(), state) == [
        "account alice: the target already has a user named alice with UID 10007 (the account to move has UID 10001)",
    ]


def test_a_user_of_that_name_with_the_same_uid_is_no_clash():
    # Left by an interrupted move that created the identity: it is the account's own.
    state = make_state(users={"alice": 10001}, groups={"alice": 10001})

    assert blockers_of(make_spec(), state) == []


def test_a_uid_or_gid_held_by_another_name_clashes():
    state = make_state(users={"bob": 10001}, groups={"staff2": 10001})

    assert blockers_of(make_spec(), state) == [
        "account alice: UID 10001 belongs to user bob on the target",
        "account alice: GID 10001 belongs to group staff2 on the target",
    ]


def test_a_uid_held_by_another_account_names_the_account():
    state = make_state(accounts=[make_spec("bob", uid=10001)], users={"bob": 10001}, groups={"bob": 10001})

    assert blockers_of(make_spec(), state) == [
        "account alice: UID 10001 belongs to account bob on the target",
        "account alice: GID 10001 belongs to account bob on the target",
    ]


def test_a_domain_served_by_another_account_clashes():
    state = make_state(accounts=[make_spec("bob", uid=10002, domains=["bob.example", "shop.example"])])
    spec = make_spec(domains=["alice.example", "shop.example"])

    assert blockers_of(spec, state) == [
        "account alice: domain shop.example is already served by account bob on the target"]


def test_a_database_of_that_name_belonging_to_no_account_clashes():
    state = make_state(databases={"mariadb": ["alice_app"], "postgresql": ["alice_app"]})
    spec = make_spec(databases=(("mariadb", "alice_app"), ("postgresql", "alice_app")))

    assert blockers_of(spec, state) == [
        "account alice: MariaDB database alice_app already exists on the target and belongs to no account there",
        "account alice: PostgreSQL database alice_app already exists on the target and belongs to no account there",
    ]


def test_a_database_of_another_account_clashes_and_names_it():
    # Account 'al' may own 'alice_app': its names only have to start with 'al'.
    other = make_spec("al", uid=10002, databases=(("mariadb", "alice_app"),), users=("alice_app",))
    state = make_state(accounts=[other], databases={"mariadb": ["alice_app"]})
    spec = make_spec(databases=(("mariadb", "alice_app"),), users=("alice_app",))

    assert blockers_of(spec, state) == [
        "account alice: MariaDB database alice_app belongs to account al on the target",
        "account alice: MariaDB user alice_app belongs to account al on the target",
    ]


def test_a_database_of_an_account_of_the_same_name_is_no_database_clash():
    existing = make_spec(domains=["old.example"], databases=(("mariadb", "alice_app"),))
    state = make_state(accounts=[existing], databases={"mariadb": ["alice_app"]}, users={"alice": 10001})

    assert blockers_of(make_spec(databases=(("mariadb", "alice_app"),)), state) == [
        "account alice: an account named alice already exists on the target with different data (its sites differ)"]


def test_a_resumed_move_is_no_clash_and_needs_no_more_space():
    spec = make_spec(databases=(("mariadb", "alice_app"),))
    state = make_state(accounts=[spec], users={"alice": 10001}, groups={"alice": 10001},
                       databases={"mariadb": ["alice_app"]}, free_bytes={"/home": 0, "/var/lib/mysql": 0})

    assert blockers_of(spec, state, make_resources(size=50 * GIB, databases=[("mariadb", "alice_app", GIB)])) == []


def test_accounts_earlier_in_the_plan_count_as_on_the_target():
    alice = make_spec(domains=["shop.example"])
    bob = make_spec("bob", uid=10001, domains=["shop.example"])

    result = blockers_on_target([(alice, make_resources()), (bob, make_resources())], make_state())

    assert result == {"alice": [], "bob": [
        "account bob: UID 10001 belongs to account alice, earlier in this plan",
        "account bob: GID 10001 belongs to account alice, earlier in this plan",
        "account bob: domain shop.example is already served by account alice, earlier in this plan",
    ]}


def test_an_account_listed_twice_is_refused():
    with pytest.raises(PlanInputError, match="alice is listed twice"):
        blockers_on_target([(make_spec(), make_resources()), (make_spec(), make_resources())], make_state())


# --- space -----------------------------------------------------------------------------------

def test_space_is_used_up_account_by_account_in_plan_order():
    # 1 GiB each; room for 1.5 GiB x 1.2 plus the 1 GiB reserve.
    free = int(1.5 * GIB * 1.2) + GIB
    state = make_state(free_bytes=dict(make_state()["free_bytes"], **{"/home": free}))
    plan = [(make_spec(name, uid=uid), make_resources(size=GIB if name != "carol" else 0))
            for name, uid in (("alice", 10001), ("bob", 10002), ("carol", 10003))]

    result = blockers_on_target(plan, state)

    assert result["alice"] == []
    assert result["bob"] == [
        "account bob: not enough space on the target for /home: the accounts planned up to this one need "
        "3.40 GiB there (their files and databases x 1.2 plus a 1.00 GiB reserve), 2.80 GiB is free"]
    # Nothing of carol's own, but the plan up to carol still does not fit.
    assert len(result["carol"]) == 1 and "need 3.40 GiB" in result["carol"][0]


def test_files_and_databases_on_one_filesystem_share_its_space():
    spec = make_spec(databases=(("mariadb", "alice_app"),))
    resources = make_resources(size=GIB, databases=[("mariadb", "alice_app", GIB)])
    free = {"/home": 3 * GIB, "/var/lib/mysql": 3 * GIB, "/var/lib/postgresql": 0}

    apart = make_state(free_bytes=free, devices={"/home": 1, "/var/lib/mysql": 2, "/var/lib/postgresql": 3})
    together = make_state(free_bytes=free, devices={"/home": 1, "/var/lib/mysql": 1, "/var/lib/postgresql": 3})

    assert blockers_of(spec, apart, resources) == []
    assert blockers_of(spec, together, resources) == [
        "account alice: not enough space on the target for /home and /var/lib/mysql: the accounts planned up to "
        "this one need 3.40 GiB there (their files and databases x 1.2 plus a 1.00 GiB reserve), 3.00 GiB is free"]


def test_a_database_filesystem_is_checked_only_for_accounts_with_such_databases():
    state = make_state(free_bytes=dict(make_state()["free_bytes"], **{"/var/lib/postgresql": 0}))

    assert blockers_of(make_spec(databases=(("mariadb", "alice_app"),)), state) == []
    blocked = blockers_of(make_spec(databases=(("postgresql", "alice_app"),)), state)
    assert blocked == ["account alice: not enough space on the target for /var/lib/postgresql: the accounts planned "
                       "up to this one need 1.00 GiB there (their files and databases x 1.2 plus a 1.00 GiB "
                       "reserve), 0.00 GiB is free"]


def test_inodes_on_the_homes_filesystem_are_used_up_in_plan_order():
    # Room for 40,000 files x 1.2 plus the reserve of 10,000 inodes.
    state = make_state(free_inodes={"/home": 58000, "/var/lib/mysql": 0})
    plan = [(make_spec(name, uid=uid, databases=(("mariadb", "%s_app" % name),)), make_resources(files=20000))
            for name, uid in (("alice", 10001), ("bob", 10002), ("carol", 10003))]

    result = blockers_on_target(plan, state)

    assert result["alice"] == [] and result["bob"] == []
    assert result["carol"] == ["account carol: not enough inodes on the target for /home: the accounts planned up "
                               "to this one need 82,000 there (their files x 1.2 plus a reserve of 10,000), "
                               "58,000 are free"]
    assert blockers_on_target(plan, make_state(free_inodes={"/home": None}))["carol"] == []


def test_a_home_under_srv_needs_space_on_srv():
    state = make_state(free_bytes=dict(make_state()["free_bytes"], **{"/srv": GIB}))

    assert blockers_of(make_spec(home="/home/alice"), state) == []
    assert "for /srv:" in blockers_of(make_spec(home="/srv/alice"), state, make_resources(size=1))[0]


# --- the target as a whole -------------------------------------------------------------------

def test_a_target_on_another_version_blocks():
    assert target_blockers(make_state(infrastructure_version="2023"), "2025") == [
        "the target runs infrastructure 2023, not 2025: accounts translated for 2025 cannot run there"]
    assert target_blockers(make_state(infrastructure_version=None), "2025") == [
        "the target records no infrastructure version (/etc/hosting/infrastructure-version is missing or empty): "
        "it was not laid down as infrastructure 2025"]
    assert target_blockers(make_state(errors=["the target's MariaDB server did not list its databases"]), "2025") == [
        "the target's MariaDB server did not list its databases"]
    assert target_blockers(make_state(), "2025") == []


# --- the freeze estimate ---------------------------------------------------------------------

def test_freeze_estimate_of_an_empty_account_is_the_fixed_overhead():
    assert estimate_freeze_s(make_resources(files=0, size=0)) == (
        5.0, "5 s + 10 s/GB x 0.000 GB of databases + 1 s/10,000 files x 0 files = 5.0 s")


def test_freeze_estimate_adds_databases_and_files():
    resources = make_resources(files=20000, databases=[("mariadb", "alice_app", 600 * 1000 ** 2),
                                                       ("postgresql", "alice_app", 400 * 1000 ** 2),
                                                       ("mariadb", "alice_gone", None)])

    seconds, formula = estimate_freeze_s(resources)

    assert seconds == 17.0  # 5 + 1 GB x 10 + 20,000 files x 1 s / 10,000
    assert formula == "5 s + 10 s/GB x 1.000 GB of databases + 1 s/10,000 files x 20000 files = 17.0 s"


def test_freeze_rates_can_be_overridden():
    resources = make_resources(files=5000, databases=[("mariadb", "alice_app", 2 * GB)])

    assert estimate_freeze_s(resources, {"database_s_per_gb": 75, "fixed_s": 0})[0] == 150.5


@pytest.mark.parametrize("rates,message", [
    ({"per_gb": 1}, "unknown freeze rate 'per_gb'"),
    ({"fixed_s": -1}, "fixed_s must be a number of seconds, at least 0"),
    ({"fixed_s": True}, "fixed_s must be a number"),
    ({"fixed_s": "5"}, "fixed_s must be a number"),
])
def test_bad_freeze_rates_are_refused(rates, message):
    with pytest.raises(PlanInputError, match=message):
        estimate_freeze_s(make_resources(), rates)


# --- reading the target ----------------------------------------------------------------------

Passwd = collections.namedtuple("Passwd", "pw_name pw_uid")
Group = collections.namedtuple("Group", "gr_name gr_gid")
Vfs = collections.namedtuple("Vfs", "f_bavail f_frsize f_favail f_files")
Stat = collections.namedtuple("Stat", "st_dev")


def fake_server(tmp_path, spec_files=(), version="2025\n", mariadb=(0, "information_schema\nbob_app\n", "")):
    spec_dir = tmp_path / "accounts"
    spec_dir.mkdir()
    for name, text in spec_files:
        (spec_dir / ("%s.yml" % name)).write_text(text)
    version_file = tmp_path / "infrastructure-version"
    if version is not None:
        version_file.write_text(version)
    calls, measured = [], []

    def run(argv):
        calls.append(argv)
        if argv[0] == "mariadb":
            return mariadb
        raise OSError(2, "No such file or directory: 'runuser'")

    def statvfs(path):
        measured.append(path)
        return Vfs(f_bavail=10 ** 9, f_frsize=4096, f_favail=5000000, f_files=0 if path == "/" else 9000000)

    read = functools.partial(
        read_target_state, run=run, spec_dir=str(spec_dir), version_file=str(version_file),
        passwd=lambda: [Passwd("root", 0), Passwd("bob", 10002)], group=lambda: [Group("root", 0)],
        statvfs=statvfs, stat=lambda path: Stat(st_dev=7))
    return read, calls, measured


def test_the_target_state_is_read_from_the_server(tmp_path):
    bob = make_spec("bob", uid=10002)
    read, calls, measured = fake_server(tmp_path, [("bob", dump_spec(bob))])
    specs = [make_spec(databases=(("mariadb", "alice_app"), ("postgresql", "alice_app"))),
             make_spec("carol", uid=10003, home="/srv/carol")]

    state = read(specs)

    assert state["infrastructure_version"] == "2025"
    assert state["accounts"] == [bob]
    assert state["users"] == {"root": 0, "bob": 10002} and state["groups"] == {"root": 0}
    assert calls[0] == ["mariadb", "--batch", "--skip-column-names", "-e", "SHOW DATABASES"]
    assert calls[1] == ["runuser", "-u", "postgres", "--", "psql", "-XAt", "-c", "SELECT datname FROM pg_database"]
    assert state["databases"] == {"mariadb": ["bob_app", "information_schema"]}
    assert state["errors"] == ["the target's PostgreSQL server did not list its databases (runuser exited with 127: "
                               "[Errno 2] No such file or directory: 'runuser')"]
    assert sorted(state["free_bytes"]) == ["/home", "/srv", "/var/lib/mysql", "/var/lib/postgresql"]
    assert set(state["free_bytes"].values()) == {4096 * 10 ** 9} and set(state["devices"].values()) == {7}
    # No inode limit on a filesystem that reports no inode table.
    assert state["free_inodes"]["/home"] == (None if measured[0] == "/" else 5000000)
    # A path that does not exist yet is measured on the filesystem that will hold it.
    assert all(pathlib.Path(path).exists() for path in measured)


def test_no_databases_ask_no_database_server(tmp_path):
    read, calls, _measured = fake_server(tmp_path, version=None)

    state = read([make_spec()])

    assert calls == [] and state["databases"] == {}
    assert state["infrastructure_version"] is None and state["accounts"] == []


def test_a_broken_spec_or_a_failing_server_on_the_target_is_reported_not_raised(tmp_path):
    read, _calls, _measured = fake_server(tmp_path, [("bob", "name: bob\nuid: 5\ngid: 10002\n")],
                                          mariadb=(1, "", "ERROR 2002: Can't connect\n"))

    state = read([make_spec(databases=(("mariadb", "alice_app"),))])

    assert state["accounts"] == []
    assert state["errors"][0].startswith("the target's account specs cannot be read: ")
    assert "field 'uid': 5 is below the minimum 10000" in state["errors"][0]
    assert state["errors"][1] == ("the target's MariaDB server did not list its databases (mariadb exited with 1: "
                                  "ERROR 2002: Can't connect)")


# --- the accounts given and the whole plan ---------------------------------------------------

def source_account(spec, resources=None):
    return {"name": spec.name, "spec": spec.to_dict(), "resources": resources or make_resources()}


@pytest.mark.parametrize("accounts,message", [
    ({"name": "alice"}, "accounts must be the list"),
    ([{"name": "alice"}], r"accounts\[0\] has no spec"),
    ([{"name": "bob", "spec": {"name": "alice"}}], r"accounts\[0\] is named 'bob' but its spec is for 'alice'"),
    ([{"spec": {"name": "alice", "uid": 1, "gid": 10001}}],
     r"accounts\[0\]: source/alice.yml: field 'uid': 1 is below the minimum 10000"),
    ([{"name": "alice", "spec": {"name": "alice", "uid": 10001, "gid": 10001}}],
     "account alice has no resources: run hosting.migration.account_info with resources: true"),
])
def test_bad_accounts_are_refused_with_a_sentence(accounts, message):
    with pytest.raises(PlanInputError, match=message):
        parse_accounts(accounts)


def test_a_ready_plan(catalogue):
    spec = make_spec(php="8.2", databases=(("mariadb", "alice_app"),))
    resources = make_resources(files=22, databases=[("mariadb", "alice_app", 2637824)])

    plan = plan_moves(parse_accounts([source_account(spec, resources)]), catalogue, "2023", None, make_state())

    assert plan["ready"] is True and plan["blockers"] == [] and plan["target_blockers"] == []
    assert (plan["source_version"], plan["target_version"]) == ("2023", "2025")
    account = plan["accounts"][0]
    assert account["translated_spec"]["sites"][0]["php"] == "8.4"
    assert [change["kind"] for change in account["changes"]] == ["os", "php", "mariadb"]
    assert account["resumed"] is False and account["blockers"] == []
    assert account["freeze_estimate_s"] == 5.0 and plan["freeze_estimate_total_s"] == 5.0
    assert account["freeze_estimate_formula"].endswith("x 0.003 GB of databases + 1 s/10,000 files x 22 files = 5.0 s")


def test_a_blocked_plan_lists_the_target_first_then_each_account(catalogue):
    accounts = [source_account(make_spec(php="7.4")),
                source_account(make_spec("bob", uid=10002, databases=(("mariadb", "bob_app"),)),
                               make_resources(databases=[("mariadb", "bob_app", None)]))]
    state = make_state(infrastructure_version="2023", users={"bob": 33})

    plan = plan_moves(parse_accounts(accounts), catalogue, "2023", "2025", state)

    assert plan["ready"] is False
    assert plan["blockers"] == [
        "the target runs infrastructure 2023, not 2025: accounts translated for 2025 cannot run there",
        "account alice: site main runs PHP 7.4, which infrastructure 2025 neither offers nor maps to a newer version",
        "account bob: MariaDB database bob_app is in the account's spec but does not exist on the source",
        "account bob: the target has a system user named bob (UID 33)",
    ]
    assert [len(account["blockers"]) for account in plan["accounts"]] == [1, 2]


def test_a_resumed_move_is_ready(catalogue):
    spec = make_spec(php="8.2", databases=(("mariadb", "alice_app"),))
    translated = translate_spec(spec, catalogue, "2023", "2025")[0]
    state = make_state(accounts=[translated], users={"alice": 10001}, groups={"alice": 10001},
                       databases={"mariadb": ["alice_app"]})

    plan = plan_moves(parse_accounts([source_account(spec)]), catalogue, "2023", "2025", state)

    assert plan["ready"] is True and plan["accounts"][0]["resumed"] is True


def test_unknown_versions_fail_the_plan(catalogue):
    with pytest.raises(CatalogueError, match="unknown source infrastructure version '2021'"):
        plan_moves([], catalogue, "2021", "2025", make_state())


# --- the module ------------------------------------------------------------------------------

class ModuleFailed(Exception):
    pass


class FakeModule:
    def __init__(self, **params):
        self.params = dict({"target_version": None, "freeze_rates": {}, "spec_dir": "/nonexistent",
                            "min_uid": 10000}, **params)
        self.commands = []

    def fail_json(self, msg, **kwargs):
        raise ModuleFailed(msg)

    def run_command(self, argv, handle_exceptions=True):
        self.commands.append(argv)
        return 0, "", ""


def test_the_module_plans_on_the_server_it_runs_on(tmp_path, monkeypatch, catalogue):
    read, _calls, _measured = fake_server(tmp_path)
    monkeypatch.setattr(account_plan_info, "read_target_state",
                        lambda specs, run, spec_dir, min_uid: read(specs, min_uid=min_uid))
    module = FakeModule(accounts=[source_account(make_spec(php="8.2"))], source_version="2023", catalogue=catalogue)

    result = account_plan_info.plan_on_this_server(module)

    assert result["ready"] is True and result["target_version"] == "2025"
    assert sorted(result["accounts"][0]) == ["blockers", "changes", "freeze_estimate_formula", "freeze_estimate_s",
                                             "name", "resumed", "translated_spec"]


@pytest.mark.parametrize("params,message", [
    ({"source_version": "2021"}, "unknown source infrastructure version '2021'"),
    ({"target_version": "2030"}, "unknown target infrastructure version '2030'"),
    ({"freeze_rates": {"slow": 1}}, "unknown freeze rate 'slow'"),
    ({"accounts": [{"name": "alice"}]}, r"accounts\[0\] has no spec"),
])
def test_the_module_refuses_bad_input_before_reading_the_server(monkeypatch, catalogue, params, message):
    def read(*args, **kwargs):
        raise AssertionError("the server must not be read")

    monkeypatch.setattr(account_plan_info, "read_target_state", read)
    arguments = dict({"accounts": [], "source_version": "2023", "catalogue": catalogue}, **params)

    with pytest.raises(ModuleFailed, match=message):
        account_plan_info.plan_on_this_server(FakeModule(**arguments))


def test_the_module_documents_its_options():
    documented = yaml.safe_load(account_plan_info.DOCUMENTATION)["options"]
    fragment = {"spec_dir", "min_uid"}

    assert set(documented) | fragment == set(account_plan_info.ARGUMENT_SPEC)
    for name, option in documented.items():
        argument = account_plan_info.ARGUMENT_SPEC[name]
        assert option["type"] == argument["type"] and option.get("default") == argument.get("default")
        assert option.get("required", False) == argument.get("required", False)
    yaml.safe_load(account_plan_info.RETURN)
    yaml.safe_load(account_plan_info.EXAMPLES)


# --- the table -------------------------------------------------------------------------------

def table_plan(catalogue):
    accounts = [source_account(make_spec(php="8.2", databases=(("mariadb", "alice_app"),)),
                               make_resources(files=20000, databases=[("mariadb", "alice_app", GB)])),
                source_account(make_spec("bob", uid=10002, php="7.4"))]
    state = make_state(users={"bob": 33})
    return plan_moves(parse_accounts(accounts), catalogue, "2023", "2025", state)


def test_the_table_has_a_row_per_account_one_line_per_change_and_blocker(catalogue):
    lines = plan_table(table_plan(catalogue)["accounts"]).splitlines()

    assert lines[0] == "OS: Debian 12 (bookworm) -> Debian 13 (trixie)"
    assert lines[1].split() == ["account", "freeze", "changes", "blockers"]
    assert set(lines[2]) == {"-"}
    assert lines[3].split() == ["alice", "17.0", "s", "php", "main", "8.2", "->", "8.4", "-"]
    assert lines[4].split() == ["mariadb", "alice_app", "10.11", "->", "11.8"]
    assert lines[5].startswith("bob ") and lines[5].endswith(
        "site main runs PHP 7.4, which infrastructure 2025 neither offers nor maps to a newer version")
    assert lines[6].strip() == "the target has a system user named bob (UID 33)"
    # Columns line up: every cell of a column starts at the same place.
    assert lines[3].index("php") == lines[4].index("mariadb") == lines[1].index("changes")
    assert lines[5].index("site main") == lines[6].index("the target") == lines[1].index("blockers")
    assert lines[-1] == ("2 accounts: 1 ready, 1 blocked; 2 blockers; estimated freeze 22.0 s in all, "
                         "longest 17.0 s (alice)")


def test_the_table_of_the_whole_result_shows_the_versions_and_the_target(catalogue):
    plan = table_plan(catalogue)
    plan = dict(plan, ready=False, target_blockers=["the target runs infrastructure 2023, not 2025"])
    plan["accounts"] = [dict(plan["accounts"][0], resumed=True)]

    lines = plan_table(plan).splitlines()

    assert lines[0] == "Infrastructure 2023 -> 2025: NOT ready"
    assert lines[4].startswith("alice (resumed)  17.0 s")
    assert lines[-2] == "blocks every account: the target runs infrastructure 2023, not 2025"
    assert lines[-1] == ("1 account: 0 ready, 1 blocked; 1 blocker (1 on the target); estimated freeze 17.0 s "
                         "in all, longest 17.0 s (alice)")


def test_an_empty_plan_has_a_table_too():
    assert plan_table([]).splitlines()[-1] == "0 accounts: 0 ready, 0 blocked; 0 blockers"


@pytest.mark.parametrize("bad", ["text", {"accounts": None}, [{"name": "alice"}]])
def test_the_table_refuses_what_is_not_a_plan(bad):
    with pytest.raises(AnsibleFilterError, match="plan_table"):
        plan_table(copy.deepcopy(bad))
