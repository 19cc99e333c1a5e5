"""models.get before the first paid request: a retired model stops the run, a relay without
the endpoint does not."""

from __future__ import annotations

import httpx
import pytest

from catalog_images.providers.config import ConfigError
from catalog_images.providers.model_check import check_models

from .wire import KEY, Wire, config, json_response

NOT_FOUND = {"error": {"code": 404, "status": "NOT_FOUND",
                       "message": "models/gemini-3-pro-image-preview is not found for API "
                       "version v1beta, or is not supported for get."}}


def check(wire: Wire, models: set[str], kind: str = "gemini"):
    provider = config(kind, api_key_env="UNIT_KEY")
    return check_models({"unit": (provider, models)}, transport=wire.transport)


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("UNIT_KEY", KEY)


def test_a_served_model_passes_after_one_get_with_the_key():
    wire = Wire(json_response(200, {"name": "models/gemini-3-pro-image"}))
    [result] = check(wire, {"gemini-3-pro-image"})
    assert result.served is True
    assert wire.paths() == ["GET /v1beta/models/gemini-3-pro-image"]
    assert wire.requests[0].headers["x-goog-api-key"] == KEY


def test_a_retired_model_stops_the_run_naming_its_replacement():
    wire = Wire(json_response(404, NOT_FOUND))
    with pytest.raises(ConfigError) as caught:
        check(wire, {"gemini-3-pro-image-preview", "gemini-3-pro-image"})
    message = str(caught.value)
    assert "'gemini-3-pro-image-preview' was shut down on 2026-06-25" in message
    assert "its replacement is 'gemini-3-pro-image'" in message
    assert KEY not in message


def test_an_unknown_model_stops_the_run_too():
    wire = Wire(json_response(404, {"error": {"code": 404, "status": "NOT_FOUND",
                                              "message": "models/typo is not found"}}))
    with pytest.raises(ConfigError, match="does not serve model 'typo'"):
        check(wire, {"typo"})


@pytest.mark.parametrize("answer", [
    httpx.Response(404, text="404 page not found"),  # a relay's router: no such route
    httpx.Response(404, content=b'{"message": "Not Found"}'),  # not Google's error JSON
    httpx.Response(405, text="Method Not Allowed"),
    httpx.Response(401, content=b'{"error": "models.get needs another scope"}'),
    httpx.ConnectError("refused"),
])
def test_a_relay_without_the_endpoint_is_not_blocked(answer):
    [result] = check(Wire(answer), {"gemini-3-pro-image-preview"})
    assert result.served is None and result.problem is None and "not checked" in result.note


def test_other_wire_formats_are_not_asked():
    wire = Wire(json_response(404, NOT_FOUND))
    assert check(wire, {"gemini-3-pro-image-preview"}, kind="openai-images") == []
    assert wire.requests == []
