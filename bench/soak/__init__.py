"""The reliability soak, one module per group of scenarios; run it with
``python -m bench.soak`` (bench/soak/__main__.py says what it does)."""
