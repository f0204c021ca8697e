"""``$[[ component.FIELD ]]``: a component file sees its own name, sha, version and reference.

Expected behaviour and messages are GitLab's (``spec/services/ci/create_pipeline_service/
component_context_spec.rb``, ``lib/gitlab/ci/config/header/component.rb``, ``interpolation/access.rb``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import pytest

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.external.component import (
    ComponentAddress,
    ResolvedVersion,
    component_context,
)
from airflow_ci_vars.pipeline.inputs import header_component_fields, interpolator
from airflow_ci_vars.pipeline.yaml_loader import load_yaml

SHA = "3f786850e387550fdab836ed7e6dc881de23001b"
ADDRESS = ComponentAddress("gitlab.example.com", "acme/ci/components", "my-component", "0.1")
CONTEXT = component_context(ADDRESS, ResolvedVersion(SHA, "0.1.1", "0.1", "partial"))
FILE = "templates/my-component/template.yml"


def interpolate(
    text: str,
    component: Mapping[str, str | None] | None = CONTEXT,
    given: Mapping[str, object] | None = None,
    variables: Mapping[str, str] | None = None,
) -> dict[str, object]:
    document = load_yaml(textwrap.dedent(text).lstrip("\n"), FILE)
    run = interpolator(variables)
    return dict(run(document.header, given, document.body, FILE, component=component))


def error(text: str, component: Mapping[str, str | None] | None = CONTEXT) -> PipelineError:
    with pytest.raises(PipelineError) as err:
        interpolate(text, component)
    return err.value


COMPONENT = """
spec:
  component: [name, sha, version, reference]
  inputs:
    compiler:
      default: gcc
    optimization_level:
      type: number
      default: 2
---
test:
  script:
    - echo "Building with $[[ inputs.compiler ]] and optimization level $[[ inputs.optimization_level ]]"
    - echo "Component $[[ component.name ]] / $[[ component.sha ]] / $[[ component.version ]] /
      $[[ component.reference ]]"
"""


def test_a_component_sees_its_declared_fields_next_to_its_inputs() -> None:
    body = interpolate(COMPONENT)
    assert body["test"] == {
        "script": [
            'echo "Building with gcc and optimization level 2"',
            f'echo "Component my-component / {SHA} / 0.1.1 / 0.1"',
        ]
    }


def test_a_component_used_by_sha_has_an_empty_version_in_a_string_and_null_alone() -> None:
    context = component_context(ADDRESS, ResolvedVersion(SHA, None, SHA, "sha"))
    body = interpolate(COMPONENT, context)
    assert body["test"]["script"][1] == f'echo "Component my-component / {SHA} /  / {SHA}"'  # type: ignore[index]
    alone = interpolate(
        "spec:\n  component: [version]\n---\njob:\n  variables:\n    V: $[[ component.version ]]\n", context
    )
    assert alone["job"] == {"variables": {"V": None}}


def test_a_field_not_declared_in_spec_component_is_unknown() -> None:
    err = error("spec:\n  component: [name]\n---\njob:\n  script: echo $[[ component.sha ]]\n")
    assert err.message == "unknown interpolation provided: `sha` in `component.sha`"
    assert (err.file, err.line) == (FILE, 5)


def test_a_file_that_is_not_a_component_has_no_component_fields() -> None:
    # GitLab: the same file through include:project is "unknown interpolation provided".
    err = error(COMPONENT, component=None)
    assert err.message == "unknown interpolation provided: `name` in `component.name`"


def test_a_header_without_spec_component_sees_no_field() -> None:
    err = error("spec:\n  inputs:\n    a:\n      default: x\n---\njob:\n  script: echo $[[ component.name ]]\n")
    assert err.message == "unknown interpolation provided: `name` in `component.name`"


def test_a_component_file_without_header_is_not_interpolated() -> None:
    body = interpolate("job:\n  script: echo $[[ component.name ]] $[[ inputs.x ]]\n")
    assert body["job"] == {"script": "echo $[[ component.name ]] $[[ inputs.x ]]"}


def test_a_field_of_a_field_is_unknown() -> None:
    err = error("spec:\n  component: [name]\n---\njob:\n  script: echo $[[ component.name.first ]]\n")
    assert err.message == "unknown interpolation provided: `first` in `component.name.first`"


def test_component_alone_is_an_invalid_access() -> None:
    err = error("spec:\n  component: [name]\n---\njob:\n  script: echo $[[ component ]]\n")
    assert err.message == "invalid interpolation access pattern"


def test_functions_apply_to_component_fields() -> None:
    body = interpolate(
        """
        spec:
          component: [sha, name]
        ---
        job:
          image: "registry.example.com/$[[ component.name | expand_vars ]]:$[[ component.sha | truncate(0,8) ]]"
          script: echo $[[ component.name | posix_escape ]]
        """
    )
    assert body["job"] == {"image": f"registry.example.com/my-component:{SHA[:8]}", "script": "echo my-component"}


def test_a_null_version_given_to_a_function_is_refused_as_gitlab_does() -> None:
    context = component_context(ADDRESS, ResolvedVersion(SHA, None, "main", "branch"))
    with pytest.raises(PipelineError) as err:
        interpolate(
            "spec:\n  component: [version]\n---\njob:\n  script: $[[ component.version | truncate(0,1) ]]\n", context
        )
    assert (
        err.value.message
        == "error in `truncate` function: invalid input type: truncate can only be used with string inputs"
    )


def test_a_component_value_is_text_never_expanded_again() -> None:
    # A hostile reference such as a branch named `$[[ inputs.x ]]` stays literal text.
    context = component_context(ADDRESS, ResolvedVersion(SHA, None, "$[[ inputs.secret ]]", "branch"))
    body = interpolate(
        "spec:\n  component: [reference]\n  inputs:\n    secret:\n      default: s3cr3t\n---\n"
        "job:\n  script: echo $[[ component.reference ]]\n",
        context,
    )
    assert body["job"] == {"script": "echo $[[ inputs.secret ]]"}


def test_component_fields_do_not_replace_inputs_of_the_same_name() -> None:
    body = interpolate(
        "spec:\n  component: [name]\n  inputs:\n    name:\n      default: from-input\n---\n"
        "job:\n  script: echo $[[ inputs.name ]] $[[ component.name ]]\n"
    )
    assert body["job"] == {"script": "echo from-input my-component"}


# --- the header ------------------------------------------------------------------------------------


def test_spec_component_fields_are_listed_once_in_order() -> None:
    header = load_yaml("spec:\n  component: [sha, name, sha]\n---\na: {script: x}\n", FILE).header
    assert header_component_fields(header) == ("sha", "name")
    assert header_component_fields(None) == ()


@pytest.mark.parametrize(
    ("value", "messages"),
    [
        ("[name, branch, commit]", ["header:spec:component config contains unknown values: branch, commit"]),
        (
            "name",
            [
                "header:spec:component config should be a array",
                "header:spec:component config should be an array of strings",
            ],
        ),
        (
            "[name, 1]",
            [
                "header:spec:component config should be an array of strings",
                "header:spec:component config contains unknown values: 1",
            ],
        ),
    ],
)
def test_spec_component_must_list_known_fields(value: str, messages: list[str]) -> None:
    err = error(f"spec:\n  component: {value}\n---\njob:\n  script: echo\n")
    assert err.message == ", ".join(messages)
    assert (err.file, err.line) == (FILE, 2)


def test_spec_component_errors_come_with_input_errors() -> None:
    err = error("spec:\n  component: [nope]\n  inputs:\n    a:\n      type: colour\n---\njob:\n  script: echo\n")
    assert err.message == (
        "header:spec:component config contains unknown values: nope, "
        "header:spec:inputs:a input type unknown value: colour"
    )


def test_other_spec_keys_are_still_refused() -> None:
    err = error("spec:\n  component: [name]\n  outputs: {}\n---\njob:\n  script: echo\n")
    assert err.message == "header:spec config contains unknown keys: outputs"


def test_inputs_given_to_a_component_without_header_are_refused() -> None:
    with pytest.raises(PipelineError) as err:
        interpolate("job:\n  script: echo\n", given={"a": 1})
    assert err.value.message == "Given inputs not defined in the `spec` section of the included configuration file"
