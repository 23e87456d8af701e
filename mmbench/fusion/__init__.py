"""Fusion strategies (see :mod:`mmbench.fusion.base` for the interface)."""

from mmbench.fusion.attention import AttentionFusion
from mmbench.fusion.base import Fusion
from mmbench.fusion.early import EarlyFusion
from mmbench.fusion.gated import GatedFusion
from mmbench.fusion.graph import GraphFusion
from mmbench.fusion.hybrid import HybridFusion
from mmbench.fusion.late import LateFusion

__all__ = ["AttentionFusion", "EarlyFusion", "Fusion", "GatedFusion", "GraphFusion", "HybridFusion", "LateFusion"]
