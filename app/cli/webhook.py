"""``reviewdesk webhook``: a signed JSON summary to a URL after each successful push (docs/adr/0016).

    reviewdesk webhook set URL (--secret-stdin | --secret-env VAR) [--json]   # the secret goes to the keyring
    reviewdesk webhook clear [--json]      # forget URL and secret; drops summaries not yet delivered
    reviewdesk webhook status [--json]     # URL, whether a secret is stored, queued / delivered / failed
    reviewdesk webhook test [--json]       # one signed test body now; exit 1 unless the receiver answers 2xx
    reviewdesk webhook flush [--json]      # send every queued (and failed) summary now, ignoring the backoff
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from app.cli import CliError, command, emit, open_store
from app.models.store import resolve_data_dir
from app.services import webhook


def register(sub: Any, add: Any) -> None:
    sp = add("webhook", "POST a signed summary of each push to a URL: set, clear, status, test, flush")
    sp.add_argument("action", choices=["set", "clear", "status", "test", "flush"])
    sp.add_argument("url", nargs="?", help="with set: the receiver's http:// or https:// URL")
    g = sp.add_mutually_exclusive_group()
    g.add_argument("--secret-stdin", action="store_true", help="with set: read the HMAC secret from stdin")
    g.add_argument("--secret-env", metavar="VAR", help="with set: read the HMAC secret from this variable")


def _secret(args: argparse.Namespace) -> str:
    if args.secret_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            raise CliError("No secret on standard input.")
        return secret
    if args.secret_env:
        secret = os.environ.get(args.secret_env, "").strip()
        if not secret:
            raise CliError(f"The environment variable {args.secret_env} is not set or empty.")
        return secret
    raise CliError("webhook set needs the secret: --secret-stdin or --secret-env VAR (never on the command line).")


def _config_json(c: webhook.WebhookConfig) -> dict[str, Any]:
    return {"url": c.url, "secret": c.has_secret, "secret_source": c.secret_source}


@command("webhook")
def cmd_webhook(args: argparse.Namespace) -> int:
    data_dir = resolve_data_dir(getattr(args, "data_dir", None))
    if args.action != "set" and (args.url or args.secret_stdin or args.secret_env):
        raise CliError(f"webhook {args.action} takes no URL or secret.")
    try:
        return _run(args, data_dir)
    except webhook.WebhookError as exc:
        raise CliError(str(exc)) from exc


def _run(args: argparse.Namespace, data_dir: Any) -> int:
    if args.action == "set":
        if not args.url:
            raise CliError("webhook set needs the receiver's URL.")
        webhook.validate_url(args.url)
        secret = _secret(args)
        open_store(args).close()  # the store exists (created if new), so the change lands on its audit trail
        cfg = webhook.configure(data_dir, args.url, secret)
        emit(args, _config_json(cfg), f"Webhook set: {cfg.url} (secret in the {cfg.secret_source}). "
                                      "Each successful push now sends a signed summary.")
        return 0
    if args.action == "clear":
        open_store(args).close()
        dropped = webhook.clear(data_dir)
        emit(args, {"cleared": True, "dropped": dropped},
             "Webhook cleared" + (f"; {dropped} undelivered summaries dropped." if dropped else "."))
        return 0
    if args.action == "status":
        st = webhook.status(data_dir)
        text = (f"Webhook: {st.config.url or 'not set'}; secret: "
                f"{'stored (' + str(st.config.secret_source) + ')' if st.config.has_secret else 'missing'}; "
                f"{st.pending} queued, {st.delivered} delivered, {st.failed} failed"
                + (f"; last error: {st.last_error}" if st.last_error else "")
                + (f"; last delivered {st.last_delivered_at}" if st.last_delivered_at else "") + ".")
        emit(args, {**_config_json(st.config), "pending": st.pending, "delivered": st.delivered,
                    "failed": st.failed, "last_error": st.last_error, "last_delivered_at": st.last_delivered_at}, text)
        return 0
    if args.action == "test":
        code = webhook.send_test(data_dir)
        if not 200 <= code < 300:
            raise CliError(f"The receiver answered HTTP {code} to the test.")
        emit(args, {"status": code}, f"The receiver answered HTTP {code}: the webhook works.")
        return 0
    res = webhook.deliver_due(data_dir, force=True)
    emit(args, {"delivered": res.delivered, "pending": res.pending, "failed": res.failed,
                "errors": list(res.errors)},
         f"Delivered {res.delivered}; {res.pending} still queued, {res.failed} failed"
         + (f" (last error: {res.errors[-1]})" if res.errors else "") + ".")
    return 1 if res.errors else 0
