"""numba kernels: arrays in, arrays out. One module per algorithm stage; nothing here imports AnnData."""
