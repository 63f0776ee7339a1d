"""Pure transforms from raw source rows to canonical incidents.

Each module handles one concern (times, coordinates, categories, identity); :mod:`.clean`
applies them to a chunk and returns ``(incidents, personal, quarantine, report)``.
"""

from crimelens.cleaning.clean import CleanContext, CleanResult, clean_chunk

__all__ = ["CleanContext", "CleanResult", "clean_chunk"]
