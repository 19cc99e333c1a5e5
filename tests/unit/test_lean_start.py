"""The imports a run skips (pandas through pyarrow, fastapi through Prefect) and what stays
the same: Arrow tables, pandas when someone asks for it, the parameters a flow run stores."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path

from prefect import Flow
from prefect.states import Completed

from catalog_images.lean_start import LeanFlow, lean_flow
from catalog_images.run_sections import DEFAULT_SECTIONS, grouped_parameters
from catalog_images.settings import RunSettings

_PROBE = """
import sys
from catalog_images.lean_start import skip_pyarrow_pandas_probe
import pyarrow as pa
skip_pyarrow_pandas_probe()
schema = pa.schema([("sku", pa.string()), ("row", pa.int64()), ("png", pa.binary()),
                    ("retries", pa.map_(pa.string(), pa.int32()))])
table = pa.Table.from_pylist([{"sku": "A", "row": 1, "png": b"x", "retries": [("429", 2)]},
                              {"sku": None, "row": None, "png": None, "retries": []}], schema)
assert "pandas" not in sys.modules, "pyarrow imported pandas"
assert table.to_pylist()[0]["retries"] == [("429", 2)]
import pandas as pd
assert table.to_pandas().shape == (2, 4)
assert pa.Table.from_pandas(pd.DataFrame({"n": [1, 2]})).num_rows == 2
assert pa.array(pd.Series([1, 2])).to_pylist() == [1, 2]
print("ok")
"""


def test_arrow_tables_are_built_without_pandas_which_still_loads_when_asked_for():
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


class _Colour(Enum):
    RED = "red"


async def _flow_fn(catalog: str, dest: str, providers=None, extra=None):
    return None


def test_lean_flow_stores_the_parameters_prefect_would():
    lean = lean_flow(name="lean", validate_parameters=False)(_flow_fn)
    plain = Flow(fn=_flow_fn, name="plain", validate_parameters=False)
    settings = RunSettings(catalog="c.csv", dest="s3://b/p", concurrency=3,
                           priority_providers=["emulator"], report_path="r.json")
    cases = [
        grouped_parameters(settings.model_dump()),
        {"catalog": "c.csv", "dest": "s3://b/p", **DEFAULT_SECTIONS},  # the model defaults
        {"catalog": Path("/tmp/c.csv"), "dest": "s3://b/p",
         "extra": {"when": datetime(2026, 12, 1, tzinfo=UTC), "cost": Decimal("1.50"),
                   "colour": _Colour.RED, "skus": ("A", "B"), "raw": b"bytes"}},
        {"catalog": "c.csv", "dest": "s3://b/p", "providers": Completed(),
         "extra": object()},  # a state, and a value neither can encode
        {"catalog": "c.csv", "dest": "s3://b/p",
         "extra": {"nan": float("nan"), "inf": float("inf"), "nested": [[{"a": (1, None)}]]}},
    ]
    assert isinstance(lean, LeanFlow)
    for parameters in cases:
        assert lean.serialize_parameters(parameters) == plain.serialize_parameters(parameters)
