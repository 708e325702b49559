"""The two-layer wing: gradient flow of a two-layer ReLU net under logistic loss, integrated with diffrax.

Data flows config → data → model init → flow (diffrax) → observables → sweep → the run directory
(`gflow.runs`) → plot. Importing this package loads nothing; its modules load JAX/diffrax as needed.
"""

from .._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__)  # `gflow.twolayer.<module>` works after a bare `import gflow`
