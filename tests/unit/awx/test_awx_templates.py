"""AWX as code, checked without an AWX: awx/templates.yml, awx/configure.yml, the wrapper
playbooks and the execution environment (awx/execution-environment.yml, meta/execution-environment.yml)."""
import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

TOP = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(TOP / "tests" / "awx"))
import awx_templates  # noqa: E402

PLAYBOOKS = TOP / "playbooks"
WRAPPERS = TOP / "awx" / "playbooks"
DEFINITIONS, CONTEXT = awx_templates.definitions()
TEMPLATES = DEFINITIONS["awx_job_templates"]
WORKFLOW = DEFINITIONS["awx_workflow"]
BY_NAME = {template["name"]: template for template in TEMPLATES}
IMPORT = re.compile(r"^\s*ansible\.builtin\.import_playbook:\s*(\S+)\s*$", re.MULTILINE)
INCLUDE = re.compile(r"(?:include_tasks|import_tasks):\s*(\S+\.yml)")


def _playbook_text(path, seen=None):
    """The text of a playbook with every playbook and task file it imports or includes."""
    seen = set() if seen is None else seen
    if path in seen:
        return ""
    seen.add(path)
    text = path.read_text()
    for target in IMPORT.findall(text):
        name = target.split("hosting.migration.", 1)[1] + ".yml" if target.startswith("hosting.migration.") else target
        text += _playbook_text(PLAYBOOKS / name, seen)
    for target in INCLUDE.findall(text):
        if (PLAYBOOKS / target).exists():
            text += _playbook_text(PLAYBOOKS / target, seen)
    return text


def _uses(text, variable):
    return re.search(r"\b%s\b" % re.escape(variable), text) is not None


def _surveys():
    for template in TEMPLATES:
        yield template["name"], template["survey"]
    yield WORKFLOW["name"], WORKFLOW["survey"]


# --- the templates and their playbooks --------------------------------------------------------

def test_template_names_are_unique():
    assert len(BY_NAME) == len(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda template: template["name"])
def test_template_runs_a_wrapper_of_the_project(template):
    assert template["playbook"].startswith("awx/playbooks/")
    assert (TOP / template["playbook"]).is_file()
    assert template["job_type"] in ("run", "check")
    assert isinstance(template["ask_variables_on_launch"], bool)
    assert template["description"].strip()


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS.glob("*.yml")), ids=lambda path: path.name)
def test_wrapper_imports_a_playbook_of_the_collection(wrapper):
    plays = yaml.safe_load(wrapper.read_text())
    imports = [play["ansible.builtin.import_playbook"] for play in plays if "ansible.builtin.import_playbook" in play]
    assert len(imports) == 1, "one playbook of the collection per wrapper"
    assert imports[0].startswith("hosting.migration.")
    assert (PLAYBOOKS / (imports[0].split(".", 2)[2] + ".yml")).is_file()
    assert any(template["playbook"] == "awx/playbooks/" + wrapper.name for template in TEMPLATES), \
        "a wrapper no template runs"


def test_every_playbook_a_phase_of_the_workflow_runs_is_a_template():
    collection = {path.stem for path in PLAYBOOKS.glob("*.yml")}
    wrapped = {IMPORT.search(path.read_text()).group(1).split(".", 2)[2] for path in WRAPPERS.glob("*.yml")}
    # restore_dns runs inside move_back; every other playbook has its template.
    assert collection - wrapped == {"restore_dns"}


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda template: template["name"])
def test_every_variable_the_template_sets_is_used_by_its_playbook(template):
    text = _playbook_text(TOP / template["playbook"])
    for question in template["survey"]["spec"]:
        assert _uses(text, question["variable"]), question["variable"]
    for variable in template.get("extra_vars") or {}:
        assert _uses(text, variable), variable


def test_the_plan_is_the_required_migration_in_check_mode():
    plan, whole = BY_NAME["Required migration: plan"], BY_NAME["Required migration"]
    assert plan["playbook"] == whole["playbook"]
    assert (plan["job_type"], whole["job_type"]) == ("check", "run")


def test_the_customer_facing_button_asks_for_one_account_of_the_server():
    button = BY_NAME["Migrate one account now"]
    account = next(question for question in button["survey"]["spec"] if question["variable"] == "account")
    assert account["type"] == "multiplechoice" and account["required"]
    assert account["choices"] == CONTEXT["awx_account_choices"] == ["alice", "bob", "carol", "dave", "erin"]
    assert "all" not in account["choices"]
    assert button["ask_variables_on_launch"] is False
    assert BY_NAME["Roll back one account"]["extra_vars"] == {"migration_rollback": True}
    assert BY_NAME["Roll back one account"]["survey"]["spec"] == button["survey"]["spec"]


def test_account_choices_come_from_the_variable():
    found, _ = awx_templates.definitions(awx_account_choices=["acct1", "acct2"])
    button = next(template for template in found["awx_job_templates"] if template["name"] == "Migrate one account now")
    assert [question["choices"] for question in button["survey"]["spec"] if question["variable"] == "account"] == [["acct1", "acct2"]]


# --- the surveys, against AWX's survey spec ---------------------------------------------------

@pytest.mark.parametrize("owner, survey", list(_surveys()), ids=lambda value: value if isinstance(value, str) else "")
def test_survey_follows_awx_survey_spec(owner, survey):
    assert set(survey) == {"name", "description", "spec"}
    assert survey["name"] and survey["description"] and survey["spec"]
    variables = [question["variable"] for question in survey["spec"]]
    assert len(variables) == len(set(variables)), "a variable asked twice"
    for question in survey["spec"]:
        assert {"question_name", "variable", "type", "required", "default"} <= set(question), question
        assert set(question) <= {"question_name", "question_description", "variable", "type", "required",
                                 "default", "choices", "min", "max"}, question
        assert re.fullmatch(r"[a-z_][a-z0-9_]*", question["variable"])
        assert question["type"] in awx_templates.SURVEY_TYPES
        assert isinstance(question["required"], bool)
        if question["type"] in ("multiplechoice", "multiselect"):
            assert question["choices"] and all(isinstance(choice, str) and choice for choice in question["choices"])
            assert question["default"] == "" or question["default"] in question["choices"], question
        else:
            assert "choices" not in question
        if question["type"] == "integer":
            assert isinstance(question["default"], int)
            assert question["min"] <= question["default"] <= question["max"]


def test_surveys_are_valid_json_for_the_api():
    for _, survey in _surveys():
        assert json.loads(json.dumps(survey)) == survey


# --- the workflow -----------------------------------------------------------------------------

def test_the_workflow_runs_the_phases_in_order():
    assert [node["template"] for node in WORKFLOW["nodes"]] == [
        "Prepare", "Lease a transit server", "Lower the DNS TTLs ahead",
        "Move all accounts to the transit server", "Reroute the service addresses", "Reinstall the server",
        "Move back", "Release the transit server", "Report"]
    identifiers = [node["identifier"] for node in WORKFLOW["nodes"]]
    assert len(identifiers) == len(set(identifiers))
    assert BY_NAME["Move all accounts to the transit server"]["extra_vars"] == {"account": "all"}


def test_the_transit_server_reaches_the_later_phases_as_an_artifact():
    lease = (TOP / "playbooks" / "lease_transit.yml").read_text()
    assert "set_stats" in lease and "migration_target:" in lease
    after_lease = [node["template"] for node in WORKFLOW["nodes"]][2:]
    for name in after_lease:
        for question in BY_NAME[name]["survey"]["spec"]:
            if question["variable"] == "migration_target":
                # A survey default would win over the lease's artifact.
                assert question["default"] == "" and question["required"] is False, name


def test_the_workflow_survey_variables_are_used_by_its_phases():
    text = "".join(_playbook_text(TOP / BY_NAME[node["template"]]["playbook"]) for node in WORKFLOW["nodes"])
    for question in WORKFLOW["survey"]["spec"]:
        assert _uses(text, question["variable"]), question["variable"]


def test_workflow_nodes_chain_on_success():
    play = awx_templates.configure_play()
    task = next(task for task in play["tasks"] if "awx.awx.workflow_job_template" in task)
    env = awx_templates.NativeEnvironment()
    nodes = env.from_string(task["vars"]["awx_workflow_nodes"]).render(
        dict(CONTEXT, awx_workflow=WORKFLOW))
    assert [node["identifier"] for node in nodes] == [node["identifier"] for node in WORKFLOW["nodes"]]
    for node, following in zip(nodes, nodes[1:] + [None]):
        assert node["unified_job_template"]["type"] == "job_template"
        assert node["unified_job_template"]["name"].startswith(CONTEXT["awx_name_prefix"])
        assert node["related"]["success_nodes"] == ([{"identifier": following["identifier"]}] if following else [])


# --- configure.yml ----------------------------------------------------------------------------

def test_configure_documents_every_variable():
    text = (TOP / "awx" / "configure.yml").read_text()
    header = text.split("\n- name:", 1)[0]
    play = awx_templates.configure_play()
    used = set(re.findall(r"\bawx_[a-z_]+\b", text)) - {"awx_job_templates", "awx_workflow", "awx_workflow_nodes",
                                                        "awx_credentials", "awx_project", "awx_execution_environment",
                                                        "awx_ledger_credential"}
    assert used - set(re.findall(r"\bawx_[a-z_]+\b", header)) == set()
    assert set(awx_templates.REQUIRED_STAND_INS) <= used
    assert set(play["vars"]) >= used - set(awx_templates.REQUIRED_STAND_INS)


def test_configure_uses_only_awx_and_builtin_modules():
    play = awx_templates.configure_play()
    modules = {key for task in play["tasks"] for key in task if "." in key}
    assert modules <= {"ansible.builtin.assert", "awx.awx.execution_environment", "awx.awx.project",
                       "awx.awx.credential_type", "awx.awx.credential", "awx.awx.inventory",
                       "awx.awx.inventory_source", "awx.awx.job_template", "awx.awx.workflow_job_template"}
    job_templates = next(task for task in play["tasks"] if "awx.awx.job_template" in task)
    assert job_templates["loop"] == "{{ awx_job_templates }}"
    assert job_templates["awx.awx.job_template"]["survey_spec"] == "{{ item.survey }}"
    credential = next(task for task in play["tasks"] if "awx.awx.credential" in task)
    assert credential.get("no_log") is True


# --- the surveys as AWX applies them ----------------------------------------------------------

def test_launch_vars_merge_like_awx():
    rollback = BY_NAME["Roll back one account"]
    assert awx_templates.launch_extra_vars(rollback, {"migration_target": "transit1", "account": "bob"}) == {
        "migration_rollback": True, "migration_server": "dedicated1", "migration_target": "transit1", "account": "bob"}
    lease = BY_NAME["Lease a transit server"]
    assert awx_templates.launch_extra_vars(lease, {"transit_free_days": "3"}, {"transit_poll_s": 1})["transit_free_days"] == 3


@pytest.mark.parametrize("answers, launch_vars, message", [
    ({"migration_target": "transit1", "account": "mallory"}, {}, "'mallory' is not one of"),
    ({"migration_target": "transit1"}, {}, "needs an answer"),
    ({"migration_target": "transit1", "account": "bob", "migration_rollback": "true"}, {}, "no survey question"),
    ({"migration_target": "transit1", "account": "bob"}, {"account": "all"}, "does not ask for variables"),
])
def test_awx_refuses_what_the_survey_does_not_allow(answers, launch_vars, message):
    with pytest.raises(awx_templates.SurveyError, match=message):
        awx_templates.launch_extra_vars(BY_NAME["Migrate one account now"], answers, launch_vars)


def test_integer_answers_are_bounded():
    with pytest.raises(awx_templates.SurveyError, match="outside"):
        awx_templates.launch_extra_vars(BY_NAME["Lower the DNS TTLs ahead"], {"dns_ahead_ttl": 0})


# --- the execution environment ----------------------------------------------------------------

EE = TOP / "awx" / "execution-environment.yml"


def _pins(path):
    return dict(line.split("==", 1) for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#"))


def test_ee_definition_pins_what_the_collection_is_tested_with():
    definition = yaml.safe_load(EE.read_text())
    assert definition["version"] == 3
    assert re.fullmatch(r"[\w./-]+:\d[\w.]*", definition["images"]["base_image"]["name"]), "a pinned tag"
    constraints = _pins(TOP / "constraints.txt")
    dependencies = definition["dependencies"]
    assert dependencies["ansible_core"]["package_pip"] == "ansible-core==" + constraints["ansible-core"]
    assert dependencies["ansible_runner"]["package_pip"] == "ansible-runner==" + constraints["ansible-runner"]
    python = _pins(EE.parent / dependencies["python"])
    assert python == {"dnspython": constraints["dnspython"], "psycopg[binary]": constraints["psycopg"],
                      "PyYAML": constraints["PyYAML"]}


def test_the_collection_declares_the_same_dependencies_for_images_that_install_it():
    declared = yaml.safe_load((TOP / "meta" / "execution-environment.yml").read_text())
    definition = yaml.safe_load(EE.read_text())
    assert declared["version"] == 1
    for kind in ("python", "system"):
        assert (TOP / declared["dependencies"][kind]).resolve() == (EE.parent / definition["dependencies"][kind]).resolve()


def test_ee_collections_are_galaxy_dependencies_at_the_bundled_versions():
    definition = yaml.safe_load(EE.read_text())
    wanted = yaml.safe_load((EE.parent / definition["dependencies"]["galaxy"]).read_text())["collections"]
    galaxy = yaml.safe_load((TOP / "galaxy.yml").read_text())
    assert {item["name"] for item in wanted} == set(galaxy["dependencies"])
    bundled = pathlib.Path(yaml.__file__).parents[1] / "ansible_collections"
    for item in wanted:
        manifest = bundled / item["name"].replace(".", "/") / "MANIFEST.json"
        if manifest.exists():
            assert json.loads(manifest.read_text())["collection_info"]["version"] == item["version"], item["name"]


@pytest.mark.skipif(shutil.which("ansible-builder", path=str(pathlib.Path(sys.executable).parent)) is None,
                    reason="ansible-builder is not installed (requirements.txt)")
def test_ansible_builder_writes_the_build_context(tmp_path):
    builder = shutil.which("ansible-builder", path=str(pathlib.Path(sys.executable).parent))
    subprocess.run([builder, "create", "--file", str(EE), "--context", str(tmp_path / "context")],
                   check=True, capture_output=True, text=True)
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert 'EE_BASE_IMAGE="quay.io/ansible/awx-ee:24.6.1"' in containerfile
    assert "ansible-core==2.19.14 ansible-runner==2.4.3" in containerfile
    assert "ln -sfn /runner/project /usr/share/ansible/collections/ansible_collections/hosting/migration" in containerfile
    build = tmp_path / "context" / "_build"
    assert "psycopg[binary]==3.3.9" in (build / "requirements.txt").read_text()
    assert "community.postgresql" in (build / "requirements.yml").read_text()
    assert "openssh-clients [platform:rpm]" in (build / "bindep.txt").read_text()
