"""DDP gathers the whole step's batch before mining: two processes over the halves of a batch
give the loss and the gradients that one process gives over the whole batch (gloo, CPU)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

# Builds the same tiny module in every process, runs one step over this process's share of a
# fixed global batch, averages the parameter gradients over the processes as DDP does and saves
# the loss and the gradients. World size 1 runs the whole batch.
WORKER = textwrap.dedent(
    """
    import sys

    import torch
    import torch.distributed as dist
    from safetensors.torch import save_file

    from artsim.model.heads import ModelConfig
    from artsim.training.config import TrainConfig
    from artsim.training.module import TripletModule

    rank, world, store, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    config = TrainConfig(data="x", miner=sys.argv[5], hard_negatives="artist", dropout=0.0)
    model_config = ModelConfig("tiny", "tiny", 12, 10, embed_dim=8, hidden_dim=16, dropout=0.0)
    torch.manual_seed(0)
    module = TripletModule(model_config, config)
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(5).repeat_interleave(3)
    batch = {
        "image": torch.randn(len(labels), 12, generator=generator),
        "text": torch.randn(len(labels), 10, generator=generator),
        "label": labels,
        "has_text": torch.arange(len(labels)) % 4 != 0,
        "affinity": labels // 2,
    }
    # uneven shares (8 and 7 rows) exercise the padding
    bounds = [0, 8, 15] if world == 2 else [0, 15]
    share = {k: v[bounds[rank] : bounds[rank + 1]] for k, v in batch.items()}
    parts = module.step_parts(share, batch_index=3)
    parts["total"].backward()
    grads = {}
    for name, parameter in module.named_parameters():
        grad = parameter.grad.clone()
        if world > 1:
            dist.all_reduce(grad)
            grad /= world
        grads[name] = grad
    grads["loss"] = parts["total"].detach().reshape(1)
    grads["triplets"] = torch.stack([parts[f"{f}_n"] for f in ("image", "text", "i2t", "t2i")])
    save_file(grads, f"{out}.{rank}.safetensors")
    if world > 1:
        dist.destroy_process_group()
    """
)


def _run(tmp_path: Path, world: int, miner: str) -> dict[str, torch.Tensor]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    store, out = tmp_path / f"store-{world}", tmp_path / f"out-{world}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), str(world), str(store), str(out), miner],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=180)
        assert process.returncode == 0, stderr[-3000:]
    return [load_file(f"{out}.{rank}.safetensors") for rank in range(world)]


@pytest.mark.parametrize("miner", ["semihard"])
def test_two_processes_over_halves_match_one_process_over_the_batch(tmp_path, miner):
    (single,) = _run(tmp_path, 1, miner)
    first, second = _run(tmp_path, 2, miner)
    # every process mined among all 15 items: the same triplet counts as one process
    assert torch.equal(first["triplets"], single["triplets"])
    assert torch.equal(second["triplets"], single["triplets"])
    assert float(single["loss"]) > 0
    for result in (first, second):
        assert set(result) == set(single)
        for name, value in single.items():
            torch.testing.assert_close(result[name], value, rtol=1e-5, atol=1e-6, msg=name)
