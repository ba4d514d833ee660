"""Production jobs: parameterized notebooks run headlessly by papermill."""
