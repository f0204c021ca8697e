"""GitLab's configuration limits (``pipeline.limits``): what counts, where a refusal points, what is a parameter."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_ci_vars.errors import PipelineError
from airflow_ci_vars.pipeline.config import load_config
from airflow_ci_vars.pipeline.limits import TOO_BIG, TOTAL_TOO_BIG, ConfigLimits, SizeBudget
from airflow_ci_vars.pipeline.loader import load_pipeline
from airflow_ci_vars.pipeline.model import PipelineInvalidError
from airflow_ci_vars.pipeline.sources import SourceLog
from airflow_ci_vars.pipeline.yaml_loader import load_yaml, new_list, read_text


def write(tmp_path: Path, text: str, name: str = ".gitlab-ci.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error(path: Path, **kwargs: object) -> PipelineError:
    with pytest.raises(PipelineError) as caught:
        load_config(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


def snippets(count: int) -> str:
    """``.snippets``: ``s1`` a command, each next one a ``!reference`` to the previous one and a command.

    A tag to ``s{count}`` is level ``count`` (GitLab's example in ``ci/yaml/yaml_optimization.md``, deeper).
    """
    lines = [".snippets:", "  s1: [echo 1]"]
    lines += [f"  s{i}: [!reference [.snippets, s{i - 1}], echo {i}]" for i in range(2, count + 1)]
    return "\n".join(lines) + "\n"


def test_references_nested_ten_levels_deep_are_resolved(tmp_path: Path) -> None:
    path = write(tmp_path, snippets(10) + ".ten: !reference [.snippets, s10]\njob: {script: x}\n")
    assert load_config(path).raw[".ten"][1] == "echo 10"


def test_references_nested_eleven_levels_deep_are_refused_at_the_outermost_tag(tmp_path: Path) -> None:
    err = error(write(tmp_path, snippets(11) + ".eleven: !reference [.snippets, s11]\njob: {script: x}\n"))
    assert str(err) == (
        f'{tmp_path}/.gitlab-ci.yml:13:10: !reference [".snippets", "s11"] is nested too deep: '
        "at most 10 levels of !reference are allowed"
    )
    assert err.job == ".eleven"


def test_a_script_takes_nine_levels_of_references_as_gitlab_s_commands_do(tmp_path: Path) -> None:
    # Each level adds an array level; a script is at most ten deep (entry/commands.rb).
    path = write(tmp_path, snippets(9) + "job:\n  script: [!reference [.snippets, s9]]\n")
    assert load_config(path).jobs["job"]["script"] == [f"echo {i}" for i in range(1, 10)]
    path = write(tmp_path, snippets(10) + "job:\n  script: [!reference [.snippets, s10]]\n")
    assert error(path).message == (
        "jobs:job:script config should be a string or a nested array of strings up to 10 levels deep"
    )


def test_the_nesting_limit_is_a_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, snippets(3) + "job:\n  script: [!reference [.snippets, s3]]\n")
    err = error(path, limits=ConfigLimits(max_nesting=2))
    assert (
        err.message == '!reference [".snippets", "s3"] is nested too deep: at most 2 levels of !reference are allowed'
    )


def test_a_value_used_many_times_counts_once_per_use_and_is_walked_once() -> None:
    pos = ("f.yml", 1, 1)
    leaf = new_list(pos, ["x"] * 10)  # 1 + 10 x 2 = 21
    node = leaf
    for _ in range(9):  # ten times the one below, ten levels: a billion "x" if it were walked
        node = new_list(pos, [node] * 10)
    budget = SizeBudget()
    assert budget.measure(new_list(pos, [leaf, leaf]), pos) == 43
    with pytest.raises(PipelineError) as caught:
        budget.measure(node, pos, job="job")
    assert caught.value.message == TOTAL_TOO_BIG
    assert caught.value.job == "job"


def test_the_total_counts_default_keys_once_for_every_job_that_takes_them(tmp_path: Path) -> None:
    commands = "".join(f"    - echo {i:04d}\n" for i in range(1000))  # 10,000
    jobs = "".join(f"job{i}: {{script: x}}\n" for i in range(20))
    path = write(tmp_path, f"default:\n  before_script:\n{commands}{jobs}")
    assert len(load_config(path, limits=ConfigLimits(max_total_yaml_size_bytes=300_000)).jobs) == 20
    err = error(path, limits=ConfigLimits(max_total_yaml_size_bytes=150_000))
    assert err.message == TOTAL_TOO_BIG
    assert err.job == "job14"  # 10,025 a job: the 15th job's before_script passes 150,000


def test_the_total_counts_the_text_of_every_include(tmp_path: Path) -> None:
    write(tmp_path, ".a: {script: [" + ", ".join(["echo a"] * 200) + "]}\n", "a.yml")  # 1,620 bytes
    path = write(tmp_path, "include: [a.yml, a.yml, a.yml]\njob: {script: x}\n")
    assert list(load_config(path, limits=ConfigLimits(max_total_yaml_size_bytes=6_000)).jobs) == ["job"]
    err = error(path, limits=ConfigLimits(max_total_yaml_size_bytes=4_000))
    assert (err.message, err.line, err.column, err.key) == (TOTAL_TOO_BIG, 1, 25, "include")  # the third


def test_merge_keys_count_what_they_copy() -> None:
    entries = ", ".join(f"k{i}: v" for i in range(10))  # a: 1 + 10 x 5 = 51
    text = f"a: &a {{{entries}}}\nb: {{<<: *a}}\nc: {{<<: *a}}\nd: {{<<: [*a, *a]}}\n"  # 114 bytes
    with pytest.raises(PipelineError) as caught:
        load_yaml(text, "f.yml", limits=ConfigLimits(max_yaml_size_bytes=200))
    # 54 for a, 57 for b and c each: d's merges pass 200.
    assert (caught.value.message, caught.value.line, caught.value.column) == (TOO_BIG, 4, 4)
    assert list(load_yaml(text, "f.yml").body["d"]) == [f"k{i}" for i in range(10)]


def test_an_alias_counts_its_anchor_s_depth(tmp_path: Path) -> None:
    deep = "[" * 50 + "]" * 50
    assert load_yaml(f"a: &a {deep}\nb: [*a]\n", "f.yml").body["b"]
    with pytest.raises(PipelineError) as caught:
        load_yaml(f"a: &a {deep}\nb: {deep[:50]}*a{deep[50:]}\n", "f.yml")
    assert (caught.value.message, caught.value.line, caught.value.column) == (TOO_BIG, 2, 54)


def test_a_file_is_read_no_further_than_the_size_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "a: b\n" * 1000)  # 5,000 bytes
    assert read_text(path, max_bytes=5_000) == "a: b\n" * 1000
    with pytest.raises(PipelineError) as caught:
        read_text(path, "ci.yml", max_bytes=4_002)
    assert str(caught.value) == f"ci.yml:801:1: {TOO_BIG}"  # 800 lines, then 2 bytes of line 801


def test_a_child_pipeline_shares_the_parent_s_total(tmp_path: Path) -> None:
    write(tmp_path, "child:\n  script: [" + ", ".join(["echo child"] * 500) + "]\n", "child.yml")  # 6,000
    path = write(tmp_path, "".join(f"t{i}: {{trigger: {{include: child.yml}}}}\n" for i in range(5)))
    pipeline = load_pipeline(path)
    assert len(pipeline.children) == 5
    with pytest.raises(PipelineError) as caught:  # each child alone is far below
        load_pipeline(path, limits=ConfigLimits(max_total_yaml_size_bytes=20_000))
    assert caught.value.message == TOTAL_TOO_BIG


def test_an_interpolated_string_over_1_mib_is_refused_before_it_is_built(tmp_path: Path) -> None:
    value = "v" * 100_000
    header = f"spec:\n  inputs:\n    big:\n      default: {value}\n---\n"
    path = write(tmp_path, header + "job:\n  script: echo " + "$[[ inputs.big ]]" * 11 + "\n")
    err = error(path)
    assert (err.message, err.line, err.column, err.key) == ("config node too large", 7, 3, "inputs")


def test_interpolated_strings_count_against_the_total(tmp_path: Path) -> None:
    header = f"spec:\n  inputs:\n    big:\n      default: {'v' * 100_000}\n---\n"
    items = "".join("    - echo " + "$[[ inputs.big ]]" * 9 + "\n" for _ in range(20))  # 900 KB each
    err = error(write(tmp_path, header + "job:\n  script:\n" + items))
    assert (err.message, err.line, err.column, err.key) == (TOTAL_TOO_BIG, 17, 7, "inputs")  # the 10th


def test_the_parse_cache_reads_a_file_grown_past_1_mib_no_further_and_reloads_it(tmp_path: Path) -> None:
    from airflow_ci_vars.pipeline.cache import ParseCache

    path = write(tmp_path, "include: jobs.yml\n")
    jobs = write(tmp_path, "job: {script: x}\n", "jobs.yml")
    cache = ParseCache(tmp_path / "cache")
    cache.load(path)
    log = SourceLog()
    load_pipeline(path, log=log)
    jobs.write_text("job: {script: x}\n" + "# padding\n" * 120_000)  # 1.2 MB
    assert log.changed() == f"{jobs} cannot be read: {TOO_BIG}"
    with pytest.raises(PipelineError) as caught:
        cache.load(path)
    assert str(caught.value) == f"{jobs}:104857:1: `jobs.yml`: {TOO_BIG}"


def test_job_instances_past_the_limit_are_refused_at_the_job_that_passes_it(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(f"job{i}: {{script: x, parallel: 200}}\n" for i in range(60)))
    with pytest.raises(PipelineInvalidError) as caught:
        load_pipeline(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:51:1: The number of jobs has exceeded the limit of 10000 (child pipelines included)"
    ]
    assert len(load_pipeline(path, limits=ConfigLimits(max_jobs=12_000)).jobs) == 12_000


def test_child_pipelines_count_their_jobs_with_the_parent_s(tmp_path: Path) -> None:
    write(tmp_path, "child: {script: x, parallel: 3}\n", "child.yml")
    path = write(
        tmp_path, "build: {script: x}\n" + "".join(f"t{i}: {{trigger: {{include: child.yml}}}}\n" for i in range(3))
    )
    assert len(load_pipeline(path, limits=ConfigLimits(max_jobs=13)).children) == 3  # 4 + 3 x 3
    with pytest.raises(PipelineInvalidError) as caught:
        load_pipeline(path, limits=ConfigLimits(max_jobs=12))
    assert "The number of jobs has exceeded the limit of 12" in str(caught.value)


def test_a_matrix_is_counted_before_its_combinations_are_built(tmp_path: Path) -> None:
    values = "[" + ", ".join(f"v{i}" for i in range(100)) + "]"
    path = write(
        tmp_path,
        f"job:\n  script: x\n  parallel:\n    matrix:\n      - {{A: {values}, B: {values}, C: {values}, D: {values}}}",
    )
    with pytest.raises(PipelineInvalidError) as caught:  # a hundred million combinations
        load_pipeline(path)
    assert [p.message for p in caught.value.problems] == [
        "jobs:job:parallel:matrix config generates too many jobs (maximum is 200)"
    ]


def test_a_needs_matrix_selector_is_counted_before_its_combinations_are_built(tmp_path: Path) -> None:
    values = "[" + ", ".join(f"v{i}" for i in range(100)) + "]"
    selector = f"{{A: {values}, B: {values}, C: {values}, D: {values}}}"
    text = (
        "build: {script: x, parallel: {matrix: [{A: [v1, v2]}]}}\n"
        f"test: {{stage: deploy, script: x, needs: [{{job: build, parallel: {{matrix: [{selector}]}}}}]}}\n"
    )
    with pytest.raises(PipelineInvalidError) as caught:
        load_pipeline(write(tmp_path, text))
    assert [p.message for p in caught.value.problems] == [
        "jobs:test:needs:parallel:matrix config generates too many jobs (maximum is 200)"
    ]


def test_a_parallel_job_counts_once_for_every_instance(tmp_path: Path) -> None:
    script = "".join(f"    - echo {i:05d}\n" for i in range(5000))  # 55,000
    path = write(tmp_path, f"job:\n  parallel: 100\n  script:\n{script}")
    assert len(load_pipeline(path).jobs) == 100  # 5.5 million
    path.write_text(
        f"job:\n  parallel: {{matrix: [{{A: [a, b], B: [c, d, e, f, g, h, i, j, k, l]}}]}}\n  script:\n{script}"
    )
    assert len(load_pipeline(path).jobs) == 20
    path.write_text(f"job:\n  parallel: 200\n  script:\n{script}")  # 11 million
    err = error(path)
    assert (err.message, err.line, err.column, err.job) == (TOTAL_TOO_BIG, 1, 1, "job")


def test_the_extends_nesting_limit_is_the_same_parameter(tmp_path: Path) -> None:
    chain = ".l0: {script: x}\n" + "".join(f".l{i}: {{extends: .l{i - 1}}}\n" for i in range(1, 4))
    path = write(tmp_path, chain + "job: {extends: .l3}\n")
    assert load_config(path).jobs["job"]["script"] == ["x"]
    assert (
        error(path, limits=ConfigLimits(max_nesting=2)).message == ".l1: nesting too deep in `extends`"
    )  # where GitLab's walk finds it
