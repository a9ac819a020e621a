"""Shared fixtures. Tests that read ../shared/data skip only when that folder is absent."""

from pathlib import Path

import pytest

from mephisto_sed.mock import BROAD_BANDS as MOCK_BANDS

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
COSMOS_DIR = SHARED / "cosmos2020_specz"
COSMOS_CAT = COSMOS_DIR / "cosmos_specz_compilation_for_cigale_2.50_z_3.00.txt"
LRD_FITS = SHARED / "kokorev2024_lrd" / "lrd_table_v1.1.fits"

BROAD_BANDS = list(MOCK_BANDS)


@pytest.fixture(scope="session")
def cosmos_dir() -> Path:
    if not COSMOS_DIR.is_dir():
        pytest.skip("../shared/data/cosmos2020_specz is absent (fresh clone outside the workspace)")
    return COSMOS_DIR


@pytest.fixture(scope="session")
def lrd_fits() -> Path:
    if not LRD_FITS.is_file():
        pytest.skip("../shared/data/kokorev2024_lrd is absent (fresh clone outside the workspace)")
    return LRD_FITS


# Test files that start real processes and servers (nats-server, the services, `up`, PyTriton,
# llama.cpp) or fit real catalogues end to end: `-m integration`. Everything else is `-m unit`,
# the seconds-long check to run while editing the core.
INTEGRATION = {
    "test_platform",
    "test_up",
    "test_deploy_nats",
    "test_deploy",
    "test_tracing",
    "test_llm",
    "test_llm_real",
    "test_photoz",
    "test_triton_models",
    "test_cosmos_grid",
    "test_bagpipes_reference",
    "test_cigale_engine",
    "test_estimates",
    "test_cli",
    "test_compose_e2e",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        item.add_marker(pytest.mark.integration if module in INTEGRATION else pytest.mark.unit)
