"""What a model needs around it to score a picture, as plain numbers (torch-free).

Shared by the torch checkpoint format (``checkpoint.py``) and the ONNX files that
``picaffect export MODEL OUT.onnx`` writes, so that the torch-free predict path can
read a model's input size and output mapping without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..core.scale import CENTRED_MAPPING, RAW_MAPPING

# The mapping of the thesis recipe (raw ratings) and of every other recipe (ratings
# centred on the scale's midpoint 5 and divided by its half-width 4, the thesis's
# future work 9.2.1): rating = output * output_scale + output_offset.
RAW, CENTRED = RAW_MAPPING, CENTRED_MAPPING


@dataclass(frozen=True)
class ModelSpec:
    """How to turn pictures into network inputs and network outputs into 1..9 ratings.

    Inputs: RGB pictures squashed to ``size`` x ``size`` (as the thesis resized),
    uint8 pixels multiplied by ``input_scale``; any further normalisation is part
    of the network. Outputs: ``output * output_scale + output_offset`` on 1..9.
    ``encode`` and ``decode`` work on torch tensors and numpy arrays alike.
    """
    architecture: str
    size: int
    arguments: dict[str, Any] = field(default_factory=dict)
    input_scale: float = 1.0 / 255.0
    output_scale: float = 1.0
    output_offset: float = 0.0

    def encode(self, ratings):
        """1..9 ratings -> what the network is trained to output."""
        return (ratings - self.output_offset) / self.output_scale

    def decode(self, outputs):
        """Network outputs -> 1..9 ratings (unclipped)."""
        return outputs * self.output_scale + self.output_offset

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})
