"""Climate tracking: emissions by GPC scope and machine use, computed from stored readings."""
