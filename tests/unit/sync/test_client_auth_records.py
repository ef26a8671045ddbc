"""Client errors in plain language, retries, token handling and the meta record format (no network)."""

from __future__ import annotations

import socket

import keyring
import pytest
import requests

from app.sync import auth
from app.sync import records as rec
from app.sync.errors import AuthError, ConnectionLost, NotJSONError, OfflineError, ServerError
from tests.memkeyring import MemoryKeyring
from tests.unit.sync.fakels import TOKEN, FakeLS, client_for


def test_errors_are_plain_and_never_carry_the_token():
    fake = FakeLS()
    c = client_for(fake, token="wrong-secret-token")
    with pytest.raises(AuthError) as e401:
        c.whoami()
    assert "refused the API token" in str(e401.value) and "wrong-secret-token" not in repr(e401.value)
    fake2 = FakeLS()
    fake2.fail.append(lambda m, p: "502")
    c2 = client_for(fake2, retries=2)
    with pytest.raises(ServerError, match="502"):
        c2.whoami()
    assert c2.stats["GET"] == 3  # retried twice
    assert "wrong-secret-token" not in repr(c.creds)


def test_not_json_page(monkeypatch):
    fake = FakeLS()
    c = client_for(fake)
    monkeypatch.setattr(fake, "route", lambda *a: (200, None))
    fake._resp_orig = fake._resp

    def html(request, status, body, ctype="application/json"):
        return fake._resp_orig(request, 200, b"<html>Sign in</html>", "text/html")

    monkeypatch.setattr(fake, "_resp", html)
    with pytest.raises(NotJSONError, match="proxy"):
        c.whoami()


def test_dns_and_reset_are_told_apart():
    class Boom(requests.adapters.BaseAdapter):
        def __init__(self, exc):
            super().__init__()
            self.exc = exc

        def send(self, *a, **k):
            raise self.exc

        def close(self):
            pass

    from app.sync.client import LSClient

    def client(exc):
        s = requests.Session()
        s.mount("http://", Boom(exc))
        return LSClient("http://ls.test", TOKEN, session=s, retries=0)

    dns = requests.exceptions.ConnectionError("x")
    dns.__context__ = socket.gaierror(-2, "Name or service not known")
    with pytest.raises(OfflineError, match="DNS"):
        client(dns).whoami()
    refused = requests.exceptions.ConnectionError("x")
    refused.__context__ = ConnectionRefusedError(111, "Connection refused")
    with pytest.raises(OfflineError) as e:
        client(refused).whoami()
    assert not isinstance(e.value, ConnectionLost)
    with pytest.raises(ConnectionLost):
        client(requests.exceptions.ConnectionError("Connection reset by peer")).whoami()


def test_pat_refresh_on_401_and_token_kind():
    pat = "a.b.c"  # not a decodable JWT: kind must come from the shape of the key
    assert auth.token_kind("eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.sig") == "pat"
    assert auth.token_kind(TOKEN) == "legacy"
    fake = FakeLS()
    c = client_for(fake, token=pat)
    c.creds.kind = "pat"
    assert c.whoami()["id"] == 1
    assert c.creds.refreshes == 1
    c.creds._access = "stale"
    assert c.whoami()["id"] == 1 and c.creds.refreshes == 2


def test_keyring_storage_and_environment_fallback(monkeypatch):
    kr = MemoryKeyring()
    monkeypatch.setattr(keyring, "get_keyring", lambda: kr)
    monkeypatch.setattr(keyring, "set_password", kr.set_password)
    monkeypatch.setattr(keyring, "get_password", kr.get_password)
    auth.save_token("ls.example.org/", "tok-123456")
    assert kr.store == {("reviewdesk", "https://ls.example.org"): "tok-123456"}
    assert auth.load_token("https://ls.example.org") == "tok-123456"

    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    with pytest.raises(auth.KeyringUnavailable, match="REVIEWDESK_TOKEN"):
        auth.save_token("https://x.org", "t-abcdef")
    monkeypatch.setenv("REVIEWDESK_TOKEN", "from-env-123")
    assert auth.load_token("https://x.org") == "from-env-123"
    with pytest.raises(AuthError):
        auth.Credentials(None)


def test_meta_records_merge_and_competition():
    meta = {"source": "x", "reviewdesk": {"decisions": [{"uuid": "u1", "verdict": "accept", "annotation": 5,
                                                         "reviewer": "a@x"}]}}
    merged = rec.merge(meta, [{"uuid": "u1"}, {"uuid": "u2", "verdict": "reject", "annotation": 5, "reviewer": "b@x"}])
    assert [r["uuid"] for r in rec.meta_records(merged)] == ["u1", "u2"] and merged["source"] == "x"
    assert meta["reviewdesk"]["decisions"][-1]["uuid"] == "u1"  # input untouched
    recs = rec.meta_records(merged)
    assert [r["uuid"] for r in rec.competing(recs, annotation=5, prediction=None, reviewer="a@x",
                                             role="reviewer", known={"u1"})] == ["u2"]
    assert rec.competing(recs, annotation=5, prediction=None, reviewer="a@x", role="reviewer",
                         known={"u1", "u2"}) == []
    esc = [{"uuid": "e", "verdict": "escalate", "annotation": 5, "reviewer": "b@x"}]
    assert rec.competing(esc, annotation=5, prediction=None, reviewer="x@x", role="expert", known=set()) == []
    retracted = recs + [{"uuid": "r", "verdict": "retract", "retracts": "u2", "reviewer": "b@x"}]
    assert rec.competing(retracted, annotation=5, prediction=None, reviewer="a@x", role="reviewer",
                         known={"u1"}) == []
