"""Hydra sweeper plugin running Optuna studies for mmbench (``hydra/sweeper=mmbench_optuna``)."""
