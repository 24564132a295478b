"""Hypothesis strategies for conv and pool geometries that tile exactly."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def conv_geometries(draw):
    """``(x_shape, w_shape, stride, pad)`` with a stride that tiles the padded input."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 4))
    f = draw(st.integers(1, 4))
    hh = draw(st.integers(1, 4))
    ww = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    h_out = draw(st.integers(1, 5))
    w_out = draw(st.integers(1, 5))
    h = (h_out - 1) * stride + hh - 2 * pad
    w = (w_out - 1) * stride + ww - 2 * pad
    # A positive input size that still tiles: grow the input by whole strides.
    while h < 1:
        h += stride
    while w < 1:
        w += stride
    return (n, c, h, w), (f, c, hh, ww), stride, pad


@st.composite
def pool_geometries(draw):
    """``(x_shape, pool_height, pool_width, stride)``, windows may overlap or leave gaps."""
    n = draw(st.integers(1, 3))
    c = draw(st.integers(1, 3))
    ph = draw(st.integers(1, 3))
    pw = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    h_out = draw(st.integers(1, 5))
    w_out = draw(st.integers(1, 5))
    return (n, c, (h_out - 1) * stride + ph, (w_out - 1) * stride + pw), ph, pw, stride
