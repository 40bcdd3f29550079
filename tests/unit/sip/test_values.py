"""Value classes of the SIP layer and errors.py are plain dataclasses with their usual semantics."""

import copy
import dataclasses
import pickle

import pytest

from qsipctl.errors import Diagnostic, Location
from qsipctl.report.output import to_jsonable
from qsipctl.sip.digest import AuthDecision, AuthResult, Challenge, DigestCredentials
from qsipctl.sip.headers import parse_name_addr, parse_via
from qsipctl.sip.message import Request, parse_message
from qsipctl.sip.uri import parse_uri


def test_frozen_values_compare_hash_and_refuse_assignment():
    a = Challenge("Digest", "r", "n", qop=("auth",))
    assert a == Challenge("Digest", "r", "n", qop=("auth",))
    assert a != Challenge("Digest", "r", "other", qop=("auth",))
    assert len({a, Challenge("Digest", "r", "n", qop=("auth",))}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.nonce = "x"  # type: ignore[misc]
    assert dataclasses.replace(a, stale=True).stale and not a.stale
    assert AuthDecision(AuthResult.RETRY).challenge is None


def test_location_and_diagnostic_keep_their_constructor_and_attributes():
    loc = Location("site.yml", 3, 5)
    assert (loc.file, loc.line, loc.col, str(loc)) == ("site.yml", 3, 5, "site.yml:3:5")
    assert str(Location("f")) == "f"
    with pytest.raises(AttributeError):
        loc.line = 4  # type: ignore[misc]
    d = Diagnostic("bad", loc, "a.b")
    assert d == Diagnostic("bad", Location("site.yml", 3, 5), "a.b", severity="error")
    assert d.format() == "site.yml:3:5: a.b: bad"
    assert pickle.loads(pickle.dumps(d)) == d and copy.copy(d) == d
    assert hash(d) == hash(Diagnostic("bad", Location("site.yml", 3, 5), "a.b"))


def test_mutable_values_are_unhashable_and_survive_copy_and_pickle():
    uri = parse_uri("sip:alice@192.0.2.1:5070;transport=tcp")
    with pytest.raises(TypeError):
        hash(uri)
    assert copy.deepcopy(uri) == uri and pickle.loads(pickle.dumps(uri)) == uri
    via = parse_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
    na = parse_name_addr('"A" <sip:a@h>;tag=1')
    assert copy.deepcopy(via) == via and copy.deepcopy(na) == na
    req = parse_message(Request("OPTIONS", "sip:h").to_bytes())
    assert copy.deepcopy(req) == req and isinstance(req, Request)


def test_secrets_stay_hidden_in_repr_and_json():
    creds = DigestCredentials("u", "hunter2")
    assert "hunter2" not in repr(creds) and creds.password == "hunter2"
    assert to_jsonable(Location("f", 1)) == {"file": "f", "line": 1, "col": None}
