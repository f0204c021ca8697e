"""The settings file (embedded variable store): GitLab's save rules, with file, line and key."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest
import yaml

from airflow_ci_vars import settings as settings_module
from airflow_ci_vars.errors import CIVarsError, SettingsError
from airflow_ci_vars.permissions import ProjectAccess
from airflow_ci_vars.settings import Settings, load_settings, parse_settings
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.predefined import RunContext
from airflow_ci_vars.variables.resolve import VariableLayers, resolve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "etl" / "settings.yml"


def error_of(text: str | bytes) -> SettingsError:
    with pytest.raises(SettingsError) as info:
        parse_settings(text, file="settings.yml")
    return info.value


def project_vars(*lines: str) -> str:
    """A file whose project ``g/p`` variables start on line 4 (one variable per line)."""
    return "projects:\n  g/p:\n    variables:\n" + "".join(f"      - {line}\n" for line in lines)


# --- valid files --------------------------------------------------------------------------


def test_example_file_loads() -> None:
    s = load_settings(EXAMPLE)
    assert s.file == str(EXAMPLE)
    assert s.project == "acme/data/etl"
    assert s.access().default_branch == "main"
    assert [r.name for r in s.access().ref_rules] == ["main", "release/*"]
    assert [v.key for v in s.instance] == ["HTTP_PROXY_HOST", "LOG_LEVEL"]
    assert list(s.groups) == ["acme", "acme/data"]
    assert list(s.projects) == ["acme/data/etl"]
    token = next(v for v in s.projects["acme/data/etl"] if v.key == "DEPLOY_TOKEN")
    assert token.masked and token.protected and not token.hidden
    assert token.source == VariableSource(Layer.PROJECT, "acme/data/etl")
    gcp = next(v for v in s.projects["acme/data/etl"] if v.key == "GCP_KEY_JSON")
    assert gcp.is_file and gcp.value == '{"type": "service_account"}'
    assert s.instance[0].source == VariableSource(Layer.INSTANCE)
    assert s.groups["acme/data"][1].environment_scope == "review/*"


def test_example_precedence_nearest_subgroup_wins_and_project_beats_groups() -> None:
    s = load_settings(EXAMPLE)
    run = RunContext(
        job_name="deploy", project_path="acme/data/etl", ref="main", ref_protected=s.access().is_protected("main")
    )
    env = resolve(VariableLayers(**s.layers_for(), job={"JOB_ONLY": "1"}), run, environment="production")
    assert env.environment["LOG_LEVEL"] == "debug"  # instance info < acme warning < acme/data debug
    assert env.provenance["LOG_LEVEL"].source == VariableSource(Layer.GROUP, "acme/data")
    assert env.environment["DB_PASSWORD"] == "proj-pw-Zq81xLm4"  # project beats group
    assert env.environment["WAREHOUSE_URL"] == "postgres://etl:proj-pw-Zq81xLm4@db.acme.internal/warehouse"
    assert env.environment["S3_BUCKET"] == "acme-data-prod"
    assert env.environment["DEPLOY_TOKEN"] == "glpat-prodonly7788"  # protected ref
    assert env.environment["JOB_ONLY"] == "1"


def test_example_protected_variables_stay_out_of_unprotected_refs() -> None:
    s = load_settings(EXAMPLE)
    assert not s.access().is_protected("feature/x")
    run = RunContext(job_name="test", project_path="acme/data/etl", ref="feature/x", ref_protected=False)
    env = resolve(VariableLayers(**s.layers_for()), run, environment="review/feature-x")
    assert "DEPLOY_TOKEN" not in env.environment
    assert env.environment["S3_BUCKET"] == "acme-data-review"


@pytest.mark.parametrize("text", ["", "{}", "# only a comment\n", "~\n", b""], ids=repr)
def test_empty_file_is_valid_empty_settings(text: str | bytes) -> None:
    s = parse_settings(text, file="s.yml")
    assert s == Settings(file="s.yml")
    assert (s.instance, dict(s.groups), dict(s.projects), s.project) == ((), {}, {}, None)
    assert s.layers_for() == {"instance": (), "groups": (), "project": (), "project_path": None}


def test_empty_settings_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "settings.yml"
    path.write_text("")
    assert load_settings(path) == Settings(file=str(path))


def test_null_layers_and_variables_are_empty() -> None:
    s = parse_settings("instance:\ngroups:\n  acme:\nprojects:\n  acme/p: {variables: ~}\n")
    assert s.instance == () and dict(s.groups) == {"acme": ()} and dict(s.projects) == {"acme/p": ()}


def test_all_fields_round_trip() -> None:
    s = parse_settings(
        project_vars(
            "{key: ' K ', value: abcdefgh, masked: true, hidden: true, protected: true, raw: true,"
            " variable_type: file, environment_scope: ' review/* ', description: the key}"
        )
    )
    assert s.projects["g/p"] == (
        Variable(
            "K",
            "abcdefgh",
            variable_type="file",
            masked=True,
            hidden=True,
            protected=True,
            raw=True,
            environment_scope="review/*",
            description="the key",
            source=VariableSource(Layer.PROJECT, "g/p"),
        ),
    )


def test_yaml_1_1_booleans_are_flags() -> None:
    s = parse_settings(project_vars("{key: A, value: abcdefgh, masked: yes, protected: off}"))
    assert s.projects["g/p"][0].masked and not s.projects["g/p"][0].protected


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("012345", "5349"),  # YAML 1.1 octal, as PyYAML reads it
        ("42", "42"),
        ("0x1F", "31"),
        ("1_000", "1000"),
        ("-7", "-7"),
        ("'012345'", "012345"),
        ("~", ""),
        ("", ""),
        ("!!str 012", "012"),
    ],
)
def test_integer_value_is_stringified_and_null_is_empty(written: str, stored: str) -> None:
    s = parse_settings(project_vars(f"{{key: A, value: {written}}}"))
    assert s.projects["g/p"][0].value == stored


def test_key_as_written() -> None:
    assert parse_settings(project_vars("{key: 0123, value: x}")).projects["g/p"][0].key == "0123"


def test_same_key_in_other_scope_or_other_layer_is_allowed() -> None:
    s = parse_settings(
        "instance: {variables: [{key: K, value: i}]}\n"
        "groups: {g: {variables: [{key: K, value: a}, {key: K, value: b, environment_scope: prod}]}}\n"
        "projects: {g/p: {variables: [{key: K, value: c}]}}\n"
    )
    assert [v.value for v in s.groups["g"]] == ["a", "b"]


def test_anchors_merges_and_hidden_top_level_keys() -> None:
    s = parse_settings(
        ".secret: &secret {masked: true, protected: true}\n"
        "projects:\n"
        "  g/p:\n"
        "    variables:\n"
        "      - {<<: *secret, key: A, value: abcdefgh1}\n"
        "      - {<<: *secret, key: B, value: abcdefgh2, protected: false}\n"
    )
    a, b = s.projects["g/p"]
    assert (a.masked, a.protected) == (True, True)
    assert (b.masked, b.protected) == (True, False)


def test_bytes_and_c_and_python_loaders_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    text = project_vars("{key: A, value: x}", "{key: B, value: true}")
    c_err = error_of(text.encode())
    monkeypatch.setattr(settings_module, "_LOADER", yaml.SafeLoader)
    py_err = error_of(text)
    assert (c_err.line, c_err.column, str(c_err)) == (py_err.line, py_err.column, str(py_err)) == (5, 25, str(c_err))


def test_settings_is_immutable() -> None:
    v = Variable("A", "x")
    s = Settings(groups={"g": (v,)}, projects={"g/p": (v,)}, project_access={"g/p": ProjectAccess()})
    assert isinstance(s.groups, MappingProxyType) and s.groups["g"] == (v,)
    assert isinstance(s.project_access, MappingProxyType)
    with pytest.raises(TypeError):
        s.groups["h"] = ()  # type: ignore[index]
    with pytest.raises(AttributeError):
        s.project = "x"  # type: ignore[misc]


# --- protected refs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "protected"),
    [
        ("main", True),
        ("release/1.0", True),
        ("release/a/b", True),  # '*' also matches '/'
        ("release/", True),
        ("release", False),
        ("releases/1.0", False),
        ("feature/main", False),
        ("Main", False),
        ("", False),
        (None, False),
    ],
)
def test_is_protected_with_wildcard_patterns(ref: str | None, protected: bool) -> None:
    s = parse_settings('protected_refs: [main, "release/*"]\n')
    assert s.access().is_protected(ref) is protected


def test_protected_refs_default_to_the_default_branch() -> None:
    s = parse_settings("default_branch: trunk\n")
    assert [r.name for r in s.access().ref_rules] == ["trunk"]
    assert s.access().is_protected("trunk") and not s.access().is_protected("main")


def test_empty_protected_refs_protect_nothing() -> None:
    s = parse_settings("protected_refs: []\n")
    assert not s.access().is_protected("main")


# --- layers_for ----------------------------------------------------------------------------


def test_layers_for_lists_the_group_chain_root_first() -> None:
    s = parse_settings(
        "project: a/b/c/p\n"
        "groups:\n"
        "  a/b/c: {variables: [{key: X, value: c}]}\n"
        "  other: {variables: [{key: X, value: other}]}\n"
        "  a: {variables: [{key: X, value: a}]}\n"
        "projects: {a/b/c/p: {variables: [{key: Y, value: p}]}}\n"
    )
    layers = s.layers_for()
    assert [path for path, _ in layers["groups"]] == ["a", "a/b/c"]  # a/b absent from the file
    assert [v.value for v in layers["project"]] == ["p"]
    assert layers["project_path"] == "a/b/c/p"
    env = resolve(VariableLayers(**layers), RunContext(job_name="j"))
    assert env.environment["X"] == "c"
    assert env.provenance["X"].source == VariableSource(Layer.GROUP, "a/b/c")

    other = s.layers_for("other/q/")
    assert [path for path, _ in other["groups"]] == ["other"]
    assert other["project"] == () and other["project_path"] == "other/q"


def test_layers_for_without_a_project_is_the_instance_layer_only() -> None:
    s = parse_settings("instance: {variables: [{key: I, value: i}]}\ngroups: {a: {variables: [{key: X, value: a}]}}\n")
    assert dict(s.layers_for()) == {"instance": s.instance, "groups": (), "project": (), "project_path": None}


# --- refusals, each with its line -----------------------------------------------------------


def test_error_renders_file_line_message() -> None:
    err = error_of("project: acme/etl\nprojetcs: {}\n")
    assert isinstance(err, CIVarsError) and isinstance(err, ValueError)
    assert (err.file, err.line, err.column, err.key) == ("settings.yml", 2, 1, "projetcs")
    assert str(err) == (
        "settings.yml:2: settings: unknown key 'projetcs' "
        "(allowed: project, default_branch, protected_refs, protected_environments, "
        "pipeline_variables_minimum_role, members, schedule_owner, ci_job_token_allowlist, "
        "instance, groups, projects)"
    )
    assert err.errors == (err,)


def test_unknown_layer_key() -> None:
    err = error_of("groups:\n  acme:\n    variable: []\n")
    assert (err.line, err.key) == (3, "variable")
    assert "group acme: unknown key 'variable' (allowed: variables)" in str(err)


def test_unknown_field_in_a_variable_lists_the_allowed_ones() -> None:
    err = error_of(project_vars("{key: A, value: x}", "{key: B, value: x, maskd: true}"))
    assert (err.line, err.column, err.key, err.field) == (5, 28, "B", "maskd")
    assert str(err) == (
        "settings.yml:5: project g/p variable 'B': unknown field 'maskd'; allowed: key, value, variable_type, "
        "masked, hidden, protected, raw, environment_scope, description"
    )


def test_missing_key_and_missing_value() -> None:
    err = error_of(project_vars("{key: A, value: x}", "{value: x}", "{key: C}"))
    assert [(e.line, e.field) for e in err.errors] == [(5, "key"), (6, "value")]
    assert "project g/p variable #2: missing 'key'" in err.errors[0].message
    assert "project g/p variable 'C': missing 'value'" in err.errors[1].message


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("BAD-KEY", "Validation failed: Key can contain only letters, digits and '_'."),
        ("'  '", "Validation failed: Key can't be blank"),
        ("K" * 256, "Validation failed: Key is too long (maximum is 255 characters)"),
    ],
)
def test_bad_key_uses_gitlabs_message(key: str, message: str) -> None:
    err = error_of(project_vars("{key: OK, value: x}", f"{{key: {key}, value: x}}"))
    assert (err.line, err.field) == (5, "key")
    assert str(err).startswith("settings.yml:5: project g/p variable '")
    assert str(err).endswith(message)


def test_key_must_be_a_scalar() -> None:
    err = error_of(project_vars("{key: [A], value: x}"))
    assert (err.line, err.field) == (4, "key")
    assert "'key' must be a string" in str(err)


def test_unmaskable_masked_value_never_shows_the_value() -> None:
    err = error_of("instance:\n  variables:\n    - key: DB_PASSWORD\n      value: pw\n      masked: true\n")
    assert (err.line, err.key, err.field) == (4, "DB_PASSWORD", "masked")  # points at the value
    assert "pw" not in str(err)
    assert str(err) == (
        "settings.yml:4: instance variable 'DB_PASSWORD': Validation failed: "
        "Value of variable 'DB_PASSWORD' cannot be masked: must be at least 8 characters"
    )


@pytest.mark.parametrize(
    "value",
    ["'s3cret value with spaces'", "'tab\\there-and-more'", '"long-secret-but-unicode-\\u00e9"'],
)
def test_secret_values_never_in_error_text(value: str) -> None:
    text = project_vars(f"{{key: TOKEN, value: {value}, masked: true}}")
    err = error_of(text)
    secret = yaml.safe_load(text)["projects"]["g/p"]["variables"][0]["value"]
    assert secret not in str(err) and secret not in repr(err.args)
    assert "TOKEN" in str(err)


def test_unquoted_comma_fragment_of_a_value_is_not_echoed() -> None:
    err = error_of(project_vars("{key: A, value: s3cr,et-half-of-it}"))
    assert err.line == 4
    assert "et-half-of-it" not in str(err) and "s3cr" not in str(err)
    assert "an unknown entry (quote values holding ',')" in str(err)


def test_hidden_requires_masked() -> None:
    err = error_of(project_vars("{key: H, value: abcdefgh}", "{key: H2, value: abcdefgh, hidden: true}"))
    assert (err.line, err.column, err.key, err.field) == (5, 44, "H2", "hidden")
    assert err.message == (
        "project g/p variable 'H2': Validation failed: Masked of 'H2' should be true when variable is hidden"
    )


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ("'a|b'", "Environment scope can contain only letters, digits, '-', '_', '/', '$', '{', '}', '.', '*'"),
        ("'  '", "Environment scope can't be blank"),
        ("~", "'environment_scope' must be a string"),
    ],
)
def test_invalid_environment_scope(scope: str, message: str) -> None:
    err = error_of(project_vars("{key: A, value: x}", f"{{key: B, value: x, environment_scope: {scope}}}"))
    assert (err.line, err.key, err.field) == (5, "B", "environment_scope")
    assert message in str(err)


def test_instance_variables_cannot_be_scoped() -> None:
    err = error_of("instance:\n  variables:\n    - {key: A, value: x, environment_scope: production}\n")
    assert (err.line, err.field) == (3, "environment_scope")
    assert "instance variables cannot have an environment scope" in str(err)
    assert parse_settings("instance: {variables: [{key: A, value: x, environment_scope: '*'}]}").instance


def test_duplicate_key_and_scope_in_one_layer() -> None:
    err = error_of(project_vars("{key: K, value: a}", "{key: B, value: b}", "{key: ' K', value: c}"))
    assert (err.line, err.key, err.field) == (6, "K", "key")
    assert err.message == (
        "project g/p variable 'K': Validation failed: Key (K) has already been taken "
        "for environment scope '*' (first defined on line 4)"
    )


def test_duplicate_key_in_one_scope_of_a_group() -> None:
    err = error_of(
        "groups:\n  acme:\n    variables:\n"
        "      - {key: K, value: a, environment_scope: prod}\n"
        "      - {key: K, value: b, environment_scope: prod}\n"
    )
    assert err.line == 5 and "group acme variable 'K'" in str(err) and "scope 'prod'" in str(err)


@pytest.mark.parametrize(
    ("value", "kind"),
    [("true", "a boolean"), ("no", "a boolean"), ("1.5", "a float"), ("2024-01-01", "a date"), ("[a]", "")],
)
def test_non_string_values_are_refused(value: str, kind: str) -> None:
    err = error_of(project_vars("{key: A, value: x}", f"{{key: PORT, value: {value}}}"))
    assert (err.line, err.key, err.field) == (5, "PORT", "value")
    assert "project g/p variable 'PORT': 'value' must be a string" in str(err)
    assert kind in str(err)


@pytest.mark.parametrize("flag", ["masked", "hidden", "protected", "raw"])
@pytest.mark.parametrize("written", ["'true'", "1", "~", "[true]"])
def test_flags_must_be_booleans(flag: str, written: str) -> None:
    err = error_of(project_vars(f"{{key: A, value: abcdefgh, {flag}: {written}}}"))
    assert (err.line, err.key, err.field) == (4, "A", flag)
    assert f"'{flag}' must be " in str(err)


def test_variable_type_must_be_env_var_or_file() -> None:
    err = error_of(project_vars("{key: A, value: x, variable_type: json}"))
    assert (err.line, err.field) == (4, "variable_type")
    assert "Variable type of 'A' is not included in the list (env_var, file)" in str(err)


def test_description_limit() -> None:
    err = error_of(project_vars(f"{{key: A, value: x, description: {'d' * 256}}}"))
    assert (err.line, err.field) == (4, "description")
    assert "Description is too long (maximum is 255 characters)" in str(err)


def test_instance_values_are_limited_to_10000_characters() -> None:
    long = "v" * 10_001
    err = error_of(f"instance:\n  variables:\n    - {{key: BIG, value: {long}}}\n")
    assert (err.line, err.key, err.field) == (3, "BIG", "value")
    assert "Value of 'BIG' is too long (maximum is 10000 characters)" in str(err)
    assert long not in str(err)
    assert parse_settings(project_vars(f"{{key: BIG, value: {long}}}")).projects["g/p"][0].value == long


@pytest.mark.parametrize("path", ["acme//x", "/acme", "acme/", "acme data", "acme/d@ta", "''"])
def test_invalid_group_and_project_paths(path: str) -> None:
    err = error_of(f"groups:\n  ok: {{}}\n  {path}: {{variables: []}}\n")
    assert err.line == 3
    assert "is not a valid path" in str(err) or "must be a non-empty string" in str(err)
    err = error_of(f"projects:\n  {path}: {{variables: []}}\n")
    assert err.line == 2


def test_invalid_project_setting() -> None:
    err = error_of("default_branch: main\nproject: acme/../x y\n")
    assert (err.line, err.key) == (2, "project")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("protected_refs: main\n", 1),
        ("protected_refs: {main: true}\n", 1),
        ("protected_refs:\n  - main\n  - [release/*]\n", 3),
        ("protected_refs:\n  - main\n  - ''\n", 3),
    ],
)
def test_protected_refs_must_be_a_list_of_strings(text: str, line: int) -> None:
    err = error_of(text)
    assert (err.line, err.key) == (line, "protected_refs")


@pytest.mark.parametrize(
    ("text", "line", "name"),
    [
        ("project: a/b\ndefault_branch: main\nproject: a/c\n", 3, "project"),
        ("groups:\n  acme: {}\n  acme/x: {}\n  acme: {}\n", 4, "acme"),
        (project_vars("{key: A, value: x}", "{key: B, value: a, value: b}"), 5, "value"),
        (project_vars("{key: A, value: x}", "{key: B, value: a, key: C}"), 5, "key"),
    ],
)
def test_duplicate_yaml_mapping_keys_are_refused(text: str, line: int, name: str) -> None:
    err = error_of(text)
    assert err.line == line
    assert f"duplicate key '{name}' (first defined on line " in str(err)


def test_variables_must_be_a_list_of_mappings() -> None:
    err = error_of("projects:\n  g/p:\n    variables: {A: x}\n")
    assert (err.line, err.field) == (3, "variables")
    err = error_of(project_vars("{key: A, value: x}", "A=x"))
    assert err.line == 5 and "project g/p variable #2 must be a mapping" in str(err)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("- just\n- a list\n", 1),
        ("project: [1\ngroups: {}\n", 2),
        ("project: a/b\n---\nproject: c/d\n", 2),
        ("project: a/b\ninstance: {variables: [{key: A, value: '\x07'}]}\n", 2),
        (b"project: a/b\ninstance: {variables: [{key: A, value: '\xff'}]}\n", 2),
    ],
)
def test_invalid_yaml_has_a_line(text: str | bytes, line: int) -> None:
    err = error_of(text)
    assert (err.file, err.line) == ("settings.yml", line)
    assert str(err).startswith(f"settings.yml:{line}: ")


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (
        "bogus: 1\n"  # 1
        "instance:\n"  # 2
        "  variables:\n"  # 3
        "    - {key: PW, value: pw, masked: true}\n"  # 4
        "groups:\n"  # 5
        "  acme:\n"  # 6
        "    variables:\n"  # 7
        "      - {key: BAD-KEY, value: x}\n"  # 8
        "      - {key: H, value: abcdefgh, hidden: true}\n"  # 9
        "projects:\n"  # 10
        "  acme/p:\n"  # 11
        "    variables:\n"  # 12
        "      - {key: A, value: x, maskd: true}\n"  # 13
    )
    err = error_of(text)
    assert [(e.line, e.key) for e in err.errors] == [(1, "bogus"), (4, "PW"), (8, "BAD-KEY"), (9, "H"), (13, "A")]
    assert (err.line, err.key) == (1, "bogus")
    lines = str(err).splitlines()
    assert len(lines) == 5
    assert [line.split(": ", 1)[0] for line in lines] == [f"settings.yml:{n}" for n in (1, 4, 8, 9, 13)]
    assert "pw" not in str(err)
