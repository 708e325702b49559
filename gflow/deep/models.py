"""Deep nets of the FLS sweeps, as equinox modules: MLP, plain ConvNet ("the 5-layer CNN"), VGG, ResNet.

Conventions:
- A model maps ONE example to a vector of `n_out` outputs; batches are vmapped. Inputs are vectors
  (D,) for the MLP (anything else is flattened), and (C, L) signals or (C, H, W) images for the
  convnets (1-D or 2-D convolutions, picked from the input shape).
- Standard parameterization. Weights feeding a ReLU are He-normal N(0, 2/fan_in); the linear head is
  N(0, 1/fan_in); biases start at 0, GroupNorm scales at 1. Outputs are O(1) at init. A convolution's
  fan_in counts only the kernel taps that can touch the feature map: in_channels × Π min(kernel, size),
  so a 3×3 conv on a 1×1 map (the last VGG stages on small images) has fan_in = in_channels, not 9×.
- Normalization (`norm`):
  - 'group': GroupNorm over (channel group, space) of each example. It is a per-example function, so
    f_θ(x) does not depend on the rest of the batch and vmapping over replicas needs no extra state.
  - 'none': no normalization. A ResNet without normalization scales each residual branch by
    1/√(number of blocks), so the output variance stays O(1) at init (as in "stable ResNets").
  - BatchNorm is not offered: with batch statistics f_θ(x) depends on the other examples of the batch
    (and the minibatch size), the centered model c·(f_θ − f_θ₀) is no longer a fixed function, and
    running averages are extra non-gradient state that makes train and test networks differ.
- The multiplier c and centering are applied outside the net, in `gflow.deep.train.outputs`.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from .config import DeepModelConfig

VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
RESNET_STAGES = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class _Init:
    """Hands out N(0, gain/fan_in) weights as consecutive slices of ONE normal draw per model.

    Every distinct shape passed to jax.random is a separate threefry program, and XLA:CPU takes about a
    second to compile each; one draw per model keeps the compile of a ResNet-18 init to one. The first
    pass (`flat=None`, under `jax.eval_shape`) only counts the values needed."""

    def __init__(self, flat=None):
        self.flat, self.used = flat, 0

    def normal(self, shape, fan_in: int, gain: float, dtype):
        n = math.prod(shape)
        if self.flat is None:
            out = jnp.zeros(shape, dtype)
        else:  # drawn in float32 whatever `dtype`, so float32 and float64 nets start alike
            out = self.flat[self.used : self.used + n].reshape(shape).astype(dtype) * math.sqrt(gain / fan_in)
        self.used += n
        return out


class Dense(eqx.Module):
    weight: jax.Array  # (out, in)
    bias: jax.Array  # (out,)

    def __init__(self, n_in: int, n_out: int, *, init: _Init, gain: float = 2.0, dtype=jnp.float32):
        self.weight = init.normal((n_out, n_in), n_in, gain, dtype)
        self.bias = jnp.zeros((n_out,), dtype)

    def __call__(self, x):
        return self.weight @ x + self.bias


class Conv(eqx.Module):
    """Convolution over 1 or 2 spatial dims, 'same'-style padding, optional stride; x is (C, *space)."""

    weight: jax.Array  # (out, in, *kernel)
    bias: jax.Array | None
    stride: int = eqx.field(static=True)

    def __init__(self, n_in, n_out, *, space, kernel=3, stride=1, bias=True, gain=2.0, init: _Init, dtype=jnp.float32):
        shape = (n_out, n_in) + (kernel,) * len(space)
        self.weight = init.normal(shape, n_in * math.prod(min(kernel, s) for s in space), gain, dtype)
        self.bias = jnp.zeros((n_out,), dtype) if bias else None
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

    def __call__(self, x):
        shape = x.shape
        g = x.reshape((self.groups, -1))
        g = (g - g.mean(axis=1, keepdims=True)) * jax.lax.rsqrt(g.var(axis=1, keepdims=True) + 1e-5)
        bcast = (-1,) + (1,) * (len(shape) - 1)
        return g.reshape(shape) * self.scale.reshape(bcast) + self.shift.reshape(bcast)


class Identity(eqx.Module):
    def __call__(self, x):
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
    return GroupNorm(channels, groups, dtype) if kind == "group" else Identity()


class MLP(eqx.Module):
    hidden: tuple
    head: Dense

    def __init__(self, n_in, n_out, *, width, depth, init, dtype=jnp.float32):
        sizes = [n_in] + [width] * depth
        self.hidden = tuple(Dense(a, b, init=init, dtype=dtype) for a, b in zip(sizes[:-1], sizes[1:]))
        self.head = Dense(sizes[-1], n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x):
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

    def __call__(self, x):
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = jax.nn.relu(norm(conv(x)))
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

    def __call__(self, x):
        for conv, norm, pool in zip(self.convs, self.norms, self.pool_after):
            x = jax.nn.relu(norm(conv(x)))
            if pool:
                x = _pool(x, jnp.max)
        return self.head(_global_mean(x))


class BasicBlock(eqx.Module):
    conv1: Conv
    norm1: eqx.Module
    conv2: Conv
    norm2: eqx.Module
    shortcut: tuple  # () for identity, (conv1×1, norm) when the shape changes
    branch_scale: float = eqx.field(static=True)

    def __init__(self, n_in, n_out, stride, *, norm, groups, space, branch_scale, init, dtype):
        bias = norm == "none"
        out_space = tuple(-(-s // stride) for s in space)
        self.conv1 = Conv(n_in, n_out, space=space, stride=stride, bias=bias, init=init, dtype=dtype)
        self.norm1 = _norm(norm, n_out, groups, dtype)
        self.conv2 = Conv(n_out, n_out, space=out_space, bias=bias, init=init, dtype=dtype)
        self.norm2 = _norm(norm, n_out, groups, dtype)
        if stride != 1 or n_in != n_out:
            # a projection shortcut is not followed by a ReLU: variance-preserving gain 1
            proj = Conv(n_in, n_out, space=space, kernel=1, stride=stride, bias=bias, gain=1.0, init=init, dtype=dtype)
            self.shortcut = (proj, _norm(norm, n_out, groups, dtype))
        else:
            self.shortcut = ()
        self.branch_scale = branch_scale

    def __call__(self, x):
        h = jax.nn.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        skip = self.shortcut[1](self.shortcut[0](x)) if self.shortcut else x
        return jax.nn.relu(skip + self.branch_scale * h)


class ResNet(eqx.Module):
    """CIFAR-style ResNet-10/18/34 with basic blocks: conv3×3 stem (no max pool), four stages of
    channels w, 2w, 4w, 8w (stride 2 at stages 2–4), global average pooling, linear head."""

    stem: Conv
    stem_norm: eqx.Module
    blocks: tuple
    head: Dense

    def __init__(self, in_channels, n_out, *, width, depth, norm, groups, space, init, dtype=jnp.float32):
        stages = RESNET_STAGES[depth]
        self.stem = Conv(in_channels, width, space=space, bias=norm == "none", init=init, dtype=dtype)
        self.stem_norm = _norm(norm, width, groups, dtype)
        scale = 1.0 if norm == "group" else 1.0 / math.sqrt(sum(stages))
        blocks, n_in = [], width
        for s, n_blocks in enumerate(stages):
            n_out_s = width * 2**s
            for b in range(n_blocks):
                stride = 2 if (s > 0 and b == 0) else 1
                blocks.append(BasicBlock(n_in, n_out_s, stride, norm=norm, groups=groups, space=space,
                                         branch_scale=scale, init=init, dtype=dtype))
                n_in, space = n_out_s, tuple(-(-v // stride) for v in space)
        self.blocks = tuple(blocks)
        self.head = Dense(n_in, n_out, init=init, gain=1.0, dtype=dtype)

    def __call__(self, x):
        x = jax.nn.relu(self.stem_norm(self.stem(x)))
        for block in self.blocks:
            x = block(x)
        return self.head(_global_mean(x))


def _construct(cfg: DeepModelConfig, input_shape, n_out: int, init: _Init, dtype):
    depth, norm = cfg.resolved_depth, cfg.resolved_norm
    if cfg.arch == "mlp":
        return MLP(math.prod(input_shape), n_out, width=cfg.width, depth=depth, init=init, dtype=dtype)
    cls = {"cnn": ConvNet, "vgg": VGG, "resnet": ResNet}[cfg.arch]
    return cls(input_shape[0], n_out, width=cfg.width, depth=depth, norm=norm, groups=cfg.norm_groups,
               space=tuple(input_shape[1:]), init=init, dtype=dtype)


def build_model(cfg: DeepModelConfig, input_shape: tuple[int, ...], n_out: int, *, key, dtype=jnp.float32):
    """The network of `cfg` for examples of `input_shape` with `n_out` outputs, initialized from `key`
    with a single normal draw (build it inside jit: eagerly, every layer's slice is its own small program)."""
    if cfg.arch != "mlp" and len(input_shape) not in (2, 3):
        raise ValueError(
            f"model.arch: {cfg.arch!r} needs (channels, length) or (channels, height, width) inputs, "
            f"got examples of shape {tuple(input_shape)}; use arch 'mlp' for vector data"
        )
    input_shape = tuple(input_shape)
    counter = _Init()
    jax.eval_shape(lambda: _construct(cfg, input_shape, n_out, counter, dtype))
    init = _Init(jax.random.normal(key, (counter.used,), jnp.float32))
    model = _construct(cfg, input_shape, n_out, init, dtype)
    assert init.used == counter.used
    return model


def split(model) -> tuple:
    """(params, static): the arrays of `model` (all trained) and the rest; `eqx.combine` rebuilds it."""
    return eqx.partition(model, eqx.is_array)


def n_params(params) -> int:
    """Number of parameters of a params tree (arrays or shape structs)."""
    return sum(math.prod(v.shape) for v in jax.tree.leaves(params) if hasattr(v, "shape"))
