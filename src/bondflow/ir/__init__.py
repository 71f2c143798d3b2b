"""The intermediate representation: fixed-point types, ops, graph and the golden model (numpy only)."""
from .graph import Graph, TensorSpec
from .ops import Activation, Dense, Flatten, Op, Sigmoid, Softmax, Tanh
from .types import FixedType, Overflow, Rounding

__all__ = ["Graph", "TensorSpec", "Op", "Dense", "Activation", "Softmax", "Sigmoid", "Tanh", "Flatten",
           "FixedType", "Rounding", "Overflow"]
