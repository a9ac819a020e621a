"""Dust attenuation and extinction laws as pure functions of wavelength in nm (CIGALE's unit).

References: Calzetti et al. (2000), Leitherer et al. (2002), Noll et al. (2009) for the
modified starburst curve, Cardelli, Clayton & Mathis (1989), Pei (1992).
"""

from __future__ import annotations

import numpy as np


def k_calzetti2000(wavelength_nm: np.ndarray) -> np.ndarray:
    """Calzetti et al. (2000) A(λ)/E(B-V)*; defined 120-2200 nm, extrapolated beyond."""
    w = np.asarray(wavelength_nm, dtype=float)
    x = 1e3 / w  # inverse microns
    return np.where(
        w < 630.0,
        2.659 * (-2.156 + 1.509 * x - 0.198 * x**2 + 0.011 * x**3) + 4.05,
        2.659 * (-1.857 + 1.040 * x) + 4.05,
    )


def k_leitherer2002(wavelength_nm: np.ndarray) -> np.ndarray:
    """Leitherer et al. (2002) A(λ)/E(B-V)* for the far UV (91.2-180 nm)."""
    w = np.asarray(wavelength_nm, dtype=float)
    return 5.472 + 0.671e3 / w - 9.218e3 / w**2 + 2.620e6 / w**3


def uv_bump(wavelength_nm: np.ndarray, central_nm: float, fwhm_nm: float, amplitude: float) -> np.ndarray:
    """Drude profile of the 217.5 nm bump (Fitzpatrick & Massa 1990 form, as in CIGALE)."""
    w = np.asarray(wavelength_nm, dtype=float)
    return amplitude * w**2 * fwhm_nm**2 / ((w**2 - central_nm**2) ** 2 + w**2 * fwhm_nm**2)


def starburst_curve(
    wavelength_nm: np.ndarray,
    bump_nm: float = 217.5,
    bump_fwhm_nm: float = 35.0,
    bump_amplitude: float = 0.0,
    powerlaw_slope: float = 0.0,
) -> np.ndarray:
    """Modified starburst A(λ)/E(B-V)*: Leitherer below 150 nm, Calzetti above, times
    (λ/550 nm)^δ, plus the UV bump; negative values kept at 0 (CIGALE's convention)."""
    w = np.asarray(wavelength_nm, dtype=float)
    k = np.where(w < 150.0, k_leitherer2002(np.maximum(w, 91.2)), k_calzetti2000(w))
    k = np.clip(k, 0.0, None) * (w / 550.0) ** powerlaw_slope
    return k + uv_bump(w, bump_nm, bump_fwhm_nm, bump_amplitude)


def ccm89(wavelength_nm: np.ndarray, rv: float = 3.1) -> np.ndarray:
    """Cardelli, Clayton & Mathis (1989) Milky Way A(λ)/E(B-V) = Rv · A(λ)/A(V)."""
    x = 1e3 / np.asarray(wavelength_nm, dtype=float)
    a = np.zeros_like(x)
    b = np.zeros_like(x)
    ir = x < 1.1
    a[ir], b[ir] = 0.574 * x[ir] ** 1.61, -0.527 * x[ir] ** 1.61
    opt = (x >= 1.1) & (x < 3.3)
    y = x[opt] - 1.82
    a[opt] = (
        1
        + 0.17699 * y
        - 0.50447 * y**2
        - 0.02427 * y**3
        + 0.72085 * y**4
        + 0.01979 * y**5
        - 0.77530 * y**6
        + 0.32999 * y**7
    )
    b[opt] = (
        1.41338 * y
        + 2.28305 * y**2
        + 1.07233 * y**3
        - 5.38434 * y**4
        - 0.62251 * y**5
        + 5.30260 * y**6
        - 2.09002 * y**7
    )
    uv = x >= 3.3
    xu = np.minimum(x[uv], 10.0)
    fa = np.where(xu >= 5.9, -0.04473 * (xu - 5.9) ** 2 - 0.009779 * (xu - 5.9) ** 3, 0.0)
    fb = np.where(xu >= 5.9, 0.2130 * (xu - 5.9) ** 2 + 0.1207 * (xu - 5.9) ** 3, 0.0)
    a[uv] = 1.752 - 0.316 * xu - 0.104 / ((xu - 4.67) ** 2 + 0.341) + fa
    b[uv] = -3.090 + 1.825 * xu + 1.206 / ((xu - 4.62) ** 2 + 0.263) + fb
    fuv = xu >= 8.0
    if np.any(fuv):
        xf = xu[fuv] - 8.0
        a_f = -1.073 - 0.628 * xf + 0.137 * xf**2 - 0.070 * xf**3
        b_f = 13.670 + 4.257 * xf - 0.420 * xf**2 + 0.374 * xf**3
        idx = np.flatnonzero(uv)[fuv]
        a[idx], b[idx] = a_f, b_f
    return np.clip(rv * (a + b / rv), 0.0, None)


# Pei (1992) Table 4: (a_i, λ_i [µm], b_i, n_i) and R_V.
_PEI = {
    "SMC": (
        (
            (185.0, 0.042, 90.0, 2.0),
            (27.0, 0.08, 5.50, 4.0),
            (0.005, 0.22, -1.95, 2.0),
            (0.010, 9.7, -1.95, 2.0),
            (0.012, 18.0, -1.80, 2.0),
            (0.030, 25.0, 0.0, 2.0),
        ),
        2.93,
    ),
    "LMC": (
        (
            (175.0, 0.046, 90.0, 2.0),
            (19.0, 0.08, 5.50, 4.5),
            (0.023, 0.22, -1.95, 2.0),
            (0.005, 9.7, -1.95, 2.0),
            (0.006, 18.0, -1.80, 2.0),
            (0.020, 25.0, 0.0, 2.0),
        ),
        3.16,
    ),
}


def pei92(wavelength_nm: np.ndarray, galaxy: str = "SMC") -> np.ndarray:
    """Pei (1992) SMC or LMC extinction A(λ)/E(B-V)."""
    terms, rv = _PEI[galaxy]
    lam = np.asarray(wavelength_nm, dtype=float) / 1e3
    xi = np.zeros_like(lam)
    for a, lam_i, b, n in terms:
        xi += a / ((lam / lam_i) ** n + (lam_i / lam) ** n + b)
    return xi * (1.0 + rv)  # A_λ/A_B · A_B/E(B-V)


def line_law(wavelength_nm: np.ndarray, law: int, rv: float) -> np.ndarray:
    """CIGALE's Ext_law_emission_lines: 1 Milky Way (CCM89), 2 LMC, 3 SMC (Pei 1992)."""
    if law == 1:
        return ccm89(wavelength_nm, rv)
    return pei92(wavelength_nm, "LMC" if law == 2 else "SMC")
