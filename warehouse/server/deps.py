"""What every route module shares: the served Warehouse, the settings, frame responses."""

from __future__ import annotations

import pandas as pd
from fastapi import Request
from starlette.responses import Response

from warehouse.client.wire import ARROW, JSON, frame_to_arrow, frame_to_json, wants_arrow

#: OpenAPI ``responses`` of a route answering a table (JSON records or Arrow).
TABLE_RESPONSES = {200: {"description": "Rows as a JSON array of records, or an Arrow IPC "
                                       "stream when Accept asks for " + ARROW,
                         "content": {JSON: {"schema": {"type": "array",
                                                       "items": {"type": "object"}}},
                                     ARROW: {"schema": {"type": "string",
                                                        "format": "binary"}}}}}


def warehouse(request: Request):
    """The served Warehouse."""
    return request.app.state.warehouse


def settings(request: Request):
    """The server's :class:`~warehouse.server.app.ServerSettings`."""
    return request.app.state.settings


def table_response(request: Request, frame: pd.DataFrame) -> Response:
    """``frame`` as Arrow if the client asks for it, else as JSON records."""
    if wants_arrow(request.headers.get("accept")):
        return Response(frame_to_arrow(frame), media_type=ARROW)
    return Response(frame_to_json(frame), media_type=JSON)


def split_list(value: str | None) -> list[str] | None:
    """A comma-separated query parameter as a list (None when absent or empty)."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None
