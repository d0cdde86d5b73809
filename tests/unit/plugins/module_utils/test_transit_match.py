"""Matching a transit server to a customer server: "the same configuration"."""
import math
import pathlib

import pytest
import yaml

from ansible_collections.hosting.migration.plugins.module_utils.transit_match import (
    MatchError, NoMatchError, NoPoolError, ProfileError, first_free, free_matches, match, validate_profile)

TOP = pathlib.Path(__file__).resolve().parents[4]
DEDICATED = {"cores": 4, "memory_gib": 8, "disk_gb": 80, "arch": "x86_64", "zone": "lab-a"}


@pytest.fixture(scope="module")
def lab():
    """The customer server and the transit pool of the lab inventory, as the lease module builds them."""
    groups = yaml.safe_load((TOP / "inventories/lab/hosts.yml").read_text())["all"]["children"]
    customer = groups["customer_servers"]["hosts"]["dedicated1"]
    pool = [{"name": name, "profile": host["server_profile"], "infrastructure_version": host["infrastructure_version"]}
            for name, host in groups["transit_pool"]["hosts"].items()]
    return customer["server_profile"], pool


def candidate(name, version="2025", **changes):
    return {"name": name, "profile": dict(DEDICATED, **changes), "infrastructure_version": version}


# --- the lab ---------------------------------------------------------------------------------

def test_in_the_lab_transit1_serves_dedicated1_and_transit2_never(lab):
    profile, pool = lab

    result = match("dedicated1", profile, "2025", pool)

    assert result["matching"] == ["transit1"]
    assert result["rejected"] == {"transit2": [
        "transit2 has 2 cores, dedicated1 needs 4",
        "transit2 has 4 GiB of memory, dedicated1 needs 8",
        "transit2 has 40 GB of disk, dedicated1 needs 80",
    ]}


def test_in_the_lab_with_transit1_leased_dedicated1_waits_rather_than_taking_transit2(lab):
    profile, pool = lab
    result = match("dedicated1", profile, "2025", pool)

    assert free_matches(result, {"transit1"}) == []
    assert first_free(result, {"transit1"}) is None
    assert first_free(result, set()) == "transit1"


def test_in_the_lab_nothing_serves_dedicated1_on_a_version_the_pool_does_not_run(lab):
    profile, pool = lab

    with pytest.raises(NoMatchError) as caught:
        match("dedicated1", profile, "2027", pool)

    assert str(caught.value).startswith("nothing in the pool can serve dedicated1 (4 cores, 8 GiB, 80 GB, x86_64, "
                                        "zone lab-a, infrastructure 2027): transit1 runs infrastructure 2025, not "
                                        "the target 2027; transit2 has 2 cores, dedicated1 needs 4, ")
    assert sorted(caught.value.reasons) == ["transit1", "transit2"]


# --- what must be the same -------------------------------------------------------------------

@pytest.mark.parametrize("changes,version,reason", [
    ({"arch": "aarch64"}, "2025", "odd is aarch64, dedicated1 is x86_64"),
    ({"zone": "lab-b"}, "2025",
     "odd is in zone lab-b, dedicated1 in zone lab-a (its IP addresses can only be rerouted within a zone)"),
    ({}, "2023", "odd runs infrastructure 2023, not the target 2025"),
    ({"memory_gib": 7.5}, "2025", "odd has 7.5 GiB of memory, dedicated1 needs 8"),
    ({"cores": 1}, "2025", "odd has 1 core, dedicated1 needs 4"),
])
def test_a_mismatch_rejects_with_its_reason(changes, version, reason):
    pool = [candidate("good"), candidate("odd", version, **changes)]

    result = match("dedicated1", DEDICATED, "2025", pool)

    assert result["matching"] == ["good"]
    assert result["rejected"] == {"odd": [reason]}


def test_a_bigger_server_serves_a_smaller_one():
    result = match("dedicated1", DEDICATED, "2025", [candidate("big", cores=16, memory_gib=64, disk_gb=1000)])

    assert result["matching"] == ["big"]


def test_a_version_given_as_a_number_is_the_same_version():
    assert match("dedicated1", DEDICATED, 2025, [candidate("transit1", version="2025")])["matching"] == ["transit1"]


# --- best fit --------------------------------------------------------------------------------

def test_best_fit_first_fewest_cores_then_memory_then_disk_then_name():
    pool = [
        candidate("huge", cores=16),
        candidate("more-memory", memory_gib=16),
        candidate("zeta"),
        candidate("more-disk", disk_gb=160),
        candidate("alpha"),
        candidate("more-cores", cores=8),
    ]

    result = match("dedicated1", DEDICATED, "2025", pool)

    assert result["matching"] == ["alpha", "zeta", "more-disk", "more-memory", "more-cores", "huge"]
    assert result["rejected"] == {}


def test_busy_servers_are_skipped_in_best_fit_order():
    result = match("dedicated1", DEDICATED, "2025", [candidate("big", cores=8), candidate("exact")])

    assert free_matches(result, ["exact"]) == ["big"]
    assert first_free(result, {"exact"}) == "big"
    assert first_free(result, {"exact", "big", "not-in-the-pool"}) is None


def test_busy_must_be_a_collection_of_names():
    result = match("dedicated1", DEDICATED, "2025", [candidate("exact")])

    with pytest.raises(MatchError, match="set or list of names"):
        free_matches(result, "exact")


# --- bad input -------------------------------------------------------------------------------

def test_no_pool_is_an_error_of_its_own():
    with pytest.raises(NoPoolError, match="no transit server can serve dedicated1: the pool is empty"):
        match("dedicated1", DEDICATED, "2025", [])


def test_nothing_in_the_pool_can_ever_match_names_every_server_and_reason():
    pool = [candidate("transit1", zone="lab-b"), candidate("transit2", cores=2, arch="aarch64")]

    with pytest.raises(NoMatchError) as caught:
        match("dedicated1", DEDICATED, "2025", pool)

    assert str(caught.value) == (
        "nothing in the pool can serve dedicated1 (4 cores, 8 GiB, 80 GB, x86_64, zone lab-a, infrastructure 2025): "
        "transit1 is in zone lab-b, dedicated1 in zone lab-a (its IP addresses can only be rerouted within a zone); "
        "transit2 has 2 cores, dedicated1 needs 4, transit2 is aarch64, dedicated1 is x86_64")
    assert not isinstance(caught.value, NoPoolError)


@pytest.mark.parametrize("changes,message", [
    ({"cores": 0}, "transit9 has cores 0: it must be a whole number of cores, more than 0"),
    ({"cores": 4.0}, "transit9 has cores 4.0: it must be a whole number"),
    ({"cores": True}, "transit9 has cores True"),
    ({"cores": "4"}, "transit9 has cores '4'"),
    ({"memory_gib": -8}, "transit9 has memory_gib -8: it must be a number of GiB of memory, more than 0"),
    ({"memory_gib": math.nan}, "transit9 has memory_gib nan"),
    ({"disk_gb": math.inf}, "transit9 has disk_gb inf"),
    ({"arch": ""}, "transit9 has arch '': it must be an architecture name"),
    ({"zone": None}, "transit9 has zone None: it must be a zone name, not empty"),
    ({"ram": 8}, "transit9 has unknown field ram (known: cores, memory_gib"),
])
def test_a_bad_candidate_profile_is_refused_naming_the_server_and_the_field(changes, message):
    with pytest.raises(ProfileError) as caught:
        match("dedicated1", DEDICATED, "2025", [candidate("transit1"), candidate("transit9", **changes)])

    assert str(caught.value).startswith("the hardware profile of " + message)


def test_a_missing_field_is_named():
    profile = dict(DEDICATED)
    del profile["zone"], profile["arch"]

    with pytest.raises(ProfileError, match="^the hardware profile of dedicated1 lacks arch, zone$"):
        match("dedicated1", profile, "2025", [candidate("transit1")])


def test_a_customer_server_without_a_profile_is_refused():
    with pytest.raises(ProfileError, match="^dedicated1 has no hardware profile"):
        match("dedicated1", None, "2025", [candidate("transit1")])


@pytest.mark.parametrize("pool,message", [
    ("transit1", "must be a list"),
    ([candidate("transit1"), candidate("transit1")], "transit server transit1 is listed twice in the pool"),
    ([{"profile": DEDICATED, "infrastructure_version": "2025"}], "transit pool entry 0's name must be a server name"),
    ([{"name": "transit1", "profile": DEDICATED}], "transit1 has no infrastructure version"),
    (["transit1"], "transit pool entry 0 is not"),
])
def test_a_bad_pool_is_refused(pool, message):
    with pytest.raises(MatchError, match=message):
        match("dedicated1", DEDICATED, "2025", pool)


def test_validate_profile_returns_a_copy():
    profile = dict(DEDICATED)

    checked = validate_profile(profile, "dedicated1")

    assert checked == profile and checked is not profile
