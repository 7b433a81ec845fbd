"""Hand-derived backward passes: plain tensor math, one gradient per parameter, no autograd."""
