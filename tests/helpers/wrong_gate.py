"""A deliberately wrong gate derivative for the gradient check to catch (put on PYTHONPATH)."""

from handgrad.grads.lstm import LSTMStep
from handgrad.models.char_rnn import CharRNN


class LSTMStepWithNewCellState(LSTMStep):
    """The classic slip: the forget gate's dF = dC ⊙ C_t (the new cell state) for dC ⊙ C_{t-1}."""

    @staticmethod
    def forward(inputs, state, W_hh, b_hh):
        new_state, (i, f, g, o, _, tanh_c) = LSTMStep.forward(inputs, state, W_hh, b_hh)
        return new_state, (i, f, g, o, new_state[1], tanh_c)


class LSTMWithWrongForgetGate(CharRNN):
    """The char-RNN whose LSTM backward has that slip; its forward is right."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.net.time_step = LSTMStepWithNewCellState()
