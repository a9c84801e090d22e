"""The whole step's batch on every process, so mining sees every process's items (DDP).

Under DDP each process embeds its own share of a step's batch. :func:`gather_batch` joins the
shares in rank order before the loss: every process then computes the same loss over the whole
batch, mining negatives among all of its items. The embeddings are gathered with
``torch.distributed.nn.functional.all_gather``, whose backward sums each process's gradient for
a share back onto the process that owns it; DDP's averaging of parameter gradients over the
processes then gives exactly the gradient of the whole batch's loss on one process (tested on
CPU with gloo in ``tests/train/test_ddp_gather.py``).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_functional


def world_size() -> int:
    """Processes in the default group (1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather_batch(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every process's rows of each tensor, concatenated in rank order (the same dict alone).

    Shares may differ in size: they are padded to the largest for the collective and cut back
    after it. Tensors that require gradients keep them for the local share.
    """
    world = world_size()
    if world == 1:
        return tensors
    first = next(iter(tensors.values()))
    count = torch.tensor([len(first)], device=first.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    sizes = [int(c.item()) for c in counts]
    largest = max(sizes)
    out = {}
    for key, value in tensors.items():
        is_bool = value.dtype == torch.bool
        value = value.long() if is_bool else value  # collectives do not take bool on every backend
        pad = largest - len(value)
        if pad:
            value = torch.cat([value, value.new_zeros((pad, *value.shape[1:]))])
        if value.requires_grad:
            parts = list(dist_functional.all_gather(value))
        else:
            parts = [torch.empty_like(value) for _ in range(world)]
            dist.all_gather(parts, value.contiguous())
        joined = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
        out[key] = joined.bool() if is_bool else joined
    return out
