"""Mephisto's AGN model: accretion disk + hot-dust torus + polar dust.

* Disk: the broken power law of Schartmann et al. (2005) used by Fritz et al. (2006) and
  SKIRTOR (Stalevski et al. 2016): λL_λ ∝ λ^1.2 (λ < 0.05 µm... 0.001-0.01 µm), λ^0
  (0.01-0.1 µm), λ^-0.5 (0.1-5 µm), λ^-3 (> 5 µm).
* Torus: a covering fraction ``covering_factor`` of the disk luminosity is re-emitted by hot
  dust with equal luminosity in black bodies of 1500, 1000, 700, 500, 300 and 200 K — a flat
  λL_λ from ~2 to ~20 µm, the shape of clumpy-torus SEDs (Nenkova et al. 2008).
* Polar dust: extinguishes the disk with an SMC law (Pei 1992) of colour excess ``EBV``
  (as SKIRTOR's polar dust in CIGALE); the absorbed energy is re-emitted as a grey body of
  ``temperature`` and ``emissivity`` β (B_ν(T) ν^β).

All luminosities are per unit AGN dust (torus + polar) luminosity, so ``fracAGN`` scales them.
"""

from __future__ import annotations

import numpy as np

from .attenuation import pei92

H_K = 1.438776877e8  # hc/k in Å·K
TORUS_T = (1500.0, 1000.0, 700.0, 500.0, 300.0, 200.0)


def disk_sed(wave: np.ndarray) -> np.ndarray:
    """Unit-luminosity disk L_λ (per Å) on rest ``wave`` (Å)."""
    mic = wave / 1e4
    lam_llam = np.select(
        [mic < 0.001, mic < 0.01, mic < 0.1, mic < 5.0],
        [0.0, (mic / 0.01) ** 1.2, 1.0, (mic / 0.1) ** -0.5],
        (5.0 / 0.1) ** -0.5 * (mic / 5.0) ** -3.0,
    )
    llam = lam_llam / wave
    return llam / np.trapezoid(llam, wave)


def greybody(wave: np.ndarray, temperature: float, beta: float = 0.0) -> np.ndarray:
    """Unit-luminosity L_λ of a modified black body B_ν(T) ν^β."""
    x = np.minimum(H_K / (wave * temperature), 700.0)
    llam = wave ** (-5.0 - beta) / np.expm1(x)
    return llam / np.trapezoid(llam, wave)


def agn_components(
    wave: np.ndarray, covering_factor: float, ebv: float, temperature: float, emissivity: float
) -> dict[str, np.ndarray]:
    """AGN L_λ components on ``wave`` normalised so that torus + polar dust luminosity is 1."""
    disk = disk_sed(wave)
    trans = 10 ** (-0.4 * ebv * pei92(wave / 10.0, "SMC"))
    seen = disk * trans
    polar_lum = np.trapezoid(disk - seen, wave)
    torus = sum(greybody(wave, t) for t in TORUS_T) / len(TORUS_T) * covering_factor
    polar = greybody(wave, temperature, emissivity) * polar_lum
    dust_lum = covering_factor + polar_lum
    if dust_lum <= 0:
        raise ValueError("agn: covering_factor and EBV are both 0, the AGN has no dust emission")
    return {"disk": seen / dust_lum, "torus": torus / dust_lum, "polar": polar / dust_lum}
