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


# --- What free text loses, and what it keeps (docs/secrets.md) -----------------------------

def kubeflow_like_secrets() -> list[dict[str, object]]:
    """The weak demo values that mangled the v1.9 plan: `/dex` (SKIP_AUTH_URLS, a key that
    matches 'auth'), `root`, `test`, and one real-looking secret."""
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "oidc", "namespace": "auth"},
          "data": {"SKIP_AUTH_URLS": "/dex", "AUTH_USER": "root"}}
    return [cm, secret(user="test", password=PASSWORD, cookie="pUBnBOY80SnXgjibTYM9ZWNzY2")]


def test_weak_values_are_not_scrubbed_from_inside_words_kinds_or_names() -> None:
    r = Redactor(salt=SALT)
    r.learn(kubeflow_like_secrets())
    for text in ("run as a non-root user", "the greatest sum of weights",
                 "Service/dex -n auth", "kubectl get svc/dex", "rootless testing"):
        assert r.text(text, pairs=False) == text
        assert r.text(text) == text  # as a message too: no whole token to scrub
    # A plan's values are not messages: a weak value standing alone stays.
    assert r.text("a test of root access", pairs=False) == "a test of root access"


def test_secret_like_values_are_scrubbed_where_they_stand_as_whole_tokens() -> None:
    r = Redactor(salt=SALT)
    r.learn(kubeflow_like_secrets())
    mark = r.mark(PASSWORD)
    assert r.text(f"login with {PASSWORD}.", pairs=False) == f"login with {mark}."
    assert r.text(f"postgres://app:{PASSWORD}@db:5432", pairs=False) == (
        f"postgres://app:{mark}@db:5432")
    assert r.text(f'"{PASSWORD}"', pairs=False) == f'"{mark}"'
    # Glued to a longer token it is not the value: a name is never cut.
    assert r.text(f"pod-{PASSWORD}-x", pairs=False) == f"pod-{PASSWORD}-x"
    assert r.text(f"{PASSWORD}.example.org", pairs=False) == f"{PASSWORD}.example.org"


def test_weak_values_are_scrubbed_from_messages_as_whole_tokens() -> None:
    # An API server quotes a rejected value, with or without quotes (argo-cd#16193).
    r = Redactor(salt=SALT)
    r.learn([*kubeflow_like_secrets(), secret(pin="918273645")])
    msg = ('admission denied: env AUTH_USER has value "root"; a non-root user is needed; '
           "expected string, got &value.valueUnstructured{Value:918273645}")
    out = r.text(msg, pairs="=")
    assert out == ('admission denied: env AUTH_USER has value "' + r.mark("root")
                   + '"; a non-root user is needed; expected string, got '
                   "&value.valueUnstructured{Value:" + r.mark("918273645") + "}")
    # A plan's field value is not a message: a word stays.
    assert r.text('"root"', pairs=False) == '"root"'
    # Marks already in a text are never touched, even by a value that reads like part of one.
    r.add_known("redacted")
    assert r.text(f"x {r.mark('root')} y") == f"x {r.mark('root')} y"


def test_a_secret_value_equal_to_a_kind_is_never_scrubbed() -> None:
    r = Redactor(salt=SALT)
    crb = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": "admin-binding"}}
    r.learn([secret(value="ClusterRoleBinding"), crb])
    assert r.text("ClusterRoleBinding/admin-binding created") == (
        "ClusterRoleBinding/admin-binding created")


@pytest.mark.parametrize(("value", "like"), [
    ("root", False), ("test", False), ("/dex", False), ("minio123", False),
    ("password", False), ("12341234", False), ("hunter2-correct-horse", True),
    ("tok-9f8e7d6c5b", True), ("S3cr3t!x", True), ("a3f9c2e71b04d5e6", True),
    ("correct horse battery staple", True), ("bWluaW8xMjM=", True)])
def test_secret_like_tells_secrets_from_words(value: str, like: bool) -> None:
    from gitops.scrub import secret_like

    assert secret_like(value) is like


def test_an_env_value_equal_to_a_secret_value_is_redacted_whatever_its_name() -> None:
    r = Redactor(salt=SALT)
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "w", "env": [
               {"name": "DB_URL_PART", "value": "test"},
               {"name": "MODE", "value": "production"}]}]}}}}
    r.learn([secret(user="test")])
    out = r.redact(dep)
    env = out["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == r.mark("test")
    assert env[1]["value"] == "production"


def test_decrypted_values_are_redacted_in_any_field_but_the_objects_identity() -> None:
    r = Redactor(salt=SALT)
    r.learn_decrypted(["s3cr3t-from-sops", "db-1", "ab"])
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
              "name": "db", "namespace": "db", "labels": {"team": "s3cr3t-from-sops"}},
          "data": {"url": "s3cr3t-from-sops", "host": "db-1", "other": "x s3cr3t-from-sops",
                   "short": "ab"}}
    out = r.redact(cm)
    assert out["metadata"]["name"] == "db" and out["metadata"]["namespace"] == "db"
    assert out["data"]["url"] == r.mark("s3cr3t-from-sops")
    assert out["metadata"]["labels"]["team"] == r.mark("s3cr3t-from-sops")
    assert out["data"]["host"] == r.mark("db-1")  # a whole field is hidden, though weak
    assert out["data"]["short"] == "ab"  # but not one of 1 to 3 characters
    # Inside a longer value (a config file in a ConfigMap) it is scrubbed as a token.
    assert out["data"]["other"] == "x " + r.mark("s3cr3t-from-sops")


def test_a_pair_separator_never_spans_lines() -> None:
    # Kubeflow's dex config: `staticPasswords:` then `- email:` on the next line.
    r = Redactor(salt=SALT)
    text = "staticPasswords:\n- email: user@example.com\n  hash: abc\npassword: hunter2x"
    out = r.text(text)
    assert out.startswith("staticPasswords:\n- email: user@example.com\n")
    assert "hunter2x" not in out


def test_reports_count_the_values_they_redacted() -> None:
    from gitops.scrub import count_marks, redaction_note

    r = Redactor(salt=SALT)
    text = f"a {r.mark('x')} b {r.mark('y')} c {r.mark('x')}"
    assert count_marks(text) == (3, 2)
    assert redaction_note(text).startswith("3 secret values redacted (2 distinct)")
    assert redaction_note("nothing hidden") == ""
