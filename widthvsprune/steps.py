"""Optimizer-step arithmetic shared by the planner, the arms and the engines (pure).

Every count of optimizer steps in widthvsprune comes from these two
functions, so that the arms' compute is matched with one rule.
"""


def ceil_div(a, b):
    """``ceil(a / b)`` for integers."""
    return -(-int(a) // int(b))


def steps_per_epoch(num_examples, batch_size):
    """Optimizer steps of one epoch: ``ceil(num_examples / batch_size)`` (the last batch may be short)."""
    return ceil_div(num_examples, batch_size)
