"""Deep nets of the FLS sweeps, as equinox modules: MLP, plain ConvNet ("the 5-layer CNN"), VGG, ResNet.

Conventions:
- A model maps ONE example to a vector of `n_out` outputs; batches are vmapped. Inputs are vectors
  (D,) for the MLP (anything else is flattened), and (C, L) signals or (C, H, W) images for the
  convnets (1-D or 2-D convolutions, picked from the input shape).
- Initialization (`init`):
  - 'he' (default): standard parameterization. Weights feeding a ReLU are He-normal N(0, 2/fan_in); the
    linear head and projection shortcuts are N(0, 1/fan_in); biases start at 0. Outputs are O(1) at init.
    A convolution's fan_in here counts only the kernel taps that can touch the feature map:
    in_channels × Π min(kernel, size), so a 3×3 conv on a 1×1 map (the last VGG stages on small
    images) has fan_in = in_channels, not 9×.
  - 'torch': PyTorch's defaults for nn.Linear / nn.Conv*d: kaiming_uniform_(a=√5), i.e. weights
    U(−b, b) with b = gain·√(3/fan_in), gain = √(2/(1 + a²)) = √(1/3), so b = 1/√fan_in; biases (where
    there are any) U(−1/√fan_in, 1/√fan_in). fan_in = in_features, or in_channels × Π kernel (the whole
    kernel, as torch counts it). Weight variance 1/(3·fan_in) is 1/6 of He's, so the outputs at init
    are smaller by a net-dependent constant factor: "c = 1" is a different output scale under each.
  Normalization scales start at 1 and shifts at 0 under both.
- Normalization (`norm`):
  - 'group': GroupNorm over (channel group, space) of each example. It is a per-example function, so
    f_θ(x) does not depend on the rest of the batch and vmapping over replicas needs no extra state.
  - 'batch': BatchNorm per channel over (examples, space), as torch's nn.BatchNorm*d: in training the
    statistics of the minibatch, taken through the vmapped example axis named `BATCH_AXIS` (call the net
    as `jax.vmap(net, axis_name=BATCH_AXIS)(x, w)`; each example carries a weight w, 1 or 0, and the
    statistics are the w-weighted means); in evaluation (`eqx.nn.inference_mode(net)`) the running
    averages, updated after every training step as running ← 0.9·running + 0.1·batch statistic (the
    variance unbiased), starting at mean 0, variance 1. An evaluation is then a per-example function,
    computed in batches of bounded size. The running averages are buffers, not parameters: `split`
    keeps them apart from the trained arrays (no gradient, no weight decay).
  - 'none': no normalization. A ResNet without normalization scales each residual branch by
    1/√(number of blocks), so the output variance stays O(1) at init (as in "stable ResNets").
- The multiplier c and centering are applied outside the net, in `gflow.deep.train.outputs`.
"""

from __future__ import annotations

import contextlib
import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .config import DeepModelConfig

VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
RESNET_STAGES = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
BOTTLENECK_DEPTHS = (50,)
BATCH_AXIS = "batch"  # the vmapped example axis that BatchNorm reduces over
BN_MOMENTUM = 0.1  # torch's default: running ← (1 − 0.1)·running + 0.1·batch statistic
BN_EPS = 1e-5
BUFFERS = ("running_mean", "running_var")  # arrays of a net that are not trained


class _Init:
    """Hands out the initial weights and biases as consecutive slices of ONE normal draw ('he') or ONE
    uniform draw on [−1, 1) ('torch') per model.

    Every distinct shape passed to jax.random is a separate threefry program, and XLA:CPU takes about a
    second to compile each; one draw per model keeps the compile of a ResNet-18 init to one. The first
    pass (`flat=None`, under `jax.eval_shape`) only counts the values needed."""

    def __init__(self, kind: str = "he", flat=None):
        self.kind, self.flat, self.used = kind, flat, 0

    def _take(self, shape, scale: float, dtype):
        n = math.prod(shape)
        if self.flat is None:
            out = jnp.zeros(shape, dtype)
        else:  # drawn in float32 whatever `dtype`, so float32 and float64 nets start alike
            out = self.flat[self.used : self.used + n].reshape(shape).astype(dtype) * scale
        self.used += n
        return out

    def weight(self, shape, *, fan_in: int, torch_fan_in: int, gain: float, dtype):
        """'he': N(0, gain/fan_in); 'torch': U(−1/√torch_fan_in, 1/√torch_fan_in)."""
        if self.kind == "torch":
            return self._take(shape, 1.0 / math.sqrt(torch_fan_in), dtype)
        return self._take(shape, math.sqrt(gain / fan_in), dtype)

    def bias(self, n: int, *, torch_fan_in: int, dtype):
        """'he': zeros; 'torch': U(−1/√torch_fan_in, 1/√torch_fan_in)."""
        if self.kind == "torch":
            return self._take((n,), 1.0 / math.sqrt(torch_fan_in), dtype)
        return jnp.zeros((n,), dtype)

    def draw(self, key, n: int):
        """The flat draw of n values this initializer reads from."""
        if self.kind == "torch":
            return jax.random.uniform(key, (n,), jnp.float32, -1.0, 1.0)
        return jax.random.normal(key, (n,), jnp.float32)


class Dense(eqx.Module):
    weight: jax.Array  # (out, in)
    bias: jax.Array  # (out,)

    def __init__(self, n_in: int, n_out: int, *, init: _Init, gain: float = 2.0, dtype=jnp.float32):
        self.weight = init.weight((n_out, n_in), fan_in=n_in, torch_fan_in=n_in, gain=gain, dtype=dtype)
        self.bias = init.bias(n_out, torch_fan_in=n_in, dtype=dtype)

    def __call__(self, x):
        return self.weight @ x + self.bias


class Conv(eqx.Module):
    """Convolution over 1 or 2 spatial dims, 'same'-style padding, optional stride; x is (C, *space)."""

    weight: jax.Array  # (out, in, *kernel)
    bias: jax.Array | None
    stride: int = eqx.field(static=True)

    def __init__(self, n_in, n_out, *, space, kernel=3, stride=1, bias=True, gain=2.0, init: _Init, dtype=jnp.float32):
        shape = (n_out, n_in) + (kernel,) * len(space)
        torch_fan_in = n_in * kernel ** len(space)
        self.weight = init.weight(
            shape,
            fan_in=n_in * math.prod(min(kernel, s) for s in space),
            torch_fan_in=torch_fan_in,
            gain=gain,
            dtype=dtype,
        )
        self.bias = init.bias(n_out, torch_fan_in=torch_fan_in, dtype=dtype) if bias else None
        self.stride = stride

    def __call__(self, x):
        nd = x.ndim - 1
        pad = self.weight.shape[-1] // 2
        y = jax.lax.conv_general_dilated(x[None], self.weight, (self.stride,) * nd, [(pad, pad)] * nd)[0]
        return y if self.bias is None else y + self.bias.reshape((-1,) + (1,) * nd)


class GroupNorm(eqx.Module):
    """GroupNorm of one example x (C, *space): statistics over each channel group and all of space."""

    scale: jax.Array  # (C,)
    shift: jax.Array  # (C,)
    groups: int = eqx.field(static=True)

    def __init__(self, channels: int, groups: int, dtype=jnp.float32):
        self.scale = jnp.ones((channels,), dtype)
        self.shift = jnp.zeros((channels,), dtype)
        self.groups = math.gcd(channels, groups)

    def __call__(self, x, w=None):
        shape = x.shape
        g = x.reshape((self.groups, -1))
        g = (g - g.mean(axis=1, keepdims=True)) * jax.lax.rsqrt(g.var(axis=1, keepdims=True) + 1e-5)
        bcast = (-1,) + (1,) * (len(shape) - 1)
        return g.reshape(shape) * self.scale.reshape(bcast) + self.shift.reshape(bcast)


class BatchNorm(eqx.Module):
    """BatchNorm of one example x (C, *space). In training (inside `jax.vmap(..., axis_name=BATCH_AXIS)`):
    per channel, statistics over space and the examples of the vmapped batch, weighted by each example's
    w (w = None counts every example once); under `collect_batch_stats()` it also records them. In
    evaluation (`inference=True`, set by `eqx.nn.inference_mode`): the running averages."""

    scale: jax.Array  # (C,)
    shift: jax.Array  # (C,)
    running_mean: jax.Array  # (C,) buffer
    running_var: jax.Array  # (C,) buffer
    inference: bool = False
    momentum: float = eqx.field(static=True, default=BN_MOMENTUM)

    def __init__(self, channels: int, dtype=jnp.float32):
        self.scale = jnp.ones((channels,), dtype)
        self.shift = jnp.zeros((channels,), dtype)
        self.running_mean = jnp.zeros((channels,), dtype)
        self.running_var = jnp.ones((channels,), dtype)
        self.inference = False
        self.momentum = BN_MOMENTUM

    def __call__(self, x, w=None):
        bcast = (-1,) + (1,) * (x.ndim - 1)
        if self.inference:
            y = (x - self.running_mean.reshape(bcast)) * jax.lax.rsqrt(self.running_var.reshape(bcast) + BN_EPS)
            return y * self.scale.reshape(bcast) + self.shift.reshape(bcast)
        w = jnp.ones((), x.dtype) if w is None else jnp.asarray(w, x.dtype)
        space = tuple(range(1, x.ndim))
        total = jax.lax.psum(w, BATCH_AXIS)
        mean = jax.lax.psum(w * x.mean(axis=space), BATCH_AXIS) / total
        var = jax.lax.psum(w * ((x - mean.reshape(bcast)) ** 2).mean(axis=space), BATCH_AXIS) / total
        if _COLLECTED:  # unbiased variance for the running average, as torch (n = examples × positions)
            n = total * math.prod(x.shape[1:])
            _COLLECTED[-1][id(self)] = (mean, var * n / jnp.maximum(n - 1, 1))
        y = (x - mean.reshape(bcast)) * jax.lax.rsqrt(var.reshape(bcast) + BN_EPS)
        return y * self.scale.reshape(bcast) + self.shift.reshape(bcast)


_COLLECTED: list[dict] = []  # stack of {id(BatchNorm layer): (batch mean, unbiased batch variance)}


@contextlib.contextmanager
def collect_batch_stats():
    """Within the block, every BatchNorm layer called in training mode records its batch statistics in
    the yielded dict, keyed by id(layer) (see `with_running_stats`). Use it inside the traced function."""
    _COLLECTED.append({})
    try:
        yield _COLLECTED[-1]
    finally:
        _COLLECTED.pop()


def batch_norms(model) -> list:
    """The BatchNorm layers of `model`, in tree order."""
    return [m for m in jax.tree.leaves(model, is_leaf=lambda m: isinstance(m, BatchNorm)) if isinstance(m, BatchNorm)]


def with_running_stats(model, stats: dict):
    """`model` with each BatchNorm layer's running averages moved towards the batch statistics `stats`
    recorded by `collect_batch_stats` during a training forward pass of this very model object."""
    layers = batch_norms(model)
    if not layers:
        return model
    new = []
    for m in layers:
        mean, var = stats[id(m)]
        new += [
            (1 - m.momentum) * m.running_mean + m.momentum * mean.astype(m.running_mean.dtype),
            (1 - m.momentum) * m.running_var + m.momentum * var.astype(m.running_var.dtype),
        ]
    return eqx.tree_at(lambda t: [v for b in batch_norms(t) for v in (b.running_mean, b.running_var)], model, new)


class Identity(eqx.Module):
    def __call__(self, x, w=None):
        return x


def _pool(x, reduce):
    """2× pooling along every spatial dim of x (C, *space) that has size ≥ 2 (odd sizes are cropped)."""
    for ax in range(1, x.ndim):
        m = x.shape[ax] // 2
        if m >= 1 and x.shape[ax] >= 2:
            x = jax.lax.slice_in_dim(x, 0, 2 * m, axis=ax)
            x = reduce(x.reshape(x.shape[:ax] + (m, 2) + x.shape[ax + 1 :]), axis=ax + 1)
    return x


def _global_mean(x):
    return x.reshape((x.shape[0], -1)).mean(axis=1)


def _norm(kind, channels, groups, dtype):
    if kind == "group":
        return GroupNorm(channels, groups, dtype)
    return BatchNorm(channels, dtype) if kind == "batch" else Identity()


class MLP(eqx.Module):
    hidden: tuple
    head: Dense

    def __init__(self, n_in, n_out, *, width, depth, init, dtype=jnp.float32):
        sizes = [n_in] + [width] * depth
        self.hidden = tuple(Dense(a, b, init=init, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = Dense(sizes[-1], n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x, w=None):
        x = x.reshape(-1)
        for layer in self.hidden:
            x = jax.nn.relu(layer(x))
        return self.head(x)


def _pooled(space):
    """Spatial size after `_pool`."""
    return tuple(s // 2 if s >= 2 else s for s in space)


class ConvNet(eqx.Module):
    """depth−1 conv3×3–[norm]–ReLU layers with channels w, 2w, 4w, 8w, 8w, …; 2× average pooling after
    every conv but the first; global average pooling; a linear head. depth = 5 is the 5-layer CNN."""

    convs: tuple
    norms: tuple
    head: Dense

    def __init__(self, in_channels, n_out, *, width, depth, norm, groups, space, init, dtype=jnp.float32):
        chans = [in_channels] + [width * 2 ** min(i, 3) for i in range(depth - 1)]
        convs = []
        for i, (a, b) in enumerate(zip(chans[:-1], chans[1:])):
            convs.append(Conv(a, b, space=space, bias=norm == "none", init=init, dtype=dtype))
            space = _pooled(space) if i > 0 else space
        self.convs = tuple(convs)
        self.norms = tuple(_norm(norm, c, groups, dtype) for c in chans[1:])
        self.head = Dense(chans[-1], n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x, w=None):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = jax.nn.relu(norm(conv(x), w))
            if i > 0:
                x = _pool(x, jnp.mean)
        return self.head(_global_mean(x))


class VGG(eqx.Module):
    """VGG-11/13/16/19 convolution stages (channels w, 2w, 4w, 8w, 8w; 2× max pooling after each stage
    while the image is ≥ 2 pixels), global average pooling and one linear head (the usual CIFAR VGG)."""

    convs: tuple
    norms: tuple
    pool_after: tuple = eqx.field(static=True)
    head: Dense

    def __init__(self, in_channels, n_out, *, width, depth, norm, groups, space, init, dtype=jnp.float32):
        stages = VGG_STAGES[depth]
        convs, norms, pool_after, n_in = [], [], [], in_channels
        for s, n_convs in enumerate(stages):
            n_out_s = width * 2 ** min(s, 3)
            for i in range(n_convs):
                convs.append(Conv(n_in, n_out_s, space=space, bias=norm == "none", init=init, dtype=dtype))
                norms.append(_norm(norm, n_out_s, groups, dtype))
                pool_after.append(i == n_convs - 1)
                n_in = n_out_s
            space = _pooled(space)
        self.convs, self.norms, self.pool_after = tuple(convs), tuple(norms), tuple(pool_after)
        self.head = Dense(n_in, n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x, w=None):
        for conv, norm, pool in zip(self.convs, self.norms, self.pool_after):
            x = jax.nn.relu(norm(conv(x), w))
            if pool:
                x = _pool(x, jnp.max)
        return self.head(_global_mean(x))


class BasicBlock(eqx.Module):
    conv1: Conv
    norm1: eqx.Module
    conv2: Conv
    norm2: eqx.Module
    shortcut: tuple  # see _shortcut
    branch_scale: float = eqx.field(static=True)

    def __init__(self, n_in, n_out, stride, *, norm, groups, space, branch_scale, init, dtype):
        bias = norm == "none"
        out_space = tuple(-(-s // stride) for s in space)
        self.conv1 = Conv(n_in, n_out, space=space, stride=stride, bias=bias, init=init, dtype=dtype)
        self.norm1 = _norm(norm, n_out, groups, dtype)
        self.conv2 = Conv(n_out, n_out, space=out_space, bias=bias, init=init, dtype=dtype)
        self.norm2 = _norm(norm, n_out, groups, dtype)
        self.shortcut = _shortcut(n_in, n_out, stride, norm=norm, groups=groups, space=space, init=init, dtype=dtype)
        self.branch_scale = branch_scale

    def __call__(self, x, w=None):
        h = jax.nn.relu(self.norm1(self.conv1(x), w))
        return _join(self, x, self.norm2(self.conv2(h), w), w)


def _shortcut(n_in, n_out, stride, *, norm, groups, space, init, dtype) -> tuple:
    """() for the identity, or (conv1×1 with the stride, norm) when the shape changes. The projection is
    not followed by a ReLU: variance-preserving gain 1."""
    if stride == 1 and n_in == n_out:
        return ()
    proj = Conv(
        n_in, n_out, space=space, kernel=1, stride=stride, bias=norm == "none", gain=1.0, init=init, dtype=dtype
    )
    return (proj, _norm(norm, n_out, groups, dtype))


def _join(block, x, h, w):
    """ReLU(shortcut(x) + branch_scale·h): the end of a residual block."""
    skip = block.shortcut[1](block.shortcut[0](x), w) if block.shortcut else x
    return jax.nn.relu(skip + block.branch_scale * h)


class Bottleneck(eqx.Module):
    """ResNet-50's block: conv1×1 (m) – conv3×3 (m, the stride) – conv1×1 (4m), a norm after each,
    ReLU after the first two and after the sum with the (projection) shortcut."""

    convs: tuple  # (1×1, 3×3, 1×1)
    norms: tuple
    shortcut: tuple
    branch_scale: float = eqx.field(static=True)

    def __init__(self, n_in, mid, stride, *, norm, groups, space, branch_scale, init, dtype):
        bias, n_out = norm == "none", 4 * mid
        out_space = tuple(-(-s // stride) for s in space)
        self.convs = (
            Conv(n_in, mid, space=space, kernel=1, bias=bias, init=init, dtype=dtype),
            Conv(mid, mid, space=space, stride=stride, bias=bias, init=init, dtype=dtype),
            Conv(mid, n_out, space=out_space, kernel=1, bias=bias, init=init, dtype=dtype),
        )
        self.norms = tuple(_norm(norm, ch, groups, dtype) for ch in (mid, mid, n_out))
        self.shortcut = _shortcut(n_in, n_out, stride, norm=norm, groups=groups, space=space, init=init, dtype=dtype)
        self.branch_scale = branch_scale

    def __call__(self, x, w=None):
        h = jax.nn.relu(self.norms[0](self.convs[0](x), w))
        h = jax.nn.relu(self.norms[1](self.convs[1](h), w))
        return _join(self, x, self.norms[2](self.convs[2](h), w), w)


class ResNet(eqx.Module):
    """CIFAR-style ResNet-10/18/34 with basic blocks, or ResNet-50 with bottleneck blocks (outputs 4× the
    stage width): conv3×3 stem (no max pool), four stages of width w, 2w, 4w, 8w (stride 2 at stages
    2–4), global average pooling, linear head."""

    stem: Conv
    stem_norm: eqx.Module
    blocks: tuple
    head: Dense

    def __init__(self, in_channels, n_out, *, width, depth, norm, groups, space, init, dtype=jnp.float32):
        stages = RESNET_STAGES[depth]
        self.stem = Conv(in_channels, width, space=space, bias=norm == "none", init=init, dtype=dtype)
        self.stem_norm = _norm(norm, width, groups, dtype)
        scale = 1.0 if norm == "group" else 1.0 / math.sqrt(sum(stages))
        bottleneck = depth in BOTTLENECK_DEPTHS
        blocks, n_in = [], width
        for s, n_blocks in enumerate(stages):
            n_out_s = width * 2**s
            for b in range(n_blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                block = Bottleneck if bottleneck else BasicBlock
                blocks.append(
                    block(
                        n_in,
                        n_out_s,
                        stride,
                        norm=norm,
                        groups=groups,
                        space=space,
                        branch_scale=scale,
                        init=init,
                        dtype=dtype,
                    )
                )
                n_in, space = n_out_s * (4 if bottleneck else 1), tuple(-(-v // stride) for v in space)
        self.blocks = tuple(blocks)
        self.head = Dense(n_in, n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x, w=None):
        x = jax.nn.relu(self.stem_norm(self.stem(x), w))
        for block in self.blocks:
            x = block(x, w)
        return self.head(_global_mean(x))


def _construct(cfg: DeepModelConfig, input_shape, n_out: int, init: _Init, dtype):
    depth, norm = cfg.resolved_depth, cfg.resolved_norm
    if cfg.arch == "mlp":
        return MLP(math.prod(input_shape), n_out, width=cfg.width, depth=depth, init=init, dtype=dtype)
    cls = {"cnn": ConvNet, "vgg": VGG, "resnet": ResNet}[cfg.arch]
    return cls(
        input_shape[0],
        n_out,
        width=cfg.width,
        depth=depth,
        norm=norm,
        groups=cfg.norm_groups,
        space=tuple(input_shape[1:]),
        init=init,
        dtype=dtype,
    )


def build_model(cfg: DeepModelConfig, input_shape: tuple[int, ...], n_out: int, *, key, dtype=jnp.float32):
    """The network of `cfg` for examples of `input_shape` with `n_out` outputs, initialized from `key`
    with a single draw (build it inside jit: eagerly, every layer's slice is its own small program).
    Call it on one example, `net(x)`, or with BatchNorm as `jax.vmap(net, axis_name=BATCH_AXIS)(x, w)`."""
    if cfg.arch != "mlp" and len(input_shape) not in (2, 3):
        raise ValueError(
            f"model.arch: {cfg.arch!r} needs (channels, length) or (channels, height, width) inputs, "
            f"got examples of shape {tuple(input_shape)}; use arch 'mlp' for vector data"
        )
    input_shape = tuple(input_shape)
    counter = _Init(cfg.init)
    jax.eval_shape(lambda: _construct(cfg, input_shape, n_out, counter, dtype))
    init = _Init(cfg.init, counter.draw(key, counter.used))
    model = _construct(cfg, input_shape, n_out, init, dtype)
    assert init.used == counter.used
    return model


def _is_buffer(path) -> bool:
    return bool(path) and getattr(path[-1], "name", None) in BUFFERS


def split(model, is_array=eqx.is_array) -> tuple:
    """(params, buffers, static): the trained arrays of `model`, its buffers (BatchNorm's running
    averages; all None without BatchNorm) and the rest; `eqx.combine(params, buffers, static)` rebuilds it.
    `is_array` picks the array leaves (e.g. jax.ShapeDtypeStruct for a model of shapes)."""
    trained = jax.tree_util.tree_map_with_path(lambda p, v: is_array(v) and not _is_buffer(p), model)
    params, rest = eqx.partition(model, trained)
    buffers, static = eqx.partition(rest, is_array)
    return params, buffers, static


def n_params(params) -> int:
    """Number of parameters of a params tree (arrays or shape structs)."""
    return sum(math.prod(v.shape) for v in jax.tree.leaves(params) if hasattr(v, "shape"))
