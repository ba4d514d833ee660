"""Experiment tracking on MLflow, lineage and OpenLineage events (the server's side).

Nothing here imports MLflow at import time: ``import mlflow`` costs about a second, so it is
loaded when the first tracked thing happens (or by the server's warm-up thread at start).
"""
