"""Before the first paid request: does a Gemini-format provider serve the models a run uses?

``GET {base}/v1beta/models/{model}`` (Google's models.get) answers 200 for a model it serves
and 404 NOT_FOUND for one it does not, such as a retired preview ID. A relay without that
endpoint answers 404 for an unknown route, 405, or something that is not Google's error JSON:
it is not blocked, since the check cannot tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from catalog_images.providers.config import ConfigError, ProviderConfig
from catalog_images.providers.http import auth_headers, tls_context
from catalog_images.providers.model_catalog import retired

GEMINI_KINDS = ("gemini", "emulator")
CHECK_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class ModelCheck:
    """The answer about one model: served, not served (``problem``), or not checkable."""

    provider: str
    model: str
    served: bool | None  # None: the provider has no models endpoint we could read
    problem: str | None = None
    note: str | None = None


def model_problem(provider: str, model: str) -> str:
    """The message for a model the provider does not serve, naming a replacement if any."""
    gone = retired(model)
    fix = "set model in the providers file, --model, or the catalog's model column"
    if gone is not None:
        return (f"provider {provider!r}: model {gone.message()} (the provider answers 404 "
                f"NOT_FOUND; {fix}; a relay that still sells the old name may keep it)")
    return f"provider {provider!r} does not serve model {model!r} (404 NOT_FOUND): {fix}"


def _is_model_not_found(response: httpx.Response) -> bool:
    """True for Google's JSON ``{"error": {"status": "NOT_FOUND", ...}}`` 404."""
    try:
        body = response.json()
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and error.get("status") == "NOT_FOUND"


def read_answer(provider: str, model: str, response: httpx.Response) -> ModelCheck:
    """What one models.get answer says about ``model``."""
    if response.status_code == 200:
        return ModelCheck(provider, model, True)
    if response.status_code == 404 and _is_model_not_found(response):
        return ModelCheck(provider, model, False, model_problem(provider, model))
    return ModelCheck(provider, model, None,
                      note=f"models.get answered {response.status_code}; model not checked")


def check_model(config: ProviderConfig, api_key: str | None, model: str, *,
                transport: httpx.BaseTransport | None = None) -> ModelCheck:
    """Ask ``config``'s provider about ``model`` (one GET; no image is paid for)."""
    url = f"{config.base_url}/v1beta/models/{model}"
    timeout = httpx.Timeout(CHECK_TIMEOUT_S, connect=config.connect_timeout_s)
    headers = auth_headers(api_key, config.auth)
    try:
        with httpx.Client(headers=headers, timeout=timeout, transport=transport,
                          verify=tls_context()) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        return ModelCheck(config.name, model, None,
                          note=f"models.get failed ({type(exc).__name__}); model not checked")
    return read_answer(config.name, model, response)


def check_models(wanted: dict[str, tuple[ProviderConfig, set[str]]], *,
                 transport: httpx.BaseTransport | None = None) -> list[ModelCheck]:
    """Check every model each Gemini-format provider will be asked for; raise ConfigError
    naming each model a provider does not serve (and its replacement when Google retired it).

    ``wanted`` maps a provider name to its config and the provider's names of the models.
    """
    checks = []
    for config, models in wanted.values():
        if config.kind not in GEMINI_KINDS:
            continue
        key = config.resolve_api_key()
        checks += [check_model(config, key, model, transport=transport)
                   for model in sorted(models)]
    problems = [check.problem for check in checks if check.problem]
    if problems:
        raise ConfigError("; ".join(problems))
    return checks
