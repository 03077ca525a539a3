"""What ``POST /v1/responses`` stored, read back and deleted: ``GET`` and ``DELETE
/v1/responses/{id}``, and ``GET /v1/responses/{id}/input_items`` (OpenAI's list shape).

A stored response belongs to the key that made it: any other key gets the 404 of an unknown id.
Each of these requests counts against the key's requests per minute (its token, concurrency
and budget limits do not apply: nothing is generated), with the same 429 and ``x-ratelimit-*``
headers as a ``POST``; the access log names the key, and the model of the response found.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response

from ..errors import InvalidRequest, NotFound, RateLimited, Unavailable
from ..limits import count_request
from ..observe import failed
from ..recent import CURRENT
from ..store import KeyRecord
from ..store.responses import ResponseStore, StoredResponse
from .deps import Gateway, gateway
from .responses_input import to_input

router = APIRouter()


def response_store(gw: Gateway) -> ResponseStore:
    if gw.responses is None:
        raise Unavailable("Stored responses are not available on this gateway.")
    return gw.responses


async def _caller(request: Request, response: Response) -> tuple[ResponseStore, KeyRecord]:
    """The calling key, named on the request's record and counted against its requests per
    minute (the rate headers go on ``response``)."""
    gw = gateway(request)
    key = await gw.auth.authenticate(request.headers, request.client.host if request.client else "")
    record = CURRENT.get()
    if record is not None:
        record.key_id, record.key_name = key.id, key.name
    try:
        response.headers.update(await count_request(gw.limiter, key))
    except RateLimited as exc:
        gw.metrics.rate_limited.labels(exc.code or "").inc()
        if record is not None:
            failed(record, exc)
        raise
    return response_store(gw), key


async def _found(
    store: ResponseStore, response_id: str, key: KeyRecord, *, with_input: bool = False
) -> StoredResponse:
    found = await store.get(response_id, key.id, with_input=with_input)
    if found is None:
        raise NotFound(f"No response with id '{response_id}' found.", param="response_id")
    record = CURRENT.get()
    if record is not None:
        record.model = found.model
    return found


@router.get("/v1/responses/{response_id}", summary="Retrieve a stored response")
async def get_response(response_id: str, request: Request, response: Response) -> dict[str, Any]:
    store, key = await _caller(request, response)
    return (await _found(store, response_id, key)).response


@router.delete("/v1/responses/{response_id}", summary="Delete a stored response")
async def delete_response(response_id: str, request: Request, response: Response) -> dict[str, Any]:
    store, key = await _caller(request, response)
    if not await store.delete(response_id, key.id):
        raise NotFound(f"No response with id '{response_id}' found.", param="response_id")
    return {"id": response_id, "object": "response.deleted", "deleted": True}


@router.get("/v1/responses/{response_id}/input_items", summary="List a stored response's input items")
async def list_input_items(
    response_id: str,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """The input items of the response's own turn (the items the request sent, ``item_reference``s
    resolved), newest first unless ``order=asc``; ``after`` an item id pages on."""
    store, key = await _caller(request, response)
    found = await _found(store, response_id, key, with_input=True)
    items = [listed(item) for item in _input_items(found)]
    if order == "desc":
        items.reverse()
    start = 0
    if after is not None:
        at = next((i for i, item in enumerate(items) if item.get("id") == after), None)
        if at is None:
            raise InvalidRequest(
                f"No input item with id '{after}' in response '{response_id}'.", param="after"
            )
        start = at + 1
    page = items[start : start + limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": start + limit < len(items),
    }


def _input_items(found: StoredResponse) -> list[dict[str, Any]]:
    if found.input is not None:
        return found.input
    # stored before input items were kept: its conversation up to the answer, numbered
    items = to_input((found.history or [])[:-1])
    return [{**item, "id": f"{found.id}_input_{i}"} for i, item in enumerate(items)]


def listed(item: dict[str, Any]) -> dict[str, Any]:
    """A stored input item as OpenAI lists one: a message's text as parts, and a status."""
    kind = item.get("type", "message")
    out = {**item, "type": kind}
    if kind in ("message", "function_call", "function_call_output"):
        out.setdefault("status", "completed")
    if kind != "message":
        return out
    content = item.get("content")
    if item.get("role") != "assistant":
        if isinstance(content, str):
            out["content"] = [{"type": "input_text", "text": content}]
        return out
    parts = [{"type": "output_text", "text": content}] if isinstance(content, str) else content or []
    out["content"] = [
        {"annotations": [], "logprobs": [], **p}
        if isinstance(p, dict) and p.get("type") == "output_text"
        else p
        for p in parts
    ]
    return out
