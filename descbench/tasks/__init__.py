"""The tasks: one package each (``tasks/<task>/``: definition, spec, LightningModule, outputs, report and
dashboard sections), and the skeleton they share (``definition``, ``runner``, ``datamodule``, ``marking``,
``job_results``)."""
