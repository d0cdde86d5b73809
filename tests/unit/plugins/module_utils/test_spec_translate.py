"""Translating an account spec from one infrastructure version to another."""
import copy
import pathlib

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils.account_spec import (
    dump_spec, validate_spec)
from ansible_collections.hosting.migration.plugins.module_utils.spec_translate import (
    CatalogueError, catalogue_versions, map_php, newest_version, os_text, translate_spec, version_key)

TOP = pathlib.Path(__file__).resolve().parents[4]
MARIADB_HASH = "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"


@pytest.fixture(scope="module")
def catalogue():
    """The collection's own catalogue: 2023 (PHP 8.2, MariaDB 10.11, PostgreSQL 15) and 2025."""
    defaults = yaml.safe_load((TOP / "roles/catalogue/defaults/main.yml").read_text())
    return defaults["infrastructure_catalogue"]


def make_spec(sites=(("main", "8.2"),), databases=(), name="alice"):
    return validate_spec({
        "name": name, "uid": 10001, "gid": 10001,
        "sites": [{"name": site, "domains": ["%s.%s.example" % (site, name)], "document_root": site, "php": php}
                  for site, php in sites],
        "databases": [{"engine": engine, "name": "%s_%s" % (name, db),
                       "users": [{"name": "%s_%s" % (name, db), "password_hash": MARIADB_HASH}]
                       if engine == "mariadb" else []}
                      for engine, db in databases],
        "cron": [{"schedule": "@daily", "command": "php ~/main/cron.php"}],
        "mailboxes": [{"address": "alice@main.alice.example", "maildir": "Maildir"}],
    }, "/etc/hosting/accounts/%s.yml" % name)


def php_of(spec):
    return {site.name: site.php for site in spec.sites}


def kinds(changes):
    return [(change["kind"], change["what"], change["from"], change["to"]) for change in changes]


def test_a_php_version_the_target_no_longer_offers_is_mapped(catalogue):
    translated, changes, blockers = translate_spec(make_spec(), catalogue, "2023", "2025")

    assert php_of(translated) == {"main": "8.4"}
    assert blockers == []
    php = [change for change in changes if change["kind"] == "php"]
    assert php == [{"kind": "php", "what": "site main", "from": "8.2", "to": "8.4",
                    "text": "site main: PHP 8.2 becomes 8.4 (infrastructure 2025 does not offer 8.2)"}]


def test_the_os_change_is_listed_first(catalogue):
    _translated, changes, _blockers = translate_spec(make_spec(), catalogue, "2023", "2025")

    assert changes[0] == {"kind": "os", "what": "server", "from": "Debian 12 (bookworm)",
                          "to": "Debian 13 (trixie)",
                          "text": "server: Debian 12 (bookworm) becomes Debian 13 (trixie)"}


def test_a_php_version_the_target_offers_is_kept(catalogue):
    offering = copy.deepcopy(catalogue)
    offering["2025"]["services"]["php"]["offered"] = ["8.2", "8.4"]

    translated, changes, blockers = translate_spec(make_spec(), offering, "2023", "2025")

    assert php_of(translated) == {"main": "8.2"}
    assert [change for change in changes if change["kind"] == "php"] == []
    assert blockers == []


def test_a_php_version_neither_offered_nor_mapped_blocks(catalogue):
    spec = make_spec(sites=(("main", "7.4"), ("shop", "8.2")))

    translated, changes, blockers = translate_spec(spec, catalogue, "2023", "2025")

    assert blockers == ["site main runs PHP 7.4, which infrastructure 2025 neither offers nor maps to a newer version"]
    # The blocked site keeps its version; the others are still translated.
    assert php_of(translated) == {"main": "7.4", "shop": "8.4"}
    assert ("php", "site shop", "8.2", "8.4") in kinds(changes)


def test_static_sites_stay_static(catalogue):
    translated, changes, blockers = translate_spec(make_spec(sites=(("static", "none"),)), catalogue, "2023", "2025")

    assert php_of(translated) == {"static": "none"}
    assert [change for change in changes if change["kind"] == "php"] == []
    assert blockers == []


def test_database_server_versions_are_listed_per_database(catalogue):
    spec = make_spec(databases=(("mariadb", "app"), ("mariadb", "blog"), ("postgresql", "app")))

    _translated, changes, blockers = translate_spec(spec, catalogue, "2023", "2025")

    assert blockers == []
    assert kinds(changes)[2:] == [
        ("mariadb", "database alice_app", "10.11", "11.8"),
        ("mariadb", "database alice_blog", "10.11", "11.8"),
        ("postgresql", "database alice_app", "15", "17"),
    ]
    texts = [change["text"] for change in changes]
    assert "database alice_app: MariaDB 10.11 becomes 11.8" in texts
    assert "database alice_app: PostgreSQL 15 becomes 17" in texts


def test_a_downgrade_blocks(catalogue):
    spec = make_spec(sites=(("main", "8.4"),), databases=(("mariadb", "app"), ("postgresql", "app")))

    translated, changes, blockers = translate_spec(spec, catalogue, "2025", "2023")

    assert blockers == [
        "site main runs PHP 8.4, which infrastructure 2023 neither offers nor maps to a newer version",
        "database alice_app would go from MariaDB 11.8 down to 10.11 on infrastructure 2023; a database is "
        "never moved to an older server version",
        "database alice_app would go from PostgreSQL 17 down to 15 on infrastructure 2023; a database is "
        "never moved to an older server version",
    ]
    assert php_of(translated) == {"main": "8.4"}
    assert [change["kind"] for change in changes] == ["os"]


def test_a_php_mapping_to_an_older_version_blocks(catalogue):
    odd = copy.deepcopy(catalogue)
    odd["2025"]["services"]["php"]["offered"] = ["8.1"]
    odd["2025"]["php_upgrades"] = {"8.2": "8.1"}

    translated, _changes, blockers = translate_spec(make_spec(), odd, "2023", "2025")

    assert blockers == ["site main runs PHP 8.2, which infrastructure 2025 maps to the older 8.1; "
                        "a site is never moved to an older PHP"]
    assert php_of(translated) == {"main": "8.2"}


def test_mappings_are_followed_to_an_offered_version_and_cycles_end():
    offered, upgrades = ["8.4"], {"8.0": "8.1", "8.1": "8.4", "7.0": "7.1", "7.1": "7.0"}

    assert map_php("8.0", offered, upgrades) == "8.4"
    assert map_php("8.4", offered, upgrades) == "8.4"
    assert map_php("7.0", offered, upgrades) is None
    assert map_php("5.6", offered, upgrades) is None


def test_same_version_changes_nothing(catalogue):
    spec = make_spec(databases=(("mariadb", "app"),))

    translated, changes, blockers = translate_spec(spec, catalogue, "2023", "2023")

    assert (translated, changes, blockers) == (spec, [], [])


def test_a_database_engine_the_target_does_not_provide_blocks(catalogue):
    without = copy.deepcopy(catalogue)
    del without["2025"]["services"]["postgresql"]

    _translated, _changes, blockers = translate_spec(make_spec(databases=(("postgresql", "app"),)),
                                                     without, "2023", "2025")

    assert blockers == ["database alice_app needs PostgreSQL, which infrastructure 2025 does not provide"]


@pytest.mark.parametrize("source,target,message", [
    ("2027", "2025", "unknown source infrastructure version '2027': the catalogue has 2023, 2025"),
    ("2023", "2024", "unknown target infrastructure version '2024': the catalogue has 2023, 2025"),
    ("2023", None, "unknown target infrastructure version None"),
])
def test_unknown_version_names_are_a_clear_error(catalogue, source, target, message):
    with pytest.raises(CatalogueError) as caught:
        translate_spec(make_spec(), catalogue, source, target)
    assert str(caught.value).startswith(message)


def test_an_empty_catalogue_is_a_clear_error():
    with pytest.raises(CatalogueError, match="infrastructure_catalogue"):
        translate_spec(make_spec(), {}, "2023", "2025")


def test_an_unquoted_php_version_in_the_catalogue_is_a_clear_error(catalogue):
    odd = copy.deepcopy(catalogue)
    odd["2025"]["php_upgrades"] = {"8.2": 8.4}
    odd["2025"]["services"]["php"]["offered"] = [8.4]

    with pytest.raises(CatalogueError, match=r"offered: 8.4 is not a PHP version"):
        translate_spec(make_spec(), odd, "2023", "2025")


def test_version_names_given_as_numbers_are_found(catalogue):
    numbered = {int(name): entry for name, entry in catalogue.items()}

    translated, _changes, blockers = translate_spec(make_spec(), numbered, 2023, 2025)

    assert php_of(translated) == {"main": "8.4"} and blockers == []


def test_the_translated_spec_is_still_a_valid_spec(catalogue):
    spec = make_spec(sites=(("main", "8.2"), ("static", "none")), databases=(("mariadb", "app"), ("postgresql", "app")))

    translated, _changes, _blockers = translate_spec(spec, catalogue, "2023", "2025")
    again = validate_spec(yaml.safe_load(dump_spec(translated)), "/etc/hosting/accounts/alice.yml")

    assert again == translated
    assert translated.databases == spec.databases and translated.cron == spec.cron
    assert translated.mailboxes == spec.mailboxes and (translated.uid, translated.gid) == (10001, 10001)


def test_a_spec_dict_is_validated_first(catalogue):
    translated, _changes, _blockers = translate_spec(make_spec().to_dict(), catalogue, "2023", "2025")

    assert php_of(translated) == {"main": "8.4"}


def test_versions_sort_as_numbers(catalogue):
    assert newest_version(catalogue) == "2025"
    assert catalogue_versions({"2025": {}, "2023": {}, "2100": {}, "999": {}}) == ["999", "2023", "2025", "2100"]
    assert version_key("10.11") > version_key("10.2") and version_key("17") > version_key("9")
    assert os_text(catalogue["2023"]) == "Debian 12 (bookworm)"


def test_an_unquoted_service_version_in_the_catalogue_is_a_clear_error(catalogue):
    odd = copy.deepcopy(catalogue)
    odd["2025"]["services"]["mariadb"]["version"] = 11.10

    with pytest.raises(CatalogueError, match=r"services.mariadb.version: 11.1 must be a quoted string"):
        translate_spec(make_spec(databases=(("mariadb", "app"),)), odd, "2023", "2025")
