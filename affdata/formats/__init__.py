"""Annotation formats: pure parsers (file -> :class:`LabelTable` of numpy columns) and the ABAW
writer. Nothing here touches the store; every parser raises one
:class:`~affdata.errors.LabelFormatError` naming the file and line of the first problem.
"""

from __future__ import annotations

from affdata.formats.abaw import (
    AbawFile,
    read_abaw_task_file,
    scan_abaw,
    write_abaw_task_file,
)
from affdata.formats.abaw_multitask import read_abaw_multitask
from affdata.formats.detect import FORMATS, detect_format, read_labels
from affdata.formats.generic import read_generic
from affdata.formats.openface import read_openface
from affdata.formats.pyfeat import read_pyfeat
from affdata.formats.table import LabelTable

__all__ = [
    "FORMATS",
    "AbawFile",
    "LabelTable",
    "detect_format",
    "read_abaw_multitask",
    "read_abaw_task_file",
    "read_generic",
    "read_labels",
    "read_openface",
    "read_pyfeat",
    "scan_abaw",
    "write_abaw_task_file",
]
