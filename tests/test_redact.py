"""Secret redaction: objects, annotations, sensitive keys, free text."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gitops.errors import ConfigError
from gitops.redact import Redactor

SALT = b"test-salt"
PASSWORD = "hunter2-correct-horse"
TOKEN = "tok-9f8e7d6c5b4a"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(**data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "ml"},
            "data": {k: b64(v) for k, v in data.items()}}


def test_secret_data_and_string_data_values_are_replaced_by_salted_hashes() -> None:
    r = Redactor(salt=SALT)
    obj = secret(password=PASSWORD)
    obj["stringData"] = {"token": TOKEN, "same": PASSWORD}
    out = r.redact(obj)
    text = json.dumps(out)
    assert PASSWORD not in text and b64(PASSWORD) not in text and TOKEN not in text
    assert out["data"]["password"].startswith("<redacted sha256:")
    # A data value (base64) and an equal stringData value show the same hash.
    assert out["data"]["password"] == out["stringData"]["same"]
    assert out["stringData"]["token"] != out["stringData"]["same"]
    # The input is not modified.
    assert obj["stringData"]["token"] == TOKEN


def test_hashes_are_stable_within_a_run_and_differ_between_salts() -> None:
    r1, r2 = Redactor(salt=b"one"), Redactor(salt=b"two")
    assert r1.mark(PASSWORD) == r1.mark(PASSWORD)
    assert r1.mark(PASSWORD) != r1.mark(PASSWORD + "x")
    assert r1.mark(PASSWORD) != r2.mark(PASSWORD)
    # Without a salt each run draws a random one.
    assert Redactor().mark(PASSWORD) != Redactor().mark(PASSWORD)


def test_salt_comes_from_the_environment_when_set() -> None:
    env = {"STACKCTL_REDACT_SALT": "ci-secret"}
    a, b = Redactor.from_config(environ=env), Redactor.from_config(environ=env)
    assert a.mark(PASSWORD) == b.mark(PASSWORD)


def test_configmap_values_of_sensitive_keys_are_redacted_and_others_kept() -> None:
    r = Redactor(salt=SALT)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"},
          "data": {"DB_PASSWORD": PASSWORD, "api_key": TOKEN, "apiKey": TOKEN,
                   "log_level": "debug", "app.conf": f"host = db\npassword: {PASSWORD}\n"}}
    out = r.redact(cm)
    assert out["data"]["log_level"] == "debug"
    assert out["data"]["DB_PASSWORD"].startswith("<redacted sha256:")
    assert out["data"]["api_key"] == out["data"]["apiKey"] == r.mark(TOKEN)
    # A config file in a ConfigMap keeps its lines but not its `password: value`.
    assert out["data"]["app.conf"].startswith("host = db\npassword: <redacted sha256:")
    assert PASSWORD not in json.dumps(out)


def test_container_env_values_of_sensitive_names_are_redacted() -> None:
    r = Redactor(salt=SALT)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {
               "initContainers": [{"name": "init", "image": "i",
                                   "env": [{"name": "GITHUB_TOKEN", "value": TOKEN}]}],
               "containers": [{"name": "web", "image": "w", "env": [
                   {"name": "MYSQL_ROOT_PASSWORD", "value": PASSWORD},
                   {"name": "LOG_LEVEL", "value": "info"},
                   {"name": "AUTH_SECRET", "valueFrom": {"secretKeyRef": {"name": "s",
                                                                           "key": "k"}}},
               ]}]}}}}
    out = r.redact(dep)
    env = out["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == r.mark(PASSWORD)
    assert env[1]["value"] == "info"
    assert env[2]["valueFrom"]["secretKeyRef"]["key"] == "k"
    assert TOKEN not in json.dumps(out)


def test_last_applied_annotations_are_redacted_and_their_secret_values_learned() -> None:
    r = Redactor(salt=SALT)
    inner = secret(password=PASSWORD)
    obj = secret(password=PASSWORD)
    obj["metadata"]["annotations"] = {  # type: ignore[index]
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(inner),
        "example.com/last-applied-configuration": json.dumps(inner),
        "team": "ml",
    }
    out = r.redact(obj)
    ann = out["metadata"]["annotations"]
    assert ann["kubectl.kubernetes.io/last-applied-configuration"].startswith("<redacted")
    assert ann["example.com/last-applied-configuration"].startswith("<redacted")
    assert ann["team"] == "ml"
    assert PASSWORD not in json.dumps(out) and b64(PASSWORD) not in json.dumps(out)
    assert PASSWORD in r.known_values


def test_secret_values_echoed_in_error_text_are_scrubbed() -> None:
    # An API server rejecting a Secret quotes the value (argo-cd#16193).
    r = Redactor(salt=SALT)
    r.learn([secret(password=PASSWORD, token=TOKEN)])
    message = (f'Secret "db" is invalid: data[password]: Invalid value: "{b64(PASSWORD)}": '
               f'a valid config key must ...; stringData was {{"password":"{PASSWORD}"}} '
               f"and the token {TOKEN}")
    out = r.text(message)
    assert PASSWORD not in out and b64(PASSWORD) not in out and TOKEN not in out
    assert r.mark(PASSWORD) in out or r.mark(b64(PASSWORD)) in out
    assert out.startswith('Secret "db" is invalid: data[password]: Invalid value: "<redacted')


def test_values_quoted_with_json_escapes_are_scrubbed_too() -> None:
    r = Redactor(salt=SALT)
    value = 'pa"ss\nword-1234'
    r.add_known(value)
    assert "word-1234" not in r.text(json.dumps({"v": value}))


def test_sensitive_pairs_in_free_text_are_redacted_without_known_values() -> None:
    r = Redactor(salt=SALT)
    out = r.text("connecting with password=s3cr3t-value and user=admin, api_key: abc123")
    assert "s3cr3t-value" not in out and "abc123" not in out
    assert "user=admin" in out


def test_short_known_values_are_not_scrubbed_from_text() -> None:
    r = Redactor(salt=SALT)
    r.learn([secret(flag="1")])
    assert r.text("replicas: 1", pairs=False) == "replicas: 1"


def test_sensitive_keys_are_configurable_in_stack_yaml_and_the_environment(
        tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        "name: mlstack\nsource: ./up\nredact:\n  sensitiveKeys: ['dsn$']\n")
    r = Redactor.from_config(tmp_path, environ={"STACKCTL_REDACT_KEYS": "conn_?string"})
    for key in ("DATABASE_DSN", "connString", "password"):
        assert r.is_sensitive(key), key
    assert not r.is_sensitive("log_level")
    (tmp_path / "stack.yaml").write_text(
        "name: mlstack\nsource: ./up\nredact:\n  sensitiveKeys: [dsn]\n"
        "  replaceDefaults: true\n")
    r = Redactor.from_config(tmp_path, environ={})
    assert r.is_sensitive("dsn") and not r.is_sensitive("password")


def test_an_invalid_sensitive_key_pattern_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STACKCTL_REDACT_KEYS"):
        Redactor.from_config(environ={"STACKCTL_REDACT_KEYS": "pass(word"})


def test_secrets_inside_a_list_object_are_redacted() -> None:
    r = Redactor(salt=SALT)
    out = r.redact({"apiVersion": "v1", "kind": "List", "items": [secret(password=PASSWORD)]})
    assert b64(PASSWORD) not in json.dumps(out)


def test_a_secret_value_that_is_also_a_name_part_is_left_in_free_text() -> None:
    # The example stack's database user is 'mlstack', the namespace 'mlstack-dev': scrubbing
    # it from messages would garble every name and hide nothing the names do not show.
    r = Redactor(salt=SALT)
    db = secret(user="mlstack", password=PASSWORD)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "dashboard", "namespace": "mlstack-dev"}}
    r.learn([db, deployment])
    msg = f"Deployment mlstack-dev/dashboard rejected: password {PASSWORD}"
    out = r.text(msg)
    assert "Deployment mlstack-dev/dashboard rejected" in out
    assert PASSWORD not in out
    # Structured redaction still hides the value.
    assert "mlstack" not in json.dumps(r.redact(db)["data"])


def test_learning_does_not_modify_the_objects() -> None:
    r = Redactor(salt=SALT)
    obj = secret(password=PASSWORD)
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(secret(token=TOKEN))}
    before = json.dumps(obj, sort_keys=True)
    r.learn([obj])
    assert json.dumps(obj, sort_keys=True) == before
    assert TOKEN not in r.text(f"token {TOKEN}") and PASSWORD not in r.text(PASSWORD)
