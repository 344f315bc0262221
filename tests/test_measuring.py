"""Size accounting against numbers worked out by hand: pure, no TensorFlow."""

import gzip

import numpy as np

from widthvsprune import sizes
from widthvsprune.sizes import LayerWeights


def _hand_built():
    # Dense 4 -> 3 with 3 nonzeros, bias 3; Conv 2x2x1 -> 2 (8 weights, 2 nonzeros) at 9 positions.
    dense = np.zeros((4, 3), np.float32)
    dense[0, 0], dense[1, 2], dense[3, 1] = 1.5, -2.0, 0.25
    conv = np.zeros((2, 2, 1, 2), np.float32)
    conv[0, 0, 0, 0], conv[1, 1, 0, 1] = 3.0, 1.0
    return [
        LayerWeights("conv", conv, np.array([0.1, 0.0], np.float32), positions=9),
        LayerWeights("dense", dense, np.array([1.0, 2.0, 3.0], np.float32)),
    ]


def test_sparse_bytes_by_hand():
    # conv: size 8, nnz 2: dense 32; bitmask 1 byte -> 8+1 = 9; CSR: 2 col idx (1 B) + 5 row ptrs (1 B) = 7
    #   -> 8 + min(1, 7) = 9.  bias 2 floats = 8.
    # dense: size 12, nnz 3: dense 48; bitmask 2 -> 12+2 = 14; CSR 3 + 5 = 8 -> 12 + 2 = 14. bias 12.
    assert sizes.kernel_sparse_bytes(_hand_built()[0].kernel) == 9
    assert sizes.kernel_sparse_bytes(_hand_built()[1].kernel) == 14
    assert sizes.sparse_bytes(_hand_built()) == 9 + 8 + 14 + 12


def test_csr_wins_for_a_large_very_sparse_kernel():
    kernel = np.zeros((1000, 100), np.float32)
    kernel[0, :10] = 1.0
    # bitmask 12,500 B; CSR: 10 column indices in 1 B + 1001 row pointers in 1 B = 1011 B.
    assert sizes.kernel_sparse_bytes(kernel) == 4 * 10 + 1011


def test_a_dense_kernel_is_stored_dense():
    assert sizes.kernel_sparse_bytes(np.ones((10, 10), np.float32)) == 400


def test_gzip_bytes_is_the_gzip_of_the_raw_float32_weights():
    layers = _hand_built()
    raw = b"".join(a.astype(np.float32).tobytes() for layer in layers for a in (layer.kernel, layer.bias))
    assert len(raw) == 4 * (8 + 2 + 12 + 3)
    assert sizes.summarize(layers)["gzip_bytes"] == len(gzip.compress(raw, 9, mtime=0))
    zeros = [np.zeros(10_000, np.float32)]
    assert sizes.gzip_bytes(zeros) < 200 < sizes.dense_bytes(10_000)


def test_summary_counts_flops_and_nonzeros_by_hand():
    s = sizes.summarize(_hand_built())
    assert s["total_params"] == 8 + 2 + 12 + 3
    assert s["nonzero_params"] == 2 + 1 + 3 + 3  # one conv bias is zero
    assert s["dense_bytes"] == 4 * 25
    assert s["flops"] == 8 * 9 + 12
    assert s["nonzero_flops"] == 2 * 9 + 3
    assert s["sparsity"] == 1 - 5 / 20


def test_a_kernel_left_dense_counts_in_the_sparsity_of_the_size_point():
    layers = _hand_built()
    layers[1] = LayerWeights("dense", np.ones((4, 3), np.float32), None, pruned=False)
    # conv: 2 of 8 nonzero; the dense output layer: all 12.
    assert sizes.summarize(layers)["sparsity"] == 1 - (2 + 12) / (8 + 12)
