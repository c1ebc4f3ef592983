"""`warehouse serve`: the HTTP API, web pages and WebSocket pushes over one Warehouse."""
