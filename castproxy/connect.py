"""`castproxy connect WORKSPACE --client NAME`: the exact config snippet an MCP client needs.

The snippet alone goes to stdout, where to paste it to stderr; each client's format is in
docs/architecture.md, "Client snippets".
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from castproxy.config.loader import load_config, resolve_config_path
from castproxy.config.model import LoginAuth, OAuth2Auth, Workspace
from castproxy.config.problems import ConfigError

__all__ = ["KEY_PLACEHOLDER", "connect", "render"]

KEY_PLACEHOLDER = "YOUR_MCP_KEY"
_LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")

_WHERE = {
    "claude-desktop": "Add this to claude_desktop_config.json (Settings → Developer → Edit Config), then restart "
    "Claude Desktop. It needs Node.js (npx).",
    "cursor": "Add this to ~/.cursor/mcp.json (all projects) or .cursor/mcp.json (this project).",
    "windsurf": "Add this to ~/.codeium/windsurf/mcp_config.json, then refresh the MCP servers in Windsurf.",
    "cline": "Add this to cline_mcp_settings.json (Cline → MCP Servers → Configure → Configure MCP Servers).",
    "claude-code": "Run this command (add --scope user to use it in every project).",
    "vscode": "Add this to .vscode/mcp.json (or run 'MCP: Open User Configuration' for every workspace).",
}


@dataclass(frozen=True)
class Snippet:
    text: str
    notes: list[str] = field(default_factory=list)


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)


def render(client: str, name: str, url: str, *, needs_key: bool = False) -> Snippet:
    """The snippet for one client; `needs_key` adds the inbound key header with a placeholder value."""
    header = {"Authorization": f"Bearer {KEY_PLACEHOLDER}"} if needs_key else {}
    notes = [_WHERE[client]]
    if needs_key:
        notes.append(f"Replace {KEY_PLACEHOLDER} with one of the workspace's inbound.api_keys.")
    if client == "claude-desktop":
        entry: dict[str, Any] = {"command": "npx", "args": ["-y", "mcp-remote@latest", url]}
        parts = urlsplit(url)
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            # mcp-remote refuses plain http except to localhost unless told otherwise.
            entry["args"].append("--allow-http")
            notes.append("The proxy's public_url is plain http: use https outside a trusted network.")
        if needs_key:
            # mcp-remote's documented way: the header value comes from env, so no space is split by the launcher.
            entry["args"] += ["--header", "Authorization:${MCP_AUTH_HEADER}"]
            entry["env"] = {"MCP_AUTH_HEADER": f"Bearer {KEY_PLACEHOLDER}"}
        return Snippet(_json({"mcpServers": {name: entry}}), notes)
    if client == "claude-code":
        command = ["claude", "mcp", "add", "--transport", "http", name, url]
        if needs_key:
            command += ["--header", f"Authorization: Bearer {KEY_PLACEHOLDER}"]
        return Snippet(shlex.join(command), notes)
    if client == "cursor":
        entry = {"url": url}
        document = {"mcpServers": {name: entry}}
    elif client == "windsurf":
        entry = {"serverUrl": url}
        document = {"mcpServers": {name: entry}}
    elif client == "cline":
        entry = {"type": "streamableHttp", "url": url, "disabled": False}
        document = {"mcpServers": {name: entry}}
    elif client == "vscode":
        entry = {"type": "http", "url": url}
        document = {"servers": {name: entry}}
    else:
        raise ValueError(f"unknown client {client!r}")
    if needs_key:
        entry["headers"] = header
    return Snippet(_json(document), notes)


def workspace_notes(workspace: Workspace, callback_url: str) -> list[str]:
    """What the operator must know beyond the snippet, per the workspace's upstream auth."""
    auth = workspace.auth
    if isinstance(auth, LoginAuth):
        host = urlsplit(auth.login_url).hostname  # not the whole URL: its query may carry a secret
        return [f"No sign-in in the client: castproxy logs in at {host} with the workspace's credentials, and "
                "every caller of this workspace acts as that account."]
    if not isinstance(auth, OAuth2Auth):
        return []
    notes = []
    if auth.grant == "authorization_code":
        notes.append("On first use the client opens a browser: sign in at the upstream and approve.")
        if auth.provider == "custom":
            notes.append(f"Register this redirect URI for client {auth.client_id or '(client_id)'} at the upstream "
                         f"OAuth server: {callback_url}")
        else:
            notes.append(f"castproxy registers itself at the upstream with the redirect URI {callback_url}")
    return notes


def connect(args: argparse.Namespace) -> int:
    path = resolve_config_path(args.config)
    try:
        loaded = load_config(path, need_secrets=False)  # a snippet needs no upstream secret
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"castproxy connect: {path} is not valid; fix it (see 'castproxy validate').", file=sys.stderr)
        return 1
    workspaces = loaded.config.workspaces
    if args.workspace not in workspaces:
        known = ", ".join(sorted(workspaces))
        print(f"castproxy connect: no workspace {args.workspace!r} in {loaded.path}; known: {known}", file=sys.stderr)
        return 1
    workspace = workspaces[args.workspace]
    url = f"{loaded.public_url}/mcp/{args.workspace}"
    snippet = render(args.client, args.workspace, url, needs_key=workspace.inbound is not None)
    print(snippet.text)
    notes = [*snippet.notes, *workspace_notes(workspace, loaded.callback_url)]
    identity = loaded.config.server.identity
    if identity is not None:  # company sign-in (castproxy/access): every workspace signs its callers in
        notes.append(f"On first use the client opens a browser: sign in with your company account ({identity.issuer}).")
        notes.append(f"Register this redirect URI for client {identity.client_id} at the identity provider: "
                     f"{loaded.identity_callback_url}")
    for note in notes:
        print(f"# {note}", file=sys.stderr)
    return 0
