"""Reporting: MLflow runs -> comparative tables, statistics and plots in results/ (the top layer)."""
