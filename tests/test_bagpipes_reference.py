"""Photometry of single models agrees with bagpipes.model_galaxy (an independent code on the
same BC03/Cloudy/DL07/Inoue grids) within 2% per band, including z > 6 where IGM matters."""

import numpy as np
import pytest

from mephisto_sed.reference import DEFAULT_CASES, compare


@pytest.mark.parametrize("case", DEFAULT_CASES, ids=lambda c: c.name)
def test_photometry_matches_bagpipes(case):
    result = compare(case)
    rel = result["rel_diff"]
    assert np.isfinite(rel).sum() >= 10, "too few bands with flux to compare"
    worst = int(np.nanargmax(np.abs(rel)))
    assert result["max_abs_rel_diff"] < 0.02, (
        f"{case.name}: {result['bands'][worst]} differs by {rel[worst]:+.2%} "
        f"(ours {result['ours'][worst]:.4g} mJy, bagpipes {result['bagpipes'][worst]:.4g} mJy)"
    )


def test_igm_blanks_flux_blueward_of_lyman_alpha():
    # At z = 8 Lyα sits at 1.09 µm: the i and z bands must be (nearly) dark in both codes.
    high_z = [c for c in DEFAULT_CASES if c.redshift >= 8][0]
    result = compare(
        high_z, bands=["subaru.suprime.i", "jwst.nircam.F090W", "jwst.nircam.F150W"], min_flux_fraction=0.0
    )
    ours = result["ours"]
    assert ours[0] < 1e-3 * ours[2]
    assert ours[1] < 0.05 * ours[2]


@pytest.mark.parametrize("z", [0.3, 1.19, 1.5, 2.7, 4.69, 5.5, 7.3, 9.8])
def test_igm_matches_bagpipes_inoue14(z):
    """Our Inoue+14 implementation against bagpipes' own (which builds its table on import)."""
    from bagpipes.models.making.igm_inoue2014 import get_Inoue14_trans

    from mephisto_sed.physics.igm import igm_transmission

    wave = np.arange(1.0, 1215.0, 0.5)
    np.testing.assert_allclose(igm_transmission(wave, z), get_Inoue14_trans(wave, z), atol=1e-9)
