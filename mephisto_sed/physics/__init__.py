"""Pure physics: grids, star-formation histories, attenuation laws, IGM, AGN. No I/O beyond
reading the packaged physics grids; no servers."""
