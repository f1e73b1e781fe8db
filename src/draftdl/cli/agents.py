"""``draftdl mcp``: the API as MCP tools for an AI agent host, on stdin/stdout."""

from __future__ import annotations

import click

from draftdl.cli.options import server_options


@click.command("mcp")
@server_options
def mcp_cmd(server: str, token: str | None) -> None:
    """Serve draftdl's tools to an AI agent over MCP (stdio).

    An agent host (Claude Desktop, an IDE, ...) runs this command and talks MCP on its
    standard input and output; each tool call is a request to the draftdl server at
    --server. Logs go to standard error.
    """
    # The SDK loads only for this command: the others start in a blink.
    from draftdl.mcp.server import run_stdio

    run_stdio(server, token)
