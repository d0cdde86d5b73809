"""The job templates of awx/templates.yml as AWX sees them, and what AWX does with a survey.

Shared by tests/awx/run_template.py (runs a template's playbook the way AWX does) and
tests/unit/awx/test_awx_templates.py (checks the definitions). Plain Python: PyYAML and Jinja2.
"""
import pathlib

import yaml
from jinja2.nativetypes import NativeEnvironment

TOP = pathlib.Path(__file__).resolve().parents[2]
AWX = TOP / "awx"
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# What awx/configure.yml insists on being given; these stand in for them when rendering.
REQUIRED_STAND_INS = {
    "awx_project_scm_url": "https://git.example.net/hosting/migration.git",
    "awx_ee_image": "registry.example.net/hosting/migration-ee:0.1.0",
}


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it: !unsafe marks a string Ansible must not template."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 (a SafeLoader with one more tag)


def configure_play():
    return load_yaml(AWX / "configure.yml")[0]


def _render(value, env, context):
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(context)
    if isinstance(value, list):
        return [_render(item, env, context) for item in value]
    if isinstance(value, dict):
        return {key: _render(item, env, context) for key, item in value.items()}
    return value


def definitions(**values):
    """awx/templates.yml rendered with configure.yml's defaults, overridden by values."""
    env = NativeEnvironment()
    context = dict(REQUIRED_STAND_INS)
    context.update(configure_play()["vars"])
    context.update(values)
    # The defaults refer to each other (awx_project uses awx_name_prefix): a few passes settle them.
    for _ in range(3):
        context = {key: _render(value, env, context) for key, value in context.items()}
    raw = load_yaml(AWX / "templates.yml")
    return {key: _render(value, env, context) for key, value in raw.items()}, context


def job_template(name, **values):
    found, _ = definitions(**values)
    for template in found["awx_job_templates"]:
        if template["name"] == name:
            return template
    known = ", ".join(template["name"] for template in found["awx_job_templates"])
    raise KeyError(f"No job template named {name!r} in awx/templates.yml (there are: {known}).")


class SurveyError(ValueError):
    """An answer AWX would refuse at launch."""


def _answer(question, value):
    kind = question["type"]
    if kind in ("multiplechoice", "multiselect"):
        chosen = value if isinstance(value, list) else [value]
        wrong = [item for item in chosen if item not in question["choices"]]
        if wrong or (kind == "multiplechoice" and isinstance(value, list)):
            raise SurveyError(
                f"{question['variable']}: {value!r} is not one of {question['choices']}."
            )
        return value
    if kind in ("integer", "float"):
        number = int(value) if kind == "integer" else float(value)
        if ("min" in question and number < question["min"]) or ("max" in question and number > question["max"]):
            raise SurveyError(f"{question['variable']}: {number} is outside {question.get('min')}..{question.get('max')}.")
        return number
    return str(value)


def launch_extra_vars(template, answers=None, launch_vars=None):
    """The extra variables AWX gives a job launched from the template.

    As AWX merges them: the template's own extra_vars, then the survey's defaults, then the
    survey's answers; variables beyond the survey only when the template asks for variables on
    launch. Answers AWX would refuse raise SurveyError, naming the question.
    """
    answers = dict(answers or {})
    launch_vars = dict(launch_vars or {})
    if launch_vars and not template.get("ask_variables_on_launch"):
        raise SurveyError(
            f"{template['name']} does not ask for variables on launch: {sorted(launch_vars)} would be ignored."
        )
    questions = {question["variable"]: question for question in template["survey"]["spec"]}
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise SurveyError(f"{template['name']} has no survey question for {unknown}.")
    extra_vars = dict(template.get("extra_vars") or {})
    for variable, question in questions.items():
        if variable in answers:
            extra_vars[variable] = _answer(question, answers[variable])
        elif question.get("default") not in (None, ""):
            extra_vars[variable] = question["default"]
        elif question["required"]:
            raise SurveyError(f"{template['name']}: the survey question {question['question_name']!r} ({variable}) needs an answer.")
    extra_vars.update(launch_vars)
    return extra_vars
