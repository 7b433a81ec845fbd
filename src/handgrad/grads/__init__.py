"""Hand-derived backward passes: plain tensor math, one gradient per parameter, no autograd.

One module per model family, the derivation in its docstring: `linear` and `mse` (linear
regression), `activations` and `mlp` (the MLP), `cross_entropy` (the char-RNN's loss),
`scratch_rnn` (the scratch cell), and for torch's fused recurrent layers one module per time step
(`elman_rnn`: nn.RNN, `gru`: nn.GRU, `lstm`: nn.LSTM) and `stacked_rnn`, which runs a step's
backward through time and layer by layer, with dropout, the input and the head.
"""
