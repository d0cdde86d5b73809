"""AWX's job templates run the way AWX runs them (ansible-runner, a private data directory, the
survey's answers as extra variables), against the lab; their artifacts checked.

Only the templates that change nothing on the lab run here: Prepare (without the database test)
and Report. Each job gets a ledger of its own in a temporary directory, never the lab's.

    .venv/bin/pytest -q tests/awx            (skipped when the lab is not up)
"""
import pathlib
import socket
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import awx_templates  # noqa: E402
import run_template  # noqa: E402

COLLECTIONS = awx_templates.TOP / ".collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

LAB_ACCOUNTS = {"alice", "bob", "carol", "dave", "erin"}
LAB_STATE = pathlib.Path("/var/lib/hosting-lab")


def _lab_up():
    if not (LAB_STATE / "ssh" / "id_ed25519").exists():
        return False
    try:
        with socket.create_connection(("10.77.0.20", 22), timeout=2):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _lab_up(), reason="the lab is not up (make lab-up)")


@pytest.fixture
def ledger(tmp_path):
    return tmp_path / "ledger.sqlite3"


def _successful(result):
    assert result["stats_event"], "no playbook_on_stats event:\n" + "\n".join(result["stdout"])
    assert (result["status"], result["rc"]) == ("successful", 0), "\n".join(result["stdout"])


def test_prepare_publishes_the_accounts_of_the_server(tmp_path, ledger):
    result = run_template.run_template(
        "Prepare", {"migration_server": "dedicated1", "migration_database_test": "false"},
        private_data_dir=tmp_path / "job", ledger=ledger)
    _successful(result)
    artifacts = result["artifacts"]
    assert LAB_ACCOUNTS <= set(artifacts["prepare_accounts"])
    assert set(artifacts["prepare_resources"]) == set(artifacts["prepare_accounts"])
    # No transit server asked: no plan; no database test asked: none reported.
    assert "prepare_ready" not in artifacts and "prepare_database_tests" not in artifacts
    # The job got the survey's answers as AWX gives them.
    assert result["extra_vars"] == {"migration_server": "dedicated1", "migration_database_test": "false"}
    assert (tmp_path / "job" / "env" / "extravars").read_text().count("dedicated1") == 1


def test_prepare_with_a_transit_server_publishes_the_plan(tmp_path, ledger):
    result = run_template.run_template(
        "Prepare", {"migration_server": "dedicated1", "migration_target": "transit1",
                    "migration_database_test": "false"},
        private_data_dir=tmp_path / "job", ledger=ledger)
    _successful(result)
    artifacts = result["artifacts"]
    assert "prepare_ready" in artifacts and "prepare_blockers" in artifacts
    assert LAB_ACCOUNTS <= set(artifacts["prepare_accounts"])


def test_report_publishes_the_charges_and_the_summary(tmp_path, ledger):
    from ansible_collections.hosting.migration.plugins.module_utils.ledger import Ledger

    # As once a migration has begun: the ledger knows the server and its accounts (for a server it
    # knows nothing of, the playbook says so and writes no report).
    store = Ledger.open(str(ledger))
    try:
        store.register_server("dedicated1", "2023")
        store.register_account("alice", "dedicated1")
    finally:
        store.close()
    reports = tmp_path / "reports"
    result = run_template.run_template(
        "Report", {"migration_server": "dedicated1"}, {"report_dir": str(reports)},
        private_data_dir=tmp_path / "job", ledger=ledger)
    _successful(result)
    artifacts = result["artifacts"]
    assert artifacts["report_leases"] == [] and artifacts["report_waiting"] == []
    assert artifacts["report_summary"]["server"] == "dedicated1"
    assert pathlib.Path(artifacts["report_html_path"]).parent == reports
    assert pathlib.Path(artifacts["report_html_path"]).is_file()
    assert pathlib.Path(artifacts["report_json_path"]).is_file()


def test_the_command_line_checks_the_expected_artifacts(tmp_path, ledger, capsys):
    argv = ["Prepare", "-a", "migration_server=dedicated1", "-a", "migration_database_test=false",
            "--ledger", str(ledger), "--private-data-dir", str(tmp_path / "job")]
    assert run_template.main(argv + ["--expect", "prepare_accounts=alice,bob,carol,dave,erin"]) == 0
    capsys.readouterr()
    assert run_template.main(argv[:-1] + [str(tmp_path / "job2"), "--expect", "prepare_accounts=mallory"]) == 1
    assert "the artifact prepare_accounts lacks mallory" in capsys.readouterr().err
