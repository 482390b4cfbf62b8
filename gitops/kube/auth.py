"""Why an API server answered 401 Unauthorized, said in terms of the kubeconfig.

A 401 means the server did not accept who the client claims to be: most often a client
certificate that expired, or one issued by another cluster's certificate authority (a
kubeconfig copied from an older or another cluster), or a bearer token that expired. The
message names the kubeconfig, its context and user, and the likely cause read from the
credentials themselves (never their secret parts).

    remember(configuration, kubeconfig, context)   called by the client factory (config.py)
    source_of(configuration) -> (kubeconfig, context)   which ones (identity.py)
    unauthorized(configuration) -> (what, hint)    for the error of a 401 (errors.py)
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

_ATTR = "_stackctl_kubeconfig"


def remember(configuration: Any, kubeconfig: Path, context: str | None) -> None:
    """Record which kubeconfig and context a client configuration was loaded from."""
    setattr(configuration, _ATTR, (Path(kubeconfig), context))


def source_of(configuration: Any) -> tuple[Path | None, str | None]:
    """(kubeconfig, context name) a client configuration was loaded from; the context is
    the kubeconfig's current one when none was asked for. (None, None) when unknown."""
    source = getattr(configuration, _ATTR, None)
    if source is None:
        return None, None
    kubeconfig, context = source
    return kubeconfig, _user_of(kubeconfig, context)[0]


def _user_of(kubeconfig: Path, context: str | None) -> tuple[str | None, str | None]:
    """(context, user) names as the kubeconfig gives them (the current context when none)."""
    from gitops.yamlio import load_safe

    try:
        doc = load_safe(kubeconfig.read_text(encoding="utf-8"), path=kubeconfig)
    except (OSError, UnicodeDecodeError, ValueError):
        return context, None
    if not isinstance(doc, dict):
        return context, None
    name = context or doc.get("current-context")
    for c in doc.get("contexts") or ():
        if isinstance(c, dict) and c.get("name") == name:
            user = (c.get("context") or {}).get("user")
            return str(name), str(user) if user else None
    return (str(name) if name else None), None


def _certificate(path: str | None) -> Any:
    if not path:
        return None
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError):
        return None


def _cause(configuration: Any) -> str:
    """The likely reason, from the client certificate or token the request carried."""
    if configuration is None:
        return ("they expired (a client certificate or a token) or belong to another "
                "cluster")
    cert = _certificate(getattr(configuration, "cert_file", None))
    if cert is None:
        token = (getattr(configuration, "api_key", None) or {}).get("BearerToken") or \
            (getattr(configuration, "api_key", None) or {}).get("authorization")
        if token:
            return ("the bearer token was refused: it expired (tokens from an exec plugin "
                    "such as 'aws eks get-token' last minutes) or belongs to another cluster")
        return "the user has no client certificate and no token the server accepts"
    now = dt.datetime.now(dt.UTC)
    subject = cert.subject.rfc4514_string()
    if cert.not_valid_after_utc < now:
        return (f"its client certificate ({subject}) expired on "
                f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    if cert.not_valid_before_utc > now:
        return (f"its client certificate ({subject}) is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (check this machine's clock)")
    ca = _certificate(getattr(configuration, "ssl_ca_cert", None))
    if ca is not None and cert.issuer != ca.subject:
        return (f"its client certificate ({subject}) was issued by "
                f"{cert.issuer.rfc4514_string()}, not by the certificate authority of the "
                f"cluster this kubeconfig names ({ca.subject.rfc4514_string()}): a "
                "certificate of another cluster, or of this one before its certificates "
                "were renewed")
    return (f"its client certificate ({subject}) is valid in time but was not accepted: "
            "it was revoked, or the cluster's client certificate authority changed")


def unauthorized(configuration: Any) -> tuple[str, str]:
    """(what happened, what to do) for a 401 answered to a client of `configuration`."""
    source = getattr(configuration, _ATTR, None)
    host = getattr(configuration, "host", None)
    server = f"the API server at {host}" if host else "the API server"
    if source is None:
        where = "the kubeconfig's credentials"
    else:
        kubeconfig, context = source
        ctx, user = _user_of(kubeconfig, context)
        who = f"user {user!r} of " if user else ""
        where = f"{who}context {ctx!r} in the kubeconfig {kubeconfig}" if ctx else \
            f"the kubeconfig {kubeconfig}"
    what = f"{server} does not accept {where}: {_cause(configuration)}"
    hint = ("Get a fresh kubeconfig for this cluster (for example 'microk8s config', 'aws "
            "eks update-kubeconfig', or 'stackctl sandbox env' for the local sandbox) and "
            "point cluster.yaml's 'kubeconfig' or $STACKCTL_KUBECONFIG_<NAME> at it.")
    return what, hint
