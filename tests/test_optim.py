"""Update rules (xpnn.optim): the assignment's published checks, state, dtypes, errors.

The expected arrays are the ones in the CS231n FullyConnectedNets notebook ("Update
rules" and "RMSProp and Adam" cells), written to 8 decimals: a correct update matches
them within 5e-9 (the rounding), on every backend. The notebook also prints the
relative error of a correct solution against those rounded arrays (for example
``next_w error:  1.1395691798535431e-07`` for Adam, the same in two independent public
copies); the update must reproduce that number too, which pins it far below the
rounding of the arrays.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpnn
from xpnn._backend import backend_name, device_of
from xpnn.gradient_check import rel_error
from xpnn.optim import adam, rmsprop, sgd, sgd_momentum

N, D = 4, 5
W = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
DW = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "rmsprop": rmsprop, "adam": adam}
STATE = {"sgd": [], "sgd_momentum": ["velocity"], "rmsprop": ["cache"], "adam": ["m", "v"]}


def _np(a):
    return xpnn.to_numpy(a)


def _assert_published(actual, expected, printed_error):
    """Equal to an array written to 8 decimals, with the relative error the notebook prints."""
    np.testing.assert_allclose(_np(actual), expected, rtol=0, atol=5e-9)
    np.testing.assert_allclose(rel_error(expected, actual), printed_error, rtol=1e-6)


def _other_backend(bk, host):
    """``host`` on a backend other than the one under test."""
    return xpnn.to_backend(host, bk.other_backend())


def test_sgd_momentum_matches_the_notebook(bk):
    v = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-3, "velocity": bk.asarray(v)}
    next_w, returned = sgd_momentum(bk.asarray(W), bk.asarray(DW), config=config)
    expected_next_w = np.asarray(
        [
            [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
            [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
            [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
            [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096],
        ]
    )
    expected_velocity = np.asarray(
        [
            [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
            [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
            [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
            [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096],
        ]
    )
    assert returned is config
    _assert_published(next_w, expected_next_w, 8.882347033505819e-09)
    _assert_published(config["velocity"], expected_velocity, 4.269287743278663e-09)


def test_rmsprop_matches_the_notebook(bk):
    cache = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "cache": bk.asarray(cache)}
    next_w, _ = rmsprop(bk.asarray(W), bk.asarray(DW), config=config)
    expected_next_w = np.asarray(
        [
            [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
            [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
            [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
            [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619],
        ]
    )
    expected_cache = np.asarray(
        [
            [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
            [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
            [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
            [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926],
        ]
    )
    _assert_published(next_w, expected_next_w, 9.524687511038133e-08)
    _assert_published(config["cache"], expected_cache, 2.6477955807156126e-09)


def test_adam_matches_the_notebook(bk):
    m = np.linspace(0.6, 0.9, num=N * D).reshape(N, D)
    v = np.linspace(0.7, 0.5, num=N * D).reshape(N, D)
    config = {"learning_rate": 1e-2, "m": bk.asarray(m), "v": bk.asarray(v), "t": 5}
    next_w, _ = adam(bk.asarray(W), bk.asarray(DW), config=config)
    expected_next_w = np.asarray(
        [
            [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
            [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
            [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
            [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459],
        ]
    )
    expected_v = np.asarray(
        [
            [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
            [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
            [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
            [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966],
        ]
    )
    expected_m = np.asarray(
        [
            [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
            [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
            [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
            [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85],
        ]
    )
    _assert_published(next_w, expected_next_w, 1.1395691798535431e-07)
    _assert_published(config["v"], expected_v, 4.208314038113071e-09)
    _assert_published(config["m"], expected_m, 4.214963193114416e-09)
    assert config["t"] == 6


def test_adam_increments_t_before_using_it(bk):
    # First step from t = 0: with t incremented first, m_hat = dw and v_hat = dw**2, so
    # every coordinate moves by learning_rate against the sign of its gradient. Used
    # before the increment, t = 0 would divide by 1 - beta**0 = 0.
    next_w, config = adam(bk.asarray(W), bk.asarray(DW))
    assert config["t"] == 1
    expected = W - 1e-3 * DW / (np.abs(DW) + 1e-8)
    np.testing.assert_allclose(_np(next_w), expected, rtol=0, atol=1e-14)


def test_several_steps_follow_the_formulas(bk):
    """Three steps of each rule against the formulas written out in NumPy float64."""
    rng = np.random.default_rng(0)
    dws = [rng.standard_normal((N, D)) for _ in range(3)]
    ref = {k: W.copy() for k in RULES}
    vel, cache, m, v = (np.zeros((N, D)) for _ in range(4))
    for t, dw in enumerate(dws, start=1):
        ref["sgd"] = ref["sgd"] - 1e-2 * dw
        vel = 0.9 * vel - 1e-2 * dw
        ref["sgd_momentum"] = ref["sgd_momentum"] + vel
        cache = 0.99 * cache + 0.01 * dw**2
        ref["rmsprop"] = ref["rmsprop"] - 1e-2 * dw / (np.sqrt(cache) + 1e-8)
        m = 0.9 * m + 0.1 * dw
        v = 0.999 * v + 0.001 * dw**2
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        ref["adam"] = ref["adam"] - 1e-3 * m_hat / (np.sqrt(v_hat) + 1e-8)
    for name, rule in RULES.items():
        w, config = bk.asarray(W), None
        for dw in dws:
            w, config = rule(w, bk.asarray(dw), config)
        np.testing.assert_allclose(_np(w), ref[name], rtol=1e-13, atol=1e-15, err_msg=name)


DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "t": 1},
}


@pytest.mark.parametrize("name", RULES)
def test_defaults_and_a_new_config(bk, name):
    _, config = RULES[name](bk.asarray(W), bk.asarray(DW))
    assert {k: v for k, v in config.items() if k not in STATE[name]} == DEFAULTS[name]
    assert set(config) == set(DEFAULTS[name]) | set(STATE[name])


@pytest.mark.parametrize("name", RULES)
def test_a_given_config_is_filled_in_and_returned(bk, name):
    config = {"learning_rate": 0.5, "extra": "kept"}
    _, returned = RULES[name](bk.asarray(W), bk.asarray(DW), config)
    assert returned is config
    assert config["learning_rate"] == 0.5 and config["extra"] == "kept"
    assert set(DEFAULTS[name]) <= set(config)


@pytest.mark.parametrize("name", RULES)
def test_float32_stays_float32_on_the_backend_and_device(bk, name):
    w32, dw32 = bk.asarray(W, "float32"), bk.asarray(DW, "float32")
    config = None
    for _ in range(2):  # the second step reads the state the first one made
        w32, config = RULES[name](w32, dw32, config)
    for value in [w32] + [config[k] for k in STATE[name]]:
        assert value.dtype == bk.xp.float32
        assert backend_name(value) == bk.name
        assert device_of(value) == device_of(dw32)


@pytest.mark.parametrize("name", RULES)
def test_a_wider_gradient_keeps_the_weights_dtype(bk, name):
    next_w, config = RULES[name](bk.asarray(W, "float32"), bk.asarray(DW))
    assert next_w.dtype == bk.xp.float32
    for key in STATE[name]:  # created like w, and kept in that dtype
        assert config[key].dtype == bk.xp.float32


def test_a_numpy_scalar_learning_rate_keeps_float32(bk):
    lr = np.float64(1e-2)  # e.g. 10 ** np.random.uniform(-3, -2) in a notebook
    next_w, _ = sgd(bk.asarray(W, "float32"), bk.asarray(DW, "float32"), {"learning_rate": lr})
    assert next_w.dtype == bk.xp.float32


@pytest.mark.parametrize("name", RULES)
def test_shape_mismatch_names_both(bk, name):
    with pytest.raises(ValueError, match=r"dw must have the shape of w \(4, 5\); got .*\(5, 4\)"):
        RULES[name](bk.asarray(W), bk.asarray(DW.T))


@pytest.mark.parametrize("name", RULES)
def test_backend_mismatch_names_both(bk, name):
    other = _other_backend(bk, DW)
    with pytest.raises(TypeError, match=rf"w is a {bk.name} array, dw is a \w+ array"):
        RULES[name](bk.asarray(W), other)


@pytest.mark.parametrize("name", RULES)
def test_non_arrays_are_refused(bk, name):
    with pytest.raises(TypeError, match=r"w must be an array .*got list"):
        RULES[name](W.tolist(), bk.asarray(DW))
    with pytest.raises(TypeError, match=r"dw must be an array .*got float"):
        RULES[name](bk.asarray(W), 0.5)
    with pytest.raises(TypeError, match="config must be a dict or None; got list"):
        RULES[name](bk.asarray(W), bk.asarray(DW), [])


def test_state_of_another_shape_or_backend_is_refused(bk):
    with pytest.raises(ValueError, match=r"config\['velocity'\] must have the shape of w"):
        sgd_momentum(bk.asarray(W), bk.asarray(DW), {"velocity": bk.asarray(DW.T)})
    with pytest.raises(TypeError, match=r"config\['m'\] is a"):
        adam(bk.asarray(W), bk.asarray(DW), {"m": _other_backend(bk, W)})


def test_integer_weights_are_refused(bk):
    with pytest.raises(TypeError, match="w must be a real floating array"):
        sgd(bk.asarray(np.arange(3)), bk.asarray(np.ones(3)))
