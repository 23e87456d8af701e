"""``mmbench``: the Hydra entry point (``python -m mmbench`` does the same)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from mmbench.config import CONF_DIR, ConfigError, import_target


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> float | None:
    from mmbench.data.grouplens import DataNotFoundError
    from mmbench.data.readers import DataFormatError
    from mmbench.pipeline import format_table, run
    from mmbench.tracking import TrackingError

    try:
        result = run(cfg)
    except (ConfigError, DataNotFoundError, DataFormatError, TrackingError) as e:
        print(f"mmbench: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
    m = result.metrics
    print(format_table(m))
    print(
        f"fit {m['time/fit_s']:.2f}s, evaluation {m['time/eval_val_s'] + m.get('time/eval_test_s', 0):.2f}s, "
        f"split {result.split.fingerprint[:16]}"
    )
    print(f"{import_target(cfg.logger._target_).kind} run id: {result.run_id}")  # conf/logger: MLflow, CSV, ...
    if result.artifact_uri:
        print(f"artifacts: {result.artifact_uri}")
    return result.metrics.get(f"val/{cfg.trainer.monitor}")


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
