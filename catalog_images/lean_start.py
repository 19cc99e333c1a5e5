"""Two imports a run does not need, which its libraries would make on its critical path.

Measured on the project's 2-core machine, in a 3-row run of about 5 s with a running server:
- pyarrow asks, the first time it converts a Python list, whether the list is a pandas
  object, and imports pandas to ask: 0.55-0.65 s of CPU. No module of this product uses
  pandas.
- Prefect serialises a flow run's parameters with fastapi's ``jsonable_encoder``, importing
  fastapi and Starlette into a process that serves nothing: 0.2-0.25 s of CPU.
"""

from __future__ import annotations

import importlib.abc
import math
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from prefect import Flow
from prefect.futures import PrefectFuture
from prefect.states import State
from pydantic import BaseModel
from pydantic_core import to_jsonable_python


def skip_pyarrow_pandas_probe() -> None:
    """Let pyarrow's one probe for pandas find none, unless pandas is already loaded.

    pyarrow remembers the answer of its quiet probe (is this sequence a pandas object?),
    which needs no pandas when nobody has loaded it; a later explicit use (``to_pandas``,
    ``Table.from_pandas``) still imports pandas then. Call it before the process builds its
    first Arrow array and before other threads may import pandas.
    """
    if "pandas" in sys.modules:
        return
    hidden = _PandasHidden()
    sys.meta_path.insert(0, hidden)
    try:
        pa.array([], type=pa.string())  # the probe: answered "no pandas" from now on
    finally:
        sys.meta_path.remove(hidden)


class _PandasHidden(importlib.abc.MetaPathFinder):
    """An import finder under which pandas cannot be imported."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


class LeanFlow(Flow):
    """A Prefect flow whose run parameters are serialised by pydantic, not by fastapi."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """JSON-compatible parameters for the flow run, exactly as Prefect's own method makes
        them: models and JSON-shaped values through pydantic (what fastapi's encoder does
        with them), futures and states as placeholders, anything else by Prefect."""
        serialized: dict[str, Any] = {}
        for key, value in parameters.items():
            if isinstance(value, (PrefectFuture, State)):
                serialized[key] = f"<{type(value).__name__}>"
            elif _json_shaped(value):
                serialized[key] = to_jsonable_python(value, by_alias=True)
            else:
                serialized.update(super().serialize_parameters({key: value}))
        return serialized


def _json_shaped(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is made of JSON's own types and pydantic models only."""
    if depth > 32:
        return False
    if value is None or isinstance(value, (str, bool, int, BaseModel)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_json_shaped(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(name, str) and _json_shaped(item, depth + 1)
                   for name, item in value.items())
    return False


def lean_flow(**options: Any) -> Callable[[Callable[..., Any]], LeanFlow]:
    """``@flow(**options)``, making a ``LeanFlow``."""
    return lambda fn: LeanFlow(fn=fn, **options)
