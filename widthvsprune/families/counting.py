"""Parameter-count building blocks shared by the shipped families (pure)."""


def dense(n_in, n_out):
    """A Dense layer with bias."""
    return n_in * n_out + n_out


def conv(kernel, c_in, c_out, dims=2):
    """A convolution with a ``kernel`` wide square (or, with ``dims=1``, 1-D) kernel and bias."""
    return kernel**dims * c_in * c_out + c_out


def spatial(input_shape):
    """``(height, width, channels)`` of an image input; a rank-2 input is one channel."""
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1], 1
    return tuple(input_shape)
