"""xpnn's PyTorch modules under DistributedDataParallel: 2 processes, gloo, 127.0.0.1.

Each process builds the same network from ``xpnn.torch.nn`` (hand-derived forward and
backward passes), wraps it in ``torch.nn.parallel.DistributedDataParallel`` and trains
on its half of every minibatch of the 8x8 digits; DDP averages the gradients over the
processes (torch.distributed's all-reduce; xpnn adds no communication of its own).

    python examples/ddp_torch.py --steps 20 --out runs/ddp

Process 0 writes ``result.pt`` under ``--out``, atomically: the losses, the gradients of
the first step and the final weights. Without batch norm (``--model three_layer``, the
default) they equal a single process training on the whole minibatches; with it
(``--model deep``) each process normalizes its half with its own statistics, as
``torch.nn.BatchNorm2d`` does under DDP.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from xpnn.torch import nn as xnn
from xpnn.torch.models import deep_convnet, three_layer_convnet

PROCESSES = 2


def build(model: str) -> torch.nn.Sequential:
    """The network, float64, with the same initial weights in every process."""
    torch.manual_seed(0)
    if model == "deep":
        return deep_convnet(1, (8, 16), 10, 8, nn=xnn, dtype=torch.float64)
    return three_layer_convnet(1, 8, 8, 10, 8, nn=xnn, dtype=torch.float64)


def minibatches(steps: int, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The same ``steps`` minibatches of the digits in every process (seeded draws)."""
    from xpnn.data import load_digits

    data = load_digits(seed=0)
    X = torch.from_numpy(data["X_train"]).double()
    y = torch.from_numpy(data["y_train"]).long()
    generator = torch.Generator().manual_seed(1)
    rows = [torch.randint(len(X), (batch_size,), generator=generator) for _ in range(steps)]
    return [(X[r], y[r]) for r in rows]


def train(net: torch.nn.Module, batches: list, rank: int = 0, world: int = 1) -> dict:
    """SGD with momentum on this process's share of each minibatch; losses, first grads."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    losses, first_grads = [], None
    for X, y in batches:
        share = slice(rank * len(X) // world, (rank + 1) * len(X) // world)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(X[share]), y[share])
        loss.backward()
        if first_grads is None:
            module = getattr(net, "module", net)  # the network inside DDP: its names
            first_grads = {n: p.grad.clone() for n, p in module.named_parameters()}
        optimizer.step()
        losses.append(loss.item())
    return {"losses": losses, "first_grads": first_grads}


def worker(rank: int, port: int, model: str, steps: int, batch_size: int, out: str) -> None:
    torch.set_num_threads(1)  # one core per process
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=PROCESSES
    )
    try:
        net = torch.nn.parallel.DistributedDataParallel(build(model))
        result = train(net, minibatches(steps, batch_size), rank, PROCESSES)
        # each process's loss is over its half: the minibatch's loss is their mean
        losses = torch.tensor(result["losses"], dtype=torch.float64)
        dist.all_reduce(losses)
        result["losses"] = (losses / PROCESSES).tolist()
        if rank == 0:
            result["state_dict"] = net.module.state_dict()
            save_atomically(result, Path(out) / "result.pt")
        dist.barrier()  # leave together: gloo aborts a process whose peer left mid-teardown
    finally:
        dist.destroy_process_group()


def save_atomically(obj: dict, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("three_layer", "deep"), default="three_layer")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("runs/ddp"))
    args = parser.parse_args(argv)
    if args.batch_size < PROCESSES or args.batch_size % PROCESSES:
        parser.error(
            f"--batch-size must be a positive multiple of {PROCESSES}; got {args.batch_size}"
        )
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer; got {args.steps}")
    mp.spawn(
        worker,
        args=(free_port(), args.model, args.steps, args.batch_size, str(args.out)),
        nprocs=PROCESSES,
    )
    result = torch.load(args.out / "result.pt", weights_only=True)
    print(
        f"{args.model} under DDP, {PROCESSES} processes: loss {result['losses'][0]:.4f} -> "
        f"{result['losses'][-1]:.4f} over {args.steps} steps; wrote {args.out / 'result.pt'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
