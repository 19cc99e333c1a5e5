"""The run form's sections: RunSettings' fields grouped for the flow's parameters.

The refresh flow takes ``catalog`` and ``dest`` plus one parameter per section, so the
Prefect UI shows a grouped form. Each section model is built from RunSettings' own fields
(annotation, default, bounds, description), so a parameter is still declared once, there;
the flow flattens the sections back into RunSettings, which validates and names the field.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, create_model, field_validator

from catalog_images.settings import RunSettings, SettingsError

TOP_LEVEL = ("catalog", "dest")  # "catalog and destination": the flow's own two parameters

# section parameter -> (model name, title, description, RunSettings fields in form order)
SECTIONS: Mapping[str, tuple[str, str, str, tuple[str, ...]]] = MappingProxyType({
    "providers": ("ProvidersAndRouting", "Providers and routing",
                  "Which providers and model generate the images, and how hard they are pushed",
                  ("provider", "fallback_providers", "priority_providers", "model",
                   "providers_file", "concurrency", "max_attempts", "breaker_cooldown_s",
                   "max_provider_wait_s", "max_retry_hint_s", "row_deadline_s")),
    "budget": ("Budget", "Budget",
               "The spend cap, and the approval a run costing more than a threshold waits for",
               ("max_cost_usd", "approve_above_usd", "approval_timeout_s")),
    "batch": ("BatchOptions", "Batch mode",
              "Standard requests, or Gemini Batch Mode: half price, results within 24 h",
              ("mode", "batch_rows", "batch_deadline_s", "batch_poll_s")),
    "scale_out": ("ScaleOut", "Scale-out",
                  "Rows per task, shards over workers or Dask, and rate limits shared "
                  "through Prefect", ("chunk_size", "shards", "shard_deployment", "dask_address",
                              "global_limits")),
    "output": ("OutputOptions", "Rows and output",
               "Which rows are regenerated, the prompt, what a wrong-shaped image becomes, "
               "the report and the summary's links",
               ("prompt_template", "force", "force_skus", "wrong_shape", "report_path",
                "link_expiry_s", "aws_credentials_block")),
})


def _field(name: str):
    """A copy of RunSettings' field ``name``, titled by its name (the CLI's and YAML's)."""
    field = copy.copy(RunSettings.model_fields[name])
    field.title = name
    if field.default_factory is list:  # shown as an empty list in the form, not left blank
        field.json_schema_extra = {"default": []}
    return field


def _section_model(model_name: str, title: str, names: tuple[str, ...]):
    """A frozen pydantic model of RunSettings' fields ``names``."""
    fields: dict[str, Any] = {n: (RunSettings.model_fields[n].annotation, _field(n))
                              for n in names}
    lists = [n for n in names if RunSettings.model_fields[n].default_factory is list]
    validators = {"_none_is_no_names": field_validator(*lists, mode="before")(
        lambda cls, value: [] if value is None else value)} if lists else {}
    return create_model(  # type: ignore[call-overload]
        model_name, __config__=ConfigDict(extra="forbid", frozen=True, title=title),
        __doc__=f"The run form's section {title!r}: {', '.join(names)}.",
        __module__=__name__, __validators__=validators, **fields)


SECTION_MODELS: Mapping[str, type[BaseModel]] = MappingProxyType(
    {section: _section_model(spec[0], spec[1], spec[3]) for section, spec in SECTIONS.items()})
ProvidersAndRouting = SECTION_MODELS["providers"]
Budget = SECTION_MODELS["budget"]
BatchOptions = SECTION_MODELS["batch"]
ScaleOut = SECTION_MODELS["scale_out"]
OutputOptions = SECTION_MODELS["output"]
DEFAULT_SECTIONS: Mapping[str, BaseModel] = MappingProxyType(
    {section: model() for section, model in SECTION_MODELS.items()})
SECTION_OF: Mapping[str, str] = MappingProxyType(
    {name: section for section, spec in SECTIONS.items() for name in spec[3]})


def section_description(section: str) -> str:
    """What the run form says about parameter ``section``."""
    return SECTIONS[section][2]


def _section_values(section: str, value: Any) -> dict[str, Any]:
    """A section's values as given (a model, a mapping or None); misplaced names refused."""
    if value is None:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if not isinstance(value, Mapping):
        raise SettingsError(f"invalid run settings: {section}: expected an object of "
                            f"settings, got {type(value).__name__}")
    values = dict(value)
    for name in values:
        if SECTION_OF.get(name, section) != section:
            raise SettingsError(f"invalid run settings: {section}.{name}: {name} belongs in "
                                f"the {SECTION_OF[name]} section; move it there")
    return values


def flat_parameters(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The flow's parameters (catalog, dest and sections) as RunSettings' flat fields.

    Nothing is validated here but where a name is: RunSettings validates the values and
    names the field (an unknown name is refused there too).
    """
    flat = {name: parameters.get(name) for name in TOP_LEVEL}
    for section in SECTIONS:
        flat.update(_section_values(section, parameters.get(section)))
    return flat


def grouped_parameters(flat: Mapping[str, Any]) -> dict[str, Any]:
    """RunSettings' flat fields (all or some) as the flow's parameters: catalog, dest and
    one dict per section that has a value. An unknown name raises SettingsError."""
    unknown = [name for name in flat if name not in TOP_LEVEL and name not in SECTION_OF]
    if unknown:
        raise SettingsError(f"invalid run settings: no such setting {', '.join(unknown)}")
    grouped: dict[str, Any] = {name: flat[name] for name in TOP_LEVEL if name in flat}
    for name, value in flat.items():
        if name in SECTION_OF:
            grouped.setdefault(SECTION_OF[name], {})[name] = value
    return grouped


F = TypeVar("F", bound=Callable[..., Any])


def documented_by_sections(fn: F) -> F:
    """Append an ``Args:`` section describing each of ``fn``'s parameters: a RunSettings
    field by its own description, a section by its title and description.

    Prefect reads parameter descriptions from the docstring (the run form shows them), so
    apply this below ``@flow``; the descriptions are declared once, in RunSettings and here.
    """
    fields = RunSettings.model_fields
    described = {name: fields[name].description for name in TOP_LEVEL}
    described.update({section: section_description(section) for section in SECTIONS})
    lines = [f"    {name}: {described[name]}"
             for name in inspect.signature(fn).parameters if name in described]
    fn.__doc__ = "\n\n".join([inspect.cleandoc(fn.__doc__ or ""), "Args:\n" + "\n".join(lines)])
    return fn
