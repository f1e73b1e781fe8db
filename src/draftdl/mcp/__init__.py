"""draftdl for AI agents: an MCP server whose tools call draftdl's own HTTP API.

``draftdl mcp`` serves it on stdin/stdout to an agent host, talking to a draftdl server by URL
(``server.py``); ``/mcp`` serves it over streamable HTTP from the app itself (``http.py``). In
both, every tool is one API request through one ``httpx.AsyncClient`` (``backend.py``), so
validation, errors and the token are exactly the API's.
"""
