"""SOPS-encrypted files (https://github.com/getsops/sops), decrypted in memory.

age is handled natively (gitops.sops.age: X25519, ChaCha20-Poly1305, HKDF-SHA256 and STREAM
with the `cryptography` package), and so are SOPS's AES256-GCM values and its MAC
(gitops.sops.tree); every other kind of master key goes through the `sops` program
(gitops.sops.program). docs/secrets.md says what is decrypted where.
"""

from gitops.sops.decrypt import Decrypted, decrypt_file, read_sops
from gitops.sops.formats import detect_format, may_be_sops
from gitops.sops.keys import KeyRing, key_ring

__all__ = ["Decrypted", "KeyRing", "decrypt_file", "detect_format", "key_ring",
           "may_be_sops", "read_sops"]
