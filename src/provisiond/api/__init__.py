"""The wire APIs: one package per dialect, mounted by ``app.create_app``."""
