"""Regenerate mephisto_sed/data/example_catalogue.txt: 8 mock galaxies (known truth in
example_truth.csv) drawn from the default configuration, in 12 broad bands, with noise."""

from pathlib import Path

from mephisto_sed.config import DEFAULT_CONFIG, Configuration
from mephisto_sed.mock import BROAD_BANDS, make_mock_catalog

BANDS = [*BROAD_BANDS, "hst.acs.wfc.F814W"]

if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "mephisto_sed" / "data"
    cat, truth = make_mock_catalog(Configuration.from_modules(DEFAULT_CONFIG), BANDS, 8, seed=42, z_range=(0.3, 3.0))
    cat.write_cigale(out / "example_catalogue.txt")
    truth.write(out / "example_truth.csv", format="ascii.csv", overwrite=True)
    print(f"wrote {out}/example_catalogue.txt and example_truth.csv")
