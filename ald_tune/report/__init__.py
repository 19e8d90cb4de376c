"""Layer 6, the report: the grid's best region (``criterion``), the numbers read from
trial records (``numbers``), one rule's report (``build``; the typed record it returns,
``record``), its tables and figures
(``tables``, ``figures``), its files (``files``), a whole comparison printed, written and logged
(``comparison``), and its rebuild from MLflow alone (``mlflow_rebuild``).

May import: every layer below (config, data, engine, sweeps, tracking). matplotlib and
MLflow load inside the functions that draw or talk to the store.
"""

from ald_tune.report.build import build_report, recommend
from ald_tune.report.files import FILES, markdown, write_report
from ald_tune.report.record import Report

__all__ = ["FILES", "Report", "build_report", "markdown", "recommend", "write_report"]
