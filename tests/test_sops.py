"""SOPS files decrypted in memory, checked against files the real sops program encrypted
with age keys generated in the test: every format, the MAC, key groups, key sources, and
the sops program for keys stackctl does not open itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from gitops.errors import SecretsError
from gitops.sops import age
from gitops.sops.age import Identity, bech32_decode, bech32_encode
from gitops.sops.decrypt import decrypt_file
from gitops.sops.goyaml import go_float, go_time, resolve_plain
from gitops.sops.keys import key_ring
from tests.fixtures.sops import AgeKey

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: ml
  labels: {tier: db, replicas: 3, "yes": yes, oct: 0o17, f: 1e3, t: 2024-1-2 3:04:05.5}
type: Opaque
stringData:
  password: hunter2-correct-horse # an inline comment
  port: 5432
  enabled: true
  ratio: 1.50
  when: 2024-01-02
  list:
    - a
    # a comment in a list
    - b
data:
  token: dG9rLTlmOGU3ZDZjNWI0YQ==
"""
DOTENV = "DB_USER=admin\nDB_PASSWORD=s3cr3t=with=eq\n# a comment\nMULTI=line1\\nline2\n"
INI = "[db]\nuser = admin\npassword = p@ss-Word-42\n\n[cache]\nurl = redis://cache:6379\n"
BINARY = b"binary\x00data\xff with a secret-Blob-Value-9"
JSON_CFG = '{"a": 1, "b": [true, null, 2.5], "c": {"d": "e-value-Json-7"}}\n'


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# --- age ------------------------------------------------------------------------------------

def test_bech32_round_trips_and_refuses_a_bad_checksum() -> None:
    data = bytes(range(32))
    text = bech32_encode("age", data)
    assert bech32_decode(text) == ("age", data)
    bad = text[:-1] + ("q" if text[-1] != "q" else "p")
    with pytest.raises(age.AgeError, match="checksum"):
        bech32_decode(bad)


def test_an_identity_gives_its_recipient_and_never_shows_its_key() -> None:
    ident = Identity.generate()
    assert ident.encoded().startswith("AGE-SECRET-KEY-1")
    assert ident.recipient.startswith("age1") and len(ident.recipient) == 62
    assert Identity.parse(ident.encoded()) == ident
    assert ident.encoded() not in repr(ident)


def test_the_age_header_of_a_sops_file_opens_with_the_right_identity_only(
        age_key: AgeKey, other_key: AgeKey) -> None:
    enc = yaml.safe_load(age_key.encrypt("k: v\n", name="a.yaml"))
    armored = enc["sops"]["age"][0]["enc"]
    data_key = age.decrypt(age.dearmor(armored), [other_key.identity, age_key.identity])
    assert len(data_key) == 32
    with pytest.raises(age.NoIdentityMatched):
        age.decrypt(age.dearmor(armored), [other_key.identity])
    raw = bytearray(age.dearmor(armored))
    raw[-1] ^= 1  # the payload
    with pytest.raises(age.AgeError, match="authenticate"):
        age.decrypt(bytes(raw), [age_key.identity])


# --- formats, as the real sops writes and reads them -----------------------------------------

@pytest.mark.parametrize(("name", "plain", "secret"), [
    ("secret.yaml", SECRET, "hunter2-correct-horse"),
    ("app.env", DOTENV, "s3cr3t=with=eq"),
    ("app.ini", INI, "p@ss-Word-42"),
    ("cfg.json", JSON_CFG, "e-value-Json-7"),
])
def test_every_format_decrypts_to_what_sops_decrypt_prints(
        age_key: AgeKey, tmp_path: Path, name: str, plain: str, secret: str) -> None:
    path = write(tmp_path, name, age_key.encrypt(plain, name=name))
    assert secret.encode() not in path.read_bytes()
    d = decrypt_file(path.read_bytes(), name=name)
    assert d is not None and d.opened_by == f"age identity {age_key.recipient}"
    expected = age_key.decrypt_with_sops(path)
    if name.endswith((".env", ".ini")):
        # dotenv and INI byte for byte (comments, which sops keeps, aside)
        assert d.plaintext.decode() == "".join(
            ln for ln in expected.decode().splitlines(keepends=True)
            if not ln.startswith(("#", ";")))
    elif name.endswith(".json"):
        assert json.loads(d.plaintext) == json.loads(expected)
    else:  # YAML: the same data as sops reads it (Go's types: 1e3 and 0o17 are numbers)
        assert yaml.safe_load(d.plaintext) == yaml.safe_load(expected)
    assert secret in d.secret_values()
    assert secret not in repr(d)


def test_a_binary_file_decrypts_byte_for_byte(age_key: AgeKey, tmp_path: Path) -> None:
    path = write(tmp_path, "blob.bin", age_key.encrypt(BINARY, name="blob.bin"))
    d = decrypt_file(path.read_bytes(), name="blob.bin")
    assert d is not None and d.plaintext == BINARY


def test_only_the_values_of_a_secrets_data_are_secret_values(
        age_key: AgeKey, tmp_path: Path) -> None:
    d = decrypt_file(age_key.encrypt(SECRET, name="s.yaml"), name="s.yaml")
    assert d is not None
    values = d.secret_values()
    assert {"hunter2-correct-horse", "dG9rLTlmOGU3ZDZjNWI0YQ==", "a", "b"} <= values
    # Its name, namespace, kind and type were encrypted too, but are not secrets.
    assert not values & {"db", "ml", "Secret", "v1", "Opaque", "tier"}


def test_a_fully_encrypted_patch_keeps_names_out_of_the_secret_values(age_key: AgeKey) -> None:
    patch = ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n"
             "    spec:\n      containers:\n      - name: web\n        env:\n"
             "        - {name: DB_URL, value: 'postgres://u:pw-Secret-77@db/app'}\n")
    d = decrypt_file(age_key.encrypt(patch, name="p.yaml"), name="p.yaml")
    assert d is not None
    assert d.secret_values() == {"postgres://u:pw-Secret-77@db/app"}


def test_with_an_encrypted_regex_only_the_chosen_values_are_encrypted_and_secret(
        age_key: AgeKey) -> None:
    enc = age_key.encrypt(SECRET, name="s.yaml", encrypted_regex="^(data|stringData)$")
    doc = yaml.safe_load(enc)
    assert doc["metadata"]["name"] == "db" and doc["stringData"]["password"].startswith("ENC[")
    d = decrypt_file(enc, name="s.yaml")
    assert d is not None and "hunter2-correct-horse" in d.secret_values()


def test_multi_document_yaml_with_mac_only_encrypted_decrypts(age_key: AgeKey) -> None:
    two = (SECRET + "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n"
           "data: {k: val-Xyz-123}\n")
    enc = age_key.encrypt(two, name="two.yaml", encrypted_regex="^(data|stringData)$",
                          mac_only_encrypted=True)
    assert b"mac_only_encrypted: true" in enc
    d = decrypt_file(enc, name="two.yaml")
    assert d is not None and len(d.documents) == 2
    assert d.documents[1]["data"]["k"] == "val-Xyz-123"


def test_key_groups_need_the_shamir_threshold_of_identities(
        age_key: AgeKey, other_key: AgeKey, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    third = Identity.generate()
    cfg = tmp_path / ".sops.yaml"
    cfg.write_text(f"creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n"
                   f"      - age: [{age_key.recipient}]\n      - age: [{other_key.recipient}]\n"
                   f"      - age: [{third.recipient}]\n")
    src = write(tmp_path, "s.yaml", b"password: shamir-Secret-99\n")
    enc = subprocess.run([str(age_key.sops), "--config", str(cfg), "encrypt", str(src)],
                         capture_output=True, check=True).stdout
    with pytest.raises(SecretsError, match="they open 1 of the 2 key groups needed"):
        decrypt_file(enc, name="s.yaml")
    both = tmp_path / "both.txt"
    both.write_text(f"{age_key.identity.encoded()}\n{third.encoded()}\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(both))
    d = decrypt_file(enc, name="s.yaml")
    assert d is not None and d.documents[0]["password"] == "shamir-Secret-99"


# --- the MAC and wrong keys ----------------------------------------------------------------

def test_a_tampered_value_fails_naming_the_file(age_key: AgeKey) -> None:
    enc = age_key.encrypt(SECRET, name="s.yaml").decode()
    m = re.search(r"password: ENC\[AES256_GCM,data:([^,]+),", enc)
    assert m is not None
    data = m.group(1)
    flipped = ("A" if data[0] != "A" else "B") + data[1:]
    with pytest.raises(SecretsError, match=r"s\.yaml was modified after it was encrypted: "
                                           r"the value at stringData:password"):
        decrypt_file(enc.replace(data, flipped).encode(), name="s.yaml")


def test_a_changed_clear_text_value_or_a_removed_value_fails_the_mac(age_key: AgeKey) -> None:
    enc = age_key.encrypt(SECRET, name="s.yaml", encrypted_regex="^(data|stringData)$").decode()
    with pytest.raises(SecretsError, match="MAC does not match"):
        decrypt_file(enc.replace("name: db", "name: other").encode(), name="s.yaml")
    without = re.sub(r"\n    port: ENC\[[^\n]*", "", enc)
    assert without != enc
    with pytest.raises(SecretsError, match="MAC does not match"):
        decrypt_file(without.encode(), name="s.yaml")


def test_a_value_swapped_to_another_key_fails(age_key: AgeKey) -> None:
    enc = age_key.encrypt("a: value-One-111\nb: value-Two-222\n", name="s.yaml").decode()
    doc = yaml.safe_load(enc)
    swapped = enc.replace(doc["a"], "@A@").replace(doc["b"], doc["a"]).replace("@A@", doc["b"])
    with pytest.raises(SecretsError, match="modified after it was encrypted"):
        decrypt_file(swapped.encode(), name="s.yaml")


def test_a_file_for_another_key_names_the_file_its_recipients_and_where_keys_were_looked_for(
        age_key: AgeKey, other_key: AgeKey) -> None:
    enc = other_key.encrypt(SECRET, name="s.yaml")
    with pytest.raises(SecretsError) as e:
        decrypt_file(enc, name="clusters/dev/s.yaml")
    msg = str(e.value)
    assert "no key of this environment decrypts clusters/dev/s.yaml" in msg
    assert f"age {other_key.recipient}" in msg
    assert f"$SOPS_AGE_KEY_FILE ({age_key.keys_file}): 1 age identity" in msg
    assert "none of them is a recipient of the file" in msg
    assert age_key.identity.encoded() not in msg


def test_a_plain_file_is_not_a_sops_file(tmp_path: Path) -> None:
    assert decrypt_file(SECRET.encode(), name="s.yaml") is None
    assert decrypt_file(b"ENC[AES256_GCM,data:x] but no metadata", name="x.yaml") is None


# --- where keys come from ------------------------------------------------------------------

def test_identities_come_from_every_sops_location(
        age_key: AgeKey, other_key: AgeKey, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    third, fourth = Identity.generate(), Identity.generate()
    monkeypatch.setenv("SOPS_AGE_KEY", f"{other_key.identity.encoded()} {third.encoded()}")
    user = tmp_path / "xdg" / "sops" / "age" / "keys.txt"
    user.parent.mkdir(parents=True)
    user.write_text(f"# a comment\n\n{fourth.encoded()}\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    script = tmp_path / "key-cmd.sh"
    fifth = Identity.generate()
    script.write_text(f"#!/bin/sh\necho {fifth.encoded()}\n")
    script.chmod(0o755)
    monkeypatch.setenv("SOPS_AGE_KEY_CMD", str(script))
    ring = key_ring()
    assert ring.recipients() == {age_key.recipient, other_key.recipient, third.recipient,
                                 fourth.recipient, fifth.recipient}
    assert not any(i.encoded() in ring.where() for i in ring.identities)


def test_an_unreadable_keys_file_is_reported_not_fatal(
        age_key: AgeKey, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("not a key\n")
    monkeypatch.setenv("SOPS_AGE_KEY_FILE", str(bad))
    ring = key_ring()
    assert not ring.identities and "line 1 is not an age identity" in ring.where()


# --- the sops program, for keys stackctl does not open itself ------------------------------

def _ssh_key(tmp_path: Path) -> tuple[Path, str]:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, (tmp_path / "id_ed25519.pub").read_text().strip()


@pytest.mark.skipif(not Path("/usr/bin/ssh-keygen").exists(), reason="no ssh-keygen")
def test_an_ssh_recipient_is_decrypted_through_the_sops_program(
        age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, public = _ssh_key(tmp_path)
    src = write(tmp_path, "s.yaml", b"token: ssh-Sealed-Value-5\n")
    enc = subprocess.run([str(age_key.sops), "encrypt", "--age", public, str(src)],
                         capture_output=True, check=True).stdout
    path = write(tmp_path, "s.enc.yaml", enc)
    monkeypatch.setenv("SOPS_AGE_SSH_PRIVATE_KEY_FILE", str(key))
    monkeypatch.setenv("STACKCTL_SOPS", str(age_key.sops))
    d = decrypt_file(enc, name="s.enc.yaml", path=path)
    assert d is not None and d.opened_by == "the sops program"
    assert d.secret_values() == {"ssh-Sealed-Value-5"}
    assert d.replacements[yaml.safe_load(enc)["token"]] == "ssh-Sealed-Value-5"


def test_without_the_sops_program_the_message_says_what_is_missing(
        age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _key, public = _ssh_key(tmp_path)
    src = write(tmp_path, "s.yaml", b"token: ssh-Sealed-Value-5\n")
    enc = subprocess.run([str(age_key.sops), "encrypt", "--age", public, str(src)],
                         capture_output=True, check=True).stdout
    monkeypatch.setenv("STACKCTL_SOPS", str(tmp_path / "no-such-sops"))
    with pytest.raises(SecretsError) as e:
        decrypt_file(enc, name="s.enc.yaml", path=write(tmp_path, "s.enc.yaml", enc))
    msg = str(e.value)
    assert "age recipients of plugins, SSH or post-quantum keys needs the sops program, " \
           "which was not found" in msg
    assert "make sops" in msg


@pytest.mark.skipif(not Path("/usr/bin/gpg").exists(), reason="no gpg")
def test_a_pgp_file_is_decrypted_through_the_sops_program(
        age_key: AgeKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    monkeypatch.setenv("GNUPGHOME", str(home))
    gpg = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "t <t@example.com>", "ed25519", "cert", "never"],
                   check=True, capture_output=True)
    listing = subprocess.run(["gpg", "--list-keys", "--with-colons"], check=True,
                             capture_output=True, text=True).stdout
    fpr = next(ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr"))
    subprocess.run([*gpg, "--quick-add-key", fpr, "cv25519", "encr", "never"], check=True,
                   capture_output=True)
    src = write(tmp_path, "p.env", b"API_TOKEN=pgp-Secret-Value-3\n")
    enc = subprocess.run([str(age_key.sops), "encrypt", "--pgp", fpr, str(src)],
                         capture_output=True, check=True).stdout
    path = write(tmp_path, "p.enc.env", enc)
    monkeypatch.setenv("STACKCTL_SOPS", str(age_key.sops))
    d = decrypt_file(enc, name="p.enc.env", path=path)
    assert d is not None and d.plaintext == b"API_TOKEN=pgp-Secret-Value-3\n"
    monkeypatch.setenv("STACKCTL_SOPS", str(tmp_path / "none"))
    with pytest.raises(SecretsError, match=f"encrypted for PGP {fpr}. PGP needs the sops"):
        decrypt_file(enc, name="p.enc.env", path=path)


# --- Go's reading of YAML scalars, which the MAC depends on ---------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("yes", "yes"), ("true", True), ("0o17", 15), ("017", 15), ("0x1F", 31), ("1_000", 1000),
    ("1e3", 1000.0), (".5", 0.5), ("~", None), ("2024-1-2", "2024-01-02T00:00:00Z"),
    ("2024-01-02 03:04:05.5", "2024-01-02T03:04:05.5Z"), ("1.2.3", "1.2.3"), ("+1", 1)])
def test_plain_scalars_resolve_as_go_yaml_v3_resolves_them(text: str, value: object) -> None:
    assert resolve_plain(text) == value


def test_go_number_and_time_formats() -> None:
    assert [go_float(x) for x in (1.0, 1.5, 1e21, 1e-7, -0.0)] == [
        "1", "1.5", "1000000000000000000000", "0.0000001", "-0"]
    assert go_time("2024-01-02T03:04:05.100+02:00") == "2024-01-02T03:04:05.1+02:00"
    assert go_time("not a time") is None


def test_nothing_decrypted_is_left_in_the_environment_or_files(age_key: AgeKey) -> None:
    decrypt_file(age_key.encrypt(SECRET, name="s.yaml"), name="s.yaml")
    assert not any("hunter2" in v for v in os.environ.values())
    assert not list(age_key.ram_dir.iterdir())


def test_an_error_raised_inside_a_render_after_decryption_loses_every_decrypted_value() -> None:
    from gitops.errors import ConfigError, RenderError
    from gitops.sops.build import scrub_error

    value = "Dec-9f31c2-horse-battery"
    errors = [RenderError(f"clusters/dev: bad line 'DB_PASSWORD={value}'", hint=f"fix {value}"),
              ConfigError(f"password: {value} is not a mapping", path="clusters/dev/x.yaml",
                          line=3)]
    for e in errors:
        scrub_error(e, frozenset({value, "ab"}))
        assert value not in str(e) and value not in e.message and value not in (e.hint or "")
        assert "<redacted sha256:" in str(e)
    assert errors[1].path == Path("clusters/dev/x.yaml") and errors[1].line == 3


def test_any_exception_raised_inside_a_render_after_decryption_is_scrubbed_with_its_cause(
) -> None:
    from gitops.sops.build import RenderSecrets

    value = "Dec-0b7e44-horse-battery"

    class Decrypted(RenderSecrets):
        def secrets(self) -> frozenset[str]:
            return frozenset({value})

    with pytest.raises(KeyError) as caught, Decrypted().scrubbing():
        try:
            raise ValueError(f"cannot parse 'DB_PASSWORD={value}'")
        except ValueError as e:
            raise KeyError(f"{value}") from e
    assert value not in str(caught.value) and value not in str(caught.value.__cause__)
    assert "<redacted sha256:" in str(caught.value.__cause__)
