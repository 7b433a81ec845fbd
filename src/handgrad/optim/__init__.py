"""Optimizers: the allowed settings (`bounds`), per-parameter learning rates (`param_groups`) and
the hand-written SGD and Adam (`hand_optimizers`)."""
