"""Package version and the edition of the standard the profiles were generated from."""

__version__ = "0.1.0"

#: Edition of DICOM PS3.15 that ``profiles/generated/`` was built from (checked by the tests).
__ps315_edition__ = "2026c"
