"""Parameter counts and input shapes shared by the sequence and image families (pure).

Batch normalization counts all four of its vectors (scale, shift, moving mean
and moving variance): what Keras's ``count_params()`` counts, and what both
arms of a study count as dense parameters.
"""


def conv_no_bias(kernel, c_in, c_out):
    """A square 2-D convolution without bias (it is followed by batch normalization)."""
    return kernel * kernel * c_in * c_out


def depthwise(kernel, channels):
    """A square depthwise convolution (multiplier 1) without bias."""
    return kernel * kernel * channels


def batch_norm(channels):
    """Batch normalization: scale, shift, moving mean and moving variance."""
    return 4 * channels


def sequence(input_shape):
    """``(length, features)`` of a sequence input; a rank-1 input has one feature per step.

    Raises:
        ValueError: for inputs of any other rank.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 1:
        return shape[0], 1
    if len(shape) == 2:
        return shape
    raise ValueError(
        f"Expected a sequence input of shape (length,) or (length, features). Received: input_shape={shape}"
    )


def image(input_shape):
    """``(height, width, channels)`` of an image input; a rank-2 input is one channel.

    Raises:
        ValueError: for inputs of any other rank.
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) == 2:
        return shape + (1,)
    if len(shape) == 3:
        return shape
    raise ValueError(
        f"Expected an image input of shape (height, width) or (height, width, channels). "
        f"Received: input_shape={shape}"
    )


def input_layers(input_shape, keras, target_rank):
    """The input and, when the data lacks the channel axis, a reshape that adds it.

    Args:
        input_shape: the shape of one example.
        keras: the engine's Keras module.
        target_rank: rank of one example the model's first layer expects
            (2 for sequences, 3 for images).

    Returns:
        ``(inputs, x)``: the ``keras.Input`` and the tensor to build on.
    """
    shape = tuple(int(d) for d in input_shape)
    inputs = keras.Input(shape=shape)
    x = inputs
    if len(shape) == target_rank - 1:
        x = keras.layers.Reshape(shape + (1,))(x)
    return inputs, x
