"""Hand-derived backward passes: plain tensor math, one gradient per parameter, no autograd.

One module per piece, the derivation's short form in its docstring: `linear` and `mse` (linear
regression), `activations` and `mlp` (the MLP), `cross_entropy` (the language models' loss),
`scratch_rnn` (the scratch cell), for torch's fused recurrent layers one module per time step
(`elman_rnn`: nn.RNN, `gru`: nn.GRU, `lstm`: nn.LSTM) and `stacked_rnn`, which runs a step's
backward through time and layer by layer, with dropout (`rnn_dropout`), the input and the head;
for the Transformer `layernorm`, `attention`, `gelu`, `embedding` and `transformer_stack` (the
block, the stack, the head).

Every derivation step by step, with every shape and its gradient check: docs/derivations/.
"""
