"""Authentication against a real Label Studio: legacy tokens, personal access tokens (refresh on expiry
and on 401), a refused token keeps queued work, and no token ever leaks into the store, logs or output."""

from __future__ import annotations

import logging

import pytest

from app.services.sync import SyncService
from app.sync import auth
from app.sync.client import LSClient
from app.sync.errors import AuthError
from tests.integration.conftest import ALL_TOKENS, MEMBERS
from tests.integration.helpers import decide, server_uuid_counts, states

pytestmark = pytest.mark.integration


def _pat_for(ls, email: str) -> str:
    legacy = MEMBERS[email]
    r = ls.api(legacy).post(ls.url + "/api/token/", timeout=60)
    if r.status_code == 409 or (r.status_code == 400 and "exist" in r.text.lower()):
        pytest.fail("a PAT already exists for this member; each test must use its own member")
    assert r.status_code == 201, r.text[:300]
    return r.json()["token"]


def test_wrong_legacy_token_is_refused_plainly_and_not_stored(ls, rd_store):
    svc = SyncService(rd_store)
    with pytest.raises(AuthError, match="refused the API token"):
        svc.login(ls.url, "not-a-valid-token-123")
    assert auth.load_token(ls.url) in (None, ls.token)  # nothing new stored for a refused token


def test_personal_access_token_refreshes_before_expiry_and_on_401(ls, rd_store, make_project):
    pat = _pat_for(ls, "expert@example.com")
    assert auth.token_kind(pat) == "pat"
    clients: list[LSClient] = []

    class ExpiringClient(LSClient):
        """After the first task read, the access token 'expires' (the server answers 401)."""

        expired = False

        def task(self, task_id):
            if not ExpiringClient.expired:
                ExpiringClient.expired = True
                self.creds._access = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9.expired"
            return super().task(task_id)

    def factory(url, tok, ca):
        c = ExpiringClient(url, tok, ca_bundle=ca)
        clients.append(c)
        return c

    svc = SyncService(rd_store, client_factory=factory)
    res, _ = svc.login(ls.url, pat)
    assert res.token_kind == "pat" and res.email == "expert@example.com" and res.edition == "community"
    ls_pid = make_project(3)
    svc.pull(ls.url, ls_pid)
    t = ls.tasks(ls_pid)[0]
    u = decide(rd_store, ls_pid, t["id"], "accept", 0, reviewer="expert@example.com", role="expert")
    out = svc.push()
    assert out.synced == 1 and states(rd_store)[u] == "synced"
    push_client = clients[-1]
    assert push_client.creds.refreshes == 2  # the first access token, then again after the 401
    # proactive refresh: an access token about to expire is replaced before it is used
    now = [1000.0]
    creds = auth.Credentials(pat, lambda _p: "a.b.c", clock=lambda: now[0])
    creds.header()
    now[0] += 241  # no exp in the fake token: valid 240 s, refreshed 30 s early
    creds.header()
    assert creds.refreshes == 2


def test_refused_token_mid_sync_keeps_queued_work(ls, rd_store, make_project, memory_keyring):
    svc = SyncService(rd_store)
    svc.login(ls.url, ls.token)
    ls_pid = make_project(2)
    svc.pull(ls.url, ls_pid)
    uuids = [decide(rd_store, ls_pid, x["id"], "accept", 0) for x in ls.tasks(ls_pid)]
    auth.save_token(ls.url, "revoked-token-000")
    out = svc.push()
    assert out.auth_required == (ls.url,)
    assert all(states(rd_store)[u] == "pending" for u in uuids)
    svc.login(ls.url, ls.token)  # log in again: nothing was lost
    assert svc.push().synced == 2
    assert server_uuid_counts(ls, ls_pid) == dict.fromkeys(uuids, 1)


def test_no_token_in_store_logs_or_output(ls, rd_store, make_project, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    svc = SyncService(rd_store)
    svc.login(ls.url, ls.token)
    ls_pid = make_project(2)
    svc.pull(ls.url, ls_pid)
    decide(rd_store, ls_pid, ls.tasks(ls_pid)[0]["id"], "reject", 0, reason="Wrong label")
    svc.push()
    with pytest.raises(AuthError) as exc:
        SyncService(rd_store).login(ls.url, "wrong-token-but-secret-42")
    texts = [caplog.text, str(exc.value), repr(exc.value), repr(svc.client(svc._server(ls.url)).creds)]
    out = capsys.readouterr()
    texts += [out.out, out.err]
    rd_store.engine.dispose()
    blobs = [p.read_bytes() for p in rd_store.data_dir.rglob("*") if p.is_file()]
    for token in (*ALL_TOKENS, "wrong-token-but-secret-42"):
        assert not any(token in t for t in texts), "a token appeared in logs or output"
        assert not any(token.encode() in b for b in blobs), "a token was written into the data dir"
