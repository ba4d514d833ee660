"""Executors run claimed runs: ``local`` (default, warm runner processes) and, later, ``dask``."""
