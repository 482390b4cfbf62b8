"""SOPS-encrypted files (https://github.com/getsops/sops), decrypted in memory.

age is handled natively (gitops.sops.age: X25519, ChaCha20-Poly1305, HKDF-SHA256 and STREAM
with the `cryptography` package), and so are SOPS's AES256-GCM values and its MAC
(gitops.sops.tree); every other kind of master key goes through the `sops` program
(gitops.sops.program). gitops.sops.decrypt.decrypt_file decrypts one file; gitops.sops.build
is what a render calls. docs/secrets.md says what is decrypted where.

Nothing is imported here: a cached render imports gitops.sops.policy and .mirror only, which
load neither YAML nor cryptography libraries.
"""
