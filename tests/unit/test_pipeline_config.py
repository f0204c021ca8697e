"""Loading a ``.gitlab-ci.yml`` as GitLab composes it: YAML (Psych), include, extends, !reference, default.

Cases named ``test_glci_*`` load gitlab-ci-local's fixtures (``tests/data/pipelines/gitlab-ci-local``,
MIT, see its README) and check what that suite expects; where gitlab-ci-local differs from GitLab's
code the test follows GitLab and says so.
"""

from __future__ import annotations

import copy
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from airflow_ci_vars.errors import CIVarsError, PipelineError
from airflow_ci_vars.pipeline.config import PipelineConfig, load_config
from airflow_ci_vars.pipeline.yaml_loader import (
    Location,
    PosDict,
    PosList,
    Reference,
    load_yaml,
    psych_scalar,
)

GLCI = Path(__file__).resolve().parents[1] / "data" / "pipelines" / "gitlab-ci-local"


def glci(case: str, file: str = ".gitlab-ci.yml", **kwargs: object) -> PipelineConfig:
    return load_config(GLCI / case / file, **kwargs)  # type: ignore[arg-type]


def glci_error(case: str, file: str = ".gitlab-ci.yml", **kwargs: object) -> PipelineError:
    with pytest.raises(PipelineError) as err:
        glci(case, file, **kwargs)
    return err.value


def project(tmp_path: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (dedented) under ``tmp_path``; return the path of the first one."""
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return tmp_path / next(iter(files))


def load(tmp_path: Path, text: str, **kwargs: object) -> PipelineConfig:
    return load_config(project(tmp_path, {".gitlab-ci.yml": text}), **kwargs)  # type: ignore[arg-type]


def load_error(tmp_path: Path, text: str | Mapping[str, str], **kwargs: object) -> PipelineError:
    files = {".gitlab-ci.yml": text} if isinstance(text, str) else text
    with pytest.raises(PipelineError) as err:
        load_config(project(tmp_path, files), **kwargs)  # type: ignore[arg-type]
    return err.value


def yaml_body(text: str) -> PosDict:
    return load_yaml(textwrap.dedent(text).lstrip("\n"), "f.yml").body


def yaml_error(text: str) -> PipelineError:
    with pytest.raises(PipelineError) as err:
        load_yaml(textwrap.dedent(text).lstrip("\n"), "f.yml")
    return err.value


# --- the error type --------------------------------------------------------------------------------


def test_pipeline_error_renders_file_line_column_then_message() -> None:
    err = PipelineError("boom", file="a.yml", line=3, column=7, job="build", key="script")
    assert str(err) == "a.yml:3:7: boom"
    assert (err.message, err.file, err.line, err.column, err.job, err.key) == ("boom", "a.yml", 3, 7, "build", "script")
    assert isinstance(err, CIVarsError)
    assert isinstance(err, ValueError)


def test_pipeline_error_leaves_out_unknown_parts() -> None:
    assert str(PipelineError("boom", file="a.yml")) == "a.yml: boom"
    assert str(PipelineError("boom", file="a.yml", line=3)) == "a.yml:3: boom"
    assert str(PipelineError("boom")) == "boom"


def test_pipeline_error_survives_pickling() -> None:
    err = pickle.loads(pickle.dumps(PipelineError("boom", file="a.yml", line=3, column=7, job="j", key="k")))
    assert (str(err), err.line, err.column, err.job, err.key) == ("a.yml:3:7: boom", 3, 7, "j", "k")


# --- YAML: positions -----------------------------------------------------------------------------


def test_mappings_carry_the_position_of_every_key() -> None:
    body = yaml_body(
        """
        build:
          stage: build
          script: [make]
        """
    )
    assert isinstance(body, PosDict) and isinstance(body["build"], PosDict)
    assert body.key_location("build") == Location("f.yml", 1, 1)
    assert body["build"].key_location("stage") == Location("f.yml", 2, 3)
    assert body["build"].key_location("script") == Location("f.yml", 3, 3)
    assert body["build"].location == Location("f.yml", 2, 3)


def test_lists_carry_the_position_of_every_item() -> None:
    body = yaml_body(
        """
        job:
          script:
            - echo one
            - - echo nested
        """
    )
    script = body["job"]["script"]
    assert isinstance(script, PosList) and isinstance(script[1], PosList)
    assert script.item_location(0) == Location("f.yml", 3, 7)
    assert script.item_location(1) == Location("f.yml", 4, 7)
    assert script[1].item_location(0) == Location("f.yml", 4, 9)


def test_a_leading_document_marker_keeps_file_line_numbers() -> None:
    body = load_yaml("---\njob:\n  script: x\n", "f.yml").body
    assert body.key_location("job") == Location("f.yml", 2, 1)


def test_scalars_stay_plain_python_values() -> None:
    body = yaml_body("a: x\nb: 1\nc: 1.5\nd: true\ne: null\n")
    assert [type(body[k]) for k in "abcde"] == [str, int, float, bool, type(None)]


# --- YAML: Psych's scalars -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("tRuE", True),
        ("yes", True),
        ("On", True),
        ("no", False),
        ("OFF", False),
        ("y", "y"),
        ("n", "n"),
        ("null", None),
        ("NULL", None),
        ("~", None),
        ("", None),
        ("none", "none"),
        ("42", 42),
        ("-7", -7),
        ("1_000", 1000),
        ("1,000", 1000),
        ("012345", 5349),
        ("0x1f", 31),
        ("0b101", 5),
        ("08", "08"),
        ("1:30", 5400),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".5", 0.5),
        ("1e3", "1e3"),
        ("1.2.3", "1.2.3"),
        (".inf", float("inf")),
        ("echo hi", "echo hi"),
        (":sym", ":sym"),
    ],
)
def test_plain_scalars_are_typed_like_psych(text: str, value: object) -> None:
    assert psych_scalar(text) == value
    assert type(psych_scalar(text)) is type(value)


def test_quoted_and_block_scalars_are_strings() -> None:
    body = yaml_body("a: 'true'\nb: \"1\"\nc: |\n  42\nd: !!str 7\n")
    assert body == {"a": "true", "b": "1", "c": "42\n", "d": "7"}


def test_an_unquoted_date_is_refused_like_psych_safe_load() -> None:
    err = yaml_error("job:\n  variables:\n    SINCE: 2024-01-31\n")
    assert err.message == "Tried to load unspecified class: Date"
    assert (err.line, err.column) == (3, 12)


def test_an_impossible_date_stays_a_string() -> None:
    assert yaml_body("a: 2023-02-30\n") == {"a": "2023-02-30"}


# --- YAML: anchors, aliases, merge keys, duplicates ------------------------------------------------


def test_merge_key_overrides_keys_written_before_it_as_psych_does() -> None:
    body = yaml_body(
        """
        .base: &base {A: base, B: base}
        job:
          A: own
          <<: *base
          C: own
        """
    )
    assert body["job"] == {"A": "base", "B": "base", "C": "own"}


def test_keys_written_after_a_merge_key_override_it() -> None:
    body = yaml_body(".base: &base {A: base}\njob:\n  <<: *base\n  A: own\n")
    assert body["job"] == {"A": "own"}
    assert body["job"].key_location("A") == Location("f.yml", 4, 3)


def test_merged_keys_keep_the_position_of_their_anchor() -> None:
    body = yaml_body(".base: &base\n  B: base\njob:\n  <<: *base\n")
    assert body["job"].key_location("B") == Location("f.yml", 2, 3)


def test_in_a_list_of_merges_the_first_mapping_wins() -> None:
    body = yaml_body("a: &a {X: a, Y: a}\nb: &b {X: b, Z: b}\njob:\n  <<: [*a, *b]\n")
    assert body["job"] == {"X": "a", "Y": "a", "Z": "b"}


def test_a_merge_of_something_else_than_a_mapping_stays_a_plain_key() -> None:
    body = yaml_body("list: &l [1, 2]\njob:\n  <<: *l\n  other: <<\n")
    assert body["job"] == {"<<": [1, 2], "other": "<<"}


def test_a_string_tagged_merge_key_is_a_plain_key() -> None:
    body = yaml_body("a: &a {X: 1}\njob:\n  !!str <<: *a\n")
    assert body["job"] == {"<<": {"X": 1}}


def test_an_anchor_can_be_redefined_and_later_aliases_see_the_new_value() -> None:
    body = yaml_body("a: &x one\nb: *x\nc: &x two\nd: *x\n")
    assert body == {"a": "one", "b": "one", "c": "two", "d": "two"}


def test_an_alias_is_the_same_object_as_its_anchor() -> None:
    body = yaml_body("a: &x [1, 2]\nb: *x\n")
    assert body["a"] is body["b"]


def test_an_unknown_alias_is_an_error_with_its_position() -> None:
    err = yaml_error("a: 1\nb: *nope\n")
    assert str(err) == "f.yml:2:4: An alias referenced an unknown anchor: nope"


def test_a_recursive_alias_is_refused() -> None:
    err = yaml_error("a: &x\n  b: *x\n")
    assert "recursive YAML alias *x" in err.message
    assert (err.line, err.column) == (2, 6)


def test_an_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    assert yaml_error("\n".join(lines) + "\n").message == "The parsed YAML is too big"


def test_nesting_deeper_than_gitlab_max_yaml_depth_is_refused() -> None:
    assert yaml_error("a: " + "[" * 101 + "]" * 101 + "\n").message == "The parsed YAML is too big"


def test_duplicate_keys_keep_the_last_value_at_the_first_place() -> None:
    body = yaml_body("a: 1\nb: 2\na: 3\n")
    assert list(body.items()) == [("a", 3), ("b", 2)]
    assert body.key_location("a") == Location("f.yml", 3, 1)


def test_an_unhashable_key_is_an_error() -> None:
    assert "found unhashable key" in yaml_error("? [a, b]\n: 1\n").message


# --- YAML: !reference, errors, documents -----------------------------------------------------------


def test_reference_tag_becomes_a_reference_with_its_path_and_location() -> None:
    document = load_yaml("job:\n  script: !reference [.setup, script]\n", "f.yml")
    ref = document.body["job"]["script"]
    assert isinstance(ref, Reference)
    assert ref.path == (".setup", "script")
    assert ref.location == Location("f.yml", 2, 11)
    assert ref.valid and document.has_references


def test_a_reference_that_is_not_a_list_of_strings_is_kept_as_invalid() -> None:
    ref = yaml_body("a: !reference [.x, 1]\n")["a"]
    assert isinstance(ref, Reference) and not ref.valid
    assert str(ref) == '!reference [".x", 1]'


def test_a_yaml_syntax_error_has_psych_wording_and_position() -> None:
    err = yaml_error("job:\n  script: [a\nother: b\n")
    assert err.message.startswith("(<unknown>): did not find expected ',' or ']' while parsing a flow sequence")
    assert (err.file, err.line, err.column) == ("f.yml", 2, 11)


def test_a_document_that_is_not_a_mapping_has_an_invalid_format() -> None:
    assert str(yaml_error("- a\n- b\n")) == "f.yml:1:1: Invalid configuration format"


def test_a_spec_header_is_split_off_from_the_body() -> None:
    document = load_yaml("spec:\n  inputs:\n    env: {default: dev}\n---\njob:\n  script: x\n", "f.yml")
    assert document.header == {"spec": {"inputs": {"env": {"default": "dev"}}}}
    assert document.body == {"job": {"script": "x"}}
    assert document.body_text == "job:\n  script: x\n"
    assert document.body.key_location("job") == Location("f.yml", 5, 1)
    assert document.body_line == 5


def test_without_a_spec_header_a_second_document_is_ignored_like_gitlab() -> None:
    document = load_yaml("a: 1\n---\nb: 2\n", "f.yml")
    assert document.header is None
    assert document.body == {"a": 1}


def test_blank_documents_are_dropped() -> None:
    document = load_yaml("---\n# nothing\n---\njob: {script: x}\n", "f.yml")
    assert document.header is None
    assert document.body == {"job": {"script": "x"}}


def test_the_text_is_split_in_three_pieces_at_most_like_gitlab() -> None:
    # MultiDocYaml splits on /^---\s+/ with a limit of 3; the last piece is read as one YAML
    # stream, of which only the first document counts.
    document = load_yaml("---\n# nothing\n---\nspec: {inputs: {}}\n---\njob: {script: x}\n", "f.yml")
    assert document.header is None
    assert document.body == {"spec": {"inputs": {}}}


# --- gitlab-ci-local cases: extends, !reference, default, scripts ---------------------------------


def test_glci_extends_merges_several_parents_left_to_right_and_replaces_scripts() -> None:
    job = glci("extends").jobs["test-job"]
    assert job["before_script"] == ['echo "Test something (before_script)"']
    assert job["script"] == ['echo "Test something"']
    assert job["after_script"] == ['echo "Test something (after_script)"']
    assert job["stage"] == "test"


def test_glci_reference_resolves_nested_references_and_included_files() -> None:
    config = glci("reference")
    assert list(config.jobs) == ["test-job", "issue-909"]
    assert config.jobs["test-job"]["variables"] == {"MYVAR": "Yoyo"}
    assert config.jobs["test-job"]["script"] == [
        'echo "Ancient"',
        'echo "Base"',
        'echo "Setting something general up"',
        'echo "array root"',
        "echo ${MYVAR}",
    ]
    assert config.jobs["issue-909"]["script"] == ["echo TEST"]


def test_glci_reference_through_an_extended_template() -> None:
    assert glci("reference", ".gitlab-ci-complex.yml").jobs["job"]["variables"] == {"FOO": "foo"}


def test_glci_reference_to_a_reference_in_an_included_file() -> None:
    assert glci("reference", ".gitlab-ci-issue-899.yml").jobs["job"]["image"] == "docker.io/library/bash"


def test_glci_reference_in_top_level_after_script_becomes_the_default() -> None:
    job = glci("reference", ".gitlab-ci-issue-954.yml").jobs["normal_job"]
    assert job["before_script"] == job["script"] == job["after_script"] == ["echo Hello from ${CI_JOB_NAME}"]


def test_glci_reference_ten_levels_deep_is_flattened() -> None:
    assert glci("reference", ".gitlab-ci-10-level-deep.yml").jobs["test"]["script"] == ["echo test"]


def test_glci_reference_eleven_levels_deep_is_refused() -> None:
    err = glci_error("reference", ".gitlab-ci-11-level-deep.yml")
    assert err.message == "jobs:test:script config should be a string or a nested array of strings up to 10 levels deep"
    assert (err.line, err.job, err.key) == (24, "test", "script")


def test_glci_reference_in_a_parent_is_replaced_by_the_child_hash_in_gitlab_order() -> None:
    # GitLab applies extends before !reference: `.something: {variables: !reference ...}` is not
    # a hash when test-job's variables are merged over it, so it is replaced (gitlab-ci-local,
    # which resolves references first, would also keep HESTHEST).
    job = glci("reference", ".gitlab-ci-1.yml").jobs["test-job"]
    assert job["variables"] == {"NICENESS": "byrdalos"}


def test_glci_reference_has_lower_precedence_than_the_job() -> None:
    assert glci("reference", ".gitlab-ci-2.yml").jobs["test-job"]["variables"] == {"NICENESS": "byrdalos"}


def test_glci_reference_list_inside_rules_is_flattened() -> None:
    job = glci("reference", ".gitlab-ci-3.yml").jobs["test-job"]
    assert job["rules"] == [{"if": '$MY_VAR == "MY_VAL"', "when": "always"}]
    assert job["variables"] == {"MY_VAR": "MY_VAL"}


def test_glci_reference_circular_chain() -> None:
    err = glci_error("reference-circular-chain")
    assert err.message == '!reference ["test-job", "script"] is part of a circular chain'
    assert (err.line, err.column, err.job) == (4, 7, "test-job")


def test_glci_inherit_default_true_false_and_list() -> None:
    jobs = glci("inherit", ".gitlab-ci-inherit-default.yml").jobs
    assert jobs["inherit-default-true"]["image"] == "busybox"
    assert jobs["inherit-default-true"]["before_script"] == ["echo default before script"]
    assert jobs["inherit-default-true"]["after_script"] == ["echo default after script"]
    assert "image" not in jobs["inherit-default-false"]
    assert "before_script" not in jobs["inherit-default-false"]
    listed = jobs["inherit-default-before_script_and_image"]
    assert listed["image"] == "busybox"
    assert listed["before_script"] == ["echo default before script"]
    assert "after_script" not in listed


def test_glci_inherit_variables_is_kept_for_the_variables_layer() -> None:
    config = glci("inherit", ".gitlab-ci-inherit-variables.yml")
    assert config.variables == {
        "GCL_TESTS_VAR1": "This is variable 1",
        "GCL_TESTS_VAR2": "This is variable 2",
        "GCL_TESTS_VAR3": "This is variable 3",
    }
    assert config.jobs["job1"]["inherit"] == {"variables": False}
    assert config.jobs["job2"]["inherit"] == {"variables": ["GCL_TESTS_VAR1", "GCL_TESTS_VAR2"]}
    assert config.jobs["job1"]["image"] == "busybox"


def test_glci_before_script_default() -> None:
    assert glci("before-script-default").jobs["test-job"]["before_script"] == ['echo "Before test"']


def test_glci_duplicated_keys_keep_the_last_and_anchors_stay_usable() -> None:
    config = glci("duplicated-keys")
    assert config.variables == {"BAR": "2"}
    assert config.jobs["duplicated-keys"]["variables"] == {"BAR": "2"}
    assert config.jobs["duplicated-keys anchor tag can still be referenced"]["variables"] == {"FOO": "1"}
    assert "variables" not in config.jobs["duplicated-keys variables overwritten"]


def test_glci_invalid_stages() -> None:
    err = glci_error("invalid-stages")
    assert (
        err.message == "stages config should be an array of strings or a nested array of strings up to 10 levels deep"
    )
    assert (err.line, err.key) == (2, "stages")


def test_glci_scripts_as_strings_become_lists() -> None:
    job = glci("scripts-as-string").jobs["test-job"]
    assert job["before_script"] == ['echo "Before test"']
    assert job["script"] == ['echo "Test something"']
    assert job["after_script"] == ['echo "After test"']


def test_glci_script_ten_levels_deep_is_flattened() -> None:
    script = glci("script-multidimension", ".gitlab-ci-10-level-deep.yml").jobs["test-job"]["script"]
    assert script == [f"echo {i}" for i in range(1, 11)]
    assert script.item_location(9) == Location(str(GLCI / "script-multidimension/.gitlab-ci-10-level-deep.yml"), 13, 25)


def test_glci_script_eleven_levels_deep_is_refused() -> None:
    err = glci_error("script-multidimension", ".gitlab-ci-11-level-deep.yml")
    assert err.message == (
        "jobs:test-job:script config should be a string or a nested array of strings up to 10 levels deep"
    )
    assert (err.line, err.column) == (3, 3)


def test_glci_no_script() -> None:
    err = glci_error("no-script")
    assert err.message == "jobs test-job config should implement the script:, run:, or trigger: keyword"
    assert (err.line, err.column, err.job) == (2, 1, "test-job")


def test_glci_stage_not_found_loads_and_locates_the_stage_for_the_model() -> None:
    # The unknown stage is reported by pipeline.model (keyword semantics), with this location.
    config = glci("stage-not-found")
    assert config.jobs["test-job"]["stage"] == "invalid"
    assert (config.location("test-job", "stage").line, config.location("test-job", "stage").column) == (3, 3)


# --- gitlab-ci-local cases: include ---------------------------------------------------------------


def test_glci_include_local_location_from_a_variable() -> None:
    config = glci("include-local", variables={"CI_INCLUDE_LOCAL": "/.gitlab-ci-base.yml"})
    assert list(config.jobs) == ["build-job"]
    assert config.jobs["build-job"]["script"] == ['echo "Build something"']


def test_glci_include_short_list() -> None:
    assert list(glci("include-local", ".gitlab-ci-short-list.yml").jobs) == ["test-job"]


def test_glci_include_short_single() -> None:
    assert list(glci("include-local", ".gitlab-ci-short-single.yml").jobs) == ["deploy-job"]


def test_glci_include_directory_traversal_finds_no_file() -> None:
    err = glci_error("include-local", ".gitlab-ci-invalid-config-directory-traversal.yml")
    assert err.message == "Local file `../include-local/.gitlab-ci.yml` does not exist!"
    assert (err.line, err.column, err.key) == (3, 3, "include")


def test_glci_include_relative_path_finds_no_file() -> None:
    err = glci_error("include-local", ".gitlab-ci-invalid-config-relative-path.yml")
    assert err.message == "Local file `./.gitlab-ci.yml` does not exist!"


def test_glci_include_invalid_local() -> None:
    err = glci_error("include-invalid-local")
    assert err.message == "Local file `.gitlab-ci-invalid.yml` does not exist!"
    assert err.file == str(GLCI / "include-invalid-local" / ".gitlab-ci.yml")
    assert (err.line, err.column) == (3, 7)


def test_glci_include_wildcard_with_leading_slash() -> None:
    assert list(glci("include-local-wildcard").jobs) == ["build-images", "cache-repo", "docs"]


def test_glci_include_double_star_matches_the_folder_and_subfolders() -> None:
    assert list(glci("include-local-wildcard", ".gitlab-ci-1.yml").jobs) == [
        "configs/.gitlab-ci.yml",
        "configs/subfolder/.gitlab-ci.yml",
        "configs/subfolder/subfolder/.gitlab-ci.yml",
    ]


def test_glci_include_double_star_slash_star_matches_subfolders_only() -> None:
    assert list(glci("include-local-wildcard", ".gitlab-ci-2.yml").jobs) == [
        "configs/subfolder/.gitlab-ci.yml",
        "configs/subfolder/subfolder/.gitlab-ci.yml",
    ]


def test_glci_include_single_star_matches_one_folder() -> None:
    config = glci("include-local-wildcard", ".gitlab-ci-3.yml")
    assert list(config.jobs) == ["configs/.gitlab-ci.yml"]
    assert config.include_globs == ("configs/*.yml",)


def test_glci_include_150_files_are_allowed() -> None:
    config = glci("include-nested", ".150-nested-include-gitlab-ci.yml")
    assert list(config.jobs) == ["job"]
    assert config.stages == (".pre", "test", ".post")


def test_glci_include_150_nested_files_are_allowed() -> None:
    assert list(glci("include-nested", ".150-complex-nested-include-gitlab-ci.yml").jobs) == ["job"]


def test_glci_include_151_files_are_refused() -> None:
    err = glci_error("include-nested", ".151-nested-include-gitlab-ci.yml")
    assert err.message == "Maximum of 150 nested includes are allowed!"
    assert err.line == 154


def test_glci_include_151_nested_files_are_refused() -> None:
    assert glci_error("include-nested", ".151-complex-nested-include-gitlab-ci.yml").message == (
        "Maximum of 150 nested includes are allowed!"
    )


def test_glci_include_maximum_is_a_parameter() -> None:
    err = glci_error("include-nested", ".151-complex-nested-include-gitlab-ci.yml", max_includes=3)
    assert err.message == "Maximum of 3 nested includes are allowed!"
    assert err.line == 8


def test_glci_include_rules_decide_which_files_are_included() -> None:
    answers = {'$GITLAB_CI == "false"': False, "$CI_COMMIT_TAG": True, '$GITLAB_CI == "true"': True}
    config = glci("include-rules", rule_matches=lambda rule: answers[str(rule["if"])])
    assert list(config.jobs) == ["test-job", "build-job"]
    assert config.jobs["build-job"]["script"] == ['echo "This should not appear"']  # GitLab sets GITLAB_CI=true


# --- include ------------------------------------------------------------------------------------------


def test_the_root_file_wins_over_includes_and_hashes_merge(tmp_path: Path) -> None:
    config = load_config(
        project(
            tmp_path,
            {
                ".gitlab-ci.yml": """
                    include: ci/base.yml
                    variables: {B: root}
                    build: {stage: deploy}
                    """,
                "ci/base.yml": """
                    variables: {A: base, B: base}
                    build: {stage: build, script: [make]}
                    """,
            },
        )
    )
    assert config.variables == {"A": "base", "B": "root"}
    assert config.jobs["build"] == {"stage": "deploy", "script": ["make"]}


def test_a_later_include_overrides_an_earlier_one(tmp_path: Path) -> None:
    config = load_config(
        project(
            tmp_path,
            {
                ".gitlab-ci.yml": "include: [a.yml, b.yml]\n",
                "a.yml": "job: {script: [a], stage: build}\n",
                "b.yml": "job: {script: [b]}\n",
            },
        )
    )
    assert config.jobs["job"] == {"script": ["b"], "stage": "build"}


def test_included_keys_come_before_the_root_keys(tmp_path: Path) -> None:
    config = load_config(
        project(tmp_path, {".gitlab-ci.yml": "include: a.yml\nroot: {script: [r]}\n", "a.yml": "inc: {script: [i]}\n"})
    )
    assert list(config.jobs) == ["inc", "root"]


def test_nested_includes_are_relative_to_the_project_root(tmp_path: Path) -> None:
    config = load_config(
        project(
            tmp_path,
            {
                ".gitlab-ci.yml": "include: ci/one.yml\n",
                "ci/one.yml": "include: {local: /ci/two/two.yml}\none: {script: [one]}\n",
                "ci/two/two.yml": "two: {script: [two]}\n",
            },
        )
    )
    assert list(config.jobs) == ["two", "one"]
    assert config.included_files == (
        str(tmp_path / ".gitlab-ci.yml"),
        str(tmp_path / "ci/one.yml"),
        str(tmp_path / "ci/two/two.yml"),
    )


def test_a_job_from_an_included_file_is_located_in_that_file(tmp_path: Path) -> None:
    config = load_config(
        project(tmp_path, {".gitlab-ci.yml": "include: a.yml\n", "a.yml": "# a comment\njob:\n  script: [x]\n"})
    )
    assert config.location("job", "script") == Location(str(tmp_path / "a.yml"), 3, 3)


def test_a_missing_include_names_the_including_file_and_line(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        {
            ".gitlab-ci.yml": "include: a.yml\n",
            "a.yml": "include:\n  - b.yml\n  - local: missing.yml\n",
            "b.yml": "b: {script: [x]}\n",
        },
    )
    assert str(err) == f"{tmp_path / 'a.yml'}:3:5: Local file `missing.yml` does not exist!"


def test_include_location_variables_expand_and_undefined_ones_are_empty(tmp_path: Path) -> None:
    files = {".gitlab-ci.yml": "include: ci/${KIND}$MISSING.yml\n", "ci/build.yml": "b: {script: [x]}\n"}
    assert list(load_config(project(tmp_path, files), variables={"KIND": "build"}).jobs) == ["b"]


def test_include_hash_locations_expand_variables_too(tmp_path: Path) -> None:
    files = {".gitlab-ci.yml": "include: {local: '%KIND%.yml'}\n", "build.yml": "b: {script: [x]}\n"}
    assert list(load_config(project(tmp_path, files), variables={"KIND": "build"}).jobs) == ["b"]


def test_an_include_without_yaml_extension_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: ci/build.txt\n", "ci/build.txt": "b: {script: [x]}\n"})
    assert err.message == "Included file `ci/build.txt` does not have YAML extension!"


def test_an_include_location_must_be_a_string(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: {local: [a.yml]}\nj: {script: [x]}\n")
    assert err.message == 'Included file `["a.yml"]` needs to be a string'


def test_an_include_must_be_a_hash_or_a_string(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: [[a.yml]]\nj: {script: [x]}\n")
    assert (err.message, err.line, err.column) == ("Each include must be a hash or a string", 1, 11)


@pytest.mark.parametrize(
    ("include", "setting"),
    [
        ("https://example.com/ci.yml", "[ci_vars] include_remote_allowed"),
        ("{remote: 'https://example.com/ci.yml'}", "[ci_vars] include_remote_allowed"),
        ("{project: group/p, file: ci.yml}", "[ci_vars] include_projects"),
        ("{template: Auto-DevOps.gitlab-ci.yml}", "[ci_vars] include_templates_dir"),
        ("{component: gitlab.com/c/d@1.0}", "[ci_vars] include_projects"),
    ],
)
def test_includes_other_than_local_name_the_setting_they_need(tmp_path: Path, include: str, setting: str) -> None:
    err = load_error(tmp_path, f"j: {{script: [x]}}\ninclude: {include}\n")
    assert setting in err.message
    assert err.line == 2


def test_an_include_without_a_known_subkey_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: {file: a.yml}\nj: {script: [x]}\n")
    assert err.message == (
        '`{"file":"a.yml"}` does not have a valid subkey for include. '
        "Valid subkeys are: `local`, `project`, `remote`, `template`, `artifact`, `component`"
    )


def test_an_include_with_two_subkeys_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include: {local: a.yml, template: b.yml}\nj: {script: [x]}\n")
    assert err.message.startswith("Each include must use only one of: `local`, `project`")


def test_an_empty_included_file_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: a.yml\nj: {script: [x]}\n", "a.yml": "\n  \n"})
    assert err.message == "Local file `a.yml` is empty!"


def test_an_included_file_with_only_comments_has_no_valid_yaml(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: a.yml\nj: {script: [x]}\n", "a.yml": "# nothing\n"})
    assert err.message == "Included file `a.yml` does not have valid YAML syntax!"


def test_a_syntax_error_in_an_included_file_points_into_that_file(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: a.yml\nj: {script: [x]}\n", "a.yml": "a: [1\nb: 2\n"})
    assert err.message.startswith("`a.yml`: (<unknown>): did not find expected")
    assert (err.file, err.line) == (str(tmp_path / "a.yml"), 1)


def test_an_included_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: a.yml\nj: {script: [x]}\n", "a.yml": "- x\n"})
    assert err.message == "`a.yml`: Invalid configuration format"


def test_an_include_loop_stops_at_the_maximum(tmp_path: Path) -> None:
    err = load_error(tmp_path, {".gitlab-ci.yml": "include: a.yml\n", "a.yml": "include: a.yml\nj: {script: [x]}\n"})
    # GitLab's message, with the cycle that reached it named (GitLab only counts to 150)
    assert err.message.startswith("Maximum of 150 nested includes are allowed! (an include cycle: ")
    assert err.message.endswith("a.yml -> " + str(tmp_path / "a.yml") + ")")


def test_include_rules_when_never_excludes_the_file(tmp_path: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include:\n  - local: a.yml\n    rules: [{when: never}]\nj: {script: [x]}\n",
        "a.yml": "a: {script: [a]}\n",
    }
    assert list(load_config(project(tmp_path, files)).jobs) == ["j"]


def test_include_rules_with_if_do_not_match_without_an_expression_engine(tmp_path: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include:\n  - local: a.yml\n    rules: [{if: $X}]\nj: {script: [x]}\n",
        "a.yml": "a: {script: [a]}\n",
    }
    assert list(load_config(project(tmp_path, files)).jobs) == ["j"]


def test_include_rules_get_the_rule_mapping(tmp_path: Path) -> None:
    seen: list[object] = []
    files = {
        ".gitlab-ci.yml": "include:\n  - local: a.yml\n    rules: [{exists: [x]}, {if: $Y, when: always}]\n",
        "a.yml": "a: {script: [a]}\n",
    }
    config = load_config(project(tmp_path, files), rule_matches=lambda rule: seen.append(dict(rule)) or "if" in rule)
    assert seen == [{"exists": ["x"]}, {"if": "$Y", "when": "always"}]
    assert list(config.jobs) == ["a"]


def test_include_rules_with_an_unknown_key_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "include:\n  - local: a.yml\n    rules: [{unless: $X}]\nj: {script: [x]}\n")
    assert err.message == "include:rule config contains unknown keys: unless"


def test_wildcard_includes_are_sorted_and_skip_non_matching_files(tmp_path: Path) -> None:
    files = {
        ".gitlab-ci.yml": "include: 'ci/**.yml'\n",
        "ci/b.yml": "b: {script: [b]}\n",
        "ci/a.yml": "a: {script: [a]}\n",
        "ci/sub/c.yml": "c: {script: [c]}\n",
        "ci/notes.txt": "not yaml",
    }
    config = load_config(project(tmp_path, files))
    assert list(config.jobs) == ["a", "b", "c"]
    assert config.include_globs == ("ci/**.yml",)


def test_a_wildcard_matching_nothing_includes_nothing(tmp_path: Path) -> None:
    assert list(load(tmp_path, "include: 'none/*.yml'\nj: {script: [x]}\n").jobs) == ["j"]


def test_interpolate_receives_the_spec_header_and_body(tmp_path: Path) -> None:
    calls: list[tuple[object, object, str]] = []

    def interpolate(header: PosDict | None, inputs: Mapping[str, object] | None, body: PosDict, file: str) -> PosDict:
        calls.append((header, inputs, file))
        if inputs is not None:
            body["job"]["stage"] = f"stage-{inputs['x']}"
        return body

    files = {
        ".gitlab-ci.yml": "spec: {inputs: {}}\n---\ninclude: [{local: a.yml, inputs: {x: 1}}]\njob: {script: [x]}\n",
        "a.yml": "spec: {inputs: {x: {}}}\n---\njob: {stage: build}\n",
    }
    config = load_config(project(tmp_path, files), interpolate=interpolate)
    assert config.spec == {"inputs": {}}
    assert [(c[0], c[1]) for c in calls] == [
        ({"spec": {"inputs": {}}}, None),
        ({"spec": {"inputs": {"x": {}}}}, {"x": 1}),
    ]
    assert config.jobs["job"] == {"stage": "stage-1", "script": ["x"]}


def test_without_interpolation_the_spec_is_still_returned(tmp_path: Path) -> None:
    config = load(tmp_path, "spec:\n  inputs:\n    env: {default: dev}\n---\njob: {script: [x]}\n")
    assert config.spec == {"inputs": {"env": {"default": "dev"}}}
    assert config.location("job") == Location(str(tmp_path / ".gitlab-ci.yml"), 5, 1)


# --- extends ------------------------------------------------------------------------------------------


def test_extends_merges_variables_key_wise_and_replaces_the_script(tmp_path: Path) -> None:
    job = load(
        tmp_path,
        """
        .base:
          variables: {A: base, B: base}
          script: [base]
          rules: [{when: manual}]
        job:
          extends: .base
          variables: {B: job}
          script: [job]
        """,
    ).jobs["job"]
    assert job["variables"] == {"A": "base", "B": "job"}
    assert job["script"] == ["job"]
    assert job["rules"] == [{"when": "manual"}]


def test_extends_several_parents_later_wins(tmp_path: Path) -> None:
    job = load(
        tmp_path,
        """
        .a: {stage: build, variables: {X: a, Y: a}}
        .b: {stage: deploy, variables: {X: b}}
        job: {extends: [.a, .b], script: [x]}
        """,
    ).jobs["job"]
    assert job["stage"] == "deploy"
    assert job["variables"] == {"X": "b", "Y": "a"}


def test_extended_keys_are_located_where_the_parent_writes_them(tmp_path: Path) -> None:
    config = load(tmp_path, ".base:\n  stage: build\njob:\n  extends: .base\n  script: [x]\n")
    assert config.location("job", "stage").line == 2
    assert config.location("job", "script", 0).line == 5


def test_extends_an_unknown_key(tmp_path: Path) -> None:
    err = load_error(tmp_path, "job:\n  script: [x]\n  extends: [.a, .b]\n.a: {}\n")
    assert err.message == "job: unknown keys in `extends` (.b)"
    assert (err.line, err.column, err.job, err.key) == (3, 3, "job", "extends")


def test_extends_a_key_that_is_not_a_hash(tmp_path: Path) -> None:
    err = load_error(tmp_path, ".a: [x]\njob: {script: [x], extends: .a}\n")
    assert err.message == "job: invalid base hashes in `extends` (.a)"


def test_extends_eleven_levels_are_allowed(tmp_path: Path) -> None:
    chain = "".join(f".l{i}: {{extends: .l{i + 1}}}\n" for i in range(1, 11)) + ".l11: {stage: deep}\n"
    config = load(tmp_path, "job: {script: [x], extends: .l1}\n" + chain)
    assert config.jobs["job"]["stage"] == "deep"


def test_extends_nesting_too_deep(tmp_path: Path) -> None:
    chain = "".join(f".l{i}: {{extends: .l{i + 1}}}\n" for i in range(1, 12)) + ".l12: {stage: deep}\n"
    err = load_error(tmp_path, "job: {script: [x], extends: .l1}\n" + chain)
    assert err.message == ".l11: nesting too deep in `extends`"


def test_extends_nesting_is_counted_from_each_job_even_when_the_chain_was_seen(tmp_path: Path) -> None:
    chain = "".join(f".l{i}: {{extends: .l{i + 1}}}\n" for i in range(2, 12)) + ".l12: {stage: deep}\n"
    err = load_error(
        tmp_path,
        chain
        + "short: {script: [x], extends: .l2}\n"
        + "long: {script: [x], extends: .l0}\n"
        + ".l0: {extends: .l1}\n"
        + ".l1: {extends: .l2}\n",
    )
    assert err.message == ".l10: nesting too deep in `extends`"


def test_extends_circular_dependency(tmp_path: Path) -> None:
    err = load_error(tmp_path, "job: {script: [x], extends: .a}\n.a: {extends: .b}\n.b: {extends: .a}\n")
    assert err.message == ".a: circular dependency detected in `extends`"
    assert err.line == 2


def test_two_jobs_can_extend_the_same_chain(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        .a: {variables: {A: 1}}
        .b: {extends: .a, variables: {B: 2}}
        one: {extends: .b, script: [x]}
        two: {extends: .b, script: [y], variables: {A: 3}}
        """,
    )
    assert config.jobs["one"]["variables"] == {"A": 1, "B": 2}
    assert config.jobs["two"]["variables"] == {"A": 3, "B": 2}


# --- !reference -----------------------------------------------------------------------------------------


def test_reference_to_a_nested_key(tmp_path: Path) -> None:
    config = load(
        tmp_path, ".v: {variables: {A: x}}\njob:\n  script: [x]\n  variables:\n    A: !reference [.v, variables, A]\n"
    )
    assert config.jobs["job"]["variables"] == {"A": "x"}


def test_reference_sees_the_extended_configuration(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        ".a: {script: [from-a]}\n.b: {extends: .a}\njob: {script: !reference [.b, script]}\n",
    )
    assert config.jobs["job"]["script"] == ["from-a"]


def test_reference_to_a_missing_key_is_located(tmp_path: Path) -> None:
    err = load_error(tmp_path, "job:\n  script:\n    - !reference [.nope, script]\n")
    assert err.message == '!reference [".nope", "script"] could not be found'
    assert (err.line, err.column, err.job) == (3, 7, "job")


def test_reference_through_a_list_cannot_be_found(tmp_path: Path) -> None:
    err = load_error(tmp_path, ".a: [x]\njob: {script: !reference [.a, '0']}\n")
    assert err.message == '!reference [".a", "0"] could not be found'


def test_reference_to_false_cannot_be_found_like_gitlab(tmp_path: Path) -> None:
    err = load_error(
        tmp_path, ".a: {interruptible: false}\njob: {script: [x], interruptible: !reference [.a, interruptible]}\n"
    )
    assert err.message == '!reference [".a", "interruptible"] could not be found'


def test_reference_that_is_not_a_list_is_not_valid(tmp_path: Path) -> None:
    err = load_error(tmp_path, "job: {script: !reference .a}\n.a: [x]\n")
    assert err.message == '!reference ".a" is not valid'


def test_reference_circular_through_two_keys(tmp_path: Path) -> None:
    err = load_error(tmp_path, ".a: [!reference [.b]]\n.b: [!reference [.a]]\njob: {script: [x]}\n")
    assert err.message == '!reference [".b"] is part of a circular chain'
    assert err.line == 1


# --- default ----------------------------------------------------------------------------------------------


def test_default_keys_apply_only_where_the_job_has_none(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        default:
          before_script: [default-before]
          retry: 2
          tags: [docker]
        own: {script: [x], before_script: [own-before], tags: []}
        plain: {script: [y]}
        """,
    )
    assert config.jobs["own"]["before_script"] == ["own-before"]
    assert config.jobs["own"]["tags"] == []
    assert config.jobs["own"]["retry"] == 2
    assert config.jobs["plain"]["before_script"] == ["default-before"]
    assert config.location("plain", "retry").line == 3


def test_a_null_job_key_takes_the_default(tmp_path: Path) -> None:
    config = load(tmp_path, "default: {image: alpine}\njob: {script: [x], image: null}\n")
    assert config.jobs["job"]["image"] == "alpine"


def test_default_hashes_are_not_merged_into_the_job(tmp_path: Path) -> None:
    config = load(
        tmp_path, "default: {artifacts: {paths: [a], when: always}}\njob: {script: [x], artifacts: {paths: [b]}}\n"
    )
    assert config.jobs["job"]["artifacts"] == {"paths": ["b"]}


def test_deprecated_top_level_keys_act_as_default(tmp_path: Path) -> None:
    config = load(tmp_path, "image: ruby\nbefore_script: echo hi\njob: {script: [x]}\n")
    assert config.jobs["job"]["image"] == "ruby"
    assert config.jobs["job"]["before_script"] == ["echo hi"]
    assert "image" not in config.raw["job"]


def test_a_key_in_top_level_and_default_is_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "default:\n  image: a\nimage: b\njob: {script: [x]}\n")
    assert str(err) == f"{tmp_path / '.gitlab-ci.yml'}:3:1: image is defined in top-level and `default:` entry"


def test_unknown_default_keys_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "default: {stage: build, when: manual}\njob: {script: [x]}\n")
    assert err.message == "default config contains unknown keys: stage, when"


def test_inherit_default_false_takes_nothing(tmp_path: Path) -> None:
    config = load(tmp_path, "default: {image: a, retry: 1}\njob: {script: [x], inherit: {default: false}}\n")
    assert "image" not in config.jobs["job"] and "retry" not in config.jobs["job"]


def test_inherit_default_list_takes_the_listed_keys(tmp_path: Path) -> None:
    config = load(tmp_path, "default: {image: a, retry: 1}\njob: {script: [x], inherit: {default: [retry]}}\n")
    assert config.jobs["job"]["retry"] == 1 and "image" not in config.jobs["job"]


def test_a_trigger_job_inherits_only_interruptible(tmp_path: Path) -> None:
    config = load(tmp_path, "default: {image: a, interruptible: true}\nbridge: {trigger: group/project}\n")
    assert config.jobs["bridge"] == {"trigger": "group/project", "interruptible": True}


def test_default_scripts_must_be_strings(tmp_path: Path) -> None:
    err = load_error(tmp_path, "default:\n  before_script: [[1]]\njob: {script: [x]}\n")
    assert (
        err.message
        == "default:before_script config should be a string or a nested array of strings up to 10 levels deep"
    )


# --- jobs, stages, workflow -----------------------------------------------------------------------------


def test_hidden_jobs_are_not_jobs(tmp_path: Path) -> None:
    config = load(tmp_path, ".hidden: {script: [x]}\njob: {script: [y]}\n")
    assert list(config.jobs) == ["job"]
    assert ".hidden" in config.raw


def test_a_pipeline_of_hidden_jobs_has_no_visible_job(tmp_path: Path) -> None:
    assert (
        load_error(tmp_path, ".hidden: {script: [x]}\n").message
        == "jobs config should contain at least one visible job"
    )


def test_an_unknown_top_level_key_is_a_job_without_script(tmp_path: Path) -> None:
    err = load_error(tmp_path, "job: {script: [x]}\nmy_settings: 3\n")
    assert err.message == "jobs my settings config should implement the script:, run:, or trigger: keyword"
    assert err.job == "my_settings"


def test_a_blank_hidden_key_is_refused(tmp_path: Path) -> None:
    assert load_error(tmp_path, ".x:\njob: {script: [y]}\n").message == "jobs:.x config can't be blank"


def test_a_job_name_longer_than_255_characters_is_refused(tmp_path: Path) -> None:
    name = "j" * 256
    assert load_error(tmp_path, f"{name}: {{script: [x]}}\n").message == (
        f"jobs:{name} name is too long (maximum is 255 characters)"
    )


def test_a_needs_only_job_is_a_bridge_and_loads(tmp_path: Path) -> None:
    config = load(tmp_path, "a: {script: [x]}\nb: {needs: [a]}\n")
    assert config.jobs["b"] == {"needs": ["a"]}


def test_rules_and_needs_lists_are_flattened(tmp_path: Path) -> None:
    job = load(
        tmp_path, "a: {script: [x]}\nb: {script: [x], needs: [[a]], rules: [[{when: always}], [[{when: never}]]]}\n"
    ).jobs["b"]
    assert job["needs"] == ["a"]
    assert job["rules"] == [{"when": "always"}, {"when": "never"}]


def test_default_stages(tmp_path: Path) -> None:
    assert load(tmp_path, "job: {script: [x]}\n").stages == (".pre", "build", "test", "deploy", ".post")


def test_user_stages_are_wrapped_with_pre_and_post(tmp_path: Path) -> None:
    config = load(tmp_path, "stages: [.post, lint, [build, [test]], .pre]\njob: {script: [x]}\n")
    assert config.stages == (".pre", "lint", "build", "test", ".post")


def test_empty_stages_stay_empty(tmp_path: Path) -> None:
    assert load(tmp_path, "stages: []\njob: {script: [x]}\n").stages == ()


def test_types_are_the_old_name_of_stages(tmp_path: Path) -> None:
    assert load(tmp_path, "types: [one]\njob: {script: [x]}\n").stages == (".pre", "one", ".post")


def test_stages_deeper_than_ten_levels_are_refused(tmp_path: Path) -> None:
    err = load_error(tmp_path, "stages: " + "[" * 11 + "a" + "]" * 11 + "\njob: {script: [x]}\n")
    assert err.message.startswith("stages config should be an array of strings")


def test_workflow_variables_and_spec_are_returned(tmp_path: Path) -> None:
    config = load(tmp_path, "workflow:\n  rules: [[{if: $X}]]\nvariables: {A: 1, B: {value: x}}\njob: {script: [x]}\n")
    assert config.workflow == {"rules": [{"if": "$X"}]}
    assert config.variables == {"A": 1, "B": {"value": "x"}}
    assert config.spec is None
    assert config.location("variables", "B", "value").line == 3


def test_workflow_must_be_a_hash(tmp_path: Path) -> None:
    assert load_error(tmp_path, "workflow: [x]\njob: {script: [x]}\n").message == "workflow config should be a hash"


def test_an_empty_root_file_is_refused_like_gitlab(tmp_path: Path) -> None:
    err = load_error(tmp_path, "\n\n")
    assert err.message == "Please provide content of .gitlab-ci.yml"


def test_location_falls_back_to_the_deepest_existing_key(tmp_path: Path) -> None:
    config = load(tmp_path, "job:\n  script: [x]\n  variables: {A: 1}\n")
    file = str(tmp_path / ".gitlab-ci.yml")
    assert config.location("job") == Location(file, 1, 1)
    assert config.location("job", "variables", "A") == Location(file, 3, 15)
    assert config.location("job", "variables", "MISSING") == Location(file, 3, 3)
    assert config.location("job", "script", 5) == Location(file, 2, 3)
    assert config.location("no-such-job", "script") == Location(file, 1, 1)
    assert str(config.location("job", "script", 0)) == f"{file}:2:12"


def test_the_configuration_survives_pickling_and_copying(tmp_path: Path) -> None:
    config = load(tmp_path, "job:\n  script: [x]\n")
    for clone in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config)):
        assert clone.jobs == config.jobs
        assert clone.location("job", "script", 0) == config.location("job", "script", 0)


def test_loading_never_imports_airflow() -> None:
    code = (
        "import sys; from airflow_ci_vars.pipeline.config import load_config; "
        "sys.exit(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
