"""Input shapes of the shipped families: image and sequence inputs, and the input layers that add a missing
channel axis (pure, but for :func:`input_layers`, which takes the engine's Keras)."""


def spatial(input_shape):
    """``(height, width, channels)`` of an image input; a rank-2 input is one channel."""
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1], 1
    return tuple(input_shape)


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
