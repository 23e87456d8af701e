"""The reporting tests' MLflow store (built in tests/helpers/reporting_store.py)."""

from tests.helpers.reporting_store import store  # noqa: F401  (a fixture)
