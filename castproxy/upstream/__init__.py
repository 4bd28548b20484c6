"""Tool call to HTTP request and back: building the request, sending it with aiohttp, mapping the response."""

__all__: list[str] = []
