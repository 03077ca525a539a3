"""``/v1/models`` through the SDK."""

from __future__ import annotations

import openai
import pytest

from .helpers import Env


def test_list_models(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    ids = [m.id for m in models]
    assert "grok-4.3" in ids and "grok-3-mini" in ids
    assert all(m.object == "model" and m.owned_by == "xai" and m.created > 0 for m in models)


def test_retrieve_model(client: openai.OpenAI) -> None:
    m = client.models.retrieve("grok-4.3")
    assert (m.id, m.object, m.owned_by) == ("grok-4.3", "model", "xai")


def test_retrieve_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("grok-99")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


def test_models_need_a_key(env: Env) -> None:
    with pytest.raises(openai.AuthenticationError):
        env.client("wrong").models.list()
