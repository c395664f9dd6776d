"""``pdtui prompt CLUSTER "text"``: send one prompt to the PD proxy and time it."""

from __future__ import annotations

import argparse
import sys

from pdtui.cli.common import (
    EXIT_CONFIG,
    EXIT_FINDINGS,
    EXIT_OK,
    add_host_key_flag,
    err,
    load_or_report,
)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("cluster", help="cluster file (TOML)")
    p.add_argument("prompt", help="the prompt text")
    p.add_argument(
        "--chat", action="store_true", help="use /v1/chat/completions (default: /v1/completions)"
    )
    p.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="stream the answer (default: --stream)",
    )
    p.add_argument(
        "--max-tokens", type=int, default=100, metavar="N", help="max_tokens (default 100)"
    )
    p.add_argument(
        "--temperature", type=float, default=0.0, metavar="T", help="temperature (default 0)"
    )
    p.add_argument("--model", help="model name (default: the cluster's model.served_name)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--url", help="send to this base URL instead of the cluster's proxy")
    p.add_argument(
        "--via",
        choices=("ssh", "direct"),
        default="ssh",
        help="reach the proxy through an SSH forward from its node (default) or "
        "directly at proxy.host:port",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="give up after this many seconds, waiting for data or in all "
        "(an overall deadline: a trickle cannot keep it open; default 600)",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="print the answer's bytes as they are (escape sequences reach the "
        "terminal); by default control characters are shown as \\xNN",
    )
    add_host_key_flag(p)
    p.epilog = (
        "API key: when PDTUI_API_KEY (else OPENAI_API_KEY) is set in the environment, "
        "every request sends 'Authorization: Bearer <key>' (for vLLM servers started "
        "with --api-key); the key is masked in all output."
    )


def run(ns: argparse.Namespace) -> int:
    import asyncio
    import json

    import httpx

    from pdtui.console import ConsoleError, Request, Result, http_client, reach, scrub, send
    from pdtui.ssh import SshError
    from pdtui.ssh.remote import pool_for
    from pdtui.text import printable

    cluster = load_or_report(ns.cluster)
    if cluster is None:
        return EXIT_CONFIG
    if ns.max_tokens < 1 or ns.timeout <= 0:
        err("pdtui prompt: --max-tokens and --timeout must be positive")
        return EXIT_CONFIG
    req = Request(
        kind="chat" if ns.chat else "completion",
        prompt=ns.prompt,
        model=ns.model or cluster.spec.model.served_name,
        max_tokens=ns.max_tokens,
        temperature=ns.temperature,
        stream=ns.stream,
    )
    live = not ns.json

    def shown(text: str) -> str:
        return text if ns.raw else printable(text)

    def show(piece: str) -> None:
        sys.stdout.write(shown(piece))
        sys.stdout.flush()

    async def go(base: str) -> Result:
        timeout = httpx.Timeout(ns.timeout, connect=10.0)
        async with http_client(timeout) as client:
            return await send(client, base, req, on_text=show if live else None)

    async def ask() -> tuple[str, Result]:
        if ns.url:
            return ns.url, await go(ns.url)
        if ns.via == "direct":
            async with reach(None, cluster, via="direct") as base:
                return base, await go(base)
        async with (
            pool_for(cluster, accept_new=ns.accept_new_host_keys) as pool,
            reach(pool, cluster, via="ssh") as base,
        ):
            return base, await go(base)

    try:
        base, res = asyncio.run(ask())
    except ConsoleError as exc:
        err(scrub(f"pdtui prompt: {exc}"))
        return EXIT_CONFIG
    except SshError as exc:
        err(scrub(f"pdtui prompt: cannot open the SSH forward: {exc}"))
        return EXIT_FINDINGS
    if ns.json:
        # Result is scrubbed of the key already; scrub the URL too (userinfo, query strings).
        print(json.dumps({"url": scrub(req.url(base)), **res.to_dict()}, indent=2))
    else:
        if res.text:  # already printed as it came
            print()
        if res.error:
            err(shown(f"error: {res.error}"))
            if res.body.strip() and res.status is not None and res.status >= 400:
                err(shown(res.body.strip()))
        print(res.status_line())
    return EXIT_OK if res.ok else EXIT_FINDINGS
