"""What a run's parameters may reach on the worker: decided by the worker's environment.

Whoever can start a deployment run (the UI form, the API) chooses its parameters, but not
the worker's configuration. So in a deployment run (or with CATALOG_IMAGES_UNTRUSTED_PARAMETERS
set) every parameter that reaches into the worker must be named by an allowlist the operator
sets in the worker's environment: a providers file (its URLs and key names), a credentials
block, a local write path, a Dask scheduler, a shard deployment. A command-line run is the
shell user's own and is not restricted (they can already do all of this). See docs/security.md.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from catalog_images.providers.config import (
    PROVIDERS_FILE_ENV,
    ProviderConfig,
    builtin_presets,
)
from catalog_images.run_sections import SECTION_OF
from catalog_images.settings import SHARD_DEPLOYMENT, RunSettings, SettingsError

UNTRUSTED_ENV = "CATALOG_IMAGES_UNTRUSTED_PARAMETERS"
PROVIDERS_FILES_ENV = "CATALOG_IMAGES_ALLOWED_PROVIDERS_FILES"
KEY_ENV_PATTERN_ENV = "CATALOG_IMAGES_API_KEY_ENV_PATTERN"
REPORT_DIR_ENV = "CATALOG_IMAGES_REPORT_DIR"
DASK_ADDRESSES_ENV = "CATALOG_IMAGES_ALLOWED_DASK_ADDRESSES"
AWS_BLOCKS_ENV = "CATALOG_IMAGES_ALLOWED_AWS_CREDENTIALS_BLOCKS"
AWS_BLOCK_ENV = "CATALOG_IMAGES_AWS_CREDENTIALS_BLOCK"  # the worker's own block
SHARD_DEPLOYMENTS_ENV = "CATALOG_IMAGES_ALLOWED_SHARD_DEPLOYMENTS"
CATALOG_ROOTS_ENV = "CATALOG_IMAGES_CATALOG_ROOTS"
DEFAULT_KEY_ENV_PATTERN = r"[A-Z][A-Z0-9_]*_API_KEY"
# Storage and cloud credentials are never provider keys, whatever the pattern says.
CREDENTIAL_NAMES = re.compile(r"^(AWS_|AZURE_|GOOGLE_APPLICATION|PREFECT_)|S3|SECRET_ACCESS|"
                              r"SESSION_TOKEN", re.IGNORECASE)


class ParameterRefused(SettingsError):
    """A run parameter reaches into the worker without the operator's allowlist naming it."""


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _listed(env: Mapping[str, str], name: str, sep: str = ",") -> list[str]:
    return [item.strip() for item in (env.get(name) or "").split(sep) if item.strip()]


def parameters_untrusted(env: Mapping[str, str] | None = None) -> bool:
    """True in a deployment run (parameters from a form or the API), or when forced by env."""
    env = os.environ if env is None else env
    if _truthy(env.get(UNTRUSTED_ENV)):
        return True
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return bool(context and context.flow_run and context.flow_run.deployment_id)


def _real(path: str) -> Path | None:
    """``path`` with ``~``, symlinks and '..' resolved; None when it cannot be (a NUL byte)."""
    try:
        return Path(path).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):
        return None


def _inside(path: str, roots: list[str]) -> bool:
    """Whether ``path`` (symlinks and '..' resolved) lies in one of ``roots``."""
    real = _real(path)
    return real is not None and any(
        (root_real := _real(root)) is not None and real.is_relative_to(root_real)
        for root in roots)


def _in_form(name: str) -> str:
    """Where a deployment run's user sets RunSettings' field ``name``: its run form section
    and name, as in the UI and in prefect.yaml (``providers.providers_file``)."""
    return f"{SECTION_OF[name]}.{name}" if name in SECTION_OF else name


def _refusals(settings: RunSettings, env: Mapping[str, str]) -> list[str]:
    """One line per parameter that the worker's allowlists do not name."""
    refused = []
    if settings.providers_file:
        allowed = [*_listed(env, PROVIDERS_FILES_ENV, os.pathsep), env.get(PROVIDERS_FILE_ENV)]
        real = _real(settings.providers_file)
        if real is None or real not in {_real(p) for p in allowed if p}:
            refused.append(f"{_in_form('providers_file')} is not one the worker allows (list "
                           f"it in {PROVIDERS_FILES_ENV} on the worker, or leave it out)")
    if settings.report_path and not _inside(settings.report_path,
                                            _listed(env, REPORT_DIR_ENV, os.pathsep)):
        refused.append(f"{_in_form('report_path')} is outside the folder the worker allows "
                       f"for reports ({REPORT_DIR_ENV}); the report is in the bucket anyway")
    if settings.dask_address and settings.dask_address not in _listed(env, DASK_ADDRESSES_ENV):
        refused.append(f"{_in_form('dask_address')} is not a scheduler the worker allows "
                       f"({DASK_ADDRESSES_ENV})")
    blocks = [*_listed(env, AWS_BLOCKS_ENV), env.get(AWS_BLOCK_ENV)]
    if settings.aws_credentials_block and settings.aws_credentials_block not in blocks:
        refused.append(f"{_in_form('aws_credentials_block')} is not a block the worker allows "
                       f"({AWS_BLOCKS_ENV})")
    shard_deployments = [SHARD_DEPLOYMENT, *_listed(env, SHARD_DEPLOYMENTS_ENV)]
    if settings.shards > 1 and settings.shard_deployment not in shard_deployments:
        refused.append(f"{_in_form('shard_deployment')} is not one the worker allows "
                       f"({SHARD_DEPLOYMENTS_ENV})")
    catalog_roots = _listed(env, CATALOG_ROOTS_ENV, os.pathsep)
    if (catalog_roots and not settings.catalog.startswith("s3://")
            and not _inside(settings.catalog, catalog_roots)):
        refused.append(f"catalog is a local path outside the worker's catalog folders "
                       f"({CATALOG_ROOTS_ENV})")
    return refused


def check_parameters(settings: RunSettings, env: Mapping[str, str] | None = None) -> None:
    """Refuse, before anything is read or sent, the parameters no worker allowlist names.

    Only for untrusted parameters (see parameters_untrusted); the message names each refused
    parameter and the worker variable that would allow it, never the value's target.
    """
    env = os.environ if env is None else env
    if not parameters_untrusted(env):
        return
    refused = _refusals(settings, env)
    if refused:
        raise ParameterRefused("run parameters refused by the worker: " + "; ".join(refused))


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def key_problem(config: ProviderConfig, untrusted: bool,
                env: Mapping[str, str] | None = None) -> str | None:
    """Why ``config`` may not send the key it names, or None.

    A storage or cloud credential is never a provider key. With untrusted parameters a key
    variable must match the worker's pattern (default: names ending in _API_KEY), and a
    preset's key variable only goes to that preset's host.
    """
    env = os.environ if env is None else env
    name = config.api_key_env
    if not name:
        return None
    presets = builtin_presets()
    own = presets.get(config.name, {})
    if own.get("api_key_env") == name and _host(own.get("base_url", "")) == _host(
            config.base_url):
        return None  # the worker's own preset, unchanged where it matters
    if CREDENTIAL_NAMES.search(name):
        return f"api_key_env {name} is a storage or cloud credential, never a provider key"
    if not untrusted:
        return None
    pattern = env.get(KEY_ENV_PATTERN_ENV) or DEFAULT_KEY_ENV_PATTERN
    if not re.fullmatch(pattern, name):
        return (f"api_key_env {name} does not match the worker's pattern for key names "
                f"({KEY_ENV_PATTERN_ENV}, default {DEFAULT_KEY_ENV_PATTERN})")
    hosts = {_host(p["base_url"]) for p in presets.values() if p.get("api_key_env") == name}
    if hosts and _host(config.base_url) not in hosts:
        return f"api_key_env {name} belongs to another host than this provider's base_url"
    return None


def check_provider_keys(configs: list[ProviderConfig],
                        env: Mapping[str, str] | None = None) -> None:
    """Refuse, before any key is read, a provider that would send a key where it may not."""
    untrusted = parameters_untrusted(env)
    problems = [f"provider {c.name!r}: {p}" for c in configs
                if (p := key_problem(c, untrusted, env))]
    if problems:
        raise ParameterRefused("; ".join(problems))
