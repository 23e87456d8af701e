"""User attributes from the dataset's user table (ML-100K: age, gender, occupation) as a numeric vector."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmbench.data.interactions import ItemContent
from mmbench.encoders.base import Encoder


class DemographicsEncoder(Encoder):
    """``numeric`` columns standardised (z-score: mean and population std over the ``fit`` users that have the
    modality, i.e. the training users, all with ``transductive``; a constant column gives 0), then each
    ``categorical`` column one-hot (one column per value seen among those users, values sorted; another value
    gives zeros). ML-100K's defaults give ``[age_z, F, M, <21 occupations>]``, 24 columns. A user lacking any
    of the columns is masked (zero row). The content's ``values`` is the user table (a DataFrame)."""

    fits_content = True

    def __init__(
        self,
        numeric: Sequence[str] = ("age",),
        categorical: Sequence[str] = ("gender", "occupation"),
        transductive: bool = False,
    ) -> None:
        if not numeric and not categorical:
            raise ValueError("DemographicsEncoder: give at least one numeric or categorical column")
        self.numeric, self.categorical = [str(c) for c in numeric], [str(c) for c in categorical]
        self.transductive = transductive

    def _table(self, content: ItemContent) -> pd.DataFrame:
        table = content.values
        if not isinstance(table, pd.DataFrame):
            raise TypeError(
                f"DemographicsEncoder needs a table (the dataset's user table) as {content.modality!r} content, "
                f"got {type(table).__name__}"
            )
        missing = [c for c in self.numeric + self.categorical if c not in table]
        if missing:
            raise ValueError(
                f"DemographicsEncoder: modality {content.modality!r} has no column(s) {missing} "
                f"(columns: {list(table.columns)})"
            )
        return table

    def mask(self, content: ItemContent, item_ids: np.ndarray) -> np.ndarray:
        table = self._table(content)
        return np.asarray(content.mask, bool) & table[self.numeric + self.categorical].notna().all(axis=1).to_numpy()

    def extract(self, content: ItemContent, item_ids: np.ndarray, fit: np.ndarray | None = None) -> np.ndarray:
        table, have = self._table(content), self.mask(content, item_ids)
        fitted = have if fit is None else have & np.asarray(fit, bool)
        if not fitted.any():
            raise ValueError(f"DemographicsEncoder: no user to fit on has {content.modality!r}")
        blocks = []
        for c in self.numeric:
            x = pd.to_numeric(table[c], errors="raise").to_numpy(np.float64)
            mean, std = x[fitted].mean(), x[fitted].std()
            blocks.append(((x - mean) / (std if std > 0 else 1.0))[:, None])
        for c in self.categorical:
            values = table[c].astype(str).to_numpy()
            categories = np.unique(values[fitted])
            blocks.append(values[:, None] == categories[None, :])
        out = np.concatenate(blocks, axis=1).astype(np.float32)
        out[~have] = 0
        return out
