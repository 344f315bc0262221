"""Parameter counts of the layers the shipped families are made of (pure).

Batch normalization counts all four of its vectors (scale, shift, moving mean
and moving variance): what Keras's ``count_params()`` counts, and what both
arms of a study count as dense parameters.
"""


def dense(n_in, n_out):
    """A Dense layer with bias."""
    return n_in * n_out + n_out


def conv(kernel, c_in, c_out, dims=2):
    """A convolution with a ``kernel`` wide square (or, with ``dims=1``, 1-D) kernel and bias."""
    return kernel**dims * c_in * c_out + c_out


def conv_no_bias(kernel, c_in, c_out):
    """A square 2-D convolution without bias (it is followed by batch normalization)."""
    return kernel * kernel * c_in * c_out


def depthwise(kernel, channels):
    """A square depthwise convolution (multiplier 1) without bias."""
    return kernel * kernel * channels


def batch_norm(channels):
    """Batch normalization: scale, shift, moving mean and moving variance."""
    return 4 * channels
