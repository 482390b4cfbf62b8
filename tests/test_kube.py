"""Narrow unit tests of gitops.kube's error table and retry rule; the retry of a real
server's 429/503 is tested through a proxy in tests/integration/test_kube_retry.py."""

from __future__ import annotations

import json

import pytest
import urllib3

from gitops.errors import ClusterError
from gitops.kube.errors import (
    KubeApiError,
    UnreachableError,
    answer_error,
    transient,
    translate,
)
from gitops.kube.poll import Backoff, retrying


def status(code: int, reason: str, *, causes: list[dict[str, str]] | None = None) -> str:
    return json.dumps({"kind": "Status", "code": code, "reason": reason, "message": "busy",
                       "details": {"causes": causes or []}})


CONFLICT = answer_error(409, status(409, "Conflict", causes=[
    {"type": "FieldManagerConflict", "message": 'conflict with "helm"', "field": ".data.k"}]),
    "PATCH /x")
MODIFIED = answer_error(409, status(409, "Conflict"), "PATCH /x")
THROTTLED = answer_error(429, status(429, "TooManyRequests"), "PATCH /x",
                         headers={"Retry-After": "2"})
DOWN = answer_error(503, status(503, "ServiceUnavailable"), "PATCH /x")
INVALID = answer_error(422, status(422, "Invalid"), "PATCH /x")
RESET = translate(urllib3.exceptions.ProtocolError("Connection aborted.",
                                                   ConnectionResetError(104, "reset")), "GET /x")
REFUSED = translate(ConnectionRefusedError(111, "Connection refused"), "GET /x")


@pytest.mark.parametrize(("error", "verb", "expected"), [
    (THROTTLED, "POST", True),  # the server asked for a retry: any verb
    (DOWN, "APPLY", True),
    (DOWN, "GET", True),
    (DOWN, "POST", False),  # a create may have happened: not sent twice
    (MODIFIED, "APPLY", True),  # the object changed under the apply
    (MODIFIED, "PUT", False),  # a resourceVersion precondition: the caller decides
    (CONFLICT, "APPLY", False),  # another field manager: a rejection, not a retry
    (INVALID, "APPLY", False),
    (RESET, "GET", True),
    (RESET, "APPLY", True),
    (RESET, "POST", False),
    (REFUSED, "GET", False),  # nothing listens: urllib3 already retried the connection
])
def test_which_failures_are_transient(error: ClusterError, verb: str, expected: bool) -> None:
    assert transient(error, verb) is expected


def test_an_answer_keeps_its_status_and_the_retry_after_it_asked_for() -> None:
    assert isinstance(THROTTLED, KubeApiError)
    assert (THROTTLED.code, THROTTLED.reason, THROTTLED.retry_after) == (429, "TooManyRequests",
                                                                         2.0)
    assert str(THROTTLED).startswith("cannot PATCH /x: the API server answered 429 "
                                     "TooManyRequests: busy.")
    assert CONFLICT.field_manager_conflict and not MODIFIED.field_manager_conflict
    assert isinstance(RESET, UnreachableError) and RESET.lost and not REFUSED.lost


def test_a_retry_waits_as_the_server_asks_and_gives_up_after_the_last_attempt() -> None:
    waits: list[float] = []
    answers: list[ClusterError | str] = [THROTTLED, DOWN, "done"]

    def send() -> str:
        answer = answers.pop(0)
        if isinstance(answer, ClusterError):
            raise answer
        return answer

    assert retrying(send, verb="APPLY", backoff=Backoff(0.5, 2.0, 4.0),
                    sleep=waits.append) == "done"
    assert waits == [2.0, 1.0]  # Retry-After first, then the backoff's second delay

    def always() -> str:
        raise DOWN

    waits.clear()
    with pytest.raises(KubeApiError):
        retrying(always, verb="APPLY", attempts=3, backoff=Backoff(0.5, 2.0, 4.0),
                 sleep=waits.append)
    assert waits == [0.5, 1.0]
    with pytest.raises(KubeApiError):
        retrying(lambda: (_ for _ in ()).throw(INVALID), verb="APPLY", sleep=waits.append)
    assert waits == [0.5, 1.0]  # a rejection is not retried
