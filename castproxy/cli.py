"""Command-line parsing only: each subcommand hands its parsed arguments to the package that owns it.

Exit codes (the product contract): 0 ok, 1 invalid input or failed check, 2 usage error; `diff` adds
3 for breaking changes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from castproxy import __version__

__all__ = ["CLIENT_NAMES", "build_parser", "main"]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

CLIENT_NAMES = ("claude-desktop", "cursor", "windsurf", "cline", "claude-code", "vscode")
TESTSERVER_MODES = ("none", "apikey", "oauth", "oauth-dcr", "jwt")
DEMO_MODES = ("oauth", "jwt")

# subcommand -> "module:function"; the function takes the parsed namespace and returns an exit code.
HANDLERS = {
    "serve": "castproxy.serve.command:serve",
    "validate": "castproxy.config.command:validate",
    "tools": "castproxy.openapi.command:tools",
    "schema": "castproxy.config.command:schema",
    "connect": "castproxy.connect:connect",
    "testserver": "castproxy.testserver.command:testserver",
    "demo": "castproxy.demo:demo",
    "lock": "castproxy.gitops.command:lock",
    "diff": "castproxy.gitops.command:diff",
}
VALIDATE_FORMATS = ("text", "github", "json")
DIFF_FORMATS = ("text", "markdown", "json")


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; this only makes the message say where to look."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n(run '{self.prog} --help' for help)\n")


def _size(text: str) -> int:
    """An argparse type: a byte size like `65536` or `64KiB`, at least 1024."""
    from castproxy.config.model import parse_size  # imported here: most commands never need the model

    try:
        size = parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (got {text!r})") from None
    if size < 1024:
        raise argparse.ArgumentTypeError(f"at least 1024 bytes (got {text!r})")
    return size


def _worker_count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of processes, 1 or more (got {text!r})")
    return int(text)


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default: $CASTPROXY_CONFIG, else ./cast.yaml)",
    )


def _add_log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-format", choices=("json", "text"), type=str.lower,
                        help="json lines (default) or text for people; env CASTPROXY_LOG_FORMAT")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error", "critical"), type=str.lower,
                        help="least severe level written (default info; debug adds a line per tool call, "
                        "whose record is the audit trail); "
                        "env CASTPROXY_LOG_LEVEL")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="castproxy",
        description="Turn REST APIs into MCP servers from one YAML file.",
        epilog="Exit codes: 0 ok, 1 invalid input or failed check, 2 usage error (diff: 3 breaking changes).",
    )
    parser.add_argument("--version", action="version", version=f"castproxy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_config_commands(sub)
    _add_trying_commands(sub)
    _add_review_commands(sub)
    return parser


def _add_config_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`serve`, `validate`, `tools` and `schema`: running and checking a config."""
    serve = sub.add_parser("serve", help="run the proxy", description="Serve every workspace of the config "
                           "as an MCP endpoint at /mcp/WORKSPACE; the config reloads when its file changes.")
    _add_config_option(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument("--no-reload", action="store_true", help="do not watch the config for changes")
    serve.add_argument("--workers", type=_worker_count, metavar="N",
                       help="worker processes sharing the port (default: $CASTPROXY_WORKERS, else 1)")
    _add_log_options(serve)

    validate = sub.add_parser("validate", help="check a config fully",
                              description="Check the config: YAML, schema, secret references, specs and "
                              "operationIds. Prints FILE:LINE:COL: message per problem; exit 1 if any.")
    _add_config_option(validate)
    validate.add_argument("--offline", action="store_true", help="skip network fetches (remote specs)")
    validate.add_argument("--format", choices=VALIDATE_FORMATS, default="text",
                          help="text (FILE:LINE:COL lines, default) | github (workflow commands that annotate "
                          "the PR) | json")

    tools = sub.add_parser("tools", help="list the MCP tools a workspace or a spec exposes",
                           description="Show the tools as MCP clients will see them.")
    tools.add_argument("workspace", nargs="?", help="workspace name from the config")
    tools.add_argument("--spec", metavar="PATH_OR_URL", help="compile one OpenAPI document alone")
    _add_config_option(tools)
    tools.add_argument("--json", action="store_true", help="stable machine-readable output")
    tools.add_argument("--search", metavar="QUERY",
                       help="only the tools that best fit a task in plain words, best first")
    tools.add_argument("--limit", type=int, metavar="N", help="with --search: how many tools (default 10)")
    tools.add_argument("--max-schema-bytes", type=_size, metavar="SIZE",
                       help="with --spec: each tool schema's budget, e.g. 65536 or 64KiB (default 32KiB)")

    sub.add_parser("schema", help="print the config's JSON Schema",
                   description="Print the JSON Schema of cast.yaml (same as schemas/cast.schema.json).")


def _add_trying_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`connect`, `testserver` and `demo`: connecting a client, and trying castproxy without an API of one's own."""
    connect = sub.add_parser("connect", help="print the MCP client snippet for a workspace",
                             description="Print the config snippet an MCP client needs for a workspace.")
    connect.add_argument("workspace", help="workspace name from the config")
    connect.add_argument("--client", choices=CLIENT_NAMES, default="claude-desktop",
                         help="which client (default: claude-desktop)")
    _add_config_option(connect)

    testserver = sub.add_parser("testserver", help="run the bundled test upstream API",
                                description="Items/users REST API with its own auth, for trying castproxy.")
    testserver.add_argument("--mode", choices=TESTSERVER_MODES, default="none", help="auth mode")
    testserver.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    testserver.add_argument("--port", type=int, default=3456, help="listen port (default 3456)")
    testserver.add_argument("--auto-approve", action="store_true",
                            help="oauth modes: approve sign-ins without showing the approval page")
    testserver.add_argument("--redirect-uri", action="append", metavar="URI",
                            help="oauth modes: an allowed redirect URI (repeatable; default: the proxy's "
                            "callback on port 8080)")
    testserver.add_argument("--token-lifetime", type=int, metavar="SECONDS",
                            help="oauth and jwt modes: access token lifetime (default 3600; jwt: 300)")

    demo = sub.add_parser("demo", help="test server (oauth) + proxy on a generated config",
                          description="Start the test server in oauth mode (or --mode jwt) and the proxy in "
                          "front of it.")
    demo.add_argument("--mode", choices=DEMO_MODES, default="oauth",
                      help="oauth: each user signs in (default) | jwt: the proxy logs in at the upstream")
    demo.add_argument("--port", type=int, default=8080, help="proxy port (default 8080)")
    demo.add_argument("--upstream-port", type=int, default=3456, help="test server port (default 3456)")


def _add_review_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """`lock` and `diff`: reviewing the tools a config exposes (castproxy.gitops)."""
    lock = sub.add_parser("lock", help="write cast.lock, the exposed tools as reviewed",
                          description="Write the lock file beside the config (cast.lock for cast.yaml): per "
                          "workspace the spec's digest, per tool its operation and the digest of its definition. "
                          "Commit it with the config.")
    _add_config_option(lock)
    lock.add_argument("--check", action="store_true",
                      help="do not write: exit 1, printing the changes, when the lock is out of date")

    diff = sub.add_parser("diff", help="what changed in the exposed tools, breaking or not",
                          description="Compare the tools a config exposes: the lock against now (no arguments), "
                          "two configs (OLD NEW, each with its own specs), or a git revision against the work "
                          "tree (--git REV). Each change is classed breaking or not.",
                          epilog="Exit codes: 0 no change, 1 changes (or the comparison failed), 2 usage error, "
                          "3 breaking changes.")
    diff.add_argument("configs", nargs="*", metavar="CONFIG", help="OLD.yaml NEW.yaml: compare two configs")
    diff.add_argument("--git", metavar="REV", help="compare the config as of git revision REV with the work tree")
    _add_config_option(diff)
    diff.add_argument("--format", choices=DIFF_FORMATS, default="text",
                      help="text (default) | markdown (a pull request comment) | json")


def _load_handler(spec: str) -> Callable[[argparse.Namespace], int] | None:
    module_name, _, function_name = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, function_name, None)


def _check_diff_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.configs and len(args.configs) != 2:
        parser.error("diff takes two configs (OLD NEW), or none")
    if args.configs and (args.git or args.config):
        parser.error("diff takes OLD NEW, or -c FILE [--git REV], not both")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        _flush_or_silence()  # buffered output still to write: a reader that left fails here, quietly
        return code
    except BrokenPipeError:  # `castproxy tools --spec X | head`: the reader left; no traceback for that
        _flush_or_silence()
        return EXIT_INVALID


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.command == "tools" and not (args.workspace or args.spec):
        parser.error("tools needs a WORKSPACE or --spec PATH_OR_URL")
    if args.command == "tools" and args.workspace and args.spec:
        parser.error("tools takes a WORKSPACE or --spec, not both")
    if args.command == "diff":
        _check_diff_arguments(parser, args)
    if args.command == "tools" and args.limit is not None and (args.search is None or args.limit < 1):
        parser.error("--limit N goes with --search, and N is at least 1")
    if args.command == "tools" and args.search is not None and not args.search.strip():
        parser.error("--search needs a QUERY: the task in plain words")
    handler = _load_handler(HANDLERS[args.command])
    if handler is None:
        print(f"castproxy {args.command}: not implemented yet", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        return EXIT_OK


def _flush_or_silence() -> None:
    """Flush stdout and stderr; one whose reader is gone is pointed at /dev/null, so the interpreter's own
    flush at exit does not print "Exception ignored ... BrokenPipeError" either."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # ValueError: a stream already closed
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
