"""The settings-file store: GitLab's save and update rules, round trip, atomic 0600 writes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ci_vars.errors import MaskabilityError, SettingsError, VariableValidationError
from airflow_ci_vars.permissions import ProjectAccess
from airflow_ci_vars.settings import Settings, load_settings, parse_settings
from airflow_ci_vars.stores import file as file_module
from airflow_ci_vars.stores.base import LayerRef, VariableStore
from airflow_ci_vars.stores.file import FileStore, dump_settings
from airflow_ci_vars.variables import validation as validation_module
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.variables.validation import check_update

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "etl" / "settings.yml"
PROJECT = LayerRef("project", "g/p")
GROUP = LayerRef("group", "g")
INSTANCE = LayerRef("instance")
SECRET = "s3cr3t-Value-42xyz"

BASE = """\
# a comment
project: g/p
default_branch: trunk
protected_refs: [trunk, "release/*"]
instance:
  variables:
    - {key: I, value: instance-value}
groups:
  g:
    variables:
      - {key: G, value: group-value, protected: true}
projects:
  g/p:
    variables:
      - {key: A, value: a}
      - {key: B, value: b, environment_scope: production}
      - {key: HID, value: hidden-value-123, masked: true, hidden: true}
      - {key: MSK, value: masked-value-123, masked: true}
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    file = tmp_path / "settings.yml"
    file.write_text(BASE)
    return file


@pytest.fixture
def store(path: Path) -> FileStore:
    return FileStore(path)


def keys(variables: tuple[Variable, ...]) -> list[tuple[str, str]]:
    return [(v.key, v.environment_scope) for v in variables]


def value_of(store: FileStore, ref: LayerRef, key: str, scope: str = "*") -> Variable:
    found = [v for v in store.list_variables(ref) if (v.key, v.environment_scope) == (key, scope)]
    assert len(found) == 1
    return found[0]


# --- protocol and reading -------------------------------------------------------------------


def test_file_store_is_a_variable_store(store: FileStore) -> None:
    checked: VariableStore = store
    assert checked.load().project == "g/p"


def test_load_returns_the_whole_file(store: FileStore, path: Path) -> None:
    assert store.load() == load_settings(path)
    assert store.load("other/project") == load_settings(path)  # callers pick layers with layers_for


def test_no_path_is_an_empty_store() -> None:
    store = FileStore(None)
    assert store.load() == Settings()
    assert store.list_variables(PROJECT) == ()
    assert store.unset_variable(PROJECT, "A") is False


def test_no_path_cannot_be_written() -> None:
    with pytest.raises(SettingsError, match=r"no settings file is configured \(\[ci_vars\] settings_file\)"):
        FileStore(None).set_variable(PROJECT, Variable("A", "a"))


def test_missing_configured_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(SettingsError) as info:
        FileStore(missing).load()
    assert str(info.value) == f"{missing}: settings file not found"
    with pytest.raises(SettingsError):
        FileStore(missing).list_variables(PROJECT)


def test_unreadable_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read the settings file"):
        FileStore(tmp_path).load()  # a directory


def test_invalid_file_reports_file_and_line(path: Path) -> None:
    path.write_text("projects:\n  g/p:\n    variables:\n      - {key: 'bad key', value: x}\n")
    with pytest.raises(SettingsError) as info:
        FileStore(path).load()
    assert info.value.file == str(path)
    assert info.value.line == 4


def test_list_variables_per_layer(store: FileStore) -> None:
    assert keys(store.list_variables(INSTANCE)) == [("I", "*")]
    assert keys(store.list_variables(GROUP)) == [("G", "*")]
    assert keys(store.list_variables(PROJECT)) == [("A", "*"), ("B", "production"), ("HID", "*"), ("MSK", "*")]
    assert store.list_variables(LayerRef("group", "absent")) == ()
    assert store.list_variables(PROJECT)[0].source == VariableSource(Layer.PROJECT, "g/p")


# --- set: create and replace ----------------------------------------------------------------


def test_set_creates_a_variable_with_its_fields(store: FileStore, path: Path) -> None:
    new = Variable(
        "NEW",
        "multi\nline\n",
        variable_type="file",
        protected=True,
        raw=True,
        environment_scope="review/*",
        description="a file",
    )
    store.set_variable(PROJECT, new)
    got = value_of(store, PROJECT, "NEW", "review/*")
    assert got == Variable(
        "NEW",
        "multi\nline\n",
        variable_type="file",
        protected=True,
        raw=True,
        environment_scope="review/*",
        description="a file",
        source=VariableSource(Layer.PROJECT, "g/p"),
    )
    assert keys(store.list_variables(PROJECT))[-1] == ("NEW", "review/*")


def test_set_replaces_same_key_and_scope_in_place(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("A", "a2", protected=True))
    assert keys(store.list_variables(PROJECT)) == [("A", "*"), ("B", "production"), ("HID", "*"), ("MSK", "*")]
    assert value_of(store, PROJECT, "A").value == "a2"
    assert value_of(store, PROJECT, "A").protected is True


def test_set_with_another_scope_adds_a_variable(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("B", "b-staging", environment_scope="staging"))
    assert ("B", "production") in keys(store.list_variables(PROJECT))
    assert ("B", "staging") in keys(store.list_variables(PROJECT))


def test_set_strips_key_and_scope_like_gitlab(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("  B\t", "b2", environment_scope=" production "))
    assert value_of(store, PROJECT, "B", "production").value == "b2"
    assert len(store.list_variables(PROJECT)) == 4


def test_set_keeps_other_layers_and_settings(store: FileStore, path: Path) -> None:
    before = load_settings(path)
    store.set_variable(GROUP, Variable("G2", "x"))
    after = load_settings(path)
    assert (after.project, after.access().default_branch) == ("g/p", "trunk")
    assert [r.name for r in after.access().ref_rules] == ["trunk", "release/*"]
    assert after.instance == before.instance
    assert after.projects == before.projects
    assert keys(after.groups["g"]) == [("G", "*"), ("G2", "*")]


def test_set_creates_new_group_and_project_layers(store: FileStore) -> None:
    store.set_variable(LayerRef("group", "g/sub"), Variable("S", "s"))
    store.set_variable(LayerRef("project", "g/sub/q"), Variable("Q", "q"))
    settings_ = store.load()
    assert settings_.layers_for("g/sub/q")["groups"][-1][0] == "g/sub"
    assert keys(settings_.projects["g/sub/q"]) == [("Q", "*")]


def test_set_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new.yml"
    store = FileStore(path)
    store.set_variable(INSTANCE, Variable("K", "v"))
    assert keys(store.list_variables(INSTANCE)) == [("K", "*")]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [r.name for r in store.load().access().ref_rules] == ["main"]


def test_set_in_a_missing_directory_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot write the settings file: No such file or directory"):
        FileStore(tmp_path / "no" / "dir.yml").set_variable(INSTANCE, Variable("K", "v"))


# --- set: GitLab's rules --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        (Variable("bad key", "v"), "Validation failed: Key can contain only letters, digits and '_'."),
        (Variable("  ", "v"), "Validation failed: Key can't be blank"),
        (Variable("K", "v", environment_scope="a|b"), "Environment scope can contain only"),
        (Variable("K", "v", variable_type="json"), "Variable type of 'K' is not included"),  # type: ignore[arg-type]
        (Variable("K", SECRET, hidden=True), "Masked of 'K' should be true when variable is hidden"),
        (Variable("K", "x" * 256, description="d" * 256), "Description is too long (maximum is 255 characters)"),
        (Variable("K", "ab\udcffcdefgh"), "Value of 'K' is not valid UTF-8 text"),
    ],
)
def test_set_refuses_invalid_variables(store: FileStore, path: Path, variable: Variable, message: str) -> None:
    before = path.read_bytes()
    with pytest.raises(VariableValidationError) as info:
        store.set_variable(PROJECT, variable)
    assert message in info.value.message
    assert path.read_bytes() == before


def test_set_refuses_unmaskable_masked_values(store: FileStore) -> None:
    with pytest.raises(MaskabilityError):
        store.set_variable(PROJECT, Variable("K", "short", masked=True))
    with pytest.raises(MaskabilityError):
        store.set_variable(PROJECT, Variable("K", "has space 123", masked=True))
    store.set_variable(PROJECT, Variable("K", "raw$value%#^", masked=True, raw=True))  # maskable when raw


def test_instance_value_limit(store: FileStore) -> None:
    with pytest.raises(VariableValidationError, match=r"too long \(maximum is 10000 characters\)"):
        store.set_variable(INSTANCE, Variable("K", "x" * 10_001))
    store.set_variable(PROJECT, Variable("K", "x" * 10_001))


def test_instance_variables_cannot_be_scoped(store: FileStore) -> None:
    with pytest.raises(VariableValidationError, match="instance variables cannot have an environment scope"):
        store.set_variable(INSTANCE, Variable("K", "v", environment_scope="production"))


def test_layer_variable_limit(store: FileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(validation_module.LAYER_LIMITS, Layer.PROJECT, 4)
    store.set_variable(PROJECT, Variable("A", "replacing is fine"))
    with pytest.raises(VariableValidationError, match=r"^Maximum number of project ci variables \(4\) exceeded$"):
        store.set_variable(PROJECT, Variable("NEW", "v"))


def test_hidden_cannot_change_on_update(store: FileStore) -> None:
    with pytest.raises(VariableValidationError) as info:
        store.set_variable(PROJECT, Variable("HID", "new-value-12345", masked=True))
    assert info.value.message == "Updating hidden attribute is not allowed on updates."
    with pytest.raises(VariableValidationError) as info:
        store.set_variable(PROJECT, Variable("MSK", "masked-value-123", masked=True, hidden=True))
    assert info.value.message == "Updating hidden attribute is not allowed on updates."


def test_masked_of_a_hidden_variable_cannot_change(store: FileStore) -> None:
    with pytest.raises(VariableValidationError) as info:
        store.set_variable(PROJECT, Variable("HID", "new-value-12345", hidden=True))
    # On update GitLab reports the update rule, not the create-only "should be true when hidden".
    assert info.value.message == "Updating masked attribute is not allowed on updates for hidden variables."


def test_hidden_variable_value_can_be_updated(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("HID", "new-value-12345", masked=True, hidden=True, protected=True))
    got = value_of(store, PROJECT, "HID")
    assert (got.value, got.masked, got.hidden, got.protected) == ("new-value-12345", True, True, True)


def test_masked_of_a_visible_variable_can_change(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("MSK", "now visible"))
    assert value_of(store, PROJECT, "MSK").masked is False


def test_another_scope_is_a_create_not_an_update(store: FileStore) -> None:
    store.set_variable(PROJECT, Variable("HID", "plain", environment_scope="staging"))
    assert value_of(store, PROJECT, "HID", "staging").hidden is False
    assert value_of(store, PROJECT, "HID").hidden is True


def test_check_update_rules() -> None:
    hidden = Variable("K", SECRET, masked=True, hidden=True)
    visible = Variable("K", SECRET, masked=True)
    check_update(hidden, hidden)
    check_update(visible, Variable("K", SECRET))
    with pytest.raises(VariableValidationError, match="hidden attribute"):
        check_update(visible, hidden)
    with pytest.raises(VariableValidationError, match="masked attribute"):
        check_update(hidden, Variable("K", SECRET, hidden=True))


def test_errors_never_contain_the_value(store: FileStore) -> None:
    attempts = [
        Variable("K", SECRET + " with space", masked=True),
        Variable("HID", SECRET, masked=True),
        Variable("HID", SECRET, hidden=True),
        Variable("K", SECRET, hidden=True),
        Variable("bad key", SECRET, masked=True),
    ]
    for variable in attempts:
        with pytest.raises(VariableValidationError) as info:
            store.set_variable(PROJECT, variable)
        assert SECRET not in str(info.value)
        assert SECRET not in repr(info.value)


def test_set_on_an_invalid_file_changes_nothing(path: Path) -> None:
    path.write_text("projects: [oops]\n")
    with pytest.raises(SettingsError):
        FileStore(path).set_variable(PROJECT, Variable("A", "a"))
    assert path.read_text() == "projects: [oops]\n"


# --- unset ----------------------------------------------------------------------------------


def test_unset_removes_one_variable(store: FileStore) -> None:
    assert store.unset_variable(PROJECT, "B", "production") is True
    assert keys(store.list_variables(PROJECT)) == [("A", "*"), ("HID", "*"), ("MSK", "*")]


def test_unset_needs_the_scope(store: FileStore, path: Path) -> None:
    before = path.read_bytes()
    assert store.unset_variable(PROJECT, "B") is False
    assert store.unset_variable(PROJECT, "NOPE") is False
    assert store.unset_variable(LayerRef("group", "absent"), "G") is False
    assert path.read_bytes() == before  # nothing removed: nothing written


def test_unset_missing_file_is_false(tmp_path: Path) -> None:
    assert FileStore(tmp_path / "nope.yml").unset_variable(PROJECT, "A") is False
    assert not (tmp_path / "nope.yml").exists()


def test_unset_last_variable_drops_the_layer(store: FileStore) -> None:
    assert store.unset_variable(GROUP, "G") is True
    assert "g" not in store.load().groups
    assert store.unset_variable(INSTANCE, " I ") is True
    assert store.load().instance == ()


# --- round trip and file format ------------------------------------------------------------


def test_example_file_round_trips() -> None:
    original = load_settings(EXAMPLE)
    assert parse_settings(dump_settings(original), file=str(EXAMPLE)) == original


def test_rewritten_file_loads_back_to_the_same_settings(store: FileStore, path: Path) -> None:
    before = load_settings(path)
    store.set_variable(PROJECT, Variable("A", "a"))  # same variable: only the format changes
    assert load_settings(path) == before


def test_rewrite_loses_comments_and_says_so(store: FileStore, path: Path) -> None:
    store.set_variable(PROJECT, Variable("A", "a"))
    text = path.read_text()
    assert "# a comment" not in text
    assert text.startswith("# Written by airflow-ci-vars: comments in this file are not kept")
    assert "comments" in (file_module.__doc__ or "")


def test_only_non_default_fields_are_written() -> None:
    text = dump_settings(
        Settings(
            projects={"g/p": (Variable("A", "a", source=VariableSource(Layer.PROJECT, "g/p")),)},
        )
    )
    body = text.split("\n", 1)[1]
    assert body == "projects:\n  g/p:\n    variables:\n      - key: A\n        value: a\n"


def test_top_level_defaults_are_left_out_but_differences_kept() -> None:
    assert dump_settings(Settings()).split("\n", 1)[1] == ""
    empty_refs = Settings(access_defaults=ProjectAccess(protected_refs=()))
    assert "protected_refs: []" in dump_settings(empty_refs)
    assert parse_settings(dump_settings(empty_refs), file="f") == Settings(
        access_defaults=ProjectAccess(protected_refs=()), file="f"
    )


TRICKY = [
    "",
    "true",
    "012345",
    "1.5",
    "null",
    "~",
    "- item",
    "a: b",
    "# not a comment",
    "  leading and trailing  ",
    "line1\nline2",
    "ends with newline\n",
    "two newlines\n\n",
    "\n starts with newline",
    "tab\there",
    "crlf\r\nline",
    "nel\x85here",
    "ls\u2028ps\u2029",
    "bell\x07",
    "caf\u00e9 \U0001f600",
    "'quotes' \"and\" \\backslash",
    "{flow: map}",
    "[flow, seq]",
    "*alias &anchor !tag",
    "%directive",
    "---",
]


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_values_round_trip_through_the_store(tmp_path: Path, value: str) -> None:
    store = FileStore(tmp_path / "s.yml")
    store.set_variable(GROUP, Variable("K", value, description=value or None))
    got = value_of(store, GROUP, "K")
    assert (got.value, got.description) == (value, value or None)


_chars = st.characters(codec="utf-8")  # any text YAML can hold: no lone surrogates


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(alphabet=_chars),
    description=st.none() | st.text(alphabet=_chars, max_size=255),
    scope=st.sampled_from(["*", "production", "review/*", "a b"]),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    path=st.sampled_from(["g", "0123", "a.b/c-d_e", "true"]),
)
def test_dump_settings_round_trips(
    value: str, description: str | None, scope: str, flags: tuple[bool, bool, bool], path: str
) -> None:
    protected, raw, file = flags
    variable = Variable(
        "K",
        value,
        variable_type="file" if file else "env_var",
        protected=protected,
        raw=raw,
        environment_scope=scope,
        description=description,
        source=VariableSource(Layer.GROUP, path),
    )
    original = Settings(project=f"{path}/p", groups={path: (variable,)}, file="f")
    assert parse_settings(dump_settings(original), file="f") == original


# --- atomic write ---------------------------------------------------------------------------


def test_written_file_is_0600(store: FileStore, path: Path) -> None:
    path.chmod(0o644)
    store.set_variable(PROJECT, Variable("A", "a2"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_replaces_the_file_and_leaves_no_temporary(store: FileStore, path: Path) -> None:
    inode = path.stat().st_ino
    store.set_variable(PROJECT, Variable("A", "a2"))
    assert path.stat().st_ino != inode  # a new file renamed over the old one
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.yml"]


def test_failed_replace_keeps_the_old_file(store: FileStore, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(SettingsError, match="cannot write the settings file: No space left on device"):
        store.set_variable(PROJECT, Variable("A", "a2"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.yml"]


def test_write_goes_through_a_symlink(path: Path) -> None:
    link = path.parent / "link.yml"
    link.symlink_to(path)
    FileStore(link).set_variable(PROJECT, Variable("A", "via-link"))
    assert link.is_symlink()
    assert value_of(FileStore(path), PROJECT, "A").value == "via-link"
