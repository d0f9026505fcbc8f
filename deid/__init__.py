"""deid: de-identify DICOM archives per DICOM PS3.15 Annex E."""

import logging

from deid._version import __ps315_edition__, __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["__version__", "__ps315_edition__"]
