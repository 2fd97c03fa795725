"""Labels in the store: import from annotation files, consensus, agreement, ABAW export."""

from affdata.labels.importer import (
    LENGTH_POLICIES,
    FileOutcome,
    LabelImportReport,
    import_labels,
    import_prediction_files,
)

__all__ = ["LENGTH_POLICIES", "FileOutcome", "LabelImportReport", "import_labels", "import_prediction_files"]
