"""GitLab's ``secrets:`` keyword (Vault KV v2): both forms, defaults, errors, one read per path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping

import pytest

from airflow_ci_vars.errors import CIVarsError, VaultError
from airflow_ci_vars.variables.model import Layer, Variable, VariableSource
from airflow_ci_vars.vault_secrets import (
    DEFAULT_MOUNT,
    SecretsError,
    SecretSpec,
    parse_secrets,
    resolve_secrets,
)

SECRET = "pa55-w0rd-Zq81x"


def error_of(secrets: Mapping[str, object], job: str = "deploy") -> SecretsError:
    with pytest.raises(SecretsError) as info:
        parse_secrets(secrets, job=job)
    return info.value


# --- parsing: short form --------------------------------------------------------------------


def test_short_form_with_mount() -> None:
    (spec,) = parse_secrets({"DATABASE_PASSWORD": {"vault": "production/db/password@ops"}})
    assert spec == SecretSpec("DATABASE_PASSWORD", mount="ops", path="production/db", field="password")
    assert (spec.engine, spec.file, spec.token_variable) == ("kv-v2", True, None)
    assert spec.location == "production/db/password@ops"


def test_short_form_default_mount_is_kv_v2() -> None:
    (spec,) = parse_secrets({"P": {"vault": "production/db/password"}})
    assert (spec.mount, spec.path, spec.field) == (DEFAULT_MOUNT, "production/db", "password")
    assert DEFAULT_MOUNT == "kv-v2"


def test_short_form_splits_on_the_last_at_and_slash() -> None:
    (spec,) = parse_secrets({"P": {"vault": "team@x/db/pass@secret/nested"}})
    assert (spec.mount, spec.path, spec.field) == ("secret/nested", "team@x/db", "pass")


def test_short_form_one_segment_path() -> None:
    (spec,) = parse_secrets({"P": {"vault": "db/password@ops"}})
    assert (spec.mount, spec.path, spec.field) == ("ops", "db", "password")


# --- parsing: long form, file, token --------------------------------------------------------


def test_long_form() -> None:
    (spec,) = parse_secrets(
        {
            "DATABASE_PASSWORD": {
                "vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": "production/db", "field": "password"}
            }
        }
    )
    assert spec == SecretSpec("DATABASE_PASSWORD", "ops", "production/db", "password")


def test_long_form_strips_surrounding_slashes() -> None:
    (spec,) = parse_secrets(
        {"P": {"vault": {"engine": {"name": "kv-v2", "path": "/ops/"}, "path": "/prod/db/", "field": "pw"}}}
    )
    assert (spec.mount, spec.path, spec.field) == ("ops", "prod/db", "pw")


def test_file_false_and_token() -> None:
    specs = parse_secrets(
        {
            "A": {"vault": "p/a@m", "file": False, "token": "$VAULT_ID_TOKEN"},
            "B": {"vault": "p/b@m", "file": True, "token": "${OTHER_TOKEN}"},
            "C": {"vault": "p/c@m"},
        }
    )
    assert [(s.name, s.file, s.token_variable) for s in specs] == [
        ("A", False, "VAULT_ID_TOKEN"),
        ("B", True, "OTHER_TOKEN"),
        ("C", True, None),
    ]


def test_empty_secrets() -> None:
    assert parse_secrets({}) == ()


# --- parsing: errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"vault": "p/f@m", "extra": 1}, "jobs:deploy:secrets:S config contains unknown keys: extra"),
        ({"file": False}, "jobs:deploy:secrets:S config missing required keys: vault"),
        ("p/f@m", "jobs:deploy:secrets:S config should be a hash, not a string"),
        ({"vault": 3}, "jobs:deploy:secrets:S:vault config should be a hash or a string, not a number"),
        ({"vault": ""}, "jobs:deploy:secrets:S:vault can't be blank"),
        ({"vault": "prod/db/@ops"}, "jobs:deploy:secrets:S:vault field can't be blank"),
        ({"vault": "password@ops"}, "jobs:deploy:secrets:S:vault path can't be blank"),
        ({"vault": "prod/db/pw@"}, "jobs:deploy:secrets:S:vault engine path after '@' can't be blank"),
        ({"vault": "p/f@m", "file": "yes"}, "jobs:deploy:secrets:S:file config should be a boolean value"),
        ({"vault": "p/f@m", "token": 5}, "jobs:deploy:secrets:S:token should be a string, not a number"),
        ({"vault": "p/f@m", "token": "literal-jwt"}, "must reference an id_tokens variable, such as $VAULT_ID_TOKEN"),
        (
            {"vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": "prod/db"}},
            "jobs:deploy:secrets:S:vault config missing required keys: field",
        ),
        (
            {"vault": {"path": "prod/db", "field": "pw"}},
            "jobs:deploy:secrets:S:vault config missing required keys: engine",
        ),
        (
            {"vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": "p", "field": "f", "x": 1}},
            "jobs:deploy:secrets:S:vault config contains unknown keys: x (allowed: engine, path, field)",
        ),
        (
            {"vault": {"engine": {"name": "kv-v2"}, "path": "p", "field": "f"}},
            "jobs:deploy:secrets:S:vault:engine config missing required keys: path",
        ),
        (
            {"vault": {"engine": "ops", "path": "p", "field": "f"}},
            "jobs:deploy:secrets:S:vault:engine config should be a hash, not a string",
        ),
        (
            {"vault": {"engine": {"name": "kv-v1", "path": "ops"}, "path": "p", "field": "f"}},
            "jobs:deploy:secrets:S:vault:engine name 'kv-v1' is not supported (supported engines: kv-v2)",
        ),
        (
            {"vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": "p", "field": ""}},
            "jobs:deploy:secrets:S:vault field can't be blank",
        ),
        (
            {"vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": ["p"], "field": "f"}},
            "jobs:deploy:secrets:S:vault path should be a string, not an array",
        ),
        (
            {"azure_key_vault": {"name": "x"}},
            "jobs:deploy:secrets:S uses azure_key_vault, which is not supported: only vault (KV v2) secrets are",
        ),
    ],
)
def test_invalid_secrets_are_refused_naming_job_and_secret(config: object, message: str) -> None:
    error = error_of({"S": config})
    assert message in error.message
    assert (error.job, error.name) == ("deploy", "S")
    assert isinstance(error, CIVarsError)


def test_invalid_secret_name() -> None:
    error = error_of({"BAD-NAME": {"vault": "p/f@m"}})
    assert error.message.startswith("jobs:deploy:secrets:BAD-NAME is not a valid variable name: ")


def test_secrets_must_be_a_mapping() -> None:
    assert error_of(["A"]).message == "jobs:deploy:secrets config should be a hash, not an array"  # type: ignore[arg-type]


def test_every_problem_is_reported() -> None:
    error = error_of({"A": {"vault": "p/f@m", "x": 1}, "OK": {"vault": "p/f@m"}, "B": {"vault": 1}})
    assert len(error.problems) == 2
    assert error.problems[0].startswith("jobs:deploy:secrets:A ")
    assert error.problems[1].startswith("jobs:deploy:secrets:B:vault ")
    assert error.message == "\n".join(error.problems)


def test_without_job_name_the_location_starts_at_secrets() -> None:
    error = error_of({"S": {"vault": ""}}, job="")
    assert error.message == "secrets:S:vault can't be blank"
    assert error.job is None


# --- resolution -----------------------------------------------------------------------------


class FakeVault:
    """A plain reader function with a call log (the pure core's input)."""

    def __init__(self, data: dict[tuple[str, str], dict[str, object]]) -> None:
        self.data = data
        self.calls: list[tuple[str, str]] = []

    def __call__(self, mount: str, path: str) -> Mapping[str, object]:
        self.calls.append((mount, path))
        return self.data[(mount, path)]


def test_resolve_reads_each_path_once() -> None:
    vault = FakeVault(
        {
            ("ops", "production/db"): {"user": "etl", "password": SECRET},
            ("kv-v2", "shared/api"): {"token": "tok-123456789"},
            ("other", "production/db"): {"password": "other-pw-123"},
        }
    )
    specs = parse_secrets(
        {
            "DB_USER": {"vault": "production/db/user@ops", "file": False},
            "DB_PASSWORD": {"vault": "production/db/password@ops"},
            "API_TOKEN": {"vault": "shared/api/token"},
            "DB_PASSWORD_AGAIN": {
                "vault": {"engine": {"name": "kv-v2", "path": "ops"}, "path": "production/db", "field": "password"}
            },
            "OTHER": {"vault": "production/db/password@other"},
        }
    )
    resolved = resolve_secrets(specs, vault)
    assert sorted(vault.calls) == [("kv-v2", "shared/api"), ("ops", "production/db"), ("other", "production/db")]
    assert [v.key for v in resolved] == ["DB_USER", "DB_PASSWORD", "API_TOKEN", "DB_PASSWORD_AGAIN", "OTHER"]
    assert resolved[0] == Variable(
        "DB_USER",
        "etl",
        masked=True,
        raw=True,
        source=VariableSource(Layer.SECRETS, "vault:production/db/user@ops"),
    )
    assert resolved[1] == Variable(
        "DB_PASSWORD",
        SECRET,
        variable_type="file",
        masked=True,
        raw=True,
        source=VariableSource(Layer.SECRETS, "vault:production/db/password@ops"),
    )
    assert all(v.masked and v.raw for v in resolved)
    assert str(resolved[2].source) == "secrets vault:shared/api/token@kv-v2"


def test_resolve_nothing_reads_nothing() -> None:
    vault = FakeVault({})
    assert resolve_secrets((), vault) == []
    assert vault.calls == []


def test_non_string_values_are_json_encoded() -> None:
    def read(mount: str, path: str) -> Mapping[str, object]:
        return {"n": 5, "b": True, "none": None, "obj": {"a": [1, "é"]}, "f": 1.5}

    specs = [SecretSpec(name, "m", "p", name) for name in ("n", "b", "none", "obj", "f")]
    assert [v.value for v in resolve_secrets(specs, read)] == ["5", "true", "null", '{"a":[1,"é"]}', "1.5"]


def test_missing_field_names_mount_path_field_and_never_a_value() -> None:
    vault = FakeVault({("ops", "production/db"): {"password": SECRET, "user": "etl-user-name"}})
    specs = parse_secrets({"DB_PASS": {"vault": "production/db/pasword@ops"}})
    with pytest.raises(VaultError) as info:
        resolve_secrets(specs, vault, job="deploy")
    error = info.value
    assert str(error) == (
        "vault ops/production/db (field pasword): field not found in the secret (jobs:deploy:secrets:DB_PASS)"
    )
    assert (error.mount, error.path, error.field) == ("ops", "production/db", "pasword")
    assert SECRET not in str(error) and "etl-user-name" not in str(error)
    assert SECRET not in repr(error)


def test_unencodable_value_is_an_error_without_the_value() -> None:
    def read(mount: str, path: str) -> Mapping[str, object]:
        return {"f": {1, 2}}

    with pytest.raises(VaultError, match=r"^vault m/p \(field f\): the field holds set, which cannot be turned"):
        resolve_secrets([SecretSpec("S", "m", "p", "f")], read)


def test_reader_errors_propagate() -> None:
    def read(mount: str, path: str) -> Mapping[str, object]:
        raise VaultError("secret not found", mount=mount, path=path)

    with pytest.raises(VaultError, match=r"^vault m/p: secret not found$"):
        resolve_secrets([SecretSpec("S", "m", "p", "f")], read)


def test_resolved_repr_hides_the_value() -> None:
    (variable,) = resolve_secrets([SecretSpec("S", "m", "p", "f")], lambda m, p: {"f": SECRET})
    assert SECRET not in repr(variable)


def test_module_is_pure() -> None:
    code = (
        "import sys, airflow_ci_vars.vault_secrets, airflow_ci_vars.stores.file; "
        "sys.exit(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
