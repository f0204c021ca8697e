"""``spec:inputs``: the header, the values given by ``include:inputs`` or a run, ``$[[ inputs.x ]]``.

Expected messages are GitLab's (``lib/gitlab/ci/config/header/*``, ``interpolation/*``); every
error also says where (``file:line:col``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.config import PipelineConfig, load_config
from airflow_ci_vars.pipeline.loader import load_pipeline


def project(tmp_path: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (dedented) under ``tmp_path``; return the path of the first one."""
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path / next(iter(files))


def load(tmp_path: Path, text: str, *, inputs: Mapping[str, object] | None = None, **files: str) -> PipelineConfig:
    return load_config(project(tmp_path, {".gitlab-ci.yml": text, **files}), inputs=inputs)


def load_error(tmp_path: Path, text: str, *, inputs: Mapping[str, object] | None = None, **files: str) -> PipelineError:
    with pytest.raises(PipelineError) as err:
        load(tmp_path, text, inputs=inputs, **files)
    return err.value


def where(err: PipelineError) -> tuple[str, int | None, int | None]:
    return (Path(err.file or "").name, err.line, err.column)


TEMPLATE = """
spec:
  inputs:
    stage:
      default: test
    env:
      description: Where to deploy
---
"scan-$[[ inputs.env ]]":
  stage: $[[ inputs.stage ]]
  script: ./scan $[[ inputs.env ]]
"""


# --- include:inputs ----------------------------------------------------------------------------------


def test_included_file_gets_the_inputs_of_its_include_entry(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "include:\n  - local: scan.yml\n    inputs: {env: staging, stage: build}\n",
        **{"scan.yml": TEMPLATE},
    )
    assert config.jobs["scan-staging"]["stage"] == "build"
    assert config.jobs["scan-staging"]["script"] == ["./scan staging"]


def test_an_input_without_value_takes_its_default(tmp_path: Path) -> None:
    config = load(tmp_path, "include: [{local: scan.yml, inputs: {env: prod}}]\n", **{"scan.yml": TEMPLATE})
    assert config.jobs["scan-prod"]["stage"] == "test"


def test_the_same_file_included_twice_with_other_inputs_gives_two_jobs(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "include:\n  - {local: scan.yml, inputs: {env: a}}\n  - {local: scan.yml, inputs: {env: b}}\n",
        **{"scan.yml": TEMPLATE},
    )
    assert list(config.jobs) == ["scan-a", "scan-b"]


def test_a_required_input_without_value_is_refused_naming_the_include(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: [{local: scan.yml, inputs: {stage: x}}]\n", **{"scan.yml": TEMPLATE})
    assert err.message == "`scan.yml`: `env` input: required value has not been provided"
    assert where(err) == (".gitlab-ci.yml", 1, 37)  # the include's `inputs:` mapping


def test_an_include_without_inputs_of_a_file_with_required_inputs_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: scan.yml\n", **{"scan.yml": TEMPLATE})
    assert err.message == "`scan.yml`: `env` input: required value has not been provided"
    assert where(err) == ("scan.yml", 5, 5)  # where `env` is declared


def test_an_unknown_input_name_is_refused_at_its_key(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        "include:\n  - local: scan.yml\n    inputs:\n      env: x\n      colour: red\n",
        **{"scan.yml": TEMPLATE},
    )
    assert err.message == "`scan.yml`: unknown input arguments: colour"
    assert where(err) == (".gitlab-ci.yml", 5, 7)


def test_inputs_for_a_file_without_a_spec_header_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: [{local: plain.yml, inputs: {a: 1}}]\n", **{"plain.yml": "j: {script: [x]}\n"})
    assert err.message == (
        "`plain.yml`: Given inputs not defined in the `spec` section of the included configuration file"
    )


# --- types, options, regex -------------------------------------------------------------------------------


TYPED = """
spec:
  inputs:
    count: {type: number, default: 2}
    verbose: {type: boolean, default: false}
    targets: {type: array, default: [a, b]}
    tier: {options: [dev, prod], default: dev}
    version: {regex: '^v\\d+$', default: v1}
---
job:
  parallel: $[[ inputs.count ]]
  variables:
    VERBOSE: "$[[ inputs.verbose ]]"
    LINE: "tier=$[[ inputs.tier ]] n=$[[ inputs.count ]] all=$[[ inputs.targets ]]"
  needs: $[[ inputs.targets ]]
  script: ["echo $[[ inputs.version ]]"]
a: {script: [a]}
b: {script: [b]}
"""


def test_a_whole_string_block_keeps_the_input_type(tmp_path: Path) -> None:
    job = load(tmp_path, TYPED).jobs["job"]
    assert job["parallel"] == 2
    assert job["needs"] == ["a", "b"]
    assert job["variables"]["VERBOSE"] is False


def test_inside_a_string_the_value_is_written_as_ruby_prints_it(tmp_path: Path) -> None:
    job = load(tmp_path, TYPED).jobs["job"]
    assert job["variables"]["LINE"] == 'tier=dev n=2 all=["a", "b"]'


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"count": "3"}, "`count` input: provided value is not a number"),
        ({"count": True}, "`count` input: provided value is not a number"),
        ({"verbose": "yes"}, "`verbose` input: provided value is not a boolean"),
        ({"targets": "a"}, "`targets` input: provided value is not an array"),
        (
            {"tier": 5},
            "`tier` input: provided value is not a string, `tier` input: `5` cannot be used because it "
            "is not in the list of allowed options",
        ),
        ({"tier": "qa"}, "`tier` input: `qa` cannot be used because it is not in the list of allowed options"),
        ({"version": "1.0"}, "`version` input: provided value does not match required RegEx pattern"),
    ],
)
def test_a_given_value_is_checked_against_its_spec(tmp_path: Path, given: dict[str, object], message: str) -> None:
    assert load_error(tmp_path, TYPED, inputs=given).message == message


def test_given_values_replace_the_defaults(tmp_path: Path) -> None:
    job = load(tmp_path, TYPED, inputs={"count": 3, "tier": "prod", "version": "v22"}).jobs["job"]
    assert job["parallel"] == 3
    assert job["script"] == ["echo v22"]
    assert job["variables"]["LINE"].startswith("tier=prod n=3")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{type: number, default: one}", "`x` input: default value is not a number"),
        (
            "{default: c, options: [a, b]}",
            "`x` input: `c` cannot be used because it is not in the list of allowed options",
        ),
        (
            "{type: number, default: 3, options: [1, 2]}",
            "`x` input: `3` cannot be used because it is not in the list of the allowed options",
        ),
        (
            "{type: boolean, default: true, options: [true]}",
            "`x` input: Options can only be used with string and number inputs",
        ),
        ("{default: main, regex: '^v'}", "`x` input: default value does not match required RegEx pattern"),
        ("{type: number, default: 1, regex: '1'}", "`x` input: RegEx validation can only be used with string inputs"),
        ("{default: a, regex: '(?<=a)b'}", "`x` input: invalid regular expression"),
    ],
)
def test_a_bad_default_is_an_error_at_the_default(tmp_path: Path, spec: str, message: str) -> None:
    err = load_error(tmp_path, f"spec:\n  inputs:\n    x: {spec}\n---\nj: {{script: [a]}}\n")
    assert err.message == message
    assert err.line == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x: {type: text}", "header:spec:inputs:x input type unknown value: text"),
        ("x: {default: a, secret: true}", "header:spec:inputs:x config contains unknown keys: secret"),
        ("x: {options: a}", "header:spec:inputs:x input options should be a array"),
        ("x: {regex: [a]}", "header:spec:inputs:x input regex should be a string"),
        ("x: {description: [a]}", "header:spec:inputs:x input description must be an alphanumeric string"),
        ("x: [a]", "header:spec:inputs:x config should be a hash"),
        (
            "x: {options: [" + ", ".join(str(n) for n in range(51)) + "]}",
            "header:spec:inputs:x config cannot define more than 50 options",
        ),
    ],
)
def test_a_bad_header_is_refused_with_gitlabs_message(tmp_path: Path, spec: str, message: str) -> None:
    err = load_error(tmp_path, f"spec:\n  inputs:\n    {spec}\n---\nj: {{script: [a]}}\n")
    assert err.message == message
    assert where(err) == (".gitlab-ci.yml", 3, 5)


def test_unknown_keys_of_spec_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "spec:\n  arguments: {x: {}}\n---\nj: {script: [a]}\n")
    assert err.message == "header:spec config contains unknown keys: arguments"


def test_gitlab_joins_at_most_three_errors(tmp_path: Path) -> None:
    header = "spec:\n  inputs:\n" + "".join(f"    i{n}:\n" for n in range(5)) + "---\nj: {script: [a]}\n"
    err = load_error(tmp_path, header)
    assert err.message == (
        "`i0` input: required value has not been provided, `i1` input: required value has not been provided, "
        "`i2` input: required value has not been provided"
    )


# --- interpolation blocks ----------------------------------------------------------------------------------


def body(tmp_path: Path, line: str, spec: str = "name: {default: 'hello world'}", **inputs: object) -> object:
    text = f"spec:\n  inputs:\n    {spec}\n---\nj:\n  script: [x]\n  variables: {{V: {line}}}\n"
    return load(tmp_path, text, inputs=inputs or None).jobs["j"]["variables"]["V"]


def test_truncate_takes_offset_and_length(tmp_path: Path) -> None:
    assert body(tmp_path, "'$[[ inputs.name | truncate(1,3) ]]'") == "ell"
    assert body(tmp_path, "'$[[ inputs.name | truncate(20,3) ]]'") == ""


def test_posix_escape_makes_a_value_one_shell_word(tmp_path: Path) -> None:
    assert body(tmp_path, "'$[[ inputs.name | posix_escape ]]'") == "hello\\ world"
    assert body(tmp_path, "'$[[ inputs.name | posix_escape ]]'", name="") == "''"
    assert body(tmp_path, "'$[[ inputs.name | posix_escape ]]'", name="a'b;c") == "a\\'b\\;c"


def test_expand_vars_expands_the_variables_include_sees_and_keeps_unknown_ones(tmp_path: Path) -> None:
    text = (
        "spec:\n  inputs:\n    p: {default: '$CI_COMMIT_REF_NAME-$NOPE'}\n---\n"
        "j: {script: ['$[[ inputs.p | expand_vars ]]']}\n"
    )
    config = load_config(project(tmp_path, {".gitlab-ci.yml": text}), variables={"CI_COMMIT_REF_NAME": "main"})
    assert config.jobs["j"]["script"] == ["main-$NOPE"]


def test_functions_apply_in_order(tmp_path: Path) -> None:
    line = "'$[[ inputs.name | truncate(0,7) | posix_escape ]]'"
    assert body(tmp_path, line) == "hello\\ w"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("'$[[ inputs.nope ]]'", "unknown interpolation key: `nope`"),
        ("'$[[ env.name ]]'", "unknown interpolation key: `env`"),
        ("'$[[ inputs ]]'", "invalid interpolation access pattern"),
        (
            "'$[[ inputs.name | upcase ]]'",
            "no function matching `upcase`: check that the function name, arguments, and types are correct",
        ),
        (
            "'$[[ inputs.name | truncate(0,1) | truncate(0,1) | truncate(0,1) | truncate(0,1) ]]'",
            "too many functions in interpolation block",
        ),
    ],
)
def test_a_bad_block_is_an_error_where_it_is_written(tmp_path: Path, line: str, message: str) -> None:
    err = load_error(
        tmp_path, f"spec:\n  inputs:\n    name: {{default: a}}\n---\nj:\n  script: [x]\n  variables: {{V: {line}}}\n"
    )
    assert err.message == message
    assert where(err) == (".gitlab-ci.yml", 7, 15)


def test_a_function_on_a_number_is_refused(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        "spec:\n  inputs:\n    n: {type: number, default: 1}\n---\nj: {script: ['$[[ inputs.n | truncate(0,1) ]]']}\n",
    )
    assert (
        err.message == "error in `truncate` function: invalid input type: truncate can only be used with string inputs"
    )


def test_matrix_blocks_are_left_for_needs(tmp_path: Path) -> None:
    text = "spec:\n  inputs:\n    a: {default: x}\n---\nj: {script: ['$[[ matrix.A ]] $[[ inputs.a ]]']}\n"
    assert load(tmp_path, text).jobs["j"]["script"] == ["$[[ matrix.A ]] x"]


def test_a_file_without_a_header_is_not_interpolated(tmp_path: Path) -> None:
    assert load(tmp_path, "j: {script: ['$[[ inputs.a ]]']}\n").jobs["j"]["script"] == ["$[[ inputs.a ]]"]


def test_keys_are_interpolated_and_keep_their_position(tmp_path: Path) -> None:
    config = load(tmp_path, "spec:\n  inputs:\n    n: {default: x}\n---\n\n'job-$[[ inputs.n ]]': {script: [a]}\n")
    assert str(config.location("job-x")) == f"{tmp_path / '.gitlab-ci.yml'}:6:1"


# --- the main file ------------------------------------------------------------------------------------------


def test_the_main_file_takes_its_inputs_from_the_run(tmp_path: Path) -> None:
    text = "spec:\n  inputs:\n    env: {default: dev}\n---\ndeploy: {script: ['deploy $[[ inputs.env ]]']}\n"
    ci = project(tmp_path, {".gitlab-ci.yml": text})
    assert load_pipeline(ci).job("deploy").spec.script == ("deploy dev",)
    assert load_pipeline(ci, inputs={"env": "prod"}).job("deploy").spec.script == ("deploy prod",)


def test_run_inputs_for_a_main_file_without_header_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "j: {script: [a]}\n", inputs={"env": "prod"})
    assert err.message == "Given inputs not defined in the `spec` section of the included configuration file"
