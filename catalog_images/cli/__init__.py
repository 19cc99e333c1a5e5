"""The ``catalog-images`` command line."""
