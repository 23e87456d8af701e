"""The Lightning logger of a training run's per-epoch metrics in MLflow, buffered (imported only by neural fits)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from mlflow.entities import Metric
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.utilities import rank_zero_only

from mmbench.evaluation.metrics import metric_key

MAX_METRICS_PER_BATCH = 1000  # MLflow's limit on the metrics of one log_batch request


class BufferedMLFlowLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger`` whose ``log_metrics`` keeps the rows (key, value, timestamp, step: what the
    unbuffered logger writes) and sends them in one ``log_batch`` once ``flush_s`` seconds have passed since the last
    send, and at ``finalize`` (the end of ``fit``, also a failed one). One synchronous store call per epoch and
    logging hook (about 10 ms each with a local SQLite store, a sixth of a BPR epoch on ML-100K:
    ``results/overhead/epoch_logging.md``) becomes one per ``flush_s``; the dashboard lags by at most ``flush_s``.
    ``flush_s`` 0 sends every call at once (the unbuffered behaviour)."""

    def __init__(self, tracking_uri: str, run_id: str, flush_s: float = 10.0) -> None:
        super().__init__(tracking_uri=tracking_uri, run_id=run_id)
        self.flush_s = flush_s
        self.pending: list[Metric] = []
        self._sent_at = time.monotonic()

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        ts = int(time.time() * 1000)
        self.pending += [Metric(metric_key(k), float(v), ts, step or 0) for k, v in metrics.items()]
        if time.monotonic() - self._sent_at >= self.flush_s:
            self.send()

    @rank_zero_only
    def send(self) -> None:
        """Write the kept rows now, in ``log_batch`` calls of at most MLflow's 1,000 metrics."""
        rows, self.pending = self.pending, []
        for s in range(0, len(rows), MAX_METRICS_PER_BATCH):
            self.experiment.log_batch(run_id=self.run_id, metrics=rows[s : s + MAX_METRICS_PER_BATCH])
        self._sent_at = time.monotonic()

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self.send()
        super().finalize(status)
