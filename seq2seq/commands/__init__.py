"""Every command-line entry point, each a thin layer over the library (nothing imports these)."""
