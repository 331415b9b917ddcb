"""The replay tier drives the real handlers on the sandbox, as the integration tier does."""

from tests.integration.conftest import make_pipeline  # noqa: F401  (a fixture)
