"""The plain value classes that replaced dataclasses keep dataclass semantics."""

import copy
import dataclasses
import pickle

import pytest

from qsipctl.errors import Diagnostic, Location
from qsipctl.report.output import to_jsonable
from qsipctl.sip.digest import Challenge, DigestCredentials
from qsipctl.sip.transaction import Terminated, TimedOut, Timers
from qsipctl.sip.uri import parse_uri
from qsipctl.site.secrets import Secret


def test_equality_hash_and_repr_follow_the_fields():
    a = Challenge("Digest", "r", "n", qop=("auth",))
    assert a == Challenge("Digest", "r", "n", qop=("auth",))
    assert a != Challenge("Digest", "r", "other", qop=("auth",))
    assert len({a, Challenge("Digest", "r", "n", qop=("auth",))}) == 1
    assert repr(TimedOut("B")) == "TimedOut(timer='B')"
    assert TimedOut("B") != Terminated() and Terminated() == Terminated()


def test_frozen_records_refuse_assignment_and_replace_makes_copies():
    t = Timers(t1=0.1)
    with pytest.raises(AttributeError):
        t.t1 = 1.0  # type: ignore[misc]
    changed = dataclasses.replace(t, t2=1.0)
    assert (changed.t1, changed.t2, t.t2) == (0.1, 1.0, 4.0)
    loc = Location("site.yml", 3, 5)
    with pytest.raises(AttributeError):
        loc.line = 4  # type: ignore[misc]
    assert Diagnostic("bad", loc, "a.b") == Diagnostic("bad", Location("site.yml", 3, 5), "a.b")


def test_mutable_records_are_unhashable_and_survive_copy_and_pickle():
    uri = parse_uri("sip:alice@192.0.2.1:5070;transport=tcp")
    with pytest.raises(TypeError):
        hash(uri)
    assert copy.deepcopy(uri) == uri and pickle.loads(pickle.dumps(uri)) == uri
    d = Diagnostic("bad", Location("f", 1), "k")
    assert pickle.loads(pickle.dumps(d)) == d and copy.copy(d) == d


def test_secrets_stay_hidden_in_repr_json_and_copies():
    assert "hunter2" not in repr(DigestCredentials("u", "hunter2"))
    secret = Secret.parse("hunter2")
    assert to_jsonable(secret) == "********"
    assert to_jsonable({"password": secret}) == {"password": "********"}
    assert pickle.loads(pickle.dumps(secret)).reveal() == "hunter2"
    with pytest.raises(AttributeError):
        secret.reference = "env:X"  # type: ignore[misc]
