"""One inner SGD step with the ``nn.Dense`` layers' updates in closed form (MAML's hyper policy).

A Dense layer ``y = x W + b`` run on inputs ``x [N, in]`` has the gradient ``dL/dW = x^T delta``,
``dL/db = sum_n delta_n``, with ``delta = dL/dy [N, out]``. After the step ``W' = W - lr x^T delta``,
``b' = b - lr sum_n delta_n``, the layer on its new inputs ``x' [N', in]`` is exactly

    ``y' = x' W' + b' = x' W + b - lr (x' x^T + 1) delta``

so ``W'`` is never formed: ``O(N (in + out))`` numbers per layer instead of ``in x out``. The hyper
policy's primary network and heads run on one context per task (``N = N' = 1``, a rank-one
update): its ~13.5M parameters at paper size are not copied per task, which is what made the TRPO
step of MAML with the hyper policy memory-bound (each objective evaluation adapted all of them for
each of the 40 tasks). Pure algebra, no approximation: it equals ``maml.adapt`` then the forward
pass to float rounding, first order (``delta`` and ``x`` constants to differentiation, as
``adapt``'s ``stop_gradient``) and second order (differentiable). Tested in
tests/test_maml_hyper_adapt.py.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import traverse_util

Path = tuple[str, ...]


def _dense_call(context) -> bool:
    return isinstance(context.module, nn.Dense) and context.method_name == "__call__"


def _dense_input(args, kwargs) -> jax.Array:
    return args[0] if args else kwargs["inputs"]


def _dense_output_shapes(fn: Callable, params) -> dict[Path, list[jax.ShapeDtypeStruct]]:
    """The output shape of every ``nn.Dense`` call inside ``fn(params)``, per module path, in call
    order (traced only, nothing runs)."""
    shapes: dict[Path, list[jax.ShapeDtypeStruct]] = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if _dense_call(context):
            shapes.setdefault(context.module.path, []).append(jax.ShapeDtypeStruct(out.shape, out.dtype))
        return out

    def run(p):
        with nn.intercept_methods(record):
            fn(p)

    jax.eval_shape(run, params)
    return shapes


def sgd_step_outputs(
    fn: Callable[[Any], Any],
    params: dict,
    loss: Callable[[Any], jax.Array],
    lr: float,
    second_order: bool = False,
    modules_at: Path = (),
) -> Any:
    """``fn(params - lr * grad(loss(fn(params))))`` without forming the stepped Dense kernels.

    Args:
      fn: ``params -> out``, applying Flax modules. Each ``nn.Dense`` called inside it whose kernel
        is ``params[*modules_at, *path, 'kernel']`` (``path``: its module path within the applied
        module) steps in closed form (module docstring); every other leaf of ``params`` steps as
        ``leaf - lr * grad``. A layer called several times counts all its calls' gradients.
      params: nested dicts of arrays.
      loss: ``out -> []``, the inner loss.
      lr: the step size.
      second_order: differentiable through the step; else the gradient is a constant to
        differentiation (``maml.adapt``'s first order: ``d params' / d params = I``).
      modules_at: where the applied module's parameters sit in ``params`` (e.g. ``('hyper',)``).

    Returns:
      ``out`` at the stepped parameters: ``fn(adapt(params))`` to float rounding.
    """
    flat = traverse_util.flatten_dict(params)
    calls = {
        path: shapes
        for path, shapes in _dense_output_shapes(fn, params).items()
        if (*modules_at, *path, "kernel") in flat
    }
    has_bias = {path: (*modules_at, *path, "bias") in flat for path in calls}
    closed_form = {(*modules_at, *path, name) for path in calls for name in ("kernel", "bias")}
    dense = {key: value for key, value in flat.items() if key in closed_form}
    rest = {key: value for key, value in flat.items() if key not in closed_form}

    def tapped_loss(taps, rest):
        """The loss with a zero ``tap`` added to each Dense call's output (its gradient is
        ``delta``); the calls' inputs as auxiliary output."""
        inputs: dict[Path, list[jax.Array]] = {path: [] for path in calls}

        def tap(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            path = context.module.path if _dense_call(context) else None
            if path in calls:
                inputs[path].append(_dense_input(args, kwargs))
                out = out + taps[path][len(inputs[path]) - 1]
            return out

        with nn.intercept_methods(tap):
            out = fn(traverse_util.unflatten_dict({**dense, **rest}))
        return loss(out), inputs

    zero_taps = {path: [jnp.zeros(s.shape, s.dtype) for s in shapes] for path, shapes in calls.items()}
    inner_loss, pullback, inputs = jax.vjp(tapped_loss, zero_taps, rest, has_aux=True)
    deltas, rest_grads = pullback(jnp.ones_like(inner_loss))
    if not second_order:
        inputs, deltas, rest_grads = jax.lax.stop_gradient((inputs, deltas, rest_grads))
    # per layer, all its calls: x [N, in] and delta [N, out]
    x = {path: jnp.concatenate([a.reshape(-1, a.shape[-1]) for a in inputs[path]]) for path in calls}
    delta = {path: jnp.concatenate([d.reshape(-1, d.shape[-1]) for d in deltas[path]]) for path in calls}
    stepped_rest = {key: leaf - lr * rest_grads[key] for key, leaf in rest.items()}

    def correct(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)  # x' W + b at the unstepped kernel and bias
        path = context.module.path if _dense_call(context) else None
        if path in calls:
            x_new = _dense_input(args, kwargs)
            gram = x_new.reshape(-1, x_new.shape[-1]) @ x[path].T + (1.0 if has_bias[path] else 0.0)  # [N', N]
            out = out - lr * (gram @ delta[path]).reshape(out.shape)
        return out

    with nn.intercept_methods(correct):
        return fn(traverse_util.unflatten_dict({**dense, **stepped_rest}))
