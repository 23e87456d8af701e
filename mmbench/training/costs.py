"""Compute cost of a run (the ``costs`` config node): FLOPs of one training step and of scoring 1,000 users, the
fit stage's peak memory, and its energy (codecarbon, offline).

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``, for torch models only, over the forward and
backward pass: torch's formulas for dense matrix products, convolutions and attention (a multiply-add is 2 FLOPs),
sparse x dense products (graph propagation) as 2 FLOPs per stored entry and dense column, and the common element-wise
arithmetic (:data:`POINTWISE`, :data:`REDUCTIONS`) as 1 FLOP per element, so that a dot product written as
``(u * i).sum(-1)`` costs what the same product written as a matmul costs. Other element-wise ops (ReLU, softmax,
dropout), embedding lookups and the optimizer update are not counted: the count is a lower bound. Models that are
not torch modules (EASE, ItemKNN, WMF, the Surprise-style rating models) run numpy / scipy / LAPACK code the counter
cannot see: their FLOPs are left out (not logged, tagged ``costs.flops_method=absent``) rather than counted by a
second, analytic definition that a reader could not tell apart from the measured one in the same column.

Memory is the resident set size (RSS): on Linux the high-water mark is reset at the start of fitting
(``/proc/self/clear_refs``) and read back after it (``VmHWM``), which covers torch's and numpy's allocations alike
(``tracemalloc`` sees only Python's allocator and numpy, not torch tensors). Elsewhere the process-lifetime peak
(``ru_maxrss``) is all there is, and the tag says so.
"""

from __future__ import annotations

import logging
import math
import re
import resource
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mmbench.data.interactions import Interactions
from mmbench.models.base import Recommender

log = logging.getLogger(__name__)

SCORE_USERS = 1000  # cost/score_1k_flops: FLOPs of scoring this many users against every item
_aten = torch.ops.aten
# element-wise arithmetic, 1 FLOP per output element (an embedding dot product written as ``(u * i).sum(-1)`` is then
# 2 FLOPs per multiply-add, as torch's matmul formula counts it); reductions 1 FLOP per input element
POINTWISE = (_aten.add, _aten.sub, _aten.mul, _aten.div, _aten.exp, _aten.log, _aten.sigmoid, _aten.tanh, _aten.pow)
REDUCTIONS = (_aten.sum, _aten.mean)
FLOPS_METHOD = (
    f"torch.utils.flop_counter.FlopCounterMode (torch {torch.__version__.split('+')[0]}): its dense matmul/conv/"
    "attention formulas (2 per multiply-add; sparse x dense: 2 per stored entry x column) + 1 per output of add/sub/"
    "mul/div/exp/log/sigmoid/tanh/pow and per input of sum/mean; forward+backward; other element-wise ops, lookups "
    "and the optimizer not counted"
)


def _pointwise(*args: object, out_shape: tuple[int, ...] = (), **kwargs: object) -> int:
    return math.prod(out_shape) if isinstance(out_shape, (tuple, list, torch.Size)) else 0


def _reduction(shape: object, *args: object, **kwargs: object) -> int:
    return math.prod(shape) if isinstance(shape, (tuple, list, torch.Size)) else 0


def _mm(a: torch.Tensor, b: torch.Tensor, *args: object, out_val: object = None, **kwargs: object) -> int:
    """``a @ b``: 2 x (multiply-adds) with a sparse ``a`` counted over its stored entries, not as dense."""
    if a.layout != torch.strided:
        return 2 * int(a._nnz()) * int(b.shape[-1])
    return 2 * int(a.shape[0]) * int(a.shape[1]) * int(b.shape[1])


def _sparse_addmm(
    bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, *args: object, out_val: object = None, **kwargs: object
) -> int:
    """``torch.sparse.mm(a, b)`` (a sparse ``a``): 2 FLOPs per stored entry of ``a`` and column of ``b``."""
    return _mm(a, b)


_mm._get_raw = _sparse_addmm._get_raw = True  # type: ignore[attr-defined]  # given the tensors, not their shapes
COUNTED = (
    {op: _pointwise for op in POINTWISE}
    | {op: _reduction for op in REDUCTIONS}
    | {_aten.mm: _mm, _aten._sparse_addmm: _sparse_addmm}
)


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs of calling ``fn`` (:data:`FLOPS_METHOD`)."""
    with FlopCounterMode(display=False, custom_mapping=COUNTED) as counter:
        fn()
    return int(counter.get_total_flops())


def _to(batch: object, device: torch.device) -> object:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


@contextmanager
def _restored(model: nn.Module) -> Iterator[None]:
    """Leaves ``model`` as it was: gradients, buffers (batch-norm statistics), train/eval modes, plain attributes
    (counters such as Mult-VAE's anneal step) and the global random state. Parameters are not changed by a
    forward and backward pass. (A deep copy is not possible: some models hold sparse CSR tensors.)"""
    grads = {p: p.grad for p in model.parameters()}
    buffers = {b: b.detach().clone() for b in model.buffers()}
    modes = {m: m.training for m in model.modules()}
    attrs = {m: {k: v for k, v in vars(m).items() if not k.startswith("_")} for m in model.modules()}
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        with torch.no_grad():
            for b, v in buffers.items():
                b.copy_(v)
        for p, g in grads.items():
            p.grad = g
        for m, mode in modes.items():
            m.training = mode
        for m, a in attrs.items():
            m.__dict__.update(a)


def train_step_flops(model: nn.Module, train: Interactions, batch_size: int, seed: int) -> int:
    """FLOPs of one training step of a neural model (``loss`` forward and ``backward``, in training mode) on the
    first batch of its ``train_data``; the model is left as it was (:func:`_restored`)."""
    with _restored(model):
        model.train()
        batch = _to(next(iter(model.train_data(train, batch_size, seed))), model.device)
        return count_flops(lambda: model.loss(batch).backward())


def score_flops(model: Recommender, n_users: int, n: int = SCORE_USERS) -> int:
    """FLOPs of ``model.score`` for ``n`` users against every item, in eval mode without gradients (user ids cycle
    through the ``n_users`` when there are fewer)."""
    users = torch.arange(n) % n_users
    was_training = model.training if isinstance(model, nn.Module) else False
    if isinstance(model, nn.Module):
        model.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: model.score(users.to(model.device)))
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)


def flop_costs(
    model: Recommender, train: Interactions, batch_size: int, seed: int, epochs: int | None
) -> tuple[dict[str, float], dict[str, str]]:
    """``(metrics, tags)``: ``cost/train_step_flops``, ``cost/train_flops`` (the step's count x batches per epoch x
    ``epochs`` run; the last, smaller batch of an epoch counted as full), ``cost/score_1k_flops``, and the tag
    ``costs.flops_method``. For a model that is not a torch module, no metric and the tag says why."""
    if not isinstance(model, nn.Module):
        return {}, {"costs.flops_method": f"absent: {type(model).__name__} is not a torch model (numpy/scipy code)"}
    out = {"cost/score_1k_flops": float(score_flops(model, train.n_users))}
    if model.capabilities.neural:
        step = train_step_flops(model, train, batch_size, seed)
        out["cost/train_step_flops"] = float(step)
        batches = len(model.train_data(train, batch_size, seed))
        if epochs is not None:
            out["cost/train_flops"] = float(step) * batches * epochs
    return out, {"costs.flops_method": FLOPS_METHOD}


_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(key: str) -> float | None:
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return float(m.group(1)) if m else None


def _maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, kB on Linux


@dataclass
class FitMeter:
    """Measures the fit stage (``with meter.measure(): fit(...)``): peak RSS and, with ``energy``, codecarbon's
    energy estimate; ``metrics`` and ``tags`` hold the results afterwards."""

    energy: bool = False
    country_iso_code: str = "USA"
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    process_peak_mb: float = 0.0  # the process's peak RSS before the fit stage (the reset forgets it)
    _warm: threading.Thread | None = field(default=None, repr=False)

    def warm_up(self) -> None:
        """With ``energy``: run codecarbon's hardware detection (about 1.2 s of a single run on the 2-core machine,
        mostly waiting on its CPU and GPU probes) in a background thread now, while the data loads, so that
        :meth:`measure` finds it in codecarbon's per-process cache. A failure there is left to :meth:`measure`,
        which runs the same detection and reports it."""
        if self.energy and self._warm is None:
            self._warm = threading.Thread(target=self._detect_hardware, name="codecarbon-warm-up", daemon=True)
            self._warm.start()

    def _detect_hardware(self) -> None:
        try:
            self._new_tracker()._ensure_hardware_ready()  # codecarbon's own step of start(), cached per process
        except Exception:  # noqa: BLE001 - measure() meets the same error in tracker.start() and reports it
            log.debug("codecarbon hardware warm-up failed", exc_info=True)

    @contextmanager
    def measure(self) -> Iterator[None]:
        if self._warm is not None:
            self._warm.join()  # before the high-water mark is reset: the detection's memory is not the fit's
        self.process_peak_mb = _maxrss_mb()
        start_kb = _status_kb("VmRSS")
        reset = False
        if start_kb is not None:
            try:
                _CLEAR_REFS.write_text("5")  # resets the RSS high-water mark (VmHWM) of this process
                reset = True
            except OSError:
                pass
        tracker = self._energy_tracker() if self.energy else None
        try:
            yield
        finally:
            if tracker is not None:
                self._energy_results(tracker)
            hwm = _status_kb("VmHWM") if reset else None
            if hwm is not None and start_kb is not None:
                self.metrics["memory/fit_peak_rss_mb"] = hwm / 1024
                self.metrics["memory/fit_rss_delta_mb"] = (hwm - start_kb) / 1024
                self.tags["costs.memory_method"] = "RSS high-water mark of the fit stage (VmHWM after clear_refs)"
            else:
                self.tags["costs.memory_method"] = "ru_maxrss: process-lifetime peak RSS only (no fit-stage reset)"

    def peak_rss_mb(self) -> float:
        """The process's peak RSS so far, the part before the fit stage included."""
        return max(self.process_peak_mb, _maxrss_mb())

    def _new_tracker(self):  # noqa: ANN202 - codecarbon is imported only when energy is measured
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its hardware guesses are in the method tag instead
        return OfflineEmissionsTracker(
            country_iso_code=self.country_iso_code,
            save_to_file=False,
            log_level="error",
            tracking_mode="process",
            allow_multiple_runs=True,
        )

    def _energy_tracker(self):  # noqa: ANN202
        tracker = self._new_tracker()
        tracker.start()
        return tracker

    def _energy_results(self, tracker) -> None:  # noqa: ANN001
        import codecarbon

        tracker.stop()
        data = tracker.final_emissions_data
        self.metrics |= {
            "energy/fit_kwh": float(data.energy_consumed),
            "energy/fit_cpu_kwh": float(data.cpu_energy),
            "energy/fit_ram_kwh": float(data.ram_energy),
            "energy/fit_gpu_kwh": float(data.gpu_energy),
            "energy/fit_co2_kg": float(data.emissions),
        }
        self.tags["costs.energy_method"] = energy_method(tracker, codecarbon.__version__)
        self.tags["costs.energy_country"] = str(data.country_iso_code)


def energy_method(tracker: object, version: str) -> str:
    """How codecarbon arrived at its energy figure on this machine, from the hardware objects it chose: CPU mode
    (``intel_rapl`` measured; ``cpu_load`` / ``constant``: a TDP times a load factor, the TDP from its CPU table or a
    generic 4 W per thread), the RAM power model, GPUs read by NVML."""
    parts = [f"codecarbon {version} offline"]
    for hw in getattr(tracker, "_hardware", []):
        kind = type(hw).__name__
        if kind == "CPU":
            mode = getattr(hw, "_mode", "?")
            if mode == "intel_rapl":
                parts.append("CPU: measured (RAPL)")
            else:
                tdp = getattr(hw, "_tdp", None)
                generic = getattr(hw, "_is_generic_tdp", False)
                source = "generic 4 W/thread, CPU model unknown to codecarbon" if generic else "its CPU table"
                parts.append(f"CPU: estimated, mode {mode}, TDP {tdp} W ({source}) x process CPU load")
        elif kind == "RAM":
            forced = getattr(hw, "_force_ram_power", None)
            parts.append(f"RAM: fixed {forced} W" if forced is not None else "RAM: estimated (W per DIMM by size)")
        elif kind == "GPU":
            parts.append("GPU: measured (NVML)")
        else:
            parts.append(f"{kind}: {getattr(hw, '_mode', 'estimated')}")
    return "; ".join(parts)
