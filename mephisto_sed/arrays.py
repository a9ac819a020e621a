"""NumPy arrays as fields of typed records: validated from lists, written as lists of plain numbers
(pydantic v2 annotations; to type checkers they stay ``np.ndarray``)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

__all__ = ["FloatArray", "BoolArray"]

FloatArray = Annotated[
    np.ndarray,
    PlainValidator(lambda v: np.asarray(v, dtype=float)),
    PlainSerializer(lambda a: [float(x) for x in a]),
    WithJsonSchema({"type": "array", "items": {"type": "number"}}),
]
BoolArray = Annotated[
    np.ndarray,
    PlainValidator(lambda v: np.asarray(v, dtype=bool)),
    PlainSerializer(lambda a: [bool(x) for x in a]),
    WithJsonSchema({"type": "array", "items": {"type": "boolean"}}),
]
