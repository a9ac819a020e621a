"""Mephisto SED: a CIGALE-compatible SED engine and the agents that search model space.

Notebook API::

    import mephisto_sed as ms
    cat = ms.read_catalog("observations.txt")            # CIGALE table, CSV, FITS, VOTable
    cfg = ms.read_pcigale_ini("pcigale.ini")             # or ms.Configuration.from_modules({...})
    results = ms.fit_catalog(cat, cfg)                   # astropy Table, CIGALE-like columns
    ms.plot_fit(results.fits[0], "source.png")
"""

__version__ = "0.1.0"
