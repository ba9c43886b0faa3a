"""Code generator of aiter-mha for CUDA: the instance table and its renderers."""
