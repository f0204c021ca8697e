"""resolve(): layers, precedence, scopes, protection, expansion, files, masks and provenance."""

from __future__ import annotations

import pytest

from airflow_ci_vars import ExpansionError, Layer, RunContext, Variable, VariableLayers, resolve
from airflow_ci_vars.variables.resolve import group_chain

RUN = RunContext(job_name="test", project_path="top/sub/app")

# Highest precedence first, as GitLab documents it.
PRECEDENCE = [
    ("pipeline", Layer.PIPELINE),
    ("project", Layer.PROJECT),
    ("group", Layer.GROUP),
    ("instance", Layer.INSTANCE),
    ("dotenv", Layer.DOTENV),
    ("job", Layer.JOB),
    ("default", Layer.DEFAULT),
    ("deployment", Layer.DEPLOYMENT),
]


def layers_with(names: list[str]) -> VariableLayers:
    kwargs: dict[str, object] = {name: {"K": name} for name in names if name != "group"}
    if "group" in names:
        kwargs["groups"] = {"top": {"K": "group"}}
    return VariableLayers(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("winner_index", range(len(PRECEDENCE)))
def test_precedence_order(winner_index: int) -> None:
    names = [name for name, _ in PRECEDENCE[winner_index:]]
    result = resolve(layers_with(names), RUN)
    assert result.environment["K"] == PRECEDENCE[winner_index][0]
    assert result.provenance["K"].source is not None
    assert result.provenance["K"].source.layer is PRECEDENCE[winner_index][1]


def test_predefined_is_lowest() -> None:
    assert resolve(VariableLayers(), RUN).environment["CI_JOB_NAME"] == "test"
    result = resolve(VariableLayers(default={"CI_JOB_NAME": "mine"}), RUN)
    assert result.environment["CI_JOB_NAME"] == "mine"


def test_docs_example_project_beats_yaml() -> None:
    layers = VariableLayers(
        default={"API_TOKEN": "default"}, job={"API_TOKEN": "secure"}, project={"API_TOKEN": "proj"}
    )
    assert resolve(layers, RUN).environment["API_TOKEN"] == "proj"
    layers = VariableLayers(default={"API_TOKEN": "default"}, job={"API_TOKEN": "secure"})
    assert resolve(layers, RUN).environment["API_TOKEN"] == "secure"


def test_nearest_subgroup_wins_and_project_beats_group() -> None:
    groups = {"top": {"X": "1"}, "top/sub": {"X": "2"}}
    assert resolve(VariableLayers(groups=groups), RUN).environment["X"] == "2"
    assert resolve(VariableLayers(groups=groups, project={"X": "3"}), RUN).environment["X"] == "3"


def test_group_chain_lists_groups_root_first() -> None:
    assert group_chain("acme/data/etl") == ["acme", "acme/data"]
    assert group_chain("solo") == []


def test_schedule_and_manual_job_variables_beat_pipeline_variables() -> None:
    layers = VariableLayers(pipeline={"K": "p"}, schedule={"K": "s"})
    assert resolve(layers, RUN).environment["K"] == "s"
    layers = VariableLayers(pipeline={"K": "p"}, schedule={"K": "s"}, manual={"K": "m"})
    assert resolve(layers, RUN).environment["K"] == "m"


def test_deployment_slug_cannot_be_overridden() -> None:
    layers = VariableLayers(pipeline={"CI_ENVIRONMENT_SLUG": "hack"})
    result = resolve(layers, RunContext(job_name="deploy", environment_name="review/feature-1"))
    assert result.environment["CI_ENVIRONMENT_SLUG"] == "review-feature-1-1q251u"


def test_secrets_beat_every_job_variable() -> None:
    layers = VariableLayers(pipeline={"DB_PASSWORD": "from-conf"}, secrets=[Variable("DB_PASSWORD", "vault-secret-1")])
    result = resolve(layers, RUN)
    assert result.environment["DB_PASSWORD"] == "vault-secret-1"
    winner = result.provenance["DB_PASSWORD"].value
    assert winner is not None and winner.masked and winner.raw
    assert "vault-secret-1" in result.masked_values


def test_file_type_secret_is_written_to_a_file() -> None:
    layers = VariableLayers(secrets=[Variable("CERT", "vault-cert-pem", variable_type="file")])
    result = resolve(layers, RUN, temp_dir="/t")
    assert result.environment["CERT"] == "/t/CERT"
    assert [(f.key, f.content, f.masked) for f in result.files] == [("CERT", "vault-cert-pem", True)]


def test_protected_variables_only_on_protected_refs() -> None:
    layers = VariableLayers(project=[Variable("DEPLOY_KEY", "k", protected=True)])
    assert "DEPLOY_KEY" not in resolve(layers, RUN).environment
    protected_run = RunContext(job_name="test", ref="main", ref_protected=True)
    assert resolve(layers, protected_run).environment["DEPLOY_KEY"] == "k"
    assert resolve(layers, protected_run).environment["CI_COMMIT_REF_PROTECTED"] == "true"


def test_protected_variable_exclusion_is_explained() -> None:
    layers = VariableLayers(project=[Variable("DEPLOY_KEY", "k", protected=True)])
    text = resolve(layers, RUN).explain("DEPLOY_KEY")
    assert "DEPLOY_KEY is not set" in text
    assert "ref is not protected" in text


def test_environment_scope_selects_value_for_job_environment() -> None:
    project = [
        Variable("URL", "star"),
        Variable("URL", "wild", environment_scope="review/*"),
        Variable("URL", "prod", environment_scope="production"),
    ]
    layers = VariableLayers(project=project)
    assert resolve(layers, RUN).environment["URL"] == "star"
    assert resolve(layers, RUN, environment="review/app").environment["URL"] == "wild"
    assert resolve(layers, RUN, environment="production").environment["URL"] == "prod"


def test_environment_name_is_expanded_with_star_scoped_variables_only() -> None:
    project = [
        Variable("ENV", "review/app"),
        Variable("ENV", "production", environment_scope="review/*"),  # not visible to the name
        Variable("URL", "wild", environment_scope="review/*"),
    ]
    result = resolve(VariableLayers(project=project, default={"SUFFIX": "x"}), RUN, environment="$ENV")
    assert result.environment_name == "review/app"
    assert result.environment["CI_ENVIRONMENT_NAME"] == "review/app"
    assert result.environment["URL"] == "wild"


def test_dotenv_is_not_used_for_environment_name() -> None:
    layers = VariableLayers(dotenv={"TARGET": "from-dotenv"}, default={"TARGET": "yaml"})
    result = resolve(layers, RUN, environment="review/$TARGET")
    assert result.environment_name == "review/yaml"
    assert result.environment["TARGET"] == "from-dotenv"


def test_nested_references_resolve_across_layers() -> None:
    layers = VariableLayers(default={"A": "$B", "B": "yaml"}, project={"B": "proj"})
    assert resolve(layers, RUN).environment["A"] == "proj"


def test_self_reference_extends_lower_layer_value() -> None:
    layers = VariableLayers(default={"FOO": "base"}, project={"FOO": "$FOO-ext"})
    assert resolve(layers, RUN).environment["FOO"] == "base-ext"


def test_cycle_fails_resolution() -> None:
    with pytest.raises(ExpansionError, match=r'circular variable reference detected: \["A", "B"\]'):
        resolve(VariableLayers(project={"A": "$B", "B": "$A"}), RUN)


def test_dollar_dollar_reaches_the_job_as_one_dollar() -> None:
    layers = VariableLayers(job={"FLAGS": "-al", "LS_CMD": 'ls "$FLAGS" $$TMP_DIR'})
    assert resolve(layers, RUN).environment["LS_CMD"] == 'ls "-al" $TMP_DIR'


def test_raw_variable_reaches_the_job_unchanged() -> None:
    layers = VariableLayers(project=[Variable("PW", "pa$$w$rd", raw=True)], job={"REF": "$PW"})
    env = resolve(layers, RUN).environment
    assert env["PW"] == "pa$$w$rd"
    assert env["REF"] == "pa$$w$rd"


def test_dotenv_values_are_expanded_in_consumers() -> None:
    layers = VariableLayers(dotenv={"OUT": "$HOME_DIR/x"}, job={"HOME_DIR": "/home/ci"})
    assert resolve(layers, RUN).environment["OUT"] == "/home/ci/x"


def test_file_variable_holds_path_and_content_is_in_files() -> None:
    layers = VariableLayers(
        project=[Variable("KUBE_CA_PEM", "-----BEGIN-----", variable_type="file")],
        job={"ARG": "--ca=$KUBE_CA_PEM"},
    )
    result = resolve(layers, RUN, temp_dir="/work/t1")
    assert result.environment["KUBE_CA_PEM"] == "/work/t1/KUBE_CA_PEM"
    assert result.environment["ARG"] == "--ca=/work/t1/KUBE_CA_PEM"
    assert result.environment["RUNNER_TEMP_PROJECT_DIR"] == "/work/t1"
    (f,) = result.files
    assert (f.key, f.path, f.content) == ("KUBE_CA_PEM", "/work/t1/KUBE_CA_PEM", "-----BEGIN-----")
    assert "BEGIN" not in repr(f)


def test_masked_values_include_overridden_and_expanded_secrets() -> None:
    layers = VariableLayers(
        groups={"top": [Variable("TOKEN", "group-token-1", masked=True)]},
        project=[
            Variable("TOKEN", "project-token-2", masked=True),
            Variable("PW", " padded-secret ", hidden=True, masked=True),
        ],
    )
    result = resolve(layers, RUN)
    assert result.environment["TOKEN"] == "project-token-2"
    assert {"group-token-1", "project-token-2", "padded-secret"} <= set(result.masked_values)
    assert list(result.masked_values) == sorted(result.masked_values, key=lambda s: (-len(s), s))


def test_excluded_secret_is_not_in_masks_or_environment() -> None:
    layers = VariableLayers(project=[Variable("S", "scoped-secret", masked=True, environment_scope="production")])
    result = resolve(layers, RUN)
    assert "S" not in result.environment
    assert "scoped-secret" not in result.masked_values


def test_provenance_lists_every_overridden_value() -> None:
    layers = VariableLayers(
        default={"API": "default"},
        job={"API": "job"},
        instance={"API": "instance"},
        groups={"top": {"API": "top"}, "top/sub": {"API": "sub"}},
        project={"API": "project"},
        project_path="top/sub/app",
    )
    prov = resolve(layers, RUN).provenance["API"]
    assert prov.value is not None and prov.value.value == "project"
    assert str(prov.source) == "project top/sub/app"
    assert [v.value for v in prov.overridden] == ["default", "job", "instance", "top", "sub"]


def test_explain_never_prints_secret_values() -> None:
    layers = VariableLayers(
        groups={"top": [Variable("TOKEN", "group-token-1", masked=True)]},
        project=[Variable("TOKEN", "project-token-2", masked=True)],
    )
    text = resolve(layers, RUN).explain("TOKEN")
    assert "group-token-1" not in text and "project-token-2" not in text
    assert "[MASKED]" in text
    assert "group top" in text


def test_explain_unknown_key() -> None:
    assert resolve(VariableLayers(), RUN).explain("NOPE") == "NOPE is not defined in any layer"


def test_environment_keeps_first_position_and_last_value() -> None:
    layers = VariableLayers(default={"A": "1", "B": "2"}, project={"A": "3"})
    env = resolve(layers, RUN).environment
    keys = list(env)
    assert keys.index("A") < keys.index("B")
    assert env["A"] == "3"


def test_result_is_immutable() -> None:
    result = resolve(VariableLayers(default={"A": "1"}), RUN)
    with pytest.raises(TypeError):
        result.environment["A"] = "2"  # type: ignore[index]
    with pytest.raises(AttributeError):
        result.temp_dir = "/x"  # type: ignore[misc]


def test_repr_of_result_and_variable_hide_secrets() -> None:
    result = resolve(VariableLayers(project=[Variable("S", "hunter2-secret", masked=True)]), RUN)
    assert "hunter2-secret" not in repr(result)
    assert "hunter2-secret" not in repr(result.provenance["S"])


def test_explain_masks_secrets_inside_derived_values() -> None:
    layers = VariableLayers(
        project=[Variable("DB_PASSWORD", "proj-pw-Zq81xLm4", masked=True)],
        job={"URL": "postgres://u:$DB_PASSWORD@h/db"},
    )
    result = resolve(layers, RUN)
    assert result.environment["URL"] == "postgres://u:proj-pw-Zq81xLm4@h/db"
    assert "proj-pw-Zq81xLm4" not in result.explain("URL")
    assert "postgres://u:[MASKED]@h/db" in result.explain("URL")


def test_environment_name_ignores_manual_job_variables() -> None:
    layers = VariableLayers(manual={"T": "typed-in"}, default={"T": "yaml"})
    result = resolve(layers, RUN, environment="review/$T")
    assert result.environment_name == "review/yaml"
    assert result.environment["T"] == "typed-in"


def test_inherit_as_a_string_is_refused() -> None:
    from airflow_ci_vars import VariableValidationError

    with pytest.raises(VariableValidationError, match="bool or array of strings"):
        VariableLayers(inherit="REGION")  # type: ignore[arg-type]


def test_explain_hides_a_secret_with_quotes_or_backslashes_inside_another_value() -> None:
    layers = VariableLayers(
        project=[Variable("S", "ab\\cd'1234", masked=True, raw=True)],
        job={"U": "x:$S@h"},
    )
    text = resolve(layers, RUN).explain("U")
    assert "ab\\cd'1234" not in text and "ab\\\\cd" not in text
    assert "x:[MASKED]@h" in text
