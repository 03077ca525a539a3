"""``GET /v1/models`` and ``GET /v1/models/{id}``: what the key may use, as OpenAI lists it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..errors import ModelNotFound
from ..upstreams.base import ModelInfo
from .deps import gateway

router = APIRouter()


def _model(m: ModelInfo) -> dict[str, Any]:
    return {"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}


@router.get("/v1/models", summary="List the models this key may use")
async def list_models(request: Request) -> dict[str, Any]:
    gw = gateway(request)
    key = await gw.auth.authenticate(request.headers, request.client.host if request.client else "")
    models = [m for m in await gw.router.models() if key.allows(m.id)]
    return {"object": "list", "data": [_model(m) for m in models]}


@router.get("/v1/models/{model_id:path}", summary="Retrieve one model")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    gw = gateway(request)
    key = await gw.auth.authenticate(request.headers, request.client.host if request.client else "")
    for m in await gw.router.models():
        if m.id == model_id and key.allows(m.id):
            return _model(m)
    raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
