"""Reading source files and describing how their columns become canonical incidents.

* :mod:`crimelens.sources.readers` -- chunked readers for CSV (plain, ``.gz``, ``.zip``), Parquet
  and GeoJSON that yield raw string columns with record numbers;
* :mod:`crimelens.sources.mapping` -- the mapping-file format (TOML) and the shipped presets;
* :mod:`crimelens.sources.detect` -- picking a preset from a file's header.
"""

from crimelens.sources.detect import detect_preset
from crimelens.sources.mapping import Mapping, list_presets, load_mapping, load_preset
from crimelens.sources.readers import RawChunk, SourceFile, open_source

__all__ = [
    "Mapping",
    "RawChunk",
    "SourceFile",
    "detect_preset",
    "list_presets",
    "load_mapping",
    "load_preset",
    "open_source",
]
