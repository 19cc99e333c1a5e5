"""The ``catalog-images`` command line."""

import sys

from catalog_images.cli.early_api import launch

# `catalog-images run` in ephemeral mode: Prefect's temporary API starts now, beside our
# imports, instead of after them (cli/early_api.py; a no-op for every other process).
launch(sys.argv)
