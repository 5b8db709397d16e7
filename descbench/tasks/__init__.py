"""Lightning shells around the framework-free core: one LightningModule per task."""
