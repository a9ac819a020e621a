"""Result files: ``results.csv``/``results.fits`` (CIGALE-like columns), a best-fit SED file and
a PNG per source."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table
from tqdm.auto import tqdm

from .best_sed import sed_table
from .gridfit import FitResults, SourceFit

__all__ = ["SourceFiles", "file_stem", "write_results", "write_table"]


def file_stem(source_id: str) -> str:
    """A file name stem for ``source_id``: the id itself when it is short and plain ASCII
    (letters, digits, ``-_.``), else a cleaned prefix with ``~`` and a hash of the id, so ids
    like ``a/b`` and ``a_b`` never share files and no name is too long for the file system."""
    plain = all(c.isascii() and (c.isalnum() or c in "-_.") for c in source_id)
    if plain and 0 < len(source_id) <= 100 and not source_id.startswith("."):
        return source_id
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in source_id)
    return f"{cleaned.lstrip('.')[:80]}~{hashlib.sha1(source_id.encode('utf-8')).hexdigest()[:12]}"


WRITE_ROWS = 5_000  # rows formatted at a time: writing stays flat in memory however long the table


def write_table(table: Table, out: Path) -> None:
    """``results.csv`` (UTF-8) and ``results.fits`` (text columns as UTF-8 bytes: FITS strings
    are bytes, and astropy refuses to encode non-ASCII text itself), both written a few thousand
    rows at a time (astropy formats a whole table in memory: +230 MB for 10⁵ rows)."""
    fits_table = table.copy(copy_data=False)
    for name in fits_table.colnames:
        if fits_table[name].dtype.kind == "U":
            fits_table[name] = np.char.encode(np.asarray(fits_table[name]), "utf-8")
    with open(out / "results.csv", "w", encoding="utf-8", newline="") as fh:
        table[:WRITE_ROWS].write(fh, format="ascii.csv")
        for start in range(WRITE_ROWS, len(table), WRITE_ROWS):
            table[start : start + WRITE_ROWS].write(fh, format="ascii.no_header", delimiter=",")
    header = fits.table_to_hdu(fits_table[:0]).header
    header["NAXIS2"] = len(fits_table)
    fits.PrimaryHDU().writeto(out / "results.fits", overwrite=True)
    stream = fits.StreamingHDU(str(out / "results.fits"), header)  # appended to the primary HDU
    for start in range(0, len(fits_table), WRITE_ROWS):
        rows = np.asarray(fits.table_to_hdu(fits_table[start : start + WRITE_ROWS]).data)
        stream.write(np.frombuffer(rows.astype(rows.dtype.newbyteorder(">")).tobytes(), dtype=np.uint8))
    stream.close()


class SourceFiles:
    """Writes one source's files: ``<id>_best_model.fits`` when ``seds`` (CIGALE's
    ``save_best_sed``), ``<id>.png`` when ``plots``, ``<id>_pz.csv`` (P(z)) for a photometric redshift. As ``fit_catalog``'s ``on_fit`` it writes
    each as soon as the fit is made, so no spectrum has to be kept."""

    def __init__(self, out: Path, plots: bool, seds: bool):
        self.out, self.plots, self.seds = out, plots, seds
        self.written = 0

    @property
    def needs_sed(self) -> bool:
        return self.plots or self.seds

    def __call__(self, fit: SourceFit) -> None:
        stem = file_stem(fit.id)
        if fit.pz is not None:  # a photometric redshift's P(z), as photo-z codes save it
            z, p = fit.pz
            Table({"redshift": z, "pz": p}).write(self.out / f"{stem}_pz.csv", overwrite=True)
        if fit.sed is None:
            return
        from .plotting import plot_fit

        if self.seds:
            sed_table(fit).write(self.out / f"{stem}_best_model.fits", overwrite=True)
        if self.plots:
            plot_fit(fit, self.out / f"{stem}.png")
        self.written += 1


def write_results(
    results: FitResults, out_dir: str | Path, *, plots: bool = True, seds: bool = True, progress: bool = True
) -> Path:
    """Write results.csv, results.fits, ``<id>_best_model.fits`` and ``<id>.png`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_table(results.table, out)
    (out / "bands.json").write_text(json.dumps(results.bands, indent=1))
    files = SourceFiles(out, plots, seds)
    todo = [f for f in results.fits if f.sed is not None]
    for fit in tqdm(todo, desc="writing SEDs and plots", unit="src", disable=not progress or not todo):
        files(fit)
    return out
