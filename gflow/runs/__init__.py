"""The run layer shared by both wings: the run directory (chunk store, fingerprints, claims), the chunk
loop, progress and compile accounting. It imports neither engine (no diffrax, no model code)."""

from .._lazy import lazy_attributes

__getattr__, __dir__ = lazy_attributes(__name__)  # `gflow.runs.<module>` works after a bare `import gflow`
