"""Gradient-magnitude reward: for each sample, the L2 norm over all the student's parameters of the gradient of its
loss on that sample's answer tokens (mean token cross-entropy over the answer tokens of that sample alone, as
`model(input_ids, labels=...)` computes it for a batch of one). A sample the student would learn most from gets the
largest reward.

`gradient_norms` is exact and vectorised: one ordinary batched forward, then one `torch.autograd.grad` of the sum
of the per-sample losses with respect to the *outputs* of every module that owns parameters (no weight gradient is
ever formed for the batch). Since the samples of a right-padded batch never interact in a causal LM, a module's
output gradient at row b is exactly that of sample b alone, and each module's per-sample weight gradient follows
from its input and output gradient:

- `nn.Linear`: G_b = sum_t g_bt a_bt^T (bias: sum_t g_bt); `nn.Embedding`: G_b = sum_t onehot(x_bt) g_bt^T. These
  "factored" gradients are either materialised per sample (bmm / scatter-add) or, when cheaper, never formed:
  ||sum_i G_i||^2 is read off Gram matrices ("ghost norm"): <sum_t l_t r_t^T, sum_s l'_s r'_s^T> =
  sum_ts (l_t . l'_s)(r_t . r'_s). A parameter used by several modules (tied input/output embeddings) is counted
  once, with the sum of its uses' gradients, exactly as autograd accumulates it: the cross terms are included.
- any other module with parameters of its own (RMSNorm weights, ...): that module alone is re-run on its captured
  inputs under `torch.func.vmap` (each row a batch of one) with a per-row zero offset on its parameters; the
  offsets' gradients for the captured output gradient are the per-sample parameter gradients.

Cost: about one ordinary batched training step (forward, input-gradient backward, then per-sample weight gradients
or Gram matrices instead of the batch weight gradient). On a CPU the naive loop is already compute-bound for the
tiny student (a plain batched training step is only ~1.5x faster than it), so the gain there is small
(~1.0-1.3x). On a GPU it should also remove the loop's per-sample launch overhead (not measured yet).

Every parameter must be used by the module that owns it (true of Hugging Face models, tied weights included: the
tied `Parameter` is an attribute of both modules).

`gradient_norms_naive` is the reference: one `loss.backward()` per sample.

A sample whose answer has no token left inside `max_length` has no loss: its norm is 0.0 (both functions).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from acqsynth.acquisition.student_batch import IGNORE, encode_answers
from acqsynth.models.loading import LoadedModel

if TYPE_CHECKING:
    import torch
    from torch import nn

# Above this many floats (batch x parameter size) a factored gradient is never materialised, whatever the flop count.
_MATERIALISE_LIMIT = 1 << 26
# The overhead of one forward/backward pass, in padded tokens: rows are grouped to minimise padded tokens plus this
# per pass. It only trades speed (padding against the number of passes), never the result.
_PASS_COST_CPU = 256
_PASS_COST_ACCELERATOR = 8192


# ---------------------------------------------------------------------------------------------------------------
# Model state: eval mode, every parameter differentiable, gradients and flags restored afterwards


@contextlib.contextmanager
def _prepared(model: nn.Module) -> Iterator[None]:
    import torch

    was_training = model.training
    params = list(model.parameters())
    requires = [p.requires_grad for p in params]
    grads = [p.grad for p in params]
    model.eval()
    try:
        for p in params:
            p.requires_grad_(True)
        with torch.enable_grad():
            yield
    finally:
        for p, flag, g in zip(params, requires, grads, strict=True):
            p.grad = g
            p.requires_grad_(flag)
        model.train(was_training)


def _check_inputs(prompts: Sequence[str], answers: Sequence[str]) -> None:
    if len(prompts) != len(answers):
        raise ValueError(f"gradient norms need one answer per prompt, got {len(prompts)} prompts and "
                         f"{len(answers)} answers")


# ---------------------------------------------------------------------------------------------------------------
# Reference: one backward pass per sample


def gradient_norms_naive(student: LoadedModel, prompts: Sequence[str], answers: Sequence[str],
                         max_length: int = 384) -> list[float]:
    import torch

    _check_inputs(prompts, answers)
    model = student.model
    device = next(model.parameters()).device
    norms: list[float] = []
    with _prepared(model):
        params = list(model.parameters())
        for prompt, answer in zip(prompts, answers, strict=True):
            batch = encode_answers(student.tokenizer, [prompt], [answer], max_length)
            if not bool((batch.labels[:, 1:] != IGNORE).any()):
                norms.append(0.0)
                continue
            for p in params:
                p.grad = None
            loss = model(input_ids=batch.input_ids.to(device), labels=batch.labels.to(device),
                         use_cache=False).loss
            loss.backward()
            total = torch.zeros((), dtype=torch.float32, device=device)
            for p in params:
                if p.grad is not None:
                    total += p.grad.float().pow(2).sum()
            norms.append(float(total.sqrt()))
    return norms


# ---------------------------------------------------------------------------------------------------------------
# Vectorised: per-sample gradients module by module


@dataclass
class _Factored:
    """A per-sample gradient sum_t left_t right_t^T of a (m, n)-shaped parameter: `left` (B, T, m) dense, or
    (B, T) token indices into m rows (one-hot rows, as in an embedding lookup); `right` (B, T, n)."""

    left: torch.Tensor
    right: torch.Tensor
    rows: int

    @property
    def indexed(self) -> bool:
        return self.left.dim() == 2


@dataclass
class _Use:
    param: nn.Parameter
    factored: list[_Factored] = field(default_factory=list)
    dense: list[torch.Tensor] = field(default_factory=list)  # (B, *param.shape) per-sample gradients


@dataclass
class _Call:
    module: nn.Module
    args: tuple
    kwargs: dict
    output: Any
    versions: list[int]  # of the output and tensor inputs when captured: in-place changes later would be missed


def _tensors(call_parts: tuple) -> list[torch.Tensor]:
    import torch
    from torch.utils._pytree import tree_leaves

    return [leaf for leaf in tree_leaves(call_parts) if isinstance(leaf, torch.Tensor)]


def _is_plain(module: nn.Module, cls: type) -> bool:
    return isinstance(module, cls) and type(module).forward is cls.forward


def _param_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if any(True for _ in m.parameters(recurse=False))]


def _per_row_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each row's mean cross-entropy over its own answer tokens, as the model's causal-LM loss for a batch of one
    (float32 logits, labels shifted by one); 0 for a row with none."""
    import torch

    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    token_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                   ignore_index=IGNORE, reduction="none").view(targets.shape)
    counts = (targets != IGNORE).sum(dim=1).clamp(min=1)
    return token_loss.sum(dim=1) / counts


def _flat(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B, ..., d) -> (B, T, d) in float32."""
    return x.reshape(batch, -1, x.shape[-1]).float()


def _linear_use(call: _Call, grad: torch.Tensor, uses: dict[int, _Use]) -> None:
    module = call.module
    x = call.args[0] if call.args else call.kwargs["input"]
    batch = x.shape[0]
    g = _flat(grad, batch)
    weight = module.weight
    if weight.requires_grad:
        uses.setdefault(id(weight), _Use(weight)).factored.append(
            _Factored(left=g, right=_flat(x, batch), rows=weight.shape[0]))
    if module.bias is not None and module.bias.requires_grad:
        uses.setdefault(id(module.bias), _Use(module.bias)).dense.append(g.sum(dim=1))


def _embedding_use(call: _Call, grad: torch.Tensor, uses: dict[int, _Use]) -> None:
    module = call.module
    ids = call.args[0] if call.args else call.kwargs["input"]
    batch = ids.shape[0]
    ids = ids.reshape(batch, -1)
    g = _flat(grad, batch)
    if module.padding_idx is not None:  # the padding row gets no gradient from a lookup
        g = g * (ids != module.padding_idx).unsqueeze(-1)
    weight = module.weight
    uses.setdefault(id(weight), _Use(weight)).factored.append(
        _Factored(left=ids, right=g, rows=weight.shape[0]))


def _generic_use(call: _Call, grad: torch.Tensor, uses: dict[int, _Use]) -> None:
    """Per-sample gradients of a module's own parameters: the module is re-run alone on its captured inputs, vmapped
    over the rows (each row a batch of one) with a per-row zero offset added to each parameter; the offsets'
    gradients, given the captured output gradient, are the per-sample parameter gradients."""
    import torch
    from torch.func import functional_call, vmap
    from torch.utils._pytree import tree_flatten, tree_unflatten

    module = call.module
    named = [(name, p) for name, p in module.named_parameters(recurse=False) if p.requires_grad]
    if not named:
        return
    batch = grad.shape[0]
    leaves, spec = tree_flatten((call.args, call.kwargs))
    leaves = [leaf.detach() if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves]
    batched = [isinstance(leaf, torch.Tensor) and leaf.dim() > 0 and leaf.shape[0] == batch for leaf in leaves]
    batched_leaves = [leaf for leaf, is_b in zip(leaves, batched, strict=True) if is_b]
    base = {name: p.detach() for name, p in named}
    offsets = {name: torch.zeros((batch, *p.shape), dtype=p.dtype, device=p.device, requires_grad=True)
               for name, p in named}

    def one_row(row_offsets: dict, *rows: torch.Tensor) -> torch.Tensor:
        it = iter(rows)
        filled = [next(it).unsqueeze(0) if is_b else leaf for leaf, is_b in zip(leaves, batched, strict=True)]
        args, kwargs = tree_unflatten(filled, spec)
        params = {name: base[name] + row_offsets[name] for name in base}
        return functional_call(module, params, args, kwargs)

    out = vmap(one_row)(offsets, *batched_leaves)  # (B, 1, ...)
    per_sample = torch.autograd.grad(out, list(offsets.values()), grad_outputs=grad.unsqueeze(1).to(out.dtype))
    for (_, p), g in zip(named, per_sample, strict=True):
        uses.setdefault(id(p), _Use(p)).dense.append(g.float())


def _left_gram(a: _Factored, b: _Factored) -> torch.Tensor:
    """(B, Ta, Tb): the inner products of the left factors."""
    import torch

    if not a.indexed and not b.indexed:
        return torch.bmm(a.left, b.left.transpose(1, 2))
    if a.indexed and b.indexed:
        return (a.left.unsqueeze(2) == b.left.unsqueeze(1)).float()
    dense, index = (a, b) if b.indexed else (b, a)
    gram = torch.gather(dense.left, 2, index.left.unsqueeze(1).expand(-1, dense.left.shape[1], -1))
    return gram if b.indexed else gram.transpose(1, 2)


def _ghost_inner(a: _Factored, b: _Factored) -> torch.Tensor:
    import torch

    right = torch.bmm(a.right, b.right.transpose(1, 2))
    return (_left_gram(a, b) * right).sum(dim=(1, 2))


def _materialise(f: _Factored, shape: torch.Size) -> torch.Tensor:
    import torch

    batch, _, n = f.right.shape
    if f.indexed:
        out = torch.zeros(batch, f.rows, n, dtype=torch.float32, device=f.right.device)
        out.scatter_add_(1, f.left.unsqueeze(-1).expand(-1, -1, n), f.right)
    else:
        out = torch.bmm(f.left.transpose(1, 2), f.right)
    return out.view(batch, *shape)


def _prefer_ghost(use: _Use) -> bool:
    """Compare the flops of Gram matrices with those of materialising (B factored out of both)."""
    if use.dense:
        return False
    rows = use.factored[0].rows
    cols = use.param.numel() // rows
    batch = use.factored[0].right.shape[0]
    if batch * rows * cols > _MATERIALISE_LIMIT:
        return True
    lengths = [f.right.shape[1] for f in use.factored]
    widths = [1 if f.indexed else f.rows for f in use.factored]
    ghost = sum(lengths[i] * lengths[j] * (min(widths[i], widths[j]) + cols)
                for i in range(len(lengths)) for j in range(i, len(lengths)))
    materialise = rows * cols + sum(length * (width * cols if width > 1 else cols)
                                    for length, width in zip(lengths, widths, strict=True))
    return ghost < materialise


def _squared_norm(use: _Use) -> torch.Tensor:
    """(B,): each sample's squared gradient norm of one parameter, all its uses summed first."""
    import torch

    if _prefer_ghost(use):
        factors = use.factored
        total = sum(_ghost_inner(factors[i], factors[i]) for i in range(len(factors)))
        for i in range(len(factors)):
            for j in range(i + 1, len(factors)):
                total = total + 2.0 * _ghost_inner(factors[i], factors[j])
        return total.clamp(min=0.0)
    per_sample = None
    for f in use.factored:
        g = _materialise(f, use.param.shape)
        per_sample = g if per_sample is None else per_sample + g
    for g in use.dense:
        per_sample = g if per_sample is None else per_sample + g
    return torch.linalg.vector_norm(per_sample.flatten(1), dim=1).square()


def _chunk_norms(model: nn.Module, modules: list[nn.Module], input_ids: torch.Tensor,
                 labels: torch.Tensor) -> torch.Tensor:
    import torch
    from torch import nn

    calls: list[_Call] = []

    def record(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        calls.append(_Call(module, args, kwargs, output,
                           [t._version for t in _tensors((output, args, kwargs))]))

    handles = [m.register_forward_hook(record, with_kwargs=True) for m in modules]
    try:
        logits = model(input_ids=input_ids, use_cache=False).logits
    finally:
        for handle in handles:
            handle.remove()
    total = _per_row_loss(logits, labels).sum()
    for call in calls:
        if not isinstance(call.output, torch.Tensor):
            raise NotImplementedError(f"gradient_norms: module {type(call.module).__name__} has parameters and "
                                      f"returns {type(call.output).__name__}, not a tensor; its per-sample "
                                      f"gradients are not supported")
        if [t._version for t in _tensors((call.output, call.args, call.kwargs))] != call.versions:
            raise NotImplementedError(f"gradient_norms: the input or output of module {type(call.module).__name__} "
                                      f"is modified in place later in the forward pass; its per-sample gradients "
                                      f"cannot be read from the captured tensors")
    differentiable = [call for call in calls if call.output.requires_grad]
    grads = torch.autograd.grad(total, [c.output for c in differentiable], allow_unused=True)
    del logits, total

    uses: dict[int, _Use] = {}
    for call, grad in zip(differentiable, grads, strict=True):
        if grad is None:  # the output does not reach the loss: zero gradient
            continue
        if _is_plain(call.module, nn.Linear):
            _linear_use(call, grad, uses)
        elif _is_plain(call.module, nn.Embedding) and call.module.max_norm is None \
                and not call.module.scale_grad_by_freq and not call.module.sparse:
            _embedding_use(call, grad, uses)
        else:
            _generic_use(call, grad, uses)
    calls.clear()
    differentiable.clear()
    del grads

    squared = torch.zeros(input_ids.shape[0], dtype=torch.float32, device=input_ids.device)
    for key in list(uses):
        squared += _squared_norm(uses.pop(key))
    return squared.sqrt()


def _length_groups(lengths: Sequence[int], batch_size: int, pass_cost: int) -> list[list[int]]:
    """Rows grouped for the forward passes: sorted by length, then cut (dynamic programming) to minimise the total
    padded tokens plus `pass_cost` tokens' worth of overhead per pass; at most `batch_size` rows a group."""
    order = sorted(range(len(lengths)), key=lambda row: lengths[row])
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[j]: cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        width = lengths[order[j - 1]]  # the longest row of any group ending at j
        for i in range(max(0, j - batch_size), j):
            cost = best[i] + pass_cost + (j - i) * width
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups = []
    j = n
    while j > 0:
        groups.append(order[cut[j]: j])
        j = cut[j]
    return groups[::-1]


def gradient_norms(student: LoadedModel, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 32,
                   max_length: int = 384) -> list[float]:
    """Each sample's gradient norm, at most `batch_size` samples per forward pass (samples of similar lengths
    together, so little is spent on padding; the result does not depend on the grouping)."""

    _check_inputs(prompts, answers)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not prompts:
        return []
    model = student.model
    device = next(model.parameters()).device
    batch = encode_answers(student.tokenizer, prompts, answers, max_length)
    lengths = batch.attention_mask.sum(dim=1).tolist()
    pass_cost = _PASS_COST_CPU if device.type == "cpu" else _PASS_COST_ACCELERATOR
    norms = [0.0] * len(prompts)
    with _prepared(model):
        modules = _param_modules(model)
        for rows in _length_groups(lengths, batch_size, pass_cost):
            width = max(lengths[row] for row in rows)
            input_ids = batch.input_ids[rows, :width].to(device)
            labels = batch.labels[rows, :width].to(device)
            for row, value in zip(rows, _chunk_norms(model, modules, input_ids, labels).tolist(), strict=True):
                norms[row] = value
    return norms
